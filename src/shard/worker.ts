// Shard worker entry (piscina). Worker thread: one per shard, for the life of the
// server. piscina starts and supervises the thread; the first task hands over a
// MessagePort, and from then on the coordinator and this worker exchange batches of
// requests and replies over that port (a piscina task per read would cost ~10x more
// per hop). Never imports the network stack or the coordinator.
//
// Replies leave at the end of the event-loop turn in which they exist, in one message:
// reads, refusals and prepare acks of the turn's requests, commits once their write is done. With fsync durability the
// write itself runs on the log writer thread (log-writer.ts), so this thread keeps
// answering reads while the WAL is synced; one batch is there at a time, and commits
// that arrive meanwhile form the next group. A batch of one-phase commits is answered by
// the log writer; this thread then finds the batch ended (LOG_DONE) when it next handles
// a message, and asks to be woken at its end only when something waits behind it.
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { Failpoints, crashProcess } from '../failpoints/failpoints.js';
import { GATEWAY_ID_SPAN, LOG_DONE, LOG_WAKE, type GatewayPortMessage, type ShardInit, type ShardReply, type ShardRequest } from './interface.js';
import { threadId } from '../metrics/thread-cpu.js';
import type { LogWritten } from './log-writer.js';
import { encodeLogWrite } from './log-wire.js';
import { Shard, type ApplyBatch } from './shard.js';
import { ShardStorage } from './storage.js';
import { decodeRequests, encodeReplies, type ShardMessage } from './wire.js';

interface AttachTask {
  port: MessagePort;
  durable: boolean;
  /** Port to the log writer (fsync durability); absent: this thread writes itself. */
  log?: MessagePort;
  /** Shared with the log writer (interface.ts LOG_SHARED_BYTES); with `log`. */
  logShared?: SharedArrayBuffer;
}

let shard: Shard | null = null;


export default async function attach(task: AttachTask): Promise<{ shardId: number; tid: number | null }> {
  const init = workerData as ShardInit;
  if (shard) throw new Error(`shard ${init.shardId} is already attached`);
  const storage = await ShardStorage.attach(init.dbHandle, init.shardId);
  const s = new Shard(storage, init.shardId, init.appliedVersion, new Failpoints(init.failpoints), task.durable, init.rowCacheBytes ?? 0);
  shard = s;
  const port = task.port;
  const log = task.log;
  let replies: ShardReply[] = [];
  const gateways: MessagePort[] = [];
  const post = (): void => {
    if (replies.length === 0) return;
    if (gateways.length === 0) {
      const packed = encodeReplies(replies);
      port.postMessage(packed, packed.t ? [packed.b, ...packed.t] : [packed.b]);
      replies = [];
      return;
    }
    // replies to gateway threads' reads go back on their ports
    const own: ShardReply[] = [];
    const theirs: ShardReply[][] = [];
    for (const r of replies) {
      if (r.id >= 0) own.push(r);
      else (theirs[-r.id % GATEWAY_ID_SPAN] ??= []).push(r);
    }
    replies = [];
    if (own.length > 0) {
      const packed = encodeReplies(own);
      port.postMessage(packed, packed.t ? [packed.b, ...packed.t] : [packed.b]);
    }
    for (let i = 0; i < theirs.length; i++) {
      if (!theirs[i]) continue;
      const packed = encodeReplies(theirs[i]!);
      gateways[i]!.postMessage(packed, packed.t ? [packed.b, ...packed.t] : [packed.b]);
    }
  };
  const fail = (err: unknown): never =>
    // a failed RocksDB write leaves the shard's state unknown: stop serving rather than guess
    crashProcess(`shard ${init.shardId}: write failed, stopping the server (recovery runs at the next start): ${(err as Error).stack}`);

  let scheduled = false;
  /** The batch at the log writer (at most one, so batches reach the WAL in version order). */
  let inflight: ApplyBatch | null = null;
  let logId = 0;
  const logInts = task.logShared ? new Int32Array(task.logShared, 0, 2) : null;
  const logMs = task.logShared ? new Float64Array(task.logShared, 8, 1) : null;
  /** Ends the batch at the log writer if its write is done (its LOG_DONE is stored before any of its replies leave). */
  const settle = (): void => {
    if (!inflight || Atomics.load(logInts!, LOG_DONE) !== logId) return;
    const b = inflight;
    inflight = null;
    s.walWritten(logMs![0]!);
    s.endApply(b, replies, b.direct);
  };
  /**
   * End of the event-loop turn: the replies of every message of the turn leave in one
   * postMessage (reads never wait for a write: they go before it), then every decided
   * commit of the turn becomes one write (group commit), unless one is still at the log writer.
   */
  const turnEnd = (): void => {
    scheduled = false;
    settle();
    post();
    if (inflight) {
      // something waits for the batch at the log writer: have its end wake this thread
      // (the store, then the check: either this thread sees LOG_DONE or the log writer sees LOG_WAKE)
      if (inflight.direct && s.waitsForWrite && Atomics.load(logInts!, LOG_WAKE) !== logId) {
        Atomics.store(logInts!, LOG_WAKE, logId);
        if (Atomics.load(logInts!, LOG_DONE) === logId) schedule();
      }
      return;
    }
    try {
      const b = s.beginApply();
      // tombstones left to retire: another turn runs the next slice (reads and commits that
      // arrive meanwhile are handled first)
      if (s.retiring) schedule();
      if (!b) return;
      if (log) {
        inflight = b;
        // ids stay positive int32 (interface.ts LOG_SHARED_BYTES), never 0
        logId = (logId % 0x7fffffff) + 1;
        // one buffer, transferred (log-wire.ts)
        const req = encodeLogWrite(logId, b.ops, b.sync, performance.timeOrigin + performance.now(), b.direct ? b.replyIds : undefined);
        log.postMessage(req, [req]);
        // the log writer has the bytes: the batch stays here until its write ends (an fsync,
        // tens of ms under load) and must not keep a view per key and value alive meanwhile
        // (they outlived young-generation scavenges and were promoted)
        b.ops.clear();
        return;
      }
      const t = performance.now();
      storage.write(b.ops, b.sync);
      s.walWritten(performance.now() - t);
      s.endApply(b, replies);
    } catch (err) {
      fail(err);
    }
    post();
  };
  const schedule = (): void => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(turnEnd);
    }
  };
  log?.on('message', (done: LogWritten) => {
    if (done.woken) s.counters.logWakes++;
    settle();
    schedule();
  });
  const onBatch = (m: ShardMessage<ShardRequest>): void => {
    // a read at a version the log writer already acknowledged must not park behind that batch
    settle();
    s.handleBatch(decodeRequests(m), replies);
    schedule();
  };
  const onMain = (m: ShardMessage<ShardRequest> | GatewayPortMessage): void => {
    if (!('gatewayPort' in m)) {
      onBatch(m);
      return;
    }
    gateways[m.thread] = m.gatewayPort;
    m.gatewayPort.on('message', onGateway);
  };
  // Two ports are not ordered with each other: a gateway thread's read can be waiting here
  // together with the main thread's message of a commit its read version covers (the main
  // thread posts its shard messages before it tells a gateway thread a version:
  // gateway-threads.ts). So everything the main thread has posted is taken first; a read
  // handled before a commit the shard has not heard of would not wait for it (Shard.mustWait).
  const onGateway = (m: ShardMessage<ShardRequest>): void => {
    for (let r = receiveMessageOnPort(port); r !== undefined; r = receiveMessageOnPort(port)) onMain(r.message as ShardMessage<ShardRequest> | GatewayPortMessage);
    onBatch(m);
  };
  port.on('message', onMain);
  port.on('close', () => {
    shard = null;
    log?.close();
    for (const g of gateways) g?.close();
  });
  return { shardId: init.shardId, tid: threadId() };
}
