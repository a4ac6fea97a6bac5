/**
 * Loading a node's configuration from its layers.
 *
 * Four layers, each overriding the one before: the built-in `DEFAULTS` (which
 * `config/default.yaml` mirrors), a YAML file, command-line flags keyed by dotted path
 * (`{ 'node.port': 7071 }`), and `CHORUS_*` environment variables (`CHORUS_NODE_PORT`).
 * A layer replaces whole settings; lists are replaced, never concatenated.
 *
 * Every value remembers the layer it came from, so an error says not only which setting is
 * wrong and what was expected but where to fix it:
 * `replication.w: must be ≤ replication.n (3), got 5 (from /etc/chorus.yaml)`.
 * Nothing unknown passes silently: an unknown key in the file, an unknown flag and an unknown
 * `CHORUS_*` variable are all errors (a typo that is ignored leaves a node running with a
 * setting its operator believes changed), except variables listed in `ENV_IGNORED`.
 * Environment variables and string-valued flags are text, turned into values by the
 * setting's type (see `settings.ts`).
 */

import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../base/errors.js';
import { DEFAULTS } from './defaults.js';
import { ChorusConfigSchema, SECRET_SETTINGS, checkRelations, type ChorusConfig, type ConfigProblem } from './schema.js';
import {
  SECTION_NAMES,
  SETTING_PATHS,
  envNameFor,
  settingFor,
  settingForEnv,
  settingValueFromText,
} from './settings.js';

/** Where a value came from. */
export type ConfigSource =
  | { readonly kind: 'default' }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'flag'; readonly name: string }
  | { readonly kind: 'env'; readonly name: string };

/** Overrides keyed by dotted path: `{ 'node.port': 7071, 'node.seeds': ['a:1'] }`. Undefined values are skipped. */
export type ConfigFlags = Readonly<Record<string, unknown>>;

export interface LoadConfigOptions {
  /** A YAML file; its settings override the defaults. */
  readonly file?: string;
  /** Overrides the file. String values are read like environment variables (`'7071'`, `'a:1,b:2'`). */
  readonly flags?: ConfigFlags;
  /** Overrides everything. Defaults to `process.env`; pass `{}` to ignore the environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export const ENV_PREFIX = 'CHORUS_';

/**
 * `CHORUS_*` variables that are not settings and must not be reported as typos: exact names,
 * or prefixes ending in `*`. The test suite keeps its own variables under `CHORUS_TEST_`.
 */
export const ENV_IGNORED: readonly string[] = ['CHORUS_TEST_*'];

/** Longest rendering of a bad value in an error message; a pasted blob should not flood the log. */
const VALUE_TEXT_CHARS_MAX = 80;

const DEFAULT_SOURCE: ConfigSource = { kind: 'default' };

type Candidate = Record<string, Record<string, unknown>>;

interface Layers {
  readonly candidate: Candidate;
  readonly sources: Map<string, ConfigSource>;
}

/** A problem together with the layer that supplied the offending value. */
interface LocatedProblem {
  readonly problem: ConfigProblem;
  readonly source: ConfigSource;
}

export function isEnvIgnored(name: string): boolean {
  return ENV_IGNORED.some((entry) => (entry.endsWith('*') ? name.startsWith(entry.slice(0, -1)) : name === entry));
}

/** Reads, merges and checks the layers; throws `ConfigError` naming the setting, the expectation and the source. */
export function loadConfig(options: LoadConfigOptions = {}): ChorusConfig {
  const layers: Layers = { candidate: structuredClone(DEFAULTS) as Candidate, sources: new Map() };
  if (options.file !== undefined) applyFile(layers, options.file, readYaml(options.file));
  applyFlags(layers, options.flags ?? {});
  applyEnv(layers, options.env ?? process.env);
  return validate(layers);
}

export function sourceLabel(source: ConfigSource): string {
  switch (source.kind) {
    case 'default':
      return 'built-in default';
    case 'file':
      return source.path;
    case 'flag':
      return `flag ${source.name}`;
    case 'env':
      return `env ${source.name}`;
  }
}

function readYaml(file: string): unknown {
  const source = sourceLabel({ kind: 'file', path: file });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${file}: cannot read the configuration file: ${(error as Error).message}`, { file, source });
  }
  // Warnings (an unknown tag, say) are refused too: a configuration file should mean exactly what it says.
  const document = parseDocument(text, { prettyErrors: true });
  const problem = document.errors[0] ?? document.warnings[0];
  if (problem !== undefined) {
    throw new ConfigError(`${file}: invalid YAML: ${problem.message.trimEnd()}`, { file, source });
  }
  try {
    return document.toJS();
  } catch (error) {
    throw new ConfigError(`${file}: invalid YAML: ${(error as Error).message}`, { file, source });
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function applyFile(layers: Layers, file: string, document: unknown): void {
  const source: ConfigSource = { kind: 'file', path: file };
  // An empty file, or a section whose settings are all commented out, is YAML null: nothing to override.
  if (document === null || document === undefined) return;
  if (!isMapping(document)) {
    const message = `expected a mapping of sections (${SECTION_NAMES.join(', ')}), got ${valueText('', document)}`;
    throw configError([{ problem: { key: '(top level)', message }, source }], layers.sources);
  }
  for (const [section, settings] of Object.entries(document)) {
    if (!(SECTION_NAMES as readonly string[]).includes(section)) {
      throw configError([{ problem: unknownProblem(section, SECTION_NAMES, 'section'), source }], layers.sources);
    }
    if (settings === null) continue;
    if (!isMapping(settings)) {
      const message = `expected a mapping of settings, got ${valueText(section, settings)}`;
      throw configError([{ problem: { key: section, message }, source }], layers.sources);
    }
    for (const [name, value] of Object.entries(settings)) setSetting(layers, `${section}.${name}`, value, source);
  }
}

function applyFlags(layers: Layers, flags: ConfigFlags): void {
  for (const [path, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const source: ConfigSource = { kind: 'flag', name: path };
    const known = settingFor(path) !== undefined;
    setSetting(layers, path, known && typeof value === 'string' ? settingValueFromText(path, value) : value, source);
  }
}

function applyEnv(layers: Layers, env: Readonly<Record<string, string | undefined>>): void {
  // Sorted, so that with several bad variables the same one is reported every time.
  const names = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !isEnvIgnored(name))
    .sort();
  for (const name of names) {
    const text = env[name];
    if (text === undefined) continue;
    const source: ConfigSource = { kind: 'env', name };
    const setting = settingForEnv(name);
    if (setting === undefined) {
      const envNames = SETTING_PATHS.map(envNameFor);
      const problem = unknownProblem(name, envNames, 'setting');
      const hint = `${problem.message}; variables that are not settings belong in ENV_IGNORED`;
      throw configError([{ problem: { key: name, message: hint }, source }], layers.sources);
    }
    setSetting(layers, setting.path, settingValueFromText(setting.path, text), source);
  }
}

function setSetting(layers: Layers, path: string, value: unknown, source: ConfigSource): void {
  const setting = settingFor(path);
  if (setting === undefined) {
    throw configError([{ problem: unknownProblem(path, SETTING_PATHS, 'setting'), source }], layers.sources);
  }
  const section = layers.candidate[setting.section];
  if (section !== undefined) section[setting.name] = value;
  layers.sources.set(path, source);
}

function validate(layers: Layers): ChorusConfig {
  const result = ChorusConfigSchema.safeParse(layers.candidate, { error: issueMessage, reportInput: true });
  if (!result.success) {
    throw configError(result.error.issues.map((issue) => locate(problemFromIssue(issue), layers.sources)), layers.sources);
  }
  const problems = checkRelations(result.data);
  if (problems.length > 0) {
    throw configError(problems.map((problem) => locate(problem, layers.sources)), layers.sources);
  }
  return result.data;
}

function locate(problem: ConfigProblem, sources: ReadonlyMap<string, ConfigSource>): LocatedProblem {
  return { problem, source: sources.get(problem.key) ?? DEFAULT_SOURCE };
}

/** The wording of each kind of schema issue; fields with their own wording (seeds, levels, names) keep theirs. */
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}`;
    case 'too_small':
      return issue.origin === 'string'
        ? `must be at least ${issue.minimum} characters`
        : `must be ${issue.inclusive === false ? '>' : '≥'} ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'string'
        ? `must be at most ${issue.maximum} characters`
        : `must be ${issue.inclusive === false ? '<' : '≤'} ${issue.maximum}`;
    case 'invalid_value':
      return `expected ${issue.values.map((value) => JSON.stringify(value)).join(' | ')}`;
    case 'unrecognized_keys':
      return 'unknown setting';
    default:
      return undefined;
  }
}

function problemFromIssue(issue: z.core.$ZodIssue): ConfigProblem {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = [...path, issue.keys[0] ?? ''].join('.');
    return { key, message: 'unknown setting' };
  }
  const [section, name, ...rest] = path;
  const key = name === undefined ? (section ?? '(top level)') : `${section}.${name}`;
  const setting = settingFor(key);
  // A wrong type at a setting is described by the setting's full type, which says whether null or a name is allowed.
  const expectation =
    issue.code === 'invalid_type' && setting !== undefined && rest.length === 0 ? `expected ${setting.type}` : issue.message;
  const item = rest.length > 0 ? `item ${rest.join('.')} ` : '';
  return { key, message: `${item}${expectation}, got ${valueText(key, issue.input)}` };
}

function valueText(key: string, value: unknown): string {
  if (SECRET_SETTINGS.has(key) && typeof value === 'string') {
    return `a string of ${value.length} characters (value hidden)`;
  }
  const text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  return text.length > VALUE_TEXT_CHARS_MAX ? `${text.slice(0, VALUE_TEXT_CHARS_MAX)}…` : text;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function unknownProblem(key: string, known: readonly string[], what: 'section' | 'setting'): ConfigProblem {
  // A suggestion only when it is close: a third of the name may be mistyped, and case never counts against it.
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  const hint = best === undefined ? '' : ` (did you mean ${best}?)`;
  const list = what === 'section' ? `; sections are ${known.join(', ')}` : '';
  return { key, message: `unknown ${what}${hint}${list}` };
}

function configError(located: readonly LocatedProblem[], sources: ReadonlyMap<string, ConfigSource>): ConfigError {
  const lines = located.map(({ problem, source }) => {
    const label = sourceLabel(source);
    const others = (problem.related ?? [])
      .map((key) => [key, sources.get(key)] as const)
      .filter((entry): entry is readonly [string, ConfigSource] => entry[1] !== undefined && sourceLabel(entry[1]) !== label)
      .map(([key, other]) => `; ${key} from ${sourceLabel(other)}`);
    return `${problem.key}: ${problem.message} (from ${label}${others.join('')})`;
  });
  const first = located[0];
  const details: Record<string, string | number> = { problems: located.length };
  if (first !== undefined) {
    details['key'] = first.problem.key;
    details['source'] = sourceLabel(first.source);
  }
  return new ConfigError(lines.join('\n'), details);
}
