// The server's settings and their defaults: one typed object, the same names as the
// config file uses. Modules receive the slice they need; none reads process.env.

export interface ServerConfig {
  /** WebSocket/HTTP port; 0 = ephemeral (RunningServer.port tells the bound one). */
  port: number;
  host: string;
  dataDir: string;
  /** Number of shards (worker threads, one RocksDB column family each). */
  shards: number;
  /** Split points between shards (strings with \xNN escapes); empty = the default spread. */
  splitPoints: string[];
  /** Refuse commits that write (READ_ONLY); reads work. */
  readonly: boolean;
  /** "fsync": a commit is acknowledged after its WAL record is on stable storage. "buffered": written to the WAL, not fsync'd. */
  durability: 'fsync' | 'buffered';
  /** MVCC window: read versions older than this fail with TOO_OLD. */
  mvccWindowMs: number;
  /** Largest WebSocket message accepted (bytes). */
  maxFrameBytes: number;
  /** Close connections idle for this long (seconds; 0 = never). */
  idleTimeoutSec: number;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
}

export const DEFAULT_CONFIG: ServerConfig = {
  port: 7070,
  host: '127.0.0.1',
  dataDir: './data',
  shards: 4,
  splitPoints: [],
  readonly: false,
  durability: 'fsync',
  mvccWindowMs: 5000,
  maxFrameBytes: 16 * 1024 * 1024,
  idleTimeoutSec: 120,
  logLevel: 'info',
};

/** Decodes a split point written with \xNN escapes into bytes. */
export function parseEscapedBytes(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c && s[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      out.push(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (c === 0x5c && s[i + 1] === '\\') {
      out.push(0x5c);
      i += 1;
    } else {
      out.push(...new TextEncoder().encode(s[i]!));
    }
  }
  return new Uint8Array(out);
}

export function resolveConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  const cfg: ServerConfig = { ...DEFAULT_CONFIG };
  for (const [k, v] of Object.entries(partial)) {
    if (v === undefined) continue;
    if (!(k in DEFAULT_CONFIG)) throw new Error(`unknown server setting ${JSON.stringify(k)}; known: ${Object.keys(DEFAULT_CONFIG).join(', ')}`);
    (cfg as unknown as Record<string, unknown>)[k] = v;
  }
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) throw new Error(`port must be an integer 0..65535, got ${cfg.port}`);
  if (!Number.isInteger(cfg.shards) || cfg.shards < 1 || cfg.shards > 64) throw new Error(`shards must be an integer 1..64, got ${cfg.shards}`);
  if (cfg.durability !== 'fsync' && cfg.durability !== 'buffered') throw new Error(`durability must be "fsync" or "buffered", got ${JSON.stringify(cfg.durability)}`);
  if (!(cfg.mvccWindowMs >= 100)) throw new Error(`mvccWindowMs must be >= 100, got ${cfg.mvccWindowMs}`);
  if (cfg.splitPoints.length > 0 && cfg.splitPoints.length !== cfg.shards - 1) {
    throw new Error(`splitPoints must list shards - 1 = ${cfg.shards - 1} points, got ${cfg.splitPoints.length}`);
  }
  return cfg;
}
