/**
 * The catalogue of settings, derived from the schema: for each one its dotted path, its
 * environment variable, a readable type, its default and a one-line description.
 *
 * Deriving it (rather than listing the settings a second time) means a setting added to the
 * schema is at once loadable from YAML, flags and the environment, and shows up in `--help`.
 * The type is read from the schema's JSON Schema form (`z.toJSONSchema`), which also says how
 * text from an environment variable or a flag is turned into a value: `"null"` becomes null
 * where null is allowed, `"true"`/`"false"` booleans, numerals numbers, and lists are split on
 * commas. Text that fits none of these stays a string, and the schema then says what it wanted.
 */

import { z } from 'zod';
import { assert } from '../base/assert.js';
import { DEFAULTS } from './defaults.js';
import { ChorusConfigSchema, type SectionName, type SettingPath } from './schema.js';

export type SettingValue = string | number | boolean | null | readonly SettingValue[];

export interface SettingDescription {
  /** Dotted path, as used in flags and error messages: `node.port`. */
  readonly path: SettingPath;
  /** Environment variable that overrides it: `CHORUS_NODE_PORT`. */
  readonly env: string;
  /** Readable type, e.g. `integer 0..65535` or `"one" | "quorum" | "all" | integer ≥ 1`. */
  readonly type: string;
  readonly default: SettingValue;
  readonly description: string;
}

/** The subset of JSON Schema that `z.toJSONSchema` produces for our settings. */
interface JsonSchemaNode {
  readonly type?: string | readonly string[];
  readonly anyOf?: readonly JsonSchemaNode[];
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly items?: JsonSchemaNode;
  readonly description?: string;
  /** Our own metadata: a readable name for a form the JSON Schema cannot express (`host:port`). */
  readonly expected?: string;
}

type Kind = 'null' | 'boolean' | 'number' | 'string' | 'array';

interface Setting {
  readonly path: SettingPath;
  readonly section: SectionName;
  readonly name: string;
  readonly env: string;
  readonly schema: z.ZodType;
  readonly type: string;
  readonly kinds: ReadonlySet<Kind>;
  readonly itemKinds: ReadonlySet<Kind>;
  readonly description: string;
}

/** `limits.keyBytesMax` → `CHORUS_LIMITS_KEY_BYTES_MAX`. */
export function envNameFor(path: string): string {
  return `CHORUS_${path.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replaceAll('.', '_').toUpperCase()}`;
}

function rangeText(minimum: number | undefined, maximum: number | undefined): string {
  // z.int() reports the safe-integer range as its bounds; those are no news to a reader.
  const min = minimum !== undefined && minimum > Number.MIN_SAFE_INTEGER ? minimum : undefined;
  const max = maximum !== undefined && maximum < Number.MAX_SAFE_INTEGER ? maximum : undefined;
  if (min !== undefined && max !== undefined) return ` ${min}..${max}`;
  if (min !== undefined) return ` ≥ ${min}`;
  return max !== undefined ? ` ≤ ${max}` : '';
}

function typeText(node: JsonSchemaNode): string {
  if (node.expected !== undefined) return node.expected;
  if (node.anyOf !== undefined) return node.anyOf.map(typeText).join(' | ');
  if (node.enum !== undefined) return node.enum.map((value) => JSON.stringify(value)).join(' | ');
  if (Array.isArray(node.type)) return node.type.map((type: string) => typeText({ ...node, type })).join(' | ');
  switch (node.type) {
    case 'integer':
    case 'number':
      return `${node.type}${rangeText(node.minimum, node.maximum)}`;
    case 'string':
      if (node.pattern !== undefined) return `string matching /${node.pattern}/`;
      if (node.minLength === undefined && node.maxLength === undefined) return 'string';
      if (node.minLength === 1 && node.maxLength === undefined) return 'non-empty string';
      return `string of${rangeText(node.minLength, node.maxLength)} characters`;
    case 'array':
      return `list of ${node.items === undefined ? 'values' : typeText(node.items)}`;
    default:
      return typeof node.type === 'string' ? node.type : 'value';
  }
}

const KIND_OF_TYPE: Readonly<Record<string, Kind>> = {
  null: 'null',
  boolean: 'boolean',
  integer: 'number',
  number: 'number',
  string: 'string',
  array: 'array',
};

function kindsOf(node: JsonSchemaNode | undefined, into = new Set<Kind>()): Set<Kind> {
  if (node === undefined) return into;
  for (const option of node.anyOf ?? []) kindsOf(option, into);
  if (node.enum !== undefined) into.add('string');
  const types = typeof node.type === 'string' ? [node.type] : (node.type ?? []);
  for (const type of types) {
    const kind = KIND_OF_TYPE[type];
    if (kind !== undefined) into.add(kind);
  }
  return into;
}

/** The element schema of a list, also when the list is one option of several (a nullable list). */
function itemsOf(node: JsonSchemaNode): JsonSchemaNode | undefined {
  return node.items ?? node.anyOf?.map(itemsOf).find((items) => items !== undefined);
}

function buildCatalogue(): ReadonlyMap<string, Setting> {
  const catalogue = new Map<string, Setting>();
  for (const [section, sectionSchema] of Object.entries(ChorusConfigSchema.shape)) {
    for (const [name, schema] of Object.entries(sectionSchema.shape as Record<string, z.ZodType>)) {
      const json = z.toJSONSchema(schema) as JsonSchemaNode;
      const path = `${section}.${name}` as SettingPath;
      catalogue.set(path, {
        path,
        section: section as SectionName,
        name,
        env: envNameFor(path),
        schema,
        type: typeText(json),
        kinds: kindsOf(json),
        itemKinds: kindsOf(itemsOf(json)),
        description: json.description ?? '',
      });
    }
  }
  return catalogue;
}

const CATALOGUE = buildCatalogue();
const BY_ENV = new Map([...CATALOGUE.values()].map((setting) => [setting.env, setting]));
assert(BY_ENV.size === CATALOGUE.size, 'two settings map to the same environment variable');

export const SECTION_NAMES: readonly SectionName[] = Object.keys(ChorusConfigSchema.shape) as SectionName[];
export const SETTING_PATHS: readonly SettingPath[] = [...CATALOGUE.values()].map((setting) => setting.path);

export function settingFor(path: string): Setting | undefined {
  return CATALOGUE.get(path);
}

export function settingForEnv(name: string): Setting | undefined {
  return BY_ENV.get(name);
}

export function defaultFor(path: SettingPath): SettingValue {
  const [section = '', name = ''] = path.split('.');
  const values = (DEFAULTS as unknown as Record<string, Record<string, SettingValue> | undefined>)[section];
  const value = values?.[name];
  assert(value !== undefined, `setting ${path} has no default`);
  return value;
}

const NUMERAL_PATTERN = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function scalarFromText(text: string, kinds: ReadonlySet<Kind>): SettingValue {
  if (kinds.has('null') && text === 'null') return null;
  if (kinds.has('boolean') && (text === 'true' || text === 'false')) return text === 'true';
  if (kinds.has('number') && NUMERAL_PATTERN.test(text)) return Number(text);
  return text;
}

/** Turns the text of an environment variable or flag into a value of the setting's type (see the header). */
export function settingValueFromText(path: string, text: string): SettingValue {
  const setting = CATALOGUE.get(path);
  assert(setting !== undefined, `unknown setting ${path}`);
  return valueFromText(text, setting.kinds, setting.itemKinds);
}

/** The same conversion for any schema; exported so the rules can be checked on types no setting has yet. */
export function valueFromTextFor(schema: z.ZodType, text: string): SettingValue {
  const json = z.toJSONSchema(schema) as JsonSchemaNode;
  return valueFromText(text, kindsOf(json), kindsOf(itemsOf(json)));
}

function valueFromText(text: string, kinds: ReadonlySet<Kind>, itemKinds: ReadonlySet<Kind>): SettingValue {
  if (!kinds.has('array')) return scalarFromText(text, kinds);
  if (text.trim() === '') return [];
  return text.split(',').map((item) => scalarFromText(item.trim(), itemKinds));
}

/** Every setting with its path, environment variable, type and default, in schema order (for the README and `--help`). */
export function describeSettings(): SettingDescription[] {
  return [...CATALOGUE.values()].map((setting) => ({
    path: setting.path,
    env: setting.env,
    type: setting.type,
    default: defaultFor(setting.path),
    description: setting.description,
  }));
}
