// Memory soak (issue 17 item 1): a `txkv serve` child under a steady workload of
// large overwrites, tiny commits and tiny range reads; the child's resident set is
// sampled from /proc. Under a steady workload it must level off: RocksDB's memtables
// and block cache are bounded, so growth that keeps pace with the bytes committed or
// the reads served is a leak. The bounded run is in test/fault/soak.test.ts; this
// script is the long run:
//   npm run build && node dist/bench/soak.js [seconds=300] [dataDir]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Database } from '../src/index.js';
import { freePort } from './peers.js';

/** Resident set of a process in MiB (Linux /proc; the shard workers are threads of it). */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

export interface SoakSample {
  atSec: number;
  rssMiB: number;
  committedMiB: number;
  commits: number;
  rangeReads: number;
}

/**
 * Runs the workload for `seconds` against `db` (or until `until` says enough, checked at
 * every sample): one writer overwriting 99 keys with values of `valueBytes`, one writer of
 * tiny commits, two readers of tiny ranges. Calls `sample` every `sampleMs` with the totals so far.
 */
export async function soakLoad(
  db: Database,
  opts: {
    seconds: number;
    valueBytes?: number;
    sampleMs?: number;
    sample: (s: Omit<SoakSample, 'rssMiB'>) => void;
    until?: (s: Omit<SoakSample, 'rssMiB'>) => boolean;
  },
): Promise<Omit<SoakSample, 'rssMiB'>> {
  const valueBytes = opts.valueBytes ?? 90_000;
  const started = Date.now();
  let deadline = started + opts.seconds * 1000;
  let committedBytes = 0;
  let commits = 0;
  let rangeReads = 0;
  const big = Buffer.alloc(valueBytes);
  // bytes >= 0x80 in keys and values: the path that must not go through put/del
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff;
  const totals = (): Omit<SoakSample, 'rssMiB'> => ({
    atSec: (Date.now() - started) / 1000,
    committedMiB: committedBytes / 2 ** 20,
    commits,
    rangeReads,
  });
  const bigWriter = async (): Promise<void> => {
    for (let i = 0; Date.now() < deadline; i++) {
      await db.transact(async (tx) => {
        for (let j = 0; j < 4; j++) tx.set(Buffer.from([0x62, 0x80 + ((i * 4 + j) % 99)]), big);
      });
      committedBytes += 4 * valueBytes;
      commits++;
    }
  };
  const tinyWriter = async (): Promise<void> => {
    for (let i = 0; Date.now() < deadline; i++) {
      await db.transact(async (tx) => {
        tx.set(Buffer.from(`t/${i % 1000}`), Buffer.from([0xff, i & 0xff]));
      });
      committedBytes += 8;
      commits++;
    }
  };
  const reader = async (): Promise<void> => {
    while (Date.now() < deadline) {
      await db.transact(async (tx) => {
        await tx.getRange({ key: Buffer.from('t/'), inclusive: true }, { key: Buffer.from('t0'), inclusive: true }, { limit: 5 });
      });
      rangeReads++;
    }
  };
  const timer = setInterval(() => {
    const t = totals();
    opts.sample(t);
    if (opts.until?.(t)) deadline = 0;
  }, opts.sampleMs ?? 1000);
  try {
    await Promise.all([bigWriter(), tinyWriter(), reader(), reader()]);
  } finally {
    clearInterval(timer);
  }
  return totals();
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 300);
  const dataDir = process.argv[3] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-soak-'));
  const port = await freePort();
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/txkv.js');
  const child: ChildProcess = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (c) => reject(new Error(`server exited (${c}) before starting`)));
      const t = setInterval(() => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          clearInterval(t);
          resolve();
        });
        s.on('error', () => s.destroy());
      }, 200);
    });
    const db = await connect({ endpoints: [`ws://127.0.0.1:${port}`], transactionTimeoutMs: 5000 });
    const pid = child.pid!;
    const before = rssMiB(pid);
    console.log(`server pid ${pid}, RSS at start ${before.toFixed(0)} MiB; running ${seconds} s`);
    const end = await soakLoad(db, {
      seconds,
      sampleMs: 5000,
      sample: (s) =>
        console.log(
          `${s.atSec.toFixed(0).padStart(5)} s  RSS ${rssMiB(pid).toFixed(0).padStart(5)} MiB  committed ${s.committedMiB.toFixed(0)} MiB  ` +
            `commits ${s.commits}  range reads ${s.rangeReads}`,
        ),
    });
    await new Promise((r) => setTimeout(r, 3000));
    console.log(
      `done: ${end.committedMiB.toFixed(0)} MiB committed in ${end.commits} commits, ${end.rangeReads} range reads; ` +
        `RSS ${before.toFixed(0)} -> ${rssMiB(pid).toFixed(0)} MiB (3 s idle)`,
    );
    await db.close();
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    if (!process.argv[3]) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
