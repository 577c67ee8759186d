// Loads the server's settings: defaults < TOML file < environment (TXKV_*) < flags.
// Main thread, start-up only. Every source is checked against one schema, so an
// unknown key or a wrong type stops the server naming the source, the key and what
// was expected. Only the CLI calls this (it is the one place that reads process.env).
import fs from 'node:fs';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { z } from 'zod';
import { DEFAULT_CONFIG, MAX_FRAME_BYTES, MAX_IDLE_TIMEOUT_SEC, resolveConfig, type PartialServerConfig, type ServerConfig } from './server-config.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (min: number, max = Number.MAX_SAFE_INTEGER): z.ZodNumber => z.number().int().min(min).max(max);

/** Stricter checks than the type alone, for the settings that have them. */
const REFINED: Record<string, z.ZodType> = {
  port: int(0, 65535),
  host: z.string().min(1),
  dataDir: z.string().min(1),
  shards: int(0, 64),
  durability: z.enum(['fsync', 'buffered']),
  mvccWindowMs: int(100),
  maxFrameBytes: int(1024, MAX_FRAME_BYTES),
  idleTimeoutSec: int(0, MAX_IDLE_TIMEOUT_SEC),
  logLevel: z.enum(LOG_LEVELS),
  logFormat: z.enum(['auto', 'json', 'pretty']),
  slowTransactionMs: int(0),
  gatewayThreads: int(0, 32),
  'auth.tokens': z.array(z.string().min(1)),
  'auth.readOnlyTokens': z.array(z.string().min(1)),
  'limits.maxConnections': int(1),
  'limits.maxInflightPerConnection': int(1),
  'limits.maxBufferedBytes': int(1024),
  'limits.maxBackpressureBytes': int(1024),
  'cluster.etcdEndpoints': z.array(z.string().regex(/^https?:\/\/[^/]+$/, 'expected URLs like http://host:2379')),
  // '' = the default (the host name; this server's URL)
  'cluster.nodeId': z.string().regex(/^(|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$/, "expected 1-64 letters, digits, '.', '_' or '-', not starting with a symbol"),
  'cluster.advertiseUrl': z.string().regex(/^(|wss?:\/\/\S+)$/, 'expected a URL like ws://HOST:PORT'),
  'cluster.leaseTtlMs': int(1000),
  'cluster.logRetentionMs': int(0),
  'limits.maxWatchesPerConnection': int(0),
  'limits.maxFeedBufferBytes': int(1024),
  'limits.maxSnapshotHistoryBytes': int(1024 * 1024),
  'rocksdb.blockCacheBytes': int(0),
  'rocksdb.memtableBytes': int(1024 * 1024),
  'rocksdb.rowCacheBytes': int(0),
  'distribution.checkIntervalMs': int(50),
  'distribution.splitBytes': int(0),
  'distribution.mergeBytes': int(0),
  'distribution.balanceMinBytes': int(0),
  'distribution.censusIntervalMs': int(0),
  'distribution.sizeBand': z.number().gt(0).max(1),
  'distribution.cooldownMs': int(0),
  'distribution.minOpsPerSec': z.number().min(0),
  'distribution.splitLoadShare': z.number().gt(0).max(1),
  'distribution.loadBand': z.number().gt(0).max(1),
  'distribution.mergeLoadShare': z.number().gt(0).max(1),
};

/** Settings whose schema alone does not say what they allow in words. */
const ALLOWED_TEXT: Record<string, string> = {
  'cluster.nodeId': "1-64 letters, digits, '.', '_' or '-', not starting with a symbol",
  'cluster.advertiseUrl': 'a URL like ws://HOST:PORT',
  'cluster.etcdEndpoints': 'URLs like http://host:2379, comma-separated',
  'auth.tokenFile': 'a file name',
  'tls.cert': 'a PEM file name',
  'tls.key': 'a PEM file name',
};

/**
 * What a setting allows, in words for a usage message: "a whole number from 0 to 65535",
 * "one of fsync, buffered", "a non-empty string" (from the same schema the check uses).
 */
export function allowedValues(path: string): string {
  const said = ALLOWED_TEXT[path];
  if (said !== undefined) return said;
  const s = REFINED[path];
  if (s instanceof z.ZodNumber) {
    const kind = s.isInt ? 'a whole number' : 'a number';
    const min = s.minValue;
    const max = s.maxValue;
    const big = (n: number): boolean => !Number.isFinite(n) || Math.abs(n) >= Number.MAX_SAFE_INTEGER;
    if (min !== null && !big(min) && max !== null && !big(max)) return `${kind} from ${min} to ${max}`;
    if (min !== null && !big(min)) return `${kind}, at least ${min}`;
    return kind;
  }
  if (s instanceof z.ZodEnum) return `one of ${(s.options as string[]).join(', ')}`;
  if (s instanceof z.ZodString) return 'a non-empty string';
  if (s instanceof z.ZodArray) return 'a list';
  return 'a valid value';
}

/** A setting's schema: its refinement, else the type of its default (so a new setting is checked too). */
function settingSchema(path: string, def: unknown): z.ZodType {
  const refined = REFINED[path];
  if (refined) return refined;
  if (typeof def === 'number') return z.number();
  if (typeof def === 'boolean') return z.boolean();
  if (typeof def === 'string') return z.string();
  if (Array.isArray(def)) return z.array(z.string());
  throw new Error(`config setting ${path} has a default of an unsupported type`);
}

function buildSchema(): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [k, v] of Object.entries(DEFAULT_CONFIG)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const table: Record<string, z.ZodType> = {};
      for (const [kk, vv] of Object.entries(v)) table[kk] = settingSchema(`${k}.${kk}`, vv);
      shape[k] = z.strictObject(table).partial();
    } else shape[k] = settingSchema(k, v);
  }
  return z.strictObject(shape).partial();
}

/** The file's schema: the keys of ServerConfig (DEFAULT_CONFIG), camelCase, every key optional. */
export const CONFIG_SCHEMA = buildSchema();

/** A bad setting: `source` is the file path, "environment" or "command line". */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly key: string,
    message: string,
  ) {
    super(`${source}: ${key ? `${key}: ` : ''}${message}`);
    this.name = 'ConfigError';
  }
}

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'a table';
  return `${typeof v} ${String(v)}`;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** Checks one source against the schema; throws ConfigError for its first problem. */
export function validateSettings(input: unknown, source: string, keyName: (path: string) => string = (p) => p): PartialServerConfig {
  const r = CONFIG_SCHEMA.safeParse(input);
  if (r.success) return r.data as PartialServerConfig;
  const issue = r.error.issues[0]!;
  const where = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = [...issue.path.map(String), issue.keys[0]!].join('.');
    const tableDefaults = issue.path.length === 0 ? DEFAULT_CONFIG : valueAt(DEFAULT_CONFIG, issue.path);
    const known = Object.keys(tableDefaults as object);
    const hint = known.includes(camel(issue.keys[0]!)) ? ` (keys are camelCase: did you mean ${camel(issue.keys[0]!)}?)` : '';
    throw new ConfigError(source, keyName(key), `unknown setting${hint}; expected one of ${known.join(', ')}`);
  }
  const got = valueAt(input, issue.path);
  let expected = issue.message.replace(/^Invalid input: /, '');
  if (issue.code === 'invalid_type') expected = `expected ${issue.expected === 'number' ? 'a number' : issue.expected === 'object' ? 'a table' : issue.expected}`;
  else if (issue.code === 'invalid_value') expected = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  else if (issue.code === 'too_small') expected = `expected ${issue.origin === 'string' ? 'a non-empty string' : `at least ${String(issue.minimum)}`}`;
  else if (issue.code === 'too_big') expected = `expected at most ${String(issue.maximum)}`;
  throw new ConfigError(source, keyName(where), `${expected}, got ${describe(got)}`);
}

/** Reads and checks a TOML config file. */
export function readConfigFile(file: string): PartialServerConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read the config file: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (err) {
    throw new ConfigError(file, '', `not valid TOML: ${(err as Error).message}`);
  }
  return validateSettings(doc, file);
}

/** Environment variable of a setting: TXKV_ + its path in SNAKE_CASE (limits.maxConnections -> TXKV_LIMITS_MAX_CONNECTIONS). */
export function envName(path: string): string {
  return `TXKV_${path.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/** Every setting's path and its default, in file order (nested tables flattened). */
export function settingPaths(): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(DEFAULT_CONFIG)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [kk, vv] of Object.entries(v)) out.push([`${k}.${kk}`, vv]);
    else out.push([k, v]);
  }
  return out;
}

/**
 * Settings from TXKV_* variables. The type follows the default: numbers are decimal,
 * booleans true/false/1/0, lists comma-separated. TXKV_CONFIG (the file) and
 * TXKV_FAILPOINTS (tests) are read by the CLI, not here.
 */
/**
 * TXKV_* variables that are not server settings but are read by txkv's CLI, SDK
 * tools, tests or build scripts; any other TXKV_* name is a misspelling and stops
 * start-up, as an unknown key in the config file does.
 */
export const OTHER_TXKV_VARIABLES: readonly string[] = [
  'TXKV_CONFIG', // the config file (CLI)
  'TXKV_FAILPOINTS', // failpoints (tests)
  'TXKV_TEST_GATEWAY_THREADS', // gatewayThreads for servers a test suite starts in-process (startServer) without setting it
  'TXKV_ENDPOINT', // client commands
  'TXKV_SHARD_YOUNG_MB', // a shard thread's young generation, MB (coordinator/shard-handle.ts; benchmarks; 0 = V8's default)
  'TXKV_TOKEN', // client commands
  // tests, conformance suite, C++ build and benchmarks
  'TXKV_URL',
  'TXKV_AUTH_URL',
  'TXKV_READONLY_URL',
  'TXKV_ROOT',
  'TXKV_CONFORMANCE', // scripts/conformance.sh: where the shared conformance suite is, or skip
  'TXKV_REPO_ROOT',
  'TXKV_SEED',
  'TXKV_GEN_DIR',
  'TXKV_SCHEMA',
  'TXKV_BUILD_TESTS',
  'TXKV_BUILD_3FS_ADAPTER',
  'TXKV_CPP_JOBS',
  'TXKV_EXAMPLE_TOML',
  'TXKV_WRITE_VECTORS',
  'TXKV_VECTORS_DIR',
  'TXKV_DASHBOARD_SCREENSHOT',
  'TXKV_BACKUP_ROWS', // test/ops/backup.test.ts (rows to back up)
  'TXKV_IMPORT_ROWS', // test/integrations/fdb-import.test.ts (rows in the generated dump)
  'TXKV_TLS_URL', // scripts/test-cpp.sh: the TLS test server for the C++ live tests
  'TXKV_TLS_CA', // scripts/test-cpp.sh: its CA file
];

/** Levenshtein distance, for "did you mean" on a misspelt variable. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** Throws ConfigError for a TXKV_* variable that is neither a setting nor one of OTHER_TXKV_VARIABLES. */
export function checkEnvNames(env: NodeJS.ProcessEnv): void {
  const settings = settingPaths().map(([p]) => envName(p));
  const known = new Set([...settings, ...OTHER_TXKV_VARIABLES]);
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('TXKV_') || known.has(name)) continue;
    const best = [...known].map((k) => [k, distance(name, k)] as const).sort((a, b) => a[1] - b[1])[0]!;
    const hint = best[1] <= 3 ? `did you mean ${best[0]}? ` : '';
    throw new ConfigError('environment', name, `unknown variable; ${hint}settings are ${settings.join(', ')} (configs/default.toml lists them)`);
  }
}

export function configFromEnv(env: NodeJS.ProcessEnv): PartialServerConfig {
  checkEnvNames(env);
  const out: Record<string, unknown> = {};
  const names = new Map<string, string>();
  for (const [p, def] of settingPaths()) {
    const name = envName(p);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    names.set(p, name);
    let v: unknown = raw;
    if (typeof def === 'number') v = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    else if (typeof def === 'boolean') v = /^(true|1|yes)$/i.test(raw) ? true : /^(false|0|no)$/i.test(raw) ? false : raw;
    else if (Array.isArray(def)) v = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const [k, kk] = p.split('.') as [string, string | undefined];
    if (kk === undefined) out[k] = v;
    else ((out[k] ??= {}) as Record<string, unknown>)[kk] = v;
  }
  return validateSettings(out, 'environment', (p) => names.get(p) ?? p);
}

function merge(into: PartialServerConfig, from: PartialServerConfig): PartialServerConfig {
  const out = { ...into } as Record<string, unknown>;
  for (const [k, v] of Object.entries(from)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out[k] = { ...((out[k] as object) ?? {}), ...v };
    else out[k] = v;
  }
  return out as PartialServerConfig;
}

export interface LoadedConfig {
  config: ServerConfig;
  /** The config file read, if any. */
  file: string | null;
}

/** defaults < file (`file`, else TXKV_CONFIG) < environment < flags. */
export function loadConfig(o: { file?: string; env?: NodeJS.ProcessEnv; flags?: PartialServerConfig } = {}): LoadedConfig {
  const env = o.env ?? {};
  const file = o.file ?? (env.TXKV_CONFIG ? env.TXKV_CONFIG : null);
  let partial: PartialServerConfig = file ? readConfigFile(file) : {};
  partial = merge(partial, configFromEnv(env));
  partial = merge(partial, validateSettings(o.flags ?? {}, 'command line'));
  try {
    return { config: resolveConfig(partial), file };
  } catch (err) {
    throw new ConfigError(file ?? 'settings', '', (err as Error).message);
  }
}

/** The config with token values replaced, safe to print or log. */
export function maskSecrets(config: ServerConfig): ServerConfig {
  const c = structuredClone(config);
  c.auth.tokens = c.auth.tokens.map(() => '<redacted>');
  c.auth.readOnlyTokens = c.auth.readOnlyTokens.map(() => '<redacted>');
  return c;
}

/** The config as a TOML document (secrets masked), loadable again with --config. */
export function configToToml(config: ServerConfig): string {
  return stringifyToml(maskSecrets(config) as unknown as Record<string, unknown>);
}
