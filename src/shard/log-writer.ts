// The log writer: one worker thread per server (fsync durability only) that makes the
// shards' write batches durable. Why a thread of its own: the binding's writes are
// synchronous, and an fsync'd write blocks its caller for the whole fsync (milliseconds
// on a slow disk). On the shard thread that blocked every read of the shard behind the
// group commit; here, a shard hands its batch over and keeps serving reads and checking
// conflicts while the WAL is synced. Batches of every shard that arrive during one fsync
// are written together by the next one (group commit across shards: one WAL, one fsync).
// Ordering: each shard has at most one batch here at a time (it waits for the batch's
// end before building the next), so a shard's batches reach the WAL in its version order.
//
// Who hears of a written batch (fewer thread wake-ups per commit): a batch of one-phase
// commits only (LogWrite.direct) is answered to the coordinator from here, on the
// worker's parentPort; the shard learns that the batch ended from a shared counter
// (interface.ts LOG_SHARED_BYTES) the next time it looks, and is woken by a message only when it asked for
// it (it has commits or reads waiting behind the batch). Any other batch wakes the shard,
// which answers its commits as before.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { crashProcess } from '../failpoints/failpoints.js';
import { threadId } from '../metrics/thread-cpu.js';
import { LOG_DONE, LOG_WAKE, type LogReplies } from './interface.js';
import { decodeLogWrite, type LogWrite } from './log-wire.js';
import { GroupWriter } from './storage.js';

export type { LogWrite };

/** The message to the shard: the batch is written (and on stable storage when sync was asked). */
export interface LogWritten {
  id: number;
  /** A direct batch's end woke the shard (it asked: LOG_WAKE). */
  woken?: true;
}


/** The log writer's first message to the coordinator. */
export interface LogWriterReady {
  ready: true;
  /** The thread's id in /proc; null off Linux. */
  tid: number | null;
}

export interface LogWriterInit {
  dbHandle: bigint;
}

/** Sent by the coordinator on the worker's parentPort: one port per shard. */
export interface LogWriterAttach {
  shardId: number;
  port: MessagePort;
  shared: SharedArrayBuffer;
}

interface Pending {
  shardId: number;
  port: MessagePort;
  column: ReturnType<GroupWriter['column']>;
  ints: Int32Array;
  ms: Float64Array;
  req: LogWrite;
}

async function main(): Promise<void> {
  const init = workerData as LogWriterInit;
  const db = await GroupWriter.attach(init.dbHandle);
  let pending: Pending[] = [];
  let scheduled = false;
  const run = (): void => {
    scheduled = false;
    const group = pending;
    pending = [];
    if (group.length === 0) return;
    let sync = false;
    for (const p of group) sync ||= p.req.sync;
    try {
      db.write(
        group.map((p) => ({ column: p.column, ops: p.req.ops })),
        sync,
      );
    } catch (err) {
      // a failed write leaves the database state unknown: stop serving (recovery runs at the next start)
      crashProcess(`log writer: write failed, stopping the server: ${(err as Error).stack}`);
    }
    const now = performance.timeOrigin + performance.now();
    let replies = 0;
    for (const p of group) {
      p.ms[0] = now - p.req.sentAt;
      Atomics.store(p.ints, LOG_DONE, p.req.id);
      if (p.req.direct) replies += 2 + p.req.direct.length;
    }
    if (replies > 0) {
      // the coordinator's replies first: they are what a client waits for
      const out: LogReplies = new Float64Array(replies);
      let i = 0;
      for (const p of group) {
        const ids = p.req.direct;
        if (!ids) continue;
        out[i++] = p.shardId;
        out[i++] = ids.length;
        for (const id of ids) out[i++] = id;
      }
      parentPort!.postMessage(out, [out.buffer as ArrayBuffer]);
    }
    for (const p of group) {
      // a direct batch wakes its shard only if the shard asked (LOG_WAKE), else it sees LOG_DONE when it next looks
      if (!p.req.direct) p.port.postMessage({ id: p.req.id } satisfies LogWritten);
      else if (Atomics.compareExchange(p.ints, LOG_WAKE, p.req.id, 0) === p.req.id) p.port.postMessage({ id: p.req.id, woken: true } satisfies LogWritten);
    }
  };
  parentPort!.on('message', (m: LogWriterAttach) => {
    const column = db.column(m.shardId);
    const ints = new Int32Array(m.shared, 0, 2);
    const ms = new Float64Array(m.shared, 8, 1);
    m.port.on('message', (buf: ArrayBuffer) => {
      pending.push({ shardId: m.shardId, port: m.port, column, ints, ms, req: decodeLogWrite(buf) });
      // every batch that arrives while a write (and its fsync) runs joins the next one
      if (!scheduled) {
        scheduled = true;
        setImmediate(run);
      }
    });
  });
  // the thread's id in /proc: its CPU appears in /v1/status `threads` (and the benchmark's per-thread CPU)
  parentPort!.postMessage({ ready: true, tid: threadId() } satisfies LogWriterReady);
}

void main();
