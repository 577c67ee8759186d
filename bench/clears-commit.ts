// The cost on the shard thread of one commit of `--n` clearRange + set pairs (a batch
// delete that rewrites what it deletes: 40,000 mutations for n = 20,000), on one shard over
// real RocksDB, driven as the shard worker drives it (handleBatch, then applyReady: unpack,
// apply, window record, RocksDB write). Each of `--rounds` commits clears and writes keys of
// its own, over `--n` rows written before. Prints the thread's CPU time
// per commit and the phases of the best one. Run it under bench-lock; for a profile:
//   npm run build && node dist/bench/clears-commit.js [--n 20000] [--rounds 5]
//   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/clears-commit.js
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Failpoints } from '../src/failpoints/failpoints.js';
import { openDatabase } from '../src/server/open-database.js';
import { MutationKind, packMutations, type ShardMutation, type ShardReply } from '../src/shard/interface.js';
import { Shard } from '../src/shard/shard.js';
import { ShardStorage } from '../src/shard/storage.js';
import { threadCpuMs } from '../src/shard/thread-cpu.js';

function arg(name: string, dflt: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : dflt;
}

async function main(): Promise<void> {
  const n = arg('n', 20_000);
  const rounds = arg('rounds', 5);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-clears-'));
  const { db } = await openDatabase(dir, { shards: 1, splitPoints: [], explicitSplitPoints: false });
  try {
    const shard = new Shard(await ShardStorage.attach(db.handle, 0), 0, 0, new Failpoints({}), true, 64 << 20);
    const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
    // each commit clears and writes its own keys (r<round>/dir/...), over n rows written before,
    // as CI's tombstone test does once; earlier commits' tombstones stay live (no horizon)
    const k = (r: number, i: number): string => `r${r}/dir/${String(i).padStart(6, '0')}`;
    let id = 1;
    let version = 0;
    const commit = (ms: ShardMutation[]): { cpuMs: number; wallMs: number; handleMs: number } => {
      const packed = packMutations(ms);
      const r: ShardReply[] = [];
      const c0 = threadCpuMs() ?? 0;
      const w0 = performance.now();
      shard.handleBatch([{ t: 'commit', id: id++, commitVersion: ++version, mutations: packed, sync: false }], r);
      const w1 = performance.now();
      shard.applyReady(r);
      const wallMs = performance.now() - w0;
      return { cpuMs: (threadCpuMs() ?? 0) - c0, wallMs, handleMs: w1 - w0 };
    };
    let ms: ShardMutation[] = [];
    for (let r = 0; r < rounds; r++) {
      ms = [];
      for (let i = 0; i < n; i++) ms.push({ kind: MutationKind.Set, key: b(`${k(r, i)}/old`), param: b('x') });
      commit(ms);
    }
    const results: { cpuMs: number; wallMs: number; handleMs: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      // in call order, as the SDK sends them (CI's tombstone test: clearRange, set, clearRange, ...)
      ms = [];
      for (let i = 0; i < n; i++) {
        ms.push({ kind: MutationKind.ClearRange, key: b(k(r, i)), param: b(`${k(r, i)}/\xff`) });
        ms.push({ kind: MutationKind.Set, key: b(`${k(r, i)}/new`), param: b(String(i)) });
      }
      results.push(commit(ms));
    }
    const load = os.loadavg()[0]!.toFixed(1);
    for (const [i, x] of results.entries()) console.log(`commit ${i + 1}: ${x.cpuMs.toFixed(1)} ms CPU, ${x.wallMs.toFixed(1)} ms wall (handleBatch ${x.handleMs.toFixed(1)} ms)`);
    const cpu = results.map((x) => x.cpuMs).sort((a, c) => a - c);
    console.log(`clears-commit: ${2 * n} mutations (${n} clearRange + ${n} set), ${rounds} commits: CPU median ${cpu[cpu.length >> 1]!.toFixed(1)} ms, best ${cpu[0]!.toFixed(1)} ms; load ${load}`);
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
