export { DEFAULTS, type DeepReadonly } from './defaults.js';
export {
  ENV_IGNORED,
  ENV_PREFIX,
  isEnvIgnored,
  loadConfig,
  sourceLabel,
  type ConfigFlags,
  type ConfigSource,
  type LoadConfigOptions,
} from './load.js';
export {
  ChorusConfigSchema,
  DURABILITIES,
  LEVEL_NAMES,
  LOG_LEVELS,
  STORAGE_ENGINES,
  checkRelations,
  resolveLevel,
  type ChorusConfig,
  type ConfigProblem,
  type Level,
  type LevelName,
  type SectionName,
  type SettingPath,
} from './schema.js';
export { parseSeed, type SeedAddress } from './seed.js';
export { SETTING_PATHS, describeSettings, envNameFor, type SettingDescription, type SettingValue } from './settings.js';
