// Issue 10 item 9: reply bytes are bounded per connection and per server, like request
// bytes. One ~400 KB frame of 9,900 gets of one 100 KB value (990 MB of replies) once
// drove server RSS to 5.9 GB. Now the gateway serves a frame's reads in rounds of reply
// grants; a GetManyReply holds at most what the connection may hold (half of
// limits.maxBackpressureBytes), the reads past it are refused RESOURCE_CONSTRAINED and asked
// again by the SDK, and the server's peak RSS (VmHWM of the child process) stays within the
// configured budget (limits.maxBufferedBytes, 512 MiB).
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import { freePort, killAllServers, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function memKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

describe('reply memory', () => {
  it('one frame of 9,900 gets of a 100 KB value: served in rounds of the reply grant, refusals retryable, server RSS stays within budget', { timeout: 120_000 }, async () => {
    const dir = tempDir('txkv-replymem');
    dirs.push(dir);
    const port = await freePort();
    // a 10 s MVCC window (5 s by default): the reads go on in rounds until their read version
    // leaves it, and at load ~18 not one round was served within 5 s (9,900 TOO_OLD)
    const child = await spawnServer(dir, port, { env: { TXKV_MVCC_WINDOW_MS: '10000' } });
    const pid = child.proc.pid!;
    const db = await connect({ endpoints: [child.url], transactionTimeoutMs: 60_000 });
    try {
      await db.transact(async (tx) => tx.set('big', new Uint8Array(100_000).fill(7)));
      const baselineKb = memKb(pid, 'VmRSS');
      const tx = db.createTransaction();
      await tx.getReadVersion();
      // all in one tick, so the SDK sends them in one frame
      const results = await Promise.allSettled(Array.from({ length: 9_900 }, () => tx.get('big')));
      const ok = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Uint8Array | null>[];
      const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      const peakKb = memKb(pid, 'VmHWM');
      const growthMb = (peakKb - baselineKb) / 1024;
      const codes: Record<string, number> = {};
      for (const r of refused) codes[(r.reason as TxnError).code] = (codes[(r.reason as TxnError).code] ?? 0) + 1;
      console.log(`reply-memory: ${ok.length} gets answered, ${refused.length} refused ${JSON.stringify(codes)}; server RSS ${Math.round(baselineKb / 1024)} MB before, peak ${Math.round(peakKb / 1024)} MB (+${Math.round(growthMb)} MB)`);
      expect(ok.length).toBeGreaterThan(0);
      for (const r of ok) expect(r.value!.length).toBe(100_000);
      // the SDK asks again for reads a reply refused past its grant while replies make
      // progress, so reads go on in rounds of at most the grant, until the server's budget
      // is spent (RESOURCE_CONSTRAINED) or the read version leaves the window (TOO_OLD)
      for (const r of refused) {
        expect(r.reason).toBeInstanceOf(TxnError);
        expect(['RESOURCE_CONSTRAINED', 'TOO_OLD']).toContain((r.reason as TxnError).code);
        expect((r.reason as TxnError).retryable).toBe(true);
      }
      expect(growthMb).toBeLessThan(512);
      // the budget comes back: the same read works again
      expect((await db.createTransaction().get('big'))!.length).toBe(100_000);
    } finally {
      await db.close();
      child.proc.kill('SIGKILL');
      await child.exited;
    }
  });
});
