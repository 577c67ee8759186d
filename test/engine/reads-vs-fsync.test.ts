// Fault 1 of issue 12: reads waited behind the group-commit fsync. A get on a shard
// taking durable writes must cost about what it costs on an idle shard, also when
// fdatasync is slowed by 5 ms (strace fault injection on the server process).
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { freePort, killAllServers, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const hasStrace = ((): boolean => {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('reads never wait on writes', () => {
  afterAll(() => killAllServers());

  it.skipIf(!hasStrace)('a get on a shard taking fsync\'d writes is not delayed by the fsync', { timeout: 90_000 }, async () => {
    const dir = tempDir('txkv-fsync-reads');
    const port = await freePort();
    const srv = await spawnServer(dir, port, {
      durability: 'fsync',
      // shard 1 holds "b…" (written), shard 2 holds "c…" (idle)
      env: { TXKV_SPLIT_POINTS: 'b,c,d' },
      wrap: ['strace', '-f', '-qq', '--seccomp-bpf', '-o', '/dev/null', '-e', 'trace=fdatasync,fsync', '-e', 'inject=fdatasync,fsync:delay_enter=5000'],
    });
    const db = await connect({ endpoints: [srv.url] });
    try {
      await db.transact(async (tx) => {
        tx.set('b/read', 'x');
        tx.set('c/read', 'y');
      });
      let writing = true;
      let commits = 0;
      const writers = Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; writing; i++) {
          const tx = db.createTransaction();
          tx.set(`b/w/${w}/${i % 50}`, 'v'.repeat(100));
          await tx.commit();
          commits++;
        }
      });
      const time = async (key: string): Promise<number> => {
        const tx = db.createTransaction();
        await tx.getReadVersion();
        const t0 = performance.now();
        await tx.get(key);
        return performance.now() - t0;
      };
      await new Promise((r) => setTimeout(r, 300));
      const loaded: number[] = [];
      const idle: number[] = [];
      // interleaved, so both see the same machine
      for (let i = 0; i < 150; i++) {
        loaded.push(await time('b/read'));
        idle.push(await time('c/read'));
      }
      writing = false;
      await Promise.all(writers);
      const l = median(loaded);
      const d = median(idle);
      console.log(`get p50: shard under fsync'd writes ${l.toFixed(2)} ms, idle shard ${d.toFixed(2)} ms; ${commits} commits`);
      expect(commits).toBeGreaterThan(50);
      // before: ~5-10 ms (one slowed fsync); a read must not see it
      expect(l).toBeLessThan(d * 1.3 + 1.5);
    } finally {
      await db.close();
      srv.proc.kill('SIGKILL');
      await srv.exited;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
