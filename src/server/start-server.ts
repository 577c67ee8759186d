// Wiring only: config -> database -> recovery -> coordinator -> gateway. The CLI's
// `txkv serve` and the exported startServer() both run this.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { resolveConfig, parseEscapedBytes, shardCount, type PartialServerConfig } from '../config/server-config.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { defaultSplitPoints } from '../coordinator/shard-map.js';
import type { ClusterNode } from '../cluster/cluster-node.js';
import { parseFailpoints } from '../failpoints/failpoints.js';
import { startGateway } from '../gateway/socket.js';
import { TokenStore } from '../gateway/auth.js';
import { openDatabase, readLayout } from './open-database.js';
import { PID_FILE, probePort, StartupError } from './startup-errors.js';
import { watchDataDir } from './data-dir-watch.js';
import { connectionLimit, descriptorLimit } from './fd-limit.js';
import { ServerMetrics } from '../metrics/server-metrics.js';
import { Census } from '../metrics/census.js';
import { Balancer } from '../coordinator/balancer.js';
import { attachRequestMetrics } from '../metrics/request-metrics.js';
import { dashboardPages } from '../dashboard/pages.js';
import { threadCpuMs, threadId } from '../metrics/thread-cpu.js';
import type { GatewayThreadStats } from '../gateway/gateway-threads.js';
import { snapshotsOf } from '../gateway/snapshots.js';
import type { ThreadCpu } from '../metrics/server-metrics.js';


/**
 * Ports browsers refuse to connect to (https://fetch.spec.whatwg.org/#port-blocking, "bad
 * ports"; Chromium says ERR_UNSAFE_PORT): a server on one of them works for every client
 * but a browser, so start-up says so instead of leaving the dashboard to fail.
 */
const BROWSER_BLOCKED_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139,
  143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659,
  4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

export interface RunningServer {
  /** The WebSocket/HTTP port actually bound (config port 0 = ephemeral). */
  port: number;
  /** ws://host:port */
  url: string;
  /** Graceful: stop accepting, drain in-flight commits, close connections, workers and RocksDB. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where the server logs. Default: JSON lines on stderr at `logLevel` if the config sets it, else "warn". */
  logger?: Logger;
  /** Failpoint spec (test only; the CLI passes TXKV_FAILPOINTS). */
  failpoints?: string;
  /** Wall clock in microseconds since the epoch (default: the system's). Tests step it back to check that versions never go back. */
  clock?: () => number;
  /** Create an empty database where the data directory's layout says one existed (`serve --new-database`). */
  allowNewDatabase?: boolean;
}

/** Every thread of the server with its CPU time so far (Linux; ms user + system), for /v1/status and the benchmark's per-thread CPU. */
function threadsCpu(c: Coordinator, g: { threadStats(): GatewayThreadStats[] }): ThreadCpu[] {
  const out: ThreadCpu[] = [{ name: 'main', tid: mainTid, cpuMs: threadCpuMs(mainTid) }];
  for (const t of g.threadStats()) out.push({ name: `gateway-${t.thread}`, tid: t.tid, cpuMs: t.cpuMs, frames: t.frames, requests: t.requests });
  for (const s of c.shards) out.push({ name: `shard-${s.shardId}`, tid: s.tid, cpuMs: threadCpuMs(s.tid) });
  // fsync durability: the thread that writes and fsyncs every shard's batches (w1's busiest)
  if (c.logWriter) out.push({ name: 'log-writer', tid: c.logWriter.tid, cpuMs: threadCpuMs(c.logWriter.tid) });
  return out;
}

const mainTid = threadId();

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

/** txkv's version, from the package.json above this file (sources or build output alike). */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'txkv') return pkg.version ?? '0.0.0';
    }
    const up = path.dirname(dir);
    if (up === dir) return '0.0.0';
    dir = up;
  }
}

const VERSION = packageVersion();

function removePidFile(dataDir: string): void {
  fs.rmSync(path.join(dataDir, PID_FILE), { force: true });
}

/**
 * Test switch: servers a test suite starts in-process (the conformance suite calls
 * startServer without gatewayThreads) take their gateway thread count from
 * TXKV_TEST_GATEWAY_THREADS, so a suite runs with gateway threads without edits.
 */
function testGatewayThreads(partial: PartialServerConfig): PartialServerConfig {
  const v = process.env.TXKV_TEST_GATEWAY_THREADS;
  if (partial.gatewayThreads !== undefined || v === undefined || v === '') return partial;
  return { ...partial, gatewayThreads: Number(v) };
}

/** The shard count txkv-layout.json records, or null (no database yet, or a damaged layout file: openDatabase explains it). */
function layoutShards(dataDir: string): number | null {
  try {
    const n = readLayout(dataDir)?.shards;
    return Number.isInteger(n) && n! > 0 ? n! : null;
  } catch {
    return null;
  }
}

export async function startServer(partial: PartialServerConfig = {}, opts: StartOptions = {}): Promise<RunningServer> {
  const config = resolveConfig(testGatewayThreads(partial));
  // before any worker, RocksDB file or socket: under a low open-files limit the first of
  // them to fail used to end start-up with a bare "EMFILE: too many open files, open
  // '.../flatbuffers.js'" (a worker loading its modules), never reaching this sentence
  const connLimit = connectionLimit(config.limits.maxConnections, descriptorLimit());
  const tokens = new TokenStore(config.auth);
  if (!tokens.enabled && !isLoopback(config.host) && !config.insecure) {
    throw new Error(
      `refusing to serve on ${config.host} without auth tokens: anyone who can reach it could read and write; ` +
        'configure auth.tokens (or auth.tokenFile), bind to 127.0.0.1, or pass --insecure',
    );
  }
  // Embedded without a logger (a library call, e.g. a test suite): log to stderr, and only
  // warnings and errors unless logLevel is set, so the host program's output (a test
  // runner's report) is not interleaved with the server's start-up and shutdown lines.
  const logger = opts.logger ?? pino({ name: 'txkv', level: partial.logLevel ?? 'warn' }, pino.destination(2));
  const started = Date.now();
  const explicitSplitPoints = config.splitPoints.length > 0;
  const dataDir = path.resolve(config.dataDir);
  const shards = shardCount(config.shards, layoutShards(dataDir), config.splitPoints.length, os.availableParallelism());
  const wantedSplitPoints = explicitSplitPoints ? config.splitPoints.map(parseEscapedBytes) : defaultSplitPoints(shards);
  // a port another process listens on is refused before the database is opened
  await probePort(config.host, config.port);
  // cluster mode: the database (id and shard layout) is the cluster's, kept in etcd
  const clustered = config.cluster.etcdEndpoints.length > 0;
  // loaded in cluster mode only: etcd3 (with grpc-js and protobufjs) costs ~0.2 s of CPU to
  // import, paid by every single server, CLI command and test file that imports the package
  const cm = clustered ? await import('../cluster/cluster-node.js') : null;
  const etcd = clustered ? (await import('../cluster/etcd.js')).makeEtcdClient(config.cluster.etcdEndpoints) : null;
  const nodeId = clustered ? config.cluster.nodeId || os.hostname() : undefined;
  let wanted = { shards, splitPoints: wantedSplitPoints, explicitSplitPoints, databaseId: undefined as string | undefined };
  if (etcd) {
    // (a data directory that already holds a database never creates the cluster's record)
    try {
      // (a damaged layout file is a StartupError: rethrown below once etcd's client is closed)
      const local = readLayout(dataDir, config.dataDir);
      const d = await cm!.ensureClusterDatabase(
        etcd,
        { databaseId: randomUUID(), shards, splitPoints: wantedSplitPoints.map((p) => Buffer.from(p).toString('hex')) },
        local && { databaseId: local.databaseId, createdAt: local.createdAt, dataDir: config.dataDir },
        config.cluster.etcdEndpoints,
      );
      wanted = { shards: d.shards, splitPoints: d.splitPoints.map((h) => new Uint8Array(Buffer.from(h, 'hex'))), explicitSplitPoints: true, databaseId: d.databaseId };
      // the layout is the cluster's: a count the operator set that differs is ignored, and said so
      if (config.shards !== 0 && d.shards !== config.shards) {
        logger.warn({ event: 'ClusterLayout', shards: d.shards, configured: config.shards }, `the cluster's database has ${d.shards} shards; the configured ${config.shards} is ignored`);
      }
    } catch (err) {
      etcd.close();
      if (err instanceof StartupError) throw err;
      throw new Error(`cannot reach the cluster's etcd at ${config.cluster.etcdEndpoints.join(', ')}: ${(err as Error).message}`, { cause: err });
    }
  }
  // what makes a commit durable: in cluster mode the etcd log (a majority's fsync), and the
  // shards write RocksDB without their own fsync, so durability=fsync would mislead
  const durability = etcd ? 'etcd-majority' : config.durability;
  const openStarted = Date.now();
  const { db, created, splitPoints, databaseId } = await openDatabase(dataDir, wanted, { shown: config.dataDir, allowNewDatabase: opts.allowNewDatabase, rocksdb: config.rocksdb });
  // where a slow start went (RecoveryDone): RocksDB's open (its WAL replayed, files synced), and what follows it (cluster registration, the shard threads)
  const openMs = Date.now() - openStarted;
  const threadsStarted = Date.now();
  let cluster: ClusterNode | null = null;
  let followFrom: number | undefined;
  if (etcd) {
    try {
      if (!config.cluster.advertiseUrl && config.port === 0) throw new Error('cluster mode with port 0 needs cluster.advertiseUrl (--advertise ws://HOST:PORT)');
      const advertiseUrl = config.cluster.advertiseUrl || `ws://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
      cluster = new cm!.ClusterNode(
        etcd,
        { ...config.cluster, nodeId: nodeId!, advertiseUrl },
        db,
        logger,
        config.auth.tokens[0],
        databaseId,
      );
      followFrom = cm!.readClusterApplied(db);
      // (when the log this node needs was trimmed, ClusterNode.start copies a snapshot in first)
      await cluster.register(followFrom);
    } catch (err) {
      await cluster?.close();
      etcd.close();
      await db.close();
      removePidFile(dataDir);
      throw err;
    }
  }
  let coordinator: Coordinator;
  try {
    coordinator = await Coordinator.start({
      commitLog: cluster?.log,
      followFrom,
      db,
      splitPoints,
      readonly: config.readonly,
      durable: config.durability === 'fsync',
      mvccWindowMs: config.mvccWindowMs,
      failpoints: parseFailpoints(opts.failpoints),
      logger,
      clock: opts.clock,
      rowCacheBytes: config.rocksdb.rowCacheBytes,
      onFatal: (err) => {
        logger.fatal({ event: 'ShardFailed', err: err.message }, 'a shard worker failed; exiting so that recovery runs on restart');
        process.exit(70);
      },
    });
  } catch (err) {
    await cluster?.close();
    await db.close();
    removePidFile(dataDir);
    throw err;
  }
  snapshotsOf(coordinator, config.limits.maxSnapshotHistoryBytes);
  if (cluster) {
    coordinator.front = cluster;
    const node = cluster;
    coordinator.live.clusterReadVersion = () => node.readVersion();
  }
  const r = coordinator.recovery;
  logger.info(
    {
      event: 'RecoveryDone',
      dataDir,
      created,
      lastCommittedVersion: r.lastCommittedVersion,
      decisionRecords: r.decisionRecords,
      inDoubtRolledForward: r.partsReplayed,
      tombstonesApplied: r.tombstonesApplied,
      ms: r.ms,
      openMs,
      afterOpenMs: Date.now() - threadsStarted,
    },
    r.partsReplayed > 0 ? `recovered: finished ${r.partsReplayed} shard parts of decided commits` : 'recovered: nothing in doubt',
  );
  const census = new Census(coordinator, config.distribution.censusIntervalMs);
  const balancer = new Balancer(coordinator.distribution, coordinator.shards, census, config.distribution, logger);
  const metrics = new ServerMetrics(
    {
      version: VERSION,
      census: () => census.get(),
      databaseId,
      cluster: () => cluster?.status() ?? null,
      settings: { ...config, dataDir, shards: wanted.shards, durability },
      recovery: r,
      distribution: () => {
        const d = coordinator.distribution;
        return { map: d.map.toJSON(), move: d.moveInProgress, ...d.counters, history: d.history, byReason: d.byReason, balancer: balancer.status() };
      },
      latestCommittedVersion: () => coordinator.oracle.finishedVersion,
      oldestReadableVersion: () => coordinator.oldestReadableVersion,
      connections: () => gateway.connections(),
      inflightCommits: () => coordinator.oracle.inflightCount,
      commitTotals: () => coordinator.commits.counters,
      resolver: () => coordinator.commits.resolver,
      shardRanges: () => coordinator.shardMap.shards.map((s) => ({ ...s, queueDepth: coordinator.shards[s.shardId]!.inflight })),
      shardStats: () => coordinator.shardStats(),
      rocksProperty: (name) => (db.status === 'open' ? db.getProperty(name) : undefined),
      admission: () => gateway.admission,
      threads: () => threadsCpu(coordinator, gateway),
    },
    logger,
  );
  attachRequestMetrics(coordinator, metrics.requests);
  attachRequestMetrics(coordinator, metrics.http);
  logger.info(
    { event: 'ConnectionLimit', ...connLimit, configured: config.limits.maxConnections },
    connLimit.descriptorLimit === null
      ? `at most ${connLimit.maxConnections} client connections`
      : `at most ${connLimit.maxConnections} client connections (open-files limit ${connLimit.descriptorLimit}, ${connLimit.reserve} kept for storage)`,
  );
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(coordinator, {
      host: config.host,
      port: config.port,
      maxFrameBytes: config.maxFrameBytes,
      idleTimeoutSec: config.idleTimeoutSec,
      readonly: config.readonly,
      serverVersion: VERSION,
      databaseId,
      nodeId,
      logger,
      tokens,
      protectStatus: config.auth.protectStatus,
      tls: config.tls,
      limits: { ...config.limits, maxConnections: connLimit.maxConnections },
      gatewayThreads: config.gatewayThreads,
      slowTransactionMs: config.slowTransactionMs,
      onFatal: (err) => {
        logger.fatal({ event: 'GatewayThreadFailed', err: err.message }, 'a gateway thread failed; exiting');
        process.exit(70);
      },
      // gateway threads report their counters every 250 ms; these pages ask for them first
      status: async () => (await gateway.syncThreads(), metrics.status()),
      pages: {
        '/metrics': async () => ['text/plain; version=0.0.4; charset=utf-8', (await gateway.syncThreads(), await metrics.prometheusText())],
        '/v1/metrics.json': async () => ['application/json', JSON.stringify((await gateway.syncThreads(), await metrics.seriesJson()))],
        ...dashboardPages(),
      },
    });
  } catch (err) {
    // e.g. the port was taken meanwhile: stop the workers and close the database, so
    // that the process can exit
    await cluster?.close();
    await coordinator.close();
    await db.close();
    removePidFile(dataDir);
    throw err;
  }
  const url = `${gateway.tls ? 'wss' : 'ws'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${gateway.port}`;
  if (!tokens.enabled) logger.info({ event: 'AuthDisabled', host: config.host }, 'no auth tokens configured: every client may read and write');
  // the other doors on the same port, printed at start so a first-time operator finds them
  const web = url.replace(/^ws/, 'http');
  const doors = { dashboardUrl: `${web}/`, httpApiUrl: `${web}/v1/ (docs/http-api.md, ${web}/v1/openapi.json)`, metricsUrl: `${web}/metrics`, statusUrl: `${web}/v1/status` };
  if (BROWSER_BLOCKED_PORTS.has(gateway.port)) {
    logger.warn(
      { event: 'PortBlockedByBrowsers', port: gateway.port },
      `port ${gateway.port} is one that browsers refuse to connect to (the fetch standard's "bad ports"): the dashboard and the browser SDK cannot reach this server; the Node SDK, the C++ client and the CLI can. Pick another port for browsers`,
    );
  }
  logger.info(
    { event: 'ServerStarted', url, ...doors, port: gateway.port, shards: wanted.shards, durability, uwsNative: gateway.native, ms: Date.now() - started },
    `txkv serving on ${url}; dashboard ${doors.dashboardUrl}, HTTP API ${web}/v1/, metrics ${doors.metricsUrl}`,
  );
  metrics.start();
  census.start();
  balancer.start();
  // a deleted data directory: stop at once, before another commit is acknowledged
  // into deleted files (PostgreSQL likewise stops when its lock file is gone)
  const dirWatch = watchDataDir(dataDir, config.dataDir, (reason) => {
    logger.fatal({ event: 'DataDirectoryLost', dataDir, reason }, `${reason}; commits are refused: exiting (restore the directory from a backup)`);
    gateway.stopListening();
    process.exit(70);
  });
  if (cluster) {
    try {
      await cluster.checkAdvertised();
      await cluster.start(coordinator);
    } catch (err) {
      dirWatch.stop();
      gateway.stopListening();
      await cluster.close();
      await coordinator.close();
      gateway.closeAll();
      await gateway.stopThreads();
      await db.close();
      removePidFile(dataDir);
      throw err;
    }
  }
  let closing: Promise<void> | null = null;
  return {
    port: gateway.port,
    url,
    close: () =>
      (closing ??= (async () => {
        const t = Date.now();
        dirWatch.stop();
        gateway.stopListening();
        metrics.stop();
        census.stop();
        await balancer.stop();
        // hand the leadership over first: the others take over at once instead of after the lease TTL
        await cluster?.close();
        await coordinator.close();
        // gateway threads send the replies they still hold before the connections close
        await gateway.drain();
        gateway.closeAll();
        await gateway.stopThreads();
        await db.close();
        removePidFile(dataDir);
        logger.info({ event: 'ServerStopped', ms: Date.now() - t }, 'txkv stopped');
      })()),
  };
}
