// The log writer: one worker thread per server (fsync durability only) that makes the
// shards' write batches durable. Why a thread of its own: the binding's writes are
// synchronous, and an fsync'd write blocks its caller for the whole fsync (milliseconds
// on a slow disk). On the shard thread that blocked every read of the shard behind the
// group commit; here, a shard hands its batch over and keeps serving reads and checking
// conflicts while the WAL is synced. Batches of every shard that arrive during one fsync
// are written together by the next one (group commit across shards: one WAL, one fsync).
// Ordering: each shard has at most one batch here at a time (it waits for the reply
// before building the next), so a shard's batches reach the WAL in its version order.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { crashProcess } from '../failpoints/failpoints.js';
import { GroupWriter, type PackedOps } from './storage.js';

/** A shard's request to the log writer. */
export interface LogWrite {
  id: number;
  ops: PackedOps;
  sync: boolean;
}

/** The reply: the batch is written (and on stable storage when sync was asked). */
export interface LogWritten {
  id: number;
}

export interface LogWriterInit {
  dbHandle: bigint;
}

/** Sent by the coordinator on the worker's parentPort: one port per shard. */
export interface LogWriterAttach {
  shardId: number;
  port: MessagePort;
}

interface Pending {
  port: MessagePort;
  column: ReturnType<GroupWriter['column']>;
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
    for (const p of group) p.port.postMessage({ id: p.req.id } satisfies LogWritten);
  };
  parentPort!.on('message', (m: LogWriterAttach) => {
    const column = db.column(m.shardId);
    m.port.on('message', (req: LogWrite) => {
      pending.push({ port: m.port, column, req });
      // every batch that arrives while a write (and its fsync) runs joins the next one
      if (!scheduled) {
        scheduled = true;
        setImmediate(run);
      }
    });
  });
  parentPort!.postMessage('ready');
}

void main();
