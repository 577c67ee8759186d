// The server's settings and their defaults: one typed object, the same names as the
// config file uses. Modules receive the slice they need; none reads process.env.
import { TxnError } from '../errors.js';
import { compareKeys } from '../keys/bytes.js';

export interface ServerConfig {
  /** WebSocket/HTTP port; 0 = ephemeral (RunningServer.port tells the bound one). */
  port: number;
  host: string;
  dataDir: string;
  /**
   * Number of shards (worker threads, one RocksDB column family each), fixed when the data
   * directory is created. 0 (the default) = automatic (`shardCount`): one more than the
   * split points when they are given (at most 63), else the data directory's count when it
   * holds a database, else one per core (os.availableParallelism(), at most AUTO_SHARDS_MAX).
   */
  shards: number;
  /** Split points between shards (strings with \xNN escapes); empty = the default spread. */
  splitPoints: string[];
  /** Refuse commits that write (READ_ONLY); reads work. */
  readonly: boolean;
  /** "fsync": a commit is acknowledged after its WAL record is on stable storage. "buffered": written to the WAL, not fsync'd. */
  durability: 'fsync' | 'buffered';
  /** MVCC window: read versions older than this fail with TOO_OLD. */
  mvccWindowMs: number;
  /** Largest WebSocket message accepted (bytes; 1024 to 1 GiB, MAX_FRAME_BYTES). */
  maxFrameBytes: number;
  /** Close connections idle for this long (seconds; 0 = never). */
  idleTimeoutSec: number;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /** "json": one JSON object per line; "pretty": human-readable (needs pino-pretty); "auto": pretty when stdout is a terminal. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** Log a SlowTransaction line for every commit slower than this (ms); 0 = off. */
  slowTransactionMs: number;
  /**
   * Gateway threads: 0 = the main thread decodes, dispatches and encodes every request
   * (besides the oracle); n = connections are spread over n threads that decode frames,
   * serve reads straight from the shards and encode replies, leaving the main thread the
   * sockets, read versions and commit ordering.
   */
  gatewayThreads: number;
  /** Bind to a non-loopback address without auth tokens (refused otherwise). */
  insecure: boolean;
  auth: AuthConfig;
  tls: TlsConfig;
  limits: LimitsConfig;
  cluster: ClusterConfig;
  rocksdb: RocksDbConfig;
  distribution: DistributionConfig;
}

/**
 * RocksDB options an operator may want to size (src/server/open-database.ts says why each
 * default was chosen and what it measured). Applied at every start; changing them needs
 * no new data directory.
 */
export interface RocksDbConfig {
  /**
   * Block cache, bytes, all shard column families together. The binding makes one cache
   * per column family (it cannot share one), so each shard's column gets
   * blockCacheBytes / shards.
   */
  blockCacheBytes: number;
  /**
   * Memtable budget per shard column family, bytes: memtables of a quarter of it each, at
   * most six (1.5x the budget while flushes lag), so the memtables of all shards stay
   * below about shards x 1.5 x memtableBytes.
   */
  memtableBytes: number;
  /** ZSTD-compress the write-ahead log (fewer bytes per fsync, more CPU per commit). */
  walCompression: boolean;
  /**
   * txkv's row cache in front of RocksDB, bytes, all shards together (each shard gets
   * rowCacheBytes / shards; src/shard/row-cache.ts): recently read and written rows,
   * answered without a RocksDB multi-get (point reads and the before-images of point
   * writes). A row counts its key, its value rounded up to 16 bytes and 64 bytes of
   * overhead. 0 = off. Default 256 MiB: 1,000,000 rows of 16-byte keys and 8-100-byte
   * values take 134 MiB of it (the bench's 1M-row keyspace fits; with 64 MiB a third of
   * it did, and most reads and before-images went to RocksDB's files: bench/README.md).
   */
  rowCacheBytes: number;
}

/** Automatic data distribution, the `[distribution]` settings (coordinator/balancer.ts; configs/default.toml documents each). */
export interface DistributionConfig {
  /** Split, move and merge ranges automatically. false: only by hand (txkv shard ...). */
  enabled: boolean;
  /** How often the balancer measures and decides (ms). */
  checkIntervalMs: number;
  /** Split a range whose key+value bytes exceed this (at its middle, by size). */
  splitBytes: number;
  /** Split a range carrying more than this share of all reads and writes, when its worker is above the band. */
  splitLoadShare: number;
  /** Every worker's load is to stay within mean × (1 ± loadBand); outside it, ranges move. */
  loadBand: number;
  /** Below this many reads+writes per second in total, load is not acted on (an idle server's shares are noise). */
  minOpsPerSec: number;
  /** Every worker's key+value bytes are to stay within mean × (1 ± sizeBand); outside it, ranges move (when the load allows). */
  sizeBand: number;
  /** ... but only while the biggest and the smallest worker differ by at least this many bytes (small data is not worth moving). */
  balanceMinBytes: number;
  /** Pause between two passes of the census that counts each range's rows and bytes (ms). */
  censusIntervalMs: number;
  /** Merge neighbours whose bytes together stay below this ... */
  mergeBytes: number;
  /** ... and whose load together stays below this share of the total. */
  mergeLoadShare: number;
  /** A range moved (or split, or merged) less than this long ago is not moved again, nor merged (ms). */
  cooldownMs: number;
}

const DEFAULT_DISTRIBUTION: DistributionConfig = {
  enabled: true,
  checkIntervalMs: 1000,
  splitBytes: 128 * 1024 * 1024,
  splitLoadShare: 0.25,
  loadBand: 0.2,
  minOpsPerSec: 50,
  sizeBand: 0.25,
  balanceMinBytes: 64 * 1024 * 1024,
  censusIntervalMs: 5000,
  mergeBytes: 16 * 1024 * 1024,
  mergeLoadShare: 0.02,
  cooldownMs: 30_000,
};



/** Cluster mode (docs/cluster.md): set etcdEndpoints to run as one node of a replicated cluster. */
export interface ClusterConfig {
  /** etcd client URLs (http://host:2379, ...); empty = single node (the default). */
  etcdEndpoints: string[];
  /** This node's name, unique in the cluster (default: the host name). */
  nodeId: string;
  /** ws://host:port where the other nodes reach this one (default: this server's own URL). */
  advertiseUrl: string;
  /** etcd lease TTL: a dead leader is replaced after about this long (ms; etcd rounds up to whole seconds, at least 2). */
  leaseTtlMs: number;
  /** Log entries younger than this stay in etcd even when every live node applied them, so a briefly paused node can resume (ms). */
  logRetentionMs: number;
}

export interface AuthConfig {
  /** Read-write tokens. With none (and no tokenFile) the server needs no token. */
  tokens: string[];
  /** Tokens that may read but not commit writes. */
  readOnlyTokens: string[];
  /** A file with one token per line; "ro:<token>" marks a read-only one. */
  tokenFile: string;
  /** Require a token for GET /v1/status, /metrics and the dashboard too. */
  protectStatus: boolean;
}

export interface TlsConfig {
  /** PEM certificate and key files; both set = serve wss:// and https://. */
  cert: string;
  key: string;
}

export interface LimitsConfig {
  maxConnections: number;
  /** Requests one connection may have in flight; past it: THROTTLED. */
  maxInflightPerConnection: number;
  /** Budget for request bytes being processed, all connections together; past it: RESOURCE_CONSTRAINED. */
  maxBufferedBytes: number;
  /** Replies waiting on a slow reader, per connection; past it the connection is closed. */
  maxBackpressureBytes: number;
  /** Pending watches per connection (FoundationDB's default); one more: RESOURCE_CONSTRAINED. */
  maxWatchesPerConnection: number;
  /**
   * Change-feed bytes the server holds for one subscription whose consumer has not
   * acknowledged them (beyond the window it may have in flight); past it the feed ends
   * with RESOURCE_CONSTRAINED.
   */
  maxFeedBufferBytes: number;
  /**
   * History the shards may hold for pinned snapshots (backups), bytes, all shards
   * together (mvcc.ts heldBytes); past it every snapshot is dropped (410 GONE at its next
   * renewal) and the window slides again.
   */
  maxSnapshotHistoryBytes: number;
}

export const DEFAULT_CONFIG: ServerConfig = {
  port: 7070,
  host: '127.0.0.1',
  dataDir: './data',
  shards: 0,
  splitPoints: [],
  readonly: false,
  durability: 'fsync',
  mvccWindowMs: 5000,
  maxFrameBytes: 16 * 1024 * 1024,
  idleTimeoutSec: 120,
  logLevel: 'info',
  logFormat: 'auto',
  slowTransactionMs: 500,
  gatewayThreads: 0,
  insecure: false,
  auth: { tokens: [], readOnlyTokens: [], tokenFile: '', protectStatus: false },
  tls: { cert: '', key: '' },
  limits: {
    maxConnections: 10_000,
    maxInflightPerConnection: 10_000,
    maxBufferedBytes: 512 * 1024 * 1024,
    maxBackpressureBytes: 64 * 1024 * 1024,
    maxWatchesPerConnection: 10_000,
    maxFeedBufferBytes: 8 * 1024 * 1024,
    maxSnapshotHistoryBytes: 1024 * 1024 * 1024,
  },
  cluster: { etcdEndpoints: [], nodeId: '', advertiseUrl: '', leaseTtlMs: 2000, logRetentionMs: 60_000 },
  rocksdb: { blockCacheBytes: 64 * 1024 * 1024, memtableBytes: 32 * 1024 * 1024, walCompression: false, rowCacheBytes: 256 * 1024 * 1024 },
  distribution: { ...DEFAULT_DISTRIBUTION },
};

/**
 * The most shards `shards = 0` picks on a big machine. Why one per core and no more: a
 * shard is a worker thread, and on this project's 2-core machines 4 workers were slower
 * than 2 on every workload (bench/README.md, shard sweep: w10, m90 and r10 all lost), the
 * extra threads adding cross-thread messages and context switches but no CPU. Why a cap:
 * past 8 the main thread (oracle, commit ordering) is the ceiling, not the shards.
 */
export const AUTO_SHARDS_MAX = 8;

/**
 * The shard count a server opens its database with: `configured` when it is not 0, else
 * split points + 1 when split points are given, else the data directory's (`existing`,
 * from txkv-layout.json; null for a new database), else `cores` capped at AUTO_SHARDS_MAX.
 * Split points before the directory: given split points must match the directory's anyway
 * (openDatabase), and when they do not, the refusal must name the count they make, not the
 * directory's beside the other points. Pure: the caller passes os.availableParallelism().
 */
export function shardCount(configured: number, existing: number | null, splitPoints: number, cores: number): number {
  if (configured > 0) return configured;
  if (splitPoints > 0) return splitPoints + 1;
  if (existing !== null) return existing;
  return Math.max(1, Math.min(AUTO_SHARDS_MAX, cores));
}

/** A partial config: top-level keys and, for the nested tables, their keys. */
export type PartialServerConfig = Partial<Omit<ServerConfig, 'auth' | 'tls' | 'limits' | 'cluster' | 'rocksdb' | 'distribution'>> & {
  distribution?: Partial<DistributionConfig>;
  cluster?: Partial<ClusterConfig>;
  rocksdb?: Partial<RocksDbConfig>;
  auth?: Partial<AuthConfig>;
  tls?: Partial<TlsConfig>;
  limits?: Partial<LimitsConfig>;
};

const NESTED = ['auth', 'tls', 'limits', 'cluster', 'rocksdb', 'distribution'] as const;

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

/** The longest idle timeout uWebSockets.js accepts, seconds (it aborts the process past it). */
export const MAX_IDLE_TIMEOUT_SEC = 960;

/**
 * The largest maxFrameBytes, 1 GiB. uWebSockets.js is given twice it (src/gateway/socket.ts)
 * as an unsigned 32-bit maxPayloadLength: at 2 GiB that wrapped to 0 and the server started
 * but closed every connection (1006) at its first message, without a word.
 */
export const MAX_FRAME_BYTES = 1024 * 1024 * 1024;

/**
 * Split points are checked before anything touches the data directory: a new directory
 * records them in txkv-layout.json as given, so points that the shard map refuses later
 * (out of order, the empty key) used to leave a directory that no start could open.
 */
function checkSplitPoints(points: readonly string[]): void {
  if (!Array.isArray(points)) throw new TxnError('INVALID_ARGUMENT', `splitPoints must be an array of strings, got ${JSON.stringify(points)}`);
  let previous: Uint8Array | null = null;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (typeof p !== 'string') throw new TxnError('INVALID_ARGUMENT', `splitPoints[${i}] must be a string, got ${JSON.stringify(p)}`);
    const bytes = parseEscapedBytes(p);
    if (bytes.length === 0) throw new TxnError('INVALID_ARGUMENT', `splitPoints[${i}] is the empty key; the first shard always begins there, so a split point must be a non-empty key`);
    if (previous !== null && compareKeys(previous, bytes) >= 0) {
      throw new TxnError('INVALID_ARGUMENT', `splitPoints must be strictly increasing (as bytes): splitPoints[${i}] ${JSON.stringify(p)} is not after splitPoints[${i - 1}] ${JSON.stringify(points[i - 1])}`);
    }
    previous = bytes;
  }
}

export function resolveConfig(partial: PartialServerConfig = {}): ServerConfig {
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) {
    throw new TxnError('INVALID_ARGUMENT', `server settings must be an object such as { port, dataDir, shards }, got ${partial === null ? 'null' : Array.isArray(partial) ? 'an array' : typeof partial}`);
  }
  const cfg: ServerConfig = structuredClone(DEFAULT_CONFIG);
  for (const [k, v] of Object.entries(partial)) {
    if (v === undefined) continue;
    if (!(k in DEFAULT_CONFIG)) throw new TxnError('INVALID_ARGUMENT', `unknown server setting ${JSON.stringify(k)}; known: ${Object.keys(DEFAULT_CONFIG).join(', ')}`);
    if ((NESTED as readonly string[]).includes(k)) {
      const target = cfg[k as (typeof NESTED)[number]] as unknown as Record<string, unknown>;
      for (const [kk, vv] of Object.entries(v as object)) {
        if (!(kk in target)) throw new TxnError('INVALID_ARGUMENT', `unknown server setting ${k}.${kk}; known: ${Object.keys(target).join(', ')}`);
        if (vv !== undefined) target[kk] = vv;
      }
      continue;
    }
    (cfg as unknown as Record<string, unknown>)[k] = v;
  }
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) throw new TxnError('INVALID_ARGUMENT', `port must be an integer 0..65535, got ${JSON.stringify(cfg.port)}`);
  if (typeof cfg.host !== 'string' || cfg.host === '') throw new TxnError('INVALID_ARGUMENT', `host must be a non-empty string, got ${JSON.stringify(cfg.host)}`);
  if (typeof cfg.dataDir !== 'string' || cfg.dataDir === '') throw new TxnError('INVALID_ARGUMENT', `dataDir must be a non-empty path string, got ${JSON.stringify(cfg.dataDir)}`);
  if (typeof cfg.readonly !== 'boolean') throw new TxnError('INVALID_ARGUMENT', `readonly must be a boolean, got ${JSON.stringify(cfg.readonly)}`);
  if (!Number.isInteger(cfg.shards) || cfg.shards < 0 || cfg.shards > 64) throw new TxnError('INVALID_ARGUMENT', `shards must be an integer 1..64 (or 0 = automatic), got ${cfg.shards}`);
  if (!Number.isInteger(cfg.gatewayThreads) || cfg.gatewayThreads < 0 || cfg.gatewayThreads > 32) {
    throw new TxnError('INVALID_ARGUMENT', `gatewayThreads must be an integer 0..32, got ${JSON.stringify(cfg.gatewayThreads)}`);
  }
  if (cfg.durability !== 'fsync' && cfg.durability !== 'buffered') throw new TxnError('INVALID_ARGUMENT', `durability must be "fsync" or "buffered", got ${JSON.stringify(cfg.durability)}`);
  if (Boolean(cfg.tls.cert) !== Boolean(cfg.tls.key)) {
    // one without the other used to serve plain ws:// and http:// without a word
    throw new TxnError('INVALID_ARGUMENT', `tls.cert and tls.key go together: only tls.${cfg.tls.cert ? 'cert' : 'key'} is set`);
  }
  if (!(cfg.mvccWindowMs >= 100)) throw new TxnError('INVALID_ARGUMENT', `mvccWindowMs must be >= 100, got ${cfg.mvccWindowMs}`);
  if (cfg.shards > 0 && cfg.splitPoints.length > 0 && cfg.splitPoints.length !== cfg.shards - 1) {
    throw new TxnError('INVALID_ARGUMENT', `splitPoints must list shards - 1 = ${cfg.shards - 1} points, got ${cfg.splitPoints.length}`);
  }
  checkSplitPoints(cfg.splitPoints);
  if (!Number.isInteger(cfg.maxFrameBytes) || cfg.maxFrameBytes < 1024 || cfg.maxFrameBytes > MAX_FRAME_BYTES) {
    throw new TxnError('INVALID_ARGUMENT', `maxFrameBytes must be an integer 1024..${MAX_FRAME_BYTES} (1 GiB), got ${JSON.stringify(cfg.maxFrameBytes)}`);
  }
  // uWebSockets.js aborts the whole process (C++ terminate, exit 134) on an idle timeout past 960 s
  if (!Number.isInteger(cfg.idleTimeoutSec) || cfg.idleTimeoutSec < 0 || cfg.idleTimeoutSec > MAX_IDLE_TIMEOUT_SEC) {
    throw new TxnError('INVALID_ARGUMENT', `idleTimeoutSec must be an integer 0..${MAX_IDLE_TIMEOUT_SEC} (0 = never), got ${JSON.stringify(cfg.idleTimeoutSec)}`);
  }
  // shards = 0 takes its count from the split points (shardCount): the same bound applies
  if (cfg.shards === 0 && cfg.splitPoints.length > 63) {
    throw new TxnError('INVALID_ARGUMENT', `splitPoints: ${cfg.splitPoints.length} points make ${cfg.splitPoints.length + 1} shards; at most 64 (63 points)`);
  }
  if (cfg.cluster.etcdEndpoints.length > 0 && !(cfg.cluster.leaseTtlMs >= 1000)) throw new TxnError('INVALID_ARGUMENT', `cluster.leaseTtlMs must be >= 1000, got ${cfg.cluster.leaseTtlMs}`);
  if (!Number.isInteger(cfg.rocksdb.blockCacheBytes) || cfg.rocksdb.blockCacheBytes < 0) throw new TxnError('INVALID_ARGUMENT', `rocksdb.blockCacheBytes must be an integer >= 0, got ${JSON.stringify(cfg.rocksdb.blockCacheBytes)}`);
  if (!Number.isInteger(cfg.rocksdb.rowCacheBytes) || cfg.rocksdb.rowCacheBytes < 0) throw new TxnError('INVALID_ARGUMENT', `rocksdb.rowCacheBytes must be an integer >= 0, got ${JSON.stringify(cfg.rocksdb.rowCacheBytes)}`);
  if (!Number.isInteger(cfg.rocksdb.memtableBytes) || cfg.rocksdb.memtableBytes < 1024 * 1024) throw new TxnError('INVALID_ARGUMENT', `rocksdb.memtableBytes must be an integer >= 1048576 (1 MiB), got ${JSON.stringify(cfg.rocksdb.memtableBytes)}`);
  checkCluster(cfg);
  const d = cfg.distribution;
  if (typeof d.enabled !== 'boolean') throw new TxnError('INVALID_ARGUMENT', `distribution.enabled must be a boolean, got ${JSON.stringify(d.enabled)}`);
  for (const k of ['checkIntervalMs', 'splitBytes', 'minOpsPerSec', 'mergeBytes', 'cooldownMs', 'balanceMinBytes', 'censusIntervalMs'] as const) {
    if (!(typeof d[k] === 'number' && d[k] >= 0 && Number.isFinite(d[k]))) throw new TxnError('INVALID_ARGUMENT', `distribution.${k} must be a number >= 0, got ${JSON.stringify(d[k])}`);
  }
  if (!(d.checkIntervalMs >= 50)) throw new TxnError('INVALID_ARGUMENT', `distribution.checkIntervalMs must be >= 50, got ${d.checkIntervalMs}`);
  for (const k of ['splitLoadShare', 'loadBand', 'mergeLoadShare', 'sizeBand'] as const) {
    if (!(typeof d[k] === 'number' && d[k] > 0 && d[k] <= 1)) throw new TxnError('INVALID_ARGUMENT', `distribution.${k} must be a share in (0, 1], got ${JSON.stringify(d[k])}`);
  }
  // a merge of two ranges must not make one the size split cuts again (split, merge, split, ...)
  if (!(d.mergeBytes < d.splitBytes)) throw new TxnError('INVALID_ARGUMENT', `distribution.mergeBytes (${d.mergeBytes}) must be below distribution.splitBytes (${d.splitBytes}): merged ranges would be split again`);
  return cfg;
}

/** Cluster settings that would start a node nobody can reach, or a single node that silently ignores them. */
function checkCluster(cfg: ServerConfig): void {
  const c = cfg.cluster;
  if (c.etcdEndpoints.length === 0) {
    // a node id or advertise URL without etcd means the operator meant a cluster node: a
    // single server that ignores them would split the data the operator thinks is replicated
    const set = [c.nodeId && 'cluster.nodeId (--node-id)', c.advertiseUrl && 'cluster.advertiseUrl (--advertise)'].filter(Boolean);
    if (set.length > 0) throw new TxnError('INVALID_ARGUMENT', `${set.join(' and ')} only apply in cluster mode, but cluster.etcdEndpoints (--etcd) is not set`);
    return;
  }
  if (c.nodeId !== '' && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(c.nodeId)) {
    throw new TxnError('INVALID_ARGUMENT', `cluster.nodeId must be 1-64 letters, digits, '.', '_' or '-' (not starting with a symbol), got ${JSON.stringify(c.nodeId)}`);
  }
  // the other nodes forward commits and copy snapshots through this URL: it must name this server from elsewhere
  const adv = c.advertiseUrl !== '' ? c.advertiseUrl : `ws://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${cfg.port}`;
  let host: string;
  try {
    const u = new URL(adv);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error('not ws');
    host = u.hostname;
  } catch {
    throw new TxnError('INVALID_ARGUMENT', `cluster.advertiseUrl (--advertise) must be a URL like ws://HOST:PORT, got ${JSON.stringify(c.advertiseUrl)}`);
  }
  if (host === '0.0.0.0' || host === '[::]' || host === '::') {
    throw new TxnError(
      'INVALID_ARGUMENT',
      c.advertiseUrl !== ''
        ? `cluster.advertiseUrl ${c.advertiseUrl} names no host the other nodes can reach; give this machine's name or address`
        : `serving on ${cfg.host} in cluster mode needs cluster.advertiseUrl (--advertise ws://HOST:PORT): the other nodes cannot reach ${cfg.host}`,
    );
  }
}
