// Group commit at work: commits/s and fsyncs/s with 1, 10 and 100 concurrent
// committers against an in-process server with fsync durability. Every commit is a
// durable one-shard write; the shard folds all commits ready at the same moment into
// one RocksDB write batch with one fsync, so fsyncs/s stays far below commits/s as
// concurrency grows.
//   npm run build && node dist/bench/group-commit.js [--seconds 3] [--json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { connect, startServer } from '../src/index.js';

interface Row {
  committers: number;
  commits: number;
  seconds: number;
  commitsPerSec: number;
  fsyncsPerSec: number;
  commitsPerFsync: number;
}

async function fsyncs(port: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/status`);
  const s = (await r.json()) as { shards: { fsyncs: number }[] };
  return s.shards.reduce((n, sh) => n + sh.fsyncs, 0);
}

export async function runGroupCommit(seconds: number): Promise<Row[]> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-gc-'));
  const server = await startServer({ port: 0, dataDir, shards: 4, durability: 'fsync' }, { logger: pino({ level: 'warn' }) });
  const db = await connect({ endpoints: [server.url], connectionPoolSize: 4 });
  const rows: Row[] = [];
  try {
    for (const n of [1, 10, 100]) {
      const before = await fsyncs(server.port);
      const until = Date.now() + seconds * 1000;
      const started = performance.now();
      let commits = 0;
      await Promise.all(
        Array.from({ length: n }, async (_, c) => {
          for (let i = 0; Date.now() < until; i++) {
            const tx = db.createTransaction();
            // spread over the shards: each shard group-commits its own share
            tx.set(`${String.fromCharCode(0x10 + ((c * 37) % 0xe0))}gc/${c}/${i % 100}`, 'x'.repeat(64));
            await tx.commit();
            commits++;
          }
        }),
      );
      const secs = (performance.now() - started) / 1000;
      const f = (await fsyncs(server.port)) - before;
      rows.push({
        committers: n,
        commits,
        seconds: Number(secs.toFixed(2)),
        commitsPerSec: Math.round(commits / secs),
        fsyncsPerSec: Math.round(f / secs),
        commitsPerFsync: Number((commits / Math.max(f, 1)).toFixed(1)),
      });
    }
  } finally {
    await db.close();
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const seconds = Number(argv[argv.indexOf('--seconds') + 1]) || 3;
  const rows = await runGroupCommit(seconds);
  if (argv.includes('--json')) console.log(JSON.stringify(rows));
  else {
    console.log('committers  commits/s  fsyncs/s  commits/fsync');
    for (const r of rows) console.log(`${String(r.committers).padStart(10)}  ${String(r.commitsPerSec).padStart(9)}  ${String(r.fsyncsPerSec).padStart(8)}  ${String(r.commitsPerFsync).padStart(13)}`);
  }
}
