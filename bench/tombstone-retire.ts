// Retiring the range tombstones of one commit with many clears (shard/retire.ts), on one
// shard over real RocksDB, driven as the shard worker drives it: `--n` rows, then one
// commit of `--n` clearRange + set pairs (each range holds one row), the window passes
// it, and beginApply runs once per turn until nothing is left, with a point read between
// turns. Prints the longest synchronous step (what a read or commit of the shard waits
// for), the thread's CPU time in total, and the longest read. Run it under bench-lock.
//   npm run build && node dist/bench/tombstone-retire.js [--n 20000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Failpoints } from '../src/failpoints/failpoints.js';
import { openDatabase } from '../src/server/open-database.js';
import { MutationKind, packBytes, packMutations, type ShardMutation, type ShardReply } from '../src/shard/interface.js';
import { Shard } from '../src/shard/shard.js';
import { ShardStorage } from '../src/shard/storage.js';
import { threadCpuMs } from '../src/shard/thread-cpu.js';

async function main(): Promise<void> {
  const at = process.argv.indexOf('--n');
  const n = at > 0 ? Number(process.argv[at + 1]) : 20_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-retire-'));
  const { db } = await openDatabase(dir, { shards: 1, splitPoints: [], explicitSplitPoints: false });
  try {
    const shard = new Shard(await ShardStorage.attach(db.handle, 0), 0, 0, new Failpoints({}), true, 64 << 20);
    const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
    const k = (i: number): string => `dir/${String(i).padStart(6, '0')}`;
    let id = 1;
    const commit = (version: number, ms: ShardMutation[]): void => {
      const r: ShardReply[] = [];
      shard.handleBatch([{ t: 'commit', id: id++, commitVersion: version, mutations: packMutations(ms), sync: false }], r);
      shard.applyReady(r);
    };
    let ms: ShardMutation[] = [];
    for (let i = 0; i < n; i++) ms.push({ kind: MutationKind.Set, key: b(`${k(i)}/old`), param: b('x') });
    commit(1, ms);
    ms = [];
    for (let i = 0; i < n; i++) {
      ms.push({ kind: MutationKind.ClearRange, key: b(k(i)), param: b(`${k(i)}/\xff`) });
      ms.push({ kind: MutationKind.Set, key: b(`${k(i)}/new`), param: b(String(i)) });
    }
    commit(2, ms);
    const c0 = threadCpuMs() ?? 0;
    const w0 = performance.now();
    shard.handle({ t: 'horizon', id: 0, horizon: 2 }, []);
    let steps = 0;
    let longestStepMs = 0;
    let longestGetMs = 0;
    do {
      const t0 = performance.now();
      shard.beginApply();
      longestStepMs = Math.max(longestStepMs, performance.now() - t0);
      steps++;
      const g0 = performance.now();
      shard.handle({ t: 'gets', id: id++, readVersions: [2], keys: packBytes([b('other'), b(`${k(7)}/new`)]) }, []);
      longestGetMs = Math.max(longestGetMs, performance.now() - g0);
    } while (shard.retiring);
    const r = (x: number): number => Math.round(x * 100) / 100;
    console.log(
      JSON.stringify({
        tombstones: n,
        steps,
        totalWallMs: r(performance.now() - w0),
        totalCpuMs: r((threadCpuMs() ?? 0) - c0),
        longestStepMs: r(longestStepMs),
        longestGetMs: r(longestGetMs),
        left: shard.window.tombstones,
        stats: { deleteRanges: shard.stats().deleteRanges, retireCpuMaxMs: r(shard.stats().retireCpuMaxMs ?? 0) },
      }),
    );
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
