// CPU time per operation of the whole stack (client, gateway, coordinator and shard
// workers, all in this process): process.cpuUsage() covers every thread, so the
// figure holds up on a busy machine where throughput does not. Used to judge
// hot-path changes: r10-like reads (10 gets of one transaction in one tick) and
// w10-like writes (10 sets, buffered durability so the disk does not dominate) and
// m90-like transactions (9 reads + 1 write).
//   npm run build && node dist/bench/cpu-per-op.js
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { connect, startServer } from '../src/index.js';

export async function cpuPerOp(): Promise<{ workload: string; ops: number; cpuMicrosPerOp: number; wallOpsPerSec: number }[]> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-cpu-'));
  const server = await startServer({ port: 0, dataDir, shards: 4, durability: 'buffered' }, { logger: pino({ level: 'warn' }) });
  const db = await connect({ endpoints: [server.url], connectionPoolSize: 1 });
  const key = (i: number): string => `k${String(i).padStart(15, '0')}`;
  await db.transact(async (tx) => {
    for (let i = 0; i < 2000; i++) tx.set(key(i), 'v'.repeat(40));
  });
  const out: { workload: string; ops: number; cpuMicrosPerOp: number; wallOpsPerSec: number }[] = [];
  const run = async (workload: string, txs: number, body: (n: number) => Promise<void>): Promise<void> => {
    await Promise.all(Array.from({ length: 50 }, (_, c) => body(c * 7919)).slice(0, 5)); // warm-up
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < txs) await body(next++);
    }));
    const cpu = process.cpuUsage(cpu0);
    const ops = txs * 10;
    out.push({ workload, ops, cpuMicrosPerOp: Number(((cpu.user + cpu.system) / ops).toFixed(1)), wallOpsPerSec: Math.round(ops / ((performance.now() - t0) / 1000)) });
  };
  await run('r10', 3000, async (n) => {
    const tx = db.createReadOnlyTransaction();
    await Promise.all(Array.from({ length: 10 }, (_, j) => tx.get(key((n * 13 + j * 101) % 2000))));
  });
  await run('w10', 3000, async (n) => {
    const tx = db.createTransaction();
    for (let j = 0; j < 10; j++) tx.set(key((n * 17 + j * 97) % 2000), 'w'.repeat(40));
    await tx.commit();
  });
  await run('m90', 3000, async (n) => {
    for (;;) {
      const tx = db.createTransaction();
      await Promise.all(Array.from({ length: 9 }, (_, j) => tx.get(key((n * 31 + j * 211) % 2000))));
      tx.set(key((n * 53) % 2000), 'm'.repeat(40));
      try {
        await tx.commit();
        return;
      } catch {
        // a conflict: run the transaction again, as a client would
      }
    }
  });
  await db.close();
  await server.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await cpuPerOp()) console.log(`${r.workload}: ${r.cpuMicrosPerOp} us CPU/op (all threads), ${r.wallOpsPerSec} ops/s wall, ${r.ops} ops`);
}
