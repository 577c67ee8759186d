// Shard worker entry (piscina). Worker thread: one per shard, for the life of the
// server. piscina starts and supervises the thread; the first task hands over a
// MessagePort, and from then on the coordinator and this worker exchange batches of
// requests and replies over that port (a piscina task per read would cost ~10x more
// per hop). Never imports the network stack or the coordinator.
import { workerData, type MessagePort } from 'node:worker_threads';
import { Failpoints, crashProcess } from '../failpoints/failpoints.js';
import type { ShardInit, ShardReply, ShardRequest } from './interface.js';
import { Shard } from './shard.js';
import { ShardStorage } from './storage.js';

interface AttachTask {
  port: MessagePort;
  durable: boolean;
}

let shard: Shard | null = null;

export default async function attach(task: AttachTask): Promise<{ shardId: number }> {
  const init = workerData as ShardInit;
  if (shard) throw new Error(`shard ${init.shardId} is already attached`);
  const storage = await ShardStorage.attach(init.dbHandle, init.shardId);
  const s = new Shard(storage, init.shardId, init.appliedVersion, new Failpoints(init.failpoints), task.durable);
  shard = s;
  const port = task.port;
  // replies of one event-loop turn (reads answered at once, commits after the flush)
  // travel back together: one postMessage per turn, not one per incoming batch
  let replies: ShardReply[] = [];
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    try {
      s.flush(replies);
    } catch (err) {
      // a failed RocksDB write leaves the shard's state unknown: stop serving rather than guess
      crashProcess(`shard ${init.shardId}: write failed, stopping the server (recovery runs at the next start): ${(err as Error).stack}`);
    }
    if (replies.length > 0) {
      port.postMessage(replies);
      replies = [];
    }
  };
  port.on('message', (batch: ShardRequest[]) => {
    s.handleBatch(batch, replies);
    // group commit: every batch that arrives before the check phase joins one write
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
  port.on('close', () => {
    shard = null;
  });
  return { shardId: init.shardId };
}
