// hot path: the coordinator's handle on one shard worker. Main thread.
// piscina creates and supervises the worker (one pool of exactly one thread per
// shard, so a shard keeps its thread and its in-memory state). Requests made during
// one event-loop turn travel together in one message; replies come back batched.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { idAfter, IdTable } from '../client/id-table.js';
import { TxnError } from '../errors.js';
import { LOG_SHARED_BYTES, type GatewayPortMessage, type LogReplies, type ShardEvent, type ShardInit, type ShardReply, type ShardRequest } from '../shard/interface.js';
import { decodeReplies, RequestOutbox, type OutgoingRequest, type ShardMessage } from '../shard/wire.js';
import type { LogWriterReady } from '../shard/log-writer.js';

/** A request as given to request()/post(): no id yet; a commit's or prepare's mutations may be the list (wire.ts OutgoingRequest). */
type Outgoing = OutgoingRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * Workers load compiled JavaScript. When this module itself runs from TypeScript
 * sources (vitest), point at the build output instead (npm test builds first).
 */
function workerFile(name = 'worker'): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    const root = path.resolve(path.dirname(here), '../..');
    return pathToFileURL(path.join(root, `dist/src/shard/${name}.js`)).href;
  }
  return new URL(`../shard/${name}.js`, import.meta.url).href;
}

/**
 * The log writer thread (shard/log-writer.ts): writes and fsyncs the shards' batches so
 * that no shard thread blocks on an fsync. One per server, fsync durability only.
 */
export class LogWriterHandle {
  private closed = false;
  /** Shard handles by shard id: the log writer answers one-phase commits itself (LogReplies). */
  private readonly handles: ShardHandle[] = [];
  /** The thread's id in /proc (per-thread CPU in /v1/status); null off Linux. */
  tid: number | null = null;
  private constructor(private readonly worker: Worker) {}

  static async start(dbHandle: bigint, onFatal: (err: Error) => void): Promise<LogWriterHandle> {
    const worker = new Worker(new URL(workerFile('log-writer')), { workerData: { dbHandle }, name: 'txkv-log-writer' });
    const h = new LogWriterHandle(worker);
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (m: LogWriterReady) => {
        h.tid = m.tid;
        resolve();
      });
      worker.once('error', reject);
    });
    worker.on('message', (m: LogReplies) => {
      for (let i = 0; i < m.length; ) {
        const shard = h.handles[m[i]!];
        const n = m[i + 1]!;
        for (let j = i + 2; j < i + 2 + n; j++) shard?.answered(m[j]!);
        i += 2 + n;
      }
    });
    worker.on('error', (err) => onFatal(new Error(`log writer failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!h.closed) onFatal(new Error(`log writer exited (${code})`));
    });
    return h;
  }

  /** A port for shard `shardId` to send its batches on, and the memory they share (interface.ts LOG_SHARED_BYTES). */
  portFor(shardId: number): { port: MessagePort; shared: SharedArrayBuffer } {
    const { port1, port2 } = new MessageChannel();
    const shared = new SharedArrayBuffer(LOG_SHARED_BYTES);
    this.worker.postMessage({ shardId, port: port2, shared }, [port2]);
    return { port: port1, shared };
  }

  /** The handle of shard `shardId`, whose one-phase commits this log writer answers. */
  attach(shardId: number, handle: ShardHandle): void {
    this.handles[shardId] = handle;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}

/**
 * The young generation of a shard thread's heap, MB (V8 splits it into two semi-spaces and a
 * large-object space of a third each; 0 = V8's default, 16 MB semi-spaces). About 15 % of
 * what a shard allocates under w10 outlives a scavenge interval however long it is (2, 16
 * and 64 MB semi-spaces promoted 0.24, 1.9 and 5-6 MB per scavenge at the same load), so a
 * scavenge's pause grows with the interval: with the default a shard paused ~3 times a
 * second for 5-6 ms (p90 8-11, max 11-15), holding every commit queued there; with 2 MB
 * semi-spaces (6 MB here) ~23 times a second for ~1 ms (p90 1.5-1.9, max 2.5-5), about the
 * same GC time (2.6-2.9 % against 1.4-2.3 % of the thread). bench/README.md "Shard
 * scavenges, shorter". TXKV_SHARD_YOUNG_MB overrides it (benchmarks).
 */
export const SHARD_YOUNG_GENERATION_MB = Number(process.env.TXKV_SHARD_YOUNG_MB ?? 6);

export class ShardHandle {
  private nextId = 1;
  private readonly pending = new IdTable<(reply: ShardReply) => void>();
  private readonly outbox: RequestOutbox;
  private closed = false;
  /** Watch and change-feed events of this shard (coordinator/live-hub.ts). */
  onEvent: ((e: ShardEvent) => void) | null = null;
  /**
   * A move source's rows (feed after an applied batch, or a chunk reply), called
   * synchronously in the order the shard sent them, before the replies that follow
   * them resolve (distribution.ts forwards them to the move's target in that order).
   */
  onFeed: ((r: Extract<ShardReply, { feed: unknown }>) => void) | null = null;
  /** Requests sent and not yet answered (queue depth, for status and metrics). */
  get inflight(): number {
    return this.pending.size;
  }

  private constructor(
    readonly shardId: number,
    private readonly pool: Piscina,
    private readonly port: MessagePort,
    /** The worker thread's id in /proc (per-thread CPU); null off Linux. */
    readonly tid: number | null,
  ) {
    this.outbox = new RequestOutbox(port);
    port.on('message', (m: ShardMessage<ShardReply>) => {
      for (const r of decodeReplies(m)) {
        if (r.id === 0 && 'event' in r) {
          this.onEvent?.(r);
          continue;
        }
        if ('feed' in r) this.onFeed?.(r);
        const cb = this.pending.get(r.id);
        if (cb) {
          this.pending.delete(r.id);
          cb(r);
        }
      }
    });
  }

  static async start(init: ShardInit, durable: boolean, onFatal: (err: Error) => void, log?: { port: MessagePort; shared: SharedArrayBuffer }): Promise<ShardHandle> {
    const pool = new Piscina({
      filename: workerFile(),
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: 2 ** 31 - 1,
      workerData: init,
      name: 'default',
      // piscina's default parks idle workers in Atomics.wait, which would block the
      // worker's event loop and so our MessagePort: the shard must keep listening
      atomics: 'disabled',
      ...(SHARD_YOUNG_GENERATION_MB > 0 ? { resourceLimits: { maxYoungGenerationSizeMb: SHARD_YOUNG_GENERATION_MB } } : {}),
    });
    pool.on('error', (err: Error) => onFatal(new Error(`shard ${init.shardId} worker failed: ${err.message}`, { cause: err })));
    const { port1, port2 } = new MessageChannel();
    const task = log ? { port: port2, durable, log: log.port, logShared: log.shared } : { port: port2, durable };
    const { tid } = (await pool.run(task, { transferList: log ? [port2, log.port] : [port2] })) as { tid: number | null };
    return new ShardHandle(init.shardId, pool, port1, tid);
  }

  /** Sends a request; resolves with its reply (errors come back as { error } data). */
  request(req: Outgoing): Promise<ShardReply> {
    // UNAVAILABLE: the server is stopping; a client retries elsewhere or later
    if (this.closed) return Promise.reject(new TxnError('UNAVAILABLE', `shard ${this.shardId} is shut down`));
    const id = this.nextId;
    this.nextId = idAfter(id);
    // callers pass a fresh literal: stamping the id on it saves a copy per request
    (req as OutgoingRequest).id = id;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.outbox.push(req as OutgoingRequest);
    });
  }

  /** The log writer wrote the batch holding one-phase commit `id` (log-writer.ts LogWrite.direct). */
  answered(id: number): void {
    const cb = this.pending.get(id);
    if (cb) {
      this.pending.delete(id);
      cb({ id, ok: true });
    }
  }

  /**
   * Posts what is queued for this shard now instead of at the turn's end. Called before a
   * gateway thread is told a read version (gateway-threads.ts): its reads reach the shard on
   * a port of their own, so the messages of every commit that version covers must be in
   * this shard's port first (the shard takes them before a gateway's reads, worker.ts).
   */
  flush(): void {
    if (!this.closed) this.outbox.flushAll();
  }

  /** The shard may delete these decision records (every part applied); they ride with a later message (wire.ts RequestOutbox.forget). */
  forget(key: Uint8Array): void {
    if (!this.closed) this.outbox.forget(key);
  }

  /** Sends a request that has no reply. */
  post(req: Outgoing): void {
    if (this.closed) return;
    (req as OutgoingRequest).id = 0;
    this.outbox.push(req as OutgoingRequest);
  }

  /**
   * A port on which gateway thread `thread` sends this shard reads itself (negative
   * request ids; shard/worker.ts answers them on that port).
   */
  readerPort(thread: number): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.port.postMessage({ gatewayPort: port2, thread } satisfies GatewayPortMessage, [port2]);
    return port1;
  }

  /** close() was called: requests still pending then were answered UNAVAILABLE without their outcome. */
  get shutDown(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.outbox.flushAll();
    this.outbox.close();
    this.closed = true;
    // Not FAILED: a write among these may be blocked in fsync and still become durable.
    // The commit coordinator turns these into MAYBE_COMMITTED for commits; reads retry.
    for (const [id, cb] of this.pending.entries()) cb({ id, error: { code: 'UNAVAILABLE', message: `shard ${this.shardId} shut down` } });
    this.pending.clear();
    this.port.close();
    await this.pool.destroy();
  }
}
