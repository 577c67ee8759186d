// The server settings that `txkv serve` and `txkv config --print` accept as flags;
// flags override the config file and TXKV_* variables.
import { allowedValues, ConfigError, validateSettings } from '../config/load-config.js';
import type { PartialServerConfig, ServerConfig } from '../config/server-config.js';
import { stringFlag, UsageError, type FlagSpec, type Parsed } from './args.js';

export const SERVER_FLAGS: FlagSpec = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'data-dir': { type: 'string' },
  shards: { type: 'string' },
  readonly: { type: 'boolean' },
  durability: { type: 'string' },
  'mvcc-window-ms': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'slow-transaction-ms': { type: 'string' },
  insecure: { type: 'boolean' },
  'token-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  etcd: { type: 'string' },
  'node-id': { type: 'string' },
  advertise: { type: 'string' },
};

export const SERVER_FLAGS_USAGE = `  --config FILE              TOML config file (default: none, or TXKV_CONFIG); see configs/default.toml
  --port N                   port (default 7070; 0 = any free port)
  --host H                   address to bind (default 127.0.0.1)
  --data-dir DIR             data directory (default ./data)
  --shards N                 shards, fixed when the data directory is created (default 0 = automatic:
                             the data directory's count, or one per core for a new one, at most 8)
  --readonly                 refuse commits that write
  --durability fsync|buffered  (default fsync)
  --mvcc-window-ms N         MVCC window (default 5000)
  --log-level LEVEL          fatal, error, warn, info, debug, trace, silent (default info)
  --log-format F             auto, json, pretty (default auto: pretty on a terminal)
  --slow-transaction-ms N    log commits slower than this (default 500; 0 = off)
  --insecure                 allow a non-loopback --host without auth tokens
  --token-file FILE          auth tokens, one per line ("ro:<token>" = read-only)
  --tls-cert FILE --tls-key FILE   serve wss:// and https://
  --etcd URL[,URL...]        run as a node of a replicated cluster on these etcd members (docs/cluster.md)
  --node-id NAME             this node's name in the cluster (default: the host name)
  --advertise ws://HOST:PORT where the other nodes reach this one (default: this server's URL)
precedence: defaults < config file < environment (TXKV_PORT, TXKV_HOST, TXKV_DATA_DIR,
TXKV_SHARDS, TXKV_DURABILITY, TXKV_LOG_LEVEL, ... one per setting) < flags
`;

/** The setting each valued flag sets (its value checked against that setting's schema). */
const FLAG_SETTING: Record<string, string> = {
  port: 'port',
  host: 'host',
  'data-dir': 'dataDir',
  shards: 'shards',
  durability: 'durability',
  'mvcc-window-ms': 'mvccWindowMs',
  'log-level': 'logLevel',
  'log-format': 'logFormat',
  'slow-transaction-ms': 'slowTransactionMs',
  'token-file': 'auth.tokenFile',
  'tls-cert': 'tls.cert',
  'tls-key': 'tls.key',
  etcd: 'cluster.etcdEndpoints',
  'node-id': 'cluster.nodeId',
  advertise: 'cluster.advertiseUrl',
};

/**
 * A flag's value outside what its setting allows is a usage error (exit 2) naming the
 * flag and the allowed values, as a value that is not a number was: --port 65536 was a
 * config error (exit 1, "command line: port: expected at most 65535").
 */
function badFlag(flag: string, raw: unknown, usage: string): UsageError {
  const path = FLAG_SETTING[flag]!;
  return new UsageError(`--${flag} must be ${allowedValues(path)}, got ${JSON.stringify(raw)}`, usage);
}

function intOf(p: Parsed, flag: string, usage: string): number | undefined {
  const v = p.flags[flag];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw badFlag(flag, v, usage);
  return Number(v);
}

export function serverFlags(p: Parsed, usage: string): PartialServerConfig {
  // an empty value (--data-dir '') is never meant: it was taken as the setting's default or refused later as a config error
  for (const flag of Object.keys(FLAG_SETTING)) {
    if (p.flags[flag] === '') throw new UsageError(`--${flag} needs a value (${allowedValues(FLAG_SETTING[flag]!)}), got an empty string`, usage);
  }
  const cfg: PartialServerConfig = {};
  const port = intOf(p, 'port', usage);
  if (port !== undefined) cfg.port = port;
  if (stringFlag(p, 'host') !== undefined) cfg.host = stringFlag(p, 'host');
  if (stringFlag(p, 'data-dir') !== undefined) cfg.dataDir = stringFlag(p, 'data-dir');
  const shards = intOf(p, 'shards', usage);
  if (shards !== undefined) cfg.shards = shards;
  if (p.flags.readonly === true) cfg.readonly = true;
  if (stringFlag(p, 'durability') !== undefined) cfg.durability = stringFlag(p, 'durability') as ServerConfig['durability'];
  const window = intOf(p, 'mvcc-window-ms', usage);
  if (window !== undefined) cfg.mvccWindowMs = window;
  if (stringFlag(p, 'log-level') !== undefined) cfg.logLevel = stringFlag(p, 'log-level');
  if (stringFlag(p, 'log-format') !== undefined) cfg.logFormat = stringFlag(p, 'log-format') as ServerConfig['logFormat'];
  const slow = intOf(p, 'slow-transaction-ms', usage);
  if (slow !== undefined) cfg.slowTransactionMs = slow;
  if (p.flags.insecure === true) cfg.insecure = true;
  if (stringFlag(p, 'token-file') !== undefined) cfg.auth = { tokenFile: stringFlag(p, 'token-file') };
  if (stringFlag(p, 'tls-cert') !== undefined || stringFlag(p, 'tls-key') !== undefined) {
    cfg.tls = { ...(stringFlag(p, 'tls-cert') !== undefined ? { cert: stringFlag(p, 'tls-cert') } : {}), ...(stringFlag(p, 'tls-key') !== undefined ? { key: stringFlag(p, 'tls-key') } : {}) };
  }
  const cluster: NonNullable<PartialServerConfig['cluster']> = {};
  if (stringFlag(p, 'etcd') !== undefined) cluster.etcdEndpoints = stringFlag(p, 'etcd')!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (stringFlag(p, 'node-id') !== undefined) cluster.nodeId = stringFlag(p, 'node-id');
  if (stringFlag(p, 'advertise') !== undefined) cluster.advertiseUrl = stringFlag(p, 'advertise');
  if (Object.keys(cluster).length > 0) cfg.cluster = cluster;
  // each value against its setting's schema, here, so that the error names the flag
  const flagOf = Object.fromEntries(Object.entries(FLAG_SETTING).map(([f, s]) => [s, f]));
  try {
    validateSettings(cfg, 'command line');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const path = Object.keys(flagOf).find((s) => err.key === s || err.key.startsWith(`${s}.`));
    if (path === undefined) throw err;
    throw badFlag(flagOf[path]!, p.flags[flagOf[path]!], usage);
  }
  return cfg;
}
