// SIGTERM while a commit's WAL fsync hangs (issue 17 item 5). Before the fix the
// coordinator gave up after its 10 s drain and the shard handle answered every pending
// request FAILED ("shard 2 shut down"), a definite error, although the write blocked in
// fsync was applied after all. Expected: MAYBE_COMMITTED for a commit whose outcome is
// unknown, and commits refused during the drain get the retryable UNAVAILABLE.
// The hang: an LD_PRELOAD shim, built here with cc, that holds fsync/fdatasync while
// a marker file exists.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import { freePort, killAllServers, spawnServer } from '../support/child-server.js';
import { tempDir, text } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
static void hold(void) {
  const char *f = getenv("HOLD_FSYNC_WHILE");
  if (f) while (access(f, F_OK) == 0) usleep(10000);
}
int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  hold();
  return real(fd);
}
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  hold();
  return real(fd);
}
`;

function buildShim(dir: string): string | null {
  const src = path.join(dir, 'hold-fsync.c');
  const lib = path.join(dir, 'hold-fsync.so');
  fs.writeFileSync(src, SHIM);
  const r = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', lib, src, '-ldl'], { encoding: 'utf8' });
  return r.status === 0 ? lib : null;
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return e instanceof TxnError ? `${e.code}: ${e.message}` : String(e);
  }
}

describe('shutdown while a WAL fsync hangs', () => {
  it('the hung commit is MAYBE_COMMITTED, commits during the drain UNAVAILABLE', { timeout: 90_000 }, async (ctx) => {
    const work = tempDir('txkv-hungfsync');
    dirs.push(work);
    const shim = buildShim(work);
    if (!shim) {
      console.warn('skipped: no C compiler (cc) to build the fsync shim');
      ctx.skip();
    }
    const marker = path.join(work, 'hold');
    const dataDir = path.join(work, 'data');
    const port = await freePort();
    const srv = await spawnServer(dataDir, port, { env: { LD_PRELOAD: shim!, HOLD_FSYNC_WHILE: marker } });
    const db = await connect({ endpoints: [srv.url], transactionTimeoutMs: 0, connectionPoolSize: 1 });
    await db.transact(async (tx) => tx.set('k', 'before'));
    fs.writeFileSync(marker, '');
    const hung = db.createTransaction();
    hung.set('k', 'during');
    const hungResult = outcome(hung.commit());
    await new Promise((r) => setTimeout(r, 500));
    srv.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    // draining: a new commit is refused, retryably
    const late = db.createTransaction();
    late.set('other', 'x');
    const lateResult = await outcome(late.commit());
    expect(lateResult).toMatch(/^UNAVAILABLE: server is shutting down/);
    // after the drain gives up (10 s), the hung commit's outcome is unknown
    const result = await hungResult;
    expect(result).toMatch(/^MAYBE_COMMITTED/);
    fs.rmSync(marker);
    const exited = await srv.exited;
    await db.close();
    expect(exited.code, srv.logs.slice(-10).join('\n')).toBe(0);
    // the value is one of the two (MAYBE_COMMITTED says exactly that); recovery is clean
    const again = await spawnServer(dataDir, port);
    const db2 = await connect({ endpoints: [again.url] });
    const v = text(await db2.createTransaction().get('k'));
    expect(['before', 'during']).toContain(v);
    await db2.close();
    again.proc.kill('SIGTERM');
    await again.exited;
  });
});
