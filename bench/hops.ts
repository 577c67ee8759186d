// Cost of each hop on the way of a read, measured on this machine:
//   piscina task round trip (one task per request), MessagePort round trip (one
//   request per message, and 100 per message, as the shard handles batch them), and
//   a full client get through the server (1 and 100 in flight). Ratios between them
//   are what matter; absolute numbers drift on a shared machine.
//   npm run build && node dist/bench/hops.js
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { pino } from 'pino';
import { Piscina } from 'piscina';
import { connect, startServer } from '../src/index.js';

const WORKER = new URL('./hops-worker.js', import.meta.url).href;

async function rate(label: string, total: number, run: () => Promise<void>): Promise<{ label: string; perSec: number }> {
  const t = performance.now();
  await run();
  const perSec = Math.round(total / ((performance.now() - t) / 1000));
  return { label, perSec };
}

export async function runHops(): Promise<{ label: string; perSec: number }[]> {
  const out: { label: string; perSec: number }[] = [];
  const N = 20_000;
  for (const concurrent of [1, 100]) {
    const pool = new Piscina({ filename: WORKER, minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: concurrent, maxQueue: N, atomics: 'disabled' });
    await pool.run({ n: 0 });
    out.push(
      await rate(`piscina task round trip, ${concurrent} in flight`, N, async () => {
        let next = 0;
        await Promise.all(Array.from({ length: 100 }, async () => {
          while (next < N) await pool.run({ n: next++ });
        }));
      }),
    );
    await pool.destroy();
  }
  const pool = new Piscina({ filename: WORKER, minThreads: 1, maxThreads: 1, atomics: 'disabled' });
  const { port1, port2 } = new MessageChannel();
  await pool.run({ port: port2 }, { transferList: [port2] });
  for (const perMessage of [1, 100]) {
    out.push(
      await rate(`MessagePort round trip, ${perMessage} request(s) per message, 100 in flight`, N * 5, async () => {
        let sent = 0;
        let received = 0;
        await new Promise<void>((resolve) => {
          port1.on('message', (batch: unknown[]) => {
            received += batch.length;
            if (received >= N * 5) resolve();
            else if (sent < N * 5) {
              sent += batch.length;
              port1.postMessage(batch);
            }
          });
          const req = { t: 'get', id: 1, readVersion: 1, key: new Uint8Array(16) };
          for (let i = 0; i < 100 / perMessage; i++) {
            const batch = Array.from({ length: perMessage }, () => req);
            sent += batch.length;
            port1.postMessage(batch);
          }
        });
        port1.removeAllListeners('message');
      }),
    );
  }
  port1.close();
  await pool.destroy();

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-hops-'));
  const server = await startServer({ port: 0, dataDir, shards: 4 }, { logger: pino({ level: 'warn' }) });
  const db = await connect({ endpoints: [server.url], connectionPoolSize: 1 });
  await db.transact(async (tx) => tx.set('hop', 'v'));
  for (const inflight of [1, 100]) {
    const total = inflight === 1 ? 5_000 : 50_000;
    const rv = await db.createTransaction().getReadVersion();
    out.push(
      await rate(`client get through the server, ${inflight} in flight`, total, async () => {
        let next = 0;
        await Promise.all(Array.from({ length: inflight }, async () => {
          while (next++ < total) {
            const tx = db.createReadOnlyTransaction();
            tx.setReadVersion(rv);
            await tx.get('hop');
          }
        }));
      }),
    );
  }
  await db.close();
  await server.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runHops();
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
  else for (const r of rows) console.log(`${String(r.perSec).padStart(9)} /s  ${r.label}`);
}
