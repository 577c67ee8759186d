// The gateway threads seen from the main thread (server.gatewayThreads > 0): starts them,
// hands them the frames of connections past their Hello, answers their read-version,
// commit, version-wait and map calls (the oracle and commit ordering stay here, the only
// serial part), sends their reply frames, and adds their counters into the server's.
// One message per thread per event-loop turn in each direction. gateway-worker.ts is
// the other side; gateway-protocol.ts the messages.
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { LimitsConfig } from '../config/server-config.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { ShardMap } from '../coordinator/shard-map.js';
import { toWireError } from '../errors.js';
import { requestMetricsOf } from '../metrics/request-metrics.js';
import { threadCpuMs } from '../metrics/thread-cpu.js';
import type { Answer, Call, FromGateway, FrameIn, FrameOut, GatewayWorkerInit, LiveIn, MetricsDelta, ToGateway } from './gateway-protocol.js';

/** Workers load compiled JavaScript; from TypeScript sources (vitest) point at the build output. */
function workerFile(): URL {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return pathToFileURL(path.join(path.resolve(path.dirname(here), '../..'), 'dist/src/gateway/gateway-worker.js'));
  return new URL('./gateway-worker.js', import.meta.url);
}

export interface GatewayThreadsOptions {
  count: number;
  limits: LimitsConfig;
  /** The admission counters (limits.ts), shared with the main thread's Admission. */
  admission: SharedArrayBuffer;
  slowTransactionMs: number;
  logger: Logger;
  /** A gateway thread failed: the server must stop (replies it held are lost). */
  onFatal: (err: Error) => void;
}

/** Per gateway thread, for /v1/status. */
export interface GatewayThreadStats {
  thread: number;
  /** The thread's id in /proc (Linux); null elsewhere. */
  tid: number | null;
  /** Frames decoded and requests served there (watches and feeds are the main thread's). */
  frames: number;
  requests: number;
  /** CPU time the thread used (user + system, ms); null when unknown. */
  cpuMs: number | null;
}

interface Thread {
  worker: Worker;
  tid: number | null;
  frames: number;
  requests: number;
  msg: ToGateway;
  transfer: ArrayBuffer[];
  scheduled: boolean;
  drained: (() => void) | null;
  reported: (() => void)[];
}

/** How often the main thread checks whether the distribution published a new shard map. */
const MAP_CHECK_MS = 100;

export class GatewayThreads {
  /** Reply frames to send (socket.ts sets it). */
  onFrame: (f: FrameOut) => void = () => {};
  /** Watches, subscriptions and cancels to serve on the main thread (socket.ts sets it). */
  onLive: (l: LiveIn) => void = () => {};
  private readonly mapTimer: NodeJS.Timeout;
  private sentMap: ShardMap;
  private closed = false;

  private constructor(
    private readonly c: Coordinator,
    private readonly threads: Thread[],
    private readonly o: GatewayThreadsOptions,
  ) {
    this.sentMap = c.shardMap;
    this.mapTimer = setInterval(() => {
      const m = this.c.shardMap;
      if (m === this.sentMap) return;
      this.sentMap = m;
      const json = m.toJSON();
      for (let i = 0; i < this.threads.length; i++) this.post(i).map = json;
    }, MAP_CHECK_MS);
    this.mapTimer.unref();
    threads.forEach((t, i) => t.worker.on('message', (m: FromGateway) => this.onMessage(i, m)));
  }

  static async start(c: Coordinator, o: GatewayThreadsOptions): Promise<GatewayThreads> {
    const threads: Thread[] = [];
    try {
      for (let i = 0; i < o.count; i++) {
        const shardPorts = c.shards.map((s) => s.readerPort(i));
        const init: GatewayWorkerInit = { thread: i, limits: o.limits, admission: o.admission, shardPorts, map: c.shardMap.toJSON(), slowTransactionMs: o.slowTransactionMs };
        const worker = new Worker(workerFile(), { workerData: init, transferList: shardPorts, name: `txkv-gateway-${i}` });
        const t: Thread = { worker, tid: null, frames: 0, requests: 0, msg: {}, transfer: [], scheduled: false, drained: null, reported: [] };
        threads.push(t);
        t.tid = await new Promise<number | null>((resolve, reject) => {
          worker.once('message', (m: FromGateway) => resolve(m.tid ?? null));
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`gateway thread ${i} exited (${code}) while starting`)));
        });
        worker.removeAllListeners('error').removeAllListeners('exit');
      }
    } catch (err) {
      await Promise.all(threads.map((t) => t.worker.terminate()));
      throw err;
    }
    const g = new GatewayThreads(c, threads, o);
    threads.forEach((t, i) => {
      t.worker.on('error', (err) => o.onFatal(new Error(`gateway thread ${i} failed: ${err.message}`, { cause: err })));
      t.worker.on('exit', (code) => {
        if (!g.closed) o.onFatal(new Error(`gateway thread ${i} exited (${code})`));
      });
    });
    return g;
  }

  get count(): number {
    return this.threads.length;
  }

  /** Hands a frame (its ArrayBuffer is transferred) to gateway thread `thread`. */
  frame(thread: number, f: FrameIn): void {
    const t = this.threads[thread]!;
    (this.post(thread).frames ??= []).push(f);
    t.transfer.push(f.buf);
  }

  /** uWS holds `bytes` unsent for connection `conn` of gateway thread `thread` (it changed). */
  unsent(thread: number, conn: number, bytes: number): void {
    (this.post(thread).unsent ??= []).push([conn, bytes]);
  }

  /** The watch or feed `requestId` of connection `conn` of gateway thread `thread` ended (its last reply is out). */
  liveDone(thread: number, conn: number, requestId: number): void {
    (this.post(thread).liveDone ??= []).push([conn, requestId]);
  }

  /** Connection `conn` of gateway thread `thread` closed. */
  connClosed(thread: number, conn: number): void {
    (this.post(thread).closed ??= []).push(conn);
  }

  stats(): GatewayThreadStats[] {
    return this.threads.map((t, i) => ({ thread: i, tid: t.tid, frames: t.frames, requests: t.requests, cpuMs: threadCpuMs(t.tid) }));
  }

  /** The message of this turn to thread `i` (sent at the end of the turn). */
  private post(i: number): ToGateway {
    const t = this.threads[i]!;
    if (!t.scheduled) {
      t.scheduled = true;
      setImmediate(this.flush, i);
    }
    return t.msg;
  }

  private readonly flush = (i: number): void => {
    const t = this.threads[i]!;
    t.scheduled = false;
    const m = t.msg;
    t.msg = {};
    if (this.closed) return;
    // the versions this message gives the thread (read versions, commit versions, readable)
    // cover commits whose messages may still wait in the shards' outboxes; the thread's reads
    // go to the shards on ports of their own, so those messages leave first (a read must not
    // reach a shard before a commit it has to see: worker.ts takes the main port's first)
    for (const s of this.c.shards) s.flush();
    // reads at or below this version need not ask (gateway-worker.ts)
    m.readable = this.c.oracle.readableVersion;
    t.worker.postMessage(m, t.transfer.splice(0));
  };

  private answer(i: number, a: Answer): void {
    (this.post(i).answers ??= []).push(a);
  }

  private onMessage(i: number, m: FromGateway): void {
    const t = this.threads[i]!;
    if (m.frames) for (const f of m.frames) this.onFrame(f);
    if (m.live) for (const l of m.live) this.onLive(l);
    if (m.calls) this.serve(i, m.calls);
    if (m.metrics) addMetrics(this.c, m.metrics);
    if (m.counts) {
      t.frames = m.counts.frames;
      t.requests = m.counts.requests;
    }
    if (m.log) for (const l of m.log) this.o.logger.warn(l.obj, l.msg);
    if (m.drained) t.drained?.();
    if (m.reported) for (const r of t.reported.splice(0)) r();
  }

  /** The calls of one message: one read version for all its GetReadVersion requests (they arrived together). */
  private serve(i: number, calls: Call[]): void {
    const c = this.c;
    let grv: number | Promise<number> | null = null;
    for (const call of calls) {
      const id = call.id;
      const fail = (err: unknown): void => this.answer(i, { id, error: toWireError(err) });
      switch (call.k) {
        case 'grv':
          if (grv === null) {
            try {
              grv = c.front ? c.front.readVersion() : c.reads.readVersion();
            } catch (err) {
              fail(err);
              continue;
            }
          }
          if (typeof grv === 'number') this.answer(i, { id, v: grv });
          else grv.then((v) => this.answer(i, { id, v }), fail);
          break;
        case 'commit':
          (c.front ? c.front.commit(call.input) : c.commits.commit(call.input)).then((r) => this.answer(i, { id, commit: r }), fail);
          break;
        case 'wait':
          if (call.v <= c.oracle.readableVersion) this.answer(i, { id, v: 1 });
          else c.oracle.waitFor(call.v, call.ms).then((ok) => this.answer(i, { id, v: ok ? 1 : 0 }), fail);
          break;
        case 'map':
          this.answer(i, { id, map: c.shardMap.toJSON() });
          break;
      }
    }
  }

  /** Brings the server's counters up to date with every thread's (they report every 250 ms on their own). */
  async sync(timeoutMs = 1000): Promise<void> {
    if (this.closed) return;
    await Promise.all(
      this.threads.map(
        (t, i) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, timeoutMs);
            t.reported.push(() => {
              clearTimeout(timer);
              resolve();
            });
            this.post(i).report = true;
          }),
      ),
    );
  }

  /** Shutdown: each thread answers what it has in flight (bounded) and sends its last replies and counters. */
  async drain(timeoutMs = 3000): Promise<void> {
    await Promise.all(
      this.threads.map(
        (t, i) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, timeoutMs);
            t.drained = () => {
              clearTimeout(timer);
              resolve();
            };
            this.post(i).drain = true;
          }),
      ),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.mapTimer);
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

/** A gateway thread's counters since its last report, added into the server's binary-protocol metrics. */
function addMetrics(c: Coordinator, d: MetricsDelta): void {
  const m = requestMetricsOf(c);
  if (!m) return;
  const add = (h: typeof m.getLatency, x: MetricsDelta['get']): void => {
    for (let k = 0; k < x.counts.length; k++) h.counts[k] = h.counts[k]! + x.counts[k]!;
    h.sum += x.sum;
    h.count += x.count;
  };
  add(m.getLatency, d.get);
  add(m.rangeLatency, d.range);
  add(m.commitLatency, d.commit);
  m.transactionsStarted += d.transactionsStarted;
  m.bytesIn += d.bytesIn;
  m.bytesOut += d.bytesOut;
  m.inflight += d.inflight;
  for (const [code, n] of Object.entries(d.errors)) m.errors[code] = (m.errors[code] ?? 0) + n;
}
