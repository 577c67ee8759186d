// A file system that fills up while the server runs (not at start: test/ops/startup.test.ts).
// The server stops (a write RocksDB could not make leaves its state unknown), says why in
// words an operator acts on, and loses no acknowledged commit: after the file system grows,
// a restart recovers every one. Real `txkv serve`, a real tmpfs (root only), real sockets.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import { freePort, killAllServers, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const isRoot = process.getuid?.() === 0;
const mounts: string[] = [];
afterAll(() => {
  killAllServers();
  for (const m of mounts) {
    spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    fs.rmSync(m, { recursive: true, force: true });
  }
});

describe('disk full while serving', () => {
  it('the server stops saying "no space left on device", and every acknowledged commit survives', { timeout: 90_000 }, async (ctx) => {
    if (!isRoot) {
      console.warn('skipped: mounting a small tmpfs needs root');
      ctx.skip();
    }
    const mnt = tempDir('txkv-fill');
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'ignore' }).status).toBe(0);
    mounts.push(mnt);
    const dataDir = path.join(mnt, 'data');
    const port = await freePort();
    const server = await spawnServer(dataDir, port, { durability: 'fsync' });
    const db = await connect({ endpoints: [server.url], transactionTimeoutMs: 20_000 });
    const value = new Uint8Array(90_000).fill(7);
    const acknowledged: string[] = [];
    let failure: TxnError | undefined;
    try {
      // 8 MiB hold fewer than 90 commits of 90 KB (the WAL alone takes them all)
      for (let i = 0; i < 200 && !failure; i++) {
        const key = `fill/${String(i).padStart(4, '0')}`;
        try {
          await db.transact(async (tx) => tx.set(key, value));
          acknowledged.push(key);
        } catch (e) {
          failure = e as TxnError;
        }
      }
    } finally {
      await db.close();
    }
    expect(failure, 'the file system never filled').toBeInstanceOf(TxnError);
    expect(['MAYBE_COMMITTED', 'NETWORK_ERROR']).toContain(failure!.code);
    expect(acknowledged.length).toBeGreaterThan(10);
    const exit = await server.exited;
    expect(exit.signal ?? exit.code).not.toBe(0);
    const logs = server.logs.join('\n');
    expect(logs).toContain("txkv: no space left on device: the data directory's file system is full, so the server stops");
    expect(logs).toContain('free space, then start it again');

    // more room, a restart: every acknowledged commit is there
    expect(spawnSync('mount', ['-o', 'remount,size=64m', mnt], { stdio: 'ignore' }).status).toBe(0);
    const again = await spawnServer(dataDir, port);
    const db2 = await connect({ endpoints: [again.url] });
    try {
      for (const key of acknowledged) {
        const got = await db2.createReadOnlyTransaction().get(key);
        expect(got?.length, key).toBe(value.length);
      }
      // and it takes writes again
      await db2.transact(async (tx) => tx.set('after', 'ok'));
    } finally {
      await db2.close();
      again.proc.kill('SIGTERM');
      await again.exited;
    }
  });
});
