// Memory soak (issue 17 item 1): a real `txkv serve` child under large
// overwrites, tiny commits and tiny range reads. Its resident set must level off
// once RocksDB's memtables have filled: before the fix every write batch and every
// iterator stayed registered with the database (keys and values included), and the
// server grew by about 1 MiB per MiB committed (133 -> 1,364 MiB in 40 s of this
// workload). The load is counted in bytes, not seconds (until 120 MiB were committed
// after the warm-up, at most 80 s), so a busy machine runs it longer instead of
// proving nothing. The long run is bench/soak.ts.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { rssMiB, soakLoad } from '../../bench/soak.js';
import { freePort, killAllServers, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('memory soak', () => {
  it('server memory stays flat under 120 MiB of writes and many range reads', { timeout: 150_000 }, async () => {
    const dir = tempDir('txkv-soak');
    dirs.push(dir);
    const srv = await spawnServer(dir, await freePort());
    const pid = srv.proc.pid!;
    const db = await connect({ endpoints: [srv.url], transactionTimeoutMs: 5000 });
    const WARMUP_S = 8;
    let warm: { rss: number; committedMiB: number } | null = null;
    const samples: string[] = [];
    const end = await soakLoad(db, {
      seconds: 80,
      until: (s) => warm !== null && s.committedMiB - (warm as { committedMiB: number }).committedMiB >= 120 && s.rangeReads >= 600,
      sample: (s) => {
        const rss = rssMiB(pid);
        samples.push(`${s.atSec.toFixed(0)}s ${rss.toFixed(0)}MiB (${s.committedMiB.toFixed(0)} MiB committed)`);
        if (!warm && s.atSec >= WARMUP_S) warm = { rss, committedMiB: s.committedMiB };
      },
    });
    const rssEnd = rssMiB(pid);
    await db.close();
    srv.proc.kill('SIGTERM');
    await srv.exited;
    expect(warm, 'no sample after the warm-up').not.toBeNull();
    const w = warm as unknown as { rss: number; committedMiB: number };
    const committedSince = end.committedMiB - w.committedMiB;
    const grown = rssEnd - w.rss;
    const report = `RSS ${w.rss.toFixed(0)} -> ${rssEnd.toFixed(0)} MiB after warm-up while ${committedSince.toFixed(0)} MiB were committed ` +
      `(${end.commits} commits, ${end.rangeReads} range reads in all); samples: ${samples.join(', ')}`;
    console.log(`memory soak: ${report}`);
    // enough load for a leak to show (the leaky server grew ~1 MiB per MiB committed)
    expect(committedSince, report).toBeGreaterThan(100);
    expect(end.rangeReads, report).toBeGreaterThan(500);
    // half the committed bytes plus slack for memtables filling and allocator noise
    expect(grown, report).toBeLessThan(96 + committedSince / 2);
    // a leak shows as growth; the level itself is memtables and caches at the binding's
    // defaults (about 0.8-1.0 GB on a fast run), so the ceiling only catches runaways
    expect(rssEnd, report).toBeLessThan(1536);
  });
});
