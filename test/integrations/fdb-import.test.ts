// Moving 3FS off FoundationDB (integrations/3fs/migrate/README.md): `txkv import` loads a
// txkv-kvdump of 3FS-shaped keys (DENT + parent id + name, INOD + inode id) into a real
// server in parallel and verifies it (count, SHA-256, row by row); bad dumps write nothing;
// --verify-only names the differences; fdb_dump.py's encoding (run against a stand-in
// `fdb` module — FoundationDB itself cannot be installed here) is read by the same loader.
//
// TXKV_IMPORT_ROWS sets the size of the big dump: 60,000 by default (~10 MB of mutations:
// ~20 transactions of 500 KB, more than the 8 in flight, so the parallel load, its
// progress and the verification all run as with a bigger dump; 200,000 rows cost npm test
// ~30 s more for the same checks); the 1,000,000-row run is
//   TXKV_IMPORT_ROWS=1000000 npx vitest run test/integrations/fdb-import.test.ts
// (measured numbers: integrations/3fs/migrate/README.md, "Throughput").
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DumpReader, DumpWriter } from '../../src/migrate/kvdump.js';
import { startTestServer, tempDir, text, type TestServer } from '../support/server.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/txkv.js');
const ROWS = Number(process.env.TXKV_IMPORT_ROWS ?? 60_000);

const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

/**
 * Writes a dump of `rows` 3FS-shaped keys under `tag` (a byte after the prefix keeps test
 * dumps apart): half dentries (100 per directory), half inodes; values are slices of a
 * random pool, ~40 B for a dentry and ~120 B for an inode.
 */
function makeDump(file: string, rows: number, tag: number): { begin: Buffer; end: Buffer } {
  const pool = randomBytes(1 << 20);
  let at = 0;
  const value = (len: number): Buffer => {
    if (at + len > pool.length) at = 0;
    const v = pool.subarray(at, at + len);
    at += len + 7;
    return v;
  };
  const begin = Buffer.from('DENT');
  const end = Buffer.from('INOE');
  const w = new DumpWriter(file, { source: 'test', readVersion: '42', begin: begin.toString('base64'), end: end.toString('base64') });
  const dentries = Math.floor(rows / 2);
  for (let i = 0; i < dentries; i++) {
    const name = `f${String(i % 100).padStart(5, '0')}.dat`;
    w.add(Buffer.concat([Buffer.from('DENT'), Buffer.from([tag]), u64(1 + Math.floor(i / 100)), Buffer.from(name)]), value(32 + (i % 16)));
  }
  for (let i = 0; i < rows - dentries; i++) {
    w.add(Buffer.concat([Buffer.from('INOD'), Buffer.from([tag]), u64(i + 1)]), value(112 + (i % 24)));
  }
  w.finish();
  return { begin, end };
}

function txkv(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let srv: TestServer;
let dir: string;
beforeAll(async () => {
  dir = tempDir('txkv-import');
  srv = await startTestServer({ shards: 4, slowTransactionMs: 600_000 }); // big batches are slow by design: no log noise
});
// Every test owns the whole 3FS keyspace of the server: it starts empty.
async function emptyKeyspace(): Promise<void> {
  await srv.db.transact(async (tx) => tx.clearRange(Buffer.from('DENT'), Buffer.from('INOE')));
}
afterAll(async () => {
  await srv?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('txkv import', () => {
  it(`loads ${ROWS} 3FS-shaped keys in parallel with progress and verifies count and SHA-256`, async () => {
    await emptyKeyspace();
    const file = path.join(dir, 'big.kvdump');
    const t0 = Date.now();
    makeDump(file, ROWS, 1);
    const made = Date.now() - t0;
    const r = await txkv(['import', '--in', file, '--endpoint', srv.server.url, '--parallel', '8'], 590_000);
    expect(r.stderr).toMatch(/import load: \d+\/\d+ rows/); // progress
    expect(r.stdout).toContain(`loaded ${ROWS} rows`);
    expect(r.stdout).toMatch(/MATCH/);
    expect(r.code).toBe(0);
    const header = DumpReader.readHeader(file);
    expect(header.source).toBe('test');
    process.stdout.write(`fdb-import: dump of ${ROWS} rows made in ${made} ms; ${r.stdout}`);
    // A few rows, read back through the client.
    const tx = srv.db.createTransaction();
    const inode = await tx.get(Buffer.concat([Buffer.from('INOD'), Buffer.from([1]), u64(1)]));
    expect(inode?.length).toBe(112);
    const page = await tx.getRange({ key: Buffer.from('DENT\x01'), inclusive: true }, { key: Buffer.from('DENT\x02'), inclusive: false }, { limit: 3 });
    expect(page.kvs.map((kv) => text(kv.key)!.slice(-10))).toEqual(['f00000.dat', 'f00001.dat', 'f00002.dat']);
  }, 600_000);

  it('refuses a truncated or corrupted dump before writing anything', async () => {
    await emptyKeyspace();
    const good = path.join(dir, 'small.kvdump');
    makeDump(good, 1000, 2);
    const bytes = fs.readFileSync(good);
    const truncated = path.join(dir, 'truncated.kvdump');
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 30));
    const corrupt = path.join(dir, 'corrupt.kvdump');
    const c = Buffer.from(bytes);
    c[c.length - 500]! ^= 0x01; // a byte of a value
    fs.writeFileSync(corrupt, c);
    const notDump = path.join(dir, 'not.kvdump');
    fs.writeFileSync(notDump, 'hello');

    const t = await txkv(['import', '--in', truncated, '--endpoint', srv.server.url], 30_000);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/truncated/);
    const k = await txkv(['import', '--in', corrupt, '--endpoint', srv.server.url], 30_000);
    expect(k.code).toBe(1);
    expect(k.stderr).toMatch(/SHA-256 mismatch/);
    const n = await txkv(['import', '--in', notDump, '--endpoint', srv.server.url], 30_000);
    expect(n.code).toBe(1);
    expect(n.stderr).toMatch(/not a txkv-kvdump/);
    const tx = srv.db.createTransaction();
    const none = await tx.getRange({ key: Buffer.from('DENT\x02'), inclusive: true }, { key: Buffer.from('DENT\x03'), inclusive: false }, { limit: 1 });
    expect(none.kvs.length).toBe(0);
  }, 60_000);

  it('--verify-only reads txkv beside the dump and names missing, extra and changed keys (exit 3)', async () => {
    await emptyKeyspace();
    const file = path.join(dir, 'verify.kvdump');
    makeDump(file, 400, 3);
    const load = await txkv(['import', '--in', file, '--endpoint', srv.server.url, '--quiet'], 30_000);
    expect(load.code).toBe(0);
    expect(load.stdout).toContain('MATCH');
    const same = await txkv(['import', '--verify-only', '--in', file, '--endpoint', srv.server.url, '--quiet'], 30_000);
    expect(same.code).toBe(0);

    const inod = (i: number) => Buffer.concat([Buffer.from('INOD'), Buffer.from([3]), u64(i)]);
    await srv.db.transact(async (tx) => {
      tx.set(inod(5), Buffer.from('changed'));
      tx.clear(inod(6));
      tx.set(Buffer.concat([inod(6), Buffer.from('x')]), Buffer.from('extra'));
    });
    const diff = await txkv(['import', '--verify-only', '--in', file, '--endpoint', srv.server.url, '--quiet'], 30_000);
    expect(diff.code).toBe(3);
    expect(diff.stdout).toContain('DIFFERENT');
    expect(diff.stdout).toMatch(/3 differences/);
    const lines = diff.stdout.split('\n').filter((l) => /^\s+(missing|extra|value)/.test(l));
    expect(lines.map((l) => l.trim().split(/\s+/)[0])).toEqual(['value', 'missing', 'extra']);
    expect(lines[0]).toContain(inod(5).toString('hex'));
  }, 60_000);

  it('reads what integrations/3fs/migrate/fdb_dump.py writes (run against a stand-in fdb module)', async () => {
    let python = true;
    try {
      execFileSync('python3', ['--version'], { stdio: 'ignore' });
    } catch {
      python = false;
    }
    if (!python) return; // no python3: the script's encoding is not exercised here
    await emptyKeyspace();
    // The stand-in offers just the calls fdb_dump.py makes, over a sorted list of rows,
    // paging with KeySelector semantics; it is not FoundationDB.
    const fake = path.join(dir, 'fakefdb');
    fs.mkdirSync(path.join(fake, 'fdb'), { recursive: true });
    fs.writeFileSync(
      path.join(fake, 'fdb', '__init__.py'),
      `import json, os
ROWS = sorted((bytes.fromhex(k), bytes.fromhex(v)) for k, v in json.load(open(os.environ["FAKE_FDB_ROWS"])))
def api_version(v): pass
class FDBError(Exception):
    def __init__(self, code): self.code = code
class StreamingMode: want_all = -2
class KeySelector:
    def __init__(self, key, or_equal): self.key, self.or_equal = key, or_equal
    @staticmethod
    def first_greater_or_equal(k): return KeySelector(k, True)
    @staticmethod
    def first_greater_than(k): return KeySelector(k, False)
class _F:
    def __init__(self, v): self.v = v
    def wait(self): return self.v
class _KV:
    def __init__(self, k, v): self.key, self.value = k, v
class _Opts:
    def set_read_system_keys(self): pass
class _Tr:
    options = _Opts()
    def get_read_version(self): return _F(1234567)
    def set_read_version(self, v): assert v == 1234567
    def get_range(self, b, e, limit=0, streaming_mode=None):
        out = [_KV(k, v) for k, v in ROWS if (k >= b.key if b.or_equal else k > b.key) and k < e]
        return out[:limit] if limit else out
class _Db:
    def create_transaction(self): return _Tr()
def open(cluster_file=None): return _Db()
`,
    );
    const rows: [string, string][] = [];
    for (let i = 0; i < 25_000; i++) rows.push([Buffer.concat([Buffer.from('INOD'), Buffer.from([4]), u64(i)]).toString('hex'), randomBytes(i % 50).toString('hex')]);
    rows.push([Buffer.from('DENT\x04\xff\x00', 'latin1').toString('hex'), '']); // a binary key, an empty value
    const rowsFile = path.join(dir, 'fake-rows.json');
    fs.writeFileSync(rowsFile, JSON.stringify(rows));
    const out = path.join(dir, 'from-python.kvdump');
    execFileSync('python3', [path.join(ROOT, 'integrations/3fs/migrate/fdb_dump.py'), '--out', out, '--begin', 'DENT\\x04', '--end', 'INOD\\x05'], {
      env: { ...process.env, PYTHONPATH: fake, FAKE_FDB_ROWS: rowsFile },
      stdio: 'pipe',
      timeout: 60_000,
    });
    expect(DumpReader.readHeader(out)).toMatchObject({ source: 'foundationdb', readVersion: '1234567' });
    const r = await txkv(['import', '--in', out, '--endpoint', srv.server.url, '--quiet'], 60_000);
    expect(r.stdout).toContain('loaded 25001 rows');
    expect(r.stdout).toContain('MATCH');
    expect(r.code).toBe(0);
    const tx = srv.db.createTransaction();
    expect(await tx.get(Buffer.from('DENT\x04\xff\x00', 'latin1'))).toEqual(new Uint8Array(0));
  }, 90_000);
});
