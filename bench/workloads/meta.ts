// meta: the access pattern of the 3FS metadata service over INOD/DENT keys.
// Inode keys: "INOD" + 8-byte little-endian inode id. Directory entries: "DENT" + the
// parent's 8-byte little-endian inode id + the entry name. Each operation is one transaction:
// 40% stat, 20% create, 20% readdir, 10% rename, 10% remove; a share of the operations hit
// one hot directory with a small name space, so concurrent operations collide and retry.
// Invariant (checked in-run and by checkMetaNamespace): every entry points to an existing
// inode of its type, and every file inode is named by exactly one entry.

import { BenchError, type BenchSession, type BenchTxn, type KV } from '../adapter.js';
import { checkValue, compareBytes, concatBytes, keyAfter, payloadOf, prefixEnd, sealValue } from '../data.js';
import { Rng } from '../rng.js';
import type { ClientContext, TxnPlan, Workload, WorkloadClient, WorkloadParams } from './workload.js';

const INOD = new TextEncoder().encode('INOD');
const DENT = new TextEncoder().encode('DENT');
export const READDIR_PAGE = 128;
/** Files per ordinary directory at preload; their name space is twice that. */
export const FILES_PER_DIR = 500;
/** The hot directory's name space: small, so that operations on it collide. */
export const HOT_NAMES = 32;
/** Share of operations aimed at the hot directory. */
export const HOT_FRACTION = 0.3;

const ROOT_ID = 1;
const TYPE_FILE = 1;
const TYPE_DIR = 2;
/** Inode ids allocated by clients during the run: disjoint blocks per client (as 3FS's allocator hands out chunks). */
const CLIENT_ID_BASE = 2 ** 40;
const CLIENT_ID_BLOCK = 2 ** 24;

function u64le(x: number): Uint8Array {
  const out = new Uint8Array(8);
  const lo = x % 4294967296;
  const hi = Math.floor(x / 4294967296);
  new DataView(out.buffer).setUint32(0, lo, true);
  new DataView(out.buffer).setUint32(4, hi, true);
  return out;
}

function readU64le(b: Uint8Array, at: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 4294967296;
}

export function inodeKey(id: number): Uint8Array {
  return concatBytes(INOD, u64le(id));
}

export function dentryPrefix(parent: number): Uint8Array {
  return concatBytes(DENT, u64le(parent));
}

export function dentryKey(parent: number, name: string): Uint8Array {
  return concatBytes(DENT, u64le(parent), new TextEncoder().encode(name));
}

/** Inode record: type, nlink, size, id, padding to 48 bytes; sealed with the key's checksum. */
function inodeValue(rng: Rng, id: number, type: number): Uint8Array {
  const body = new Uint8Array(48);
  body[0] = type;
  body[1] = 1;
  body.set(u64le(rng.int(1 << 30)), 2);
  body.set(u64le(id), 10);
  rng.fill(body, 18);
  return sealValue(inodeKey(id), body);
}

function dentryValue(key: Uint8Array, child: number, type: number): Uint8Array {
  const body = new Uint8Array(9);
  body.set(u64le(child), 0);
  body[8] = type;
  return sealValue(key, body);
}

interface Dentry {
  child: number;
  type: number;
}

function decodeDentry(key: Uint8Array, value: Uint8Array): Dentry {
  const body = payloadOf(value);
  if (!checkValue(key, value) || body.length !== 9) {
    throw new BenchError('BAD_READ', false, `dentry ${Buffer.from(key).toString('hex')}: malformed value`);
  }
  return { child: readU64le(body, 0), type: body[8] as number };
}

function decodeInode(id: number, value: Uint8Array): { type: number } {
  const key = inodeKey(id);
  const body = payloadOf(value);
  if (!checkValue(key, value) || body.length !== 48 || readU64le(body, 10) !== id) {
    throw new BenchError('BAD_READ', false, `inode ${id}: malformed value`);
  }
  return { type: body[0] as number };
}

/** The namespace laid out for `rows` files: directory 0 is the hot one. */
export interface MetaLayout {
  dirs: number;
  dirId(index: number): number;
  names(index: number): number;
}

export function metaLayout(rows: number): MetaLayout {
  const dirs = 1 + Math.max(1, Math.ceil(rows / FILES_PER_DIR));
  return {
    dirs,
    dirId: (index) => 2 + index,
    names: (index) => (index === 0 ? HOT_NAMES : 2 * FILES_PER_DIR),
  };
}

function fileName(n: number): string {
  return 'f' + String(n).padStart(6, '0');
}

function dirName(index: number): string {
  return 'd' + String(index).padStart(5, '0');
}

export function* preloadMeta(params: WorkloadParams): Iterable<KV> {
  const rng = new Rng(params.seed ^ 0x3f53);
  const layout = metaLayout(params.rows);
  yield { key: inodeKey(ROOT_ID), value: inodeValue(rng, ROOT_ID, TYPE_DIR) };
  let nextId = 2 + layout.dirs;
  for (let d = 0; d < layout.dirs; d++) {
    const id = layout.dirId(d);
    yield { key: inodeKey(id), value: inodeValue(rng, id, TYPE_DIR) };
    const dk = dentryKey(ROOT_ID, dirName(d));
    yield { key: dk, value: dentryValue(dk, id, TYPE_DIR) };
    // Half of each directory's name space starts filled: creates and removes then both find work.
    const files = layout.names(d) / 2;
    for (let n = 0; n < files; n++) {
      const fid = nextId++;
      yield { key: inodeKey(fid), value: inodeValue(rng, fid, TYPE_FILE) };
      const fk = dentryKey(id, fileName(2 * n));
      yield { key: fk, value: dentryValue(fk, fid, TYPE_FILE) };
    }
  }
}

async function stat(tx: BenchTxn, parent: number, name: string, plan: TxnPlan): Promise<number> {
  const entry = await tx.snapshotGet(dentryKey(parent, name));
  if (entry === null) {
    plan.outcome = 'enoent';
    return 1;
  }
  const d = decodeDentry(dentryKey(parent, name), entry);
  const inode = await tx.snapshotGet(inodeKey(d.child));
  if (inode === null) {
    throw new BenchError('INCONSISTENT', false, `stat: entry ${parent}/${name} names inode ${d.child}, which is absent in the same snapshot`);
  }
  if (decodeInode(d.child, inode).type !== d.type) {
    throw new BenchError('INCONSISTENT', false, `stat: entry ${parent}/${name} and inode ${d.child} disagree on the type`);
  }
  plan.outcome = 'ok';
  return 1;
}

async function readdir(tx: BenchTxn, parent: number, plan: TxnPlan, verify: boolean): Promise<number> {
  const prefix = dentryPrefix(parent);
  const end = prefixEnd(prefix);
  let begin = prefix;
  let entries = 0;
  let last: Uint8Array | undefined;
  for (;;) {
    const page = await tx.getRange(begin, end, READDIR_PAGE);
    if (page.kvs.length > READDIR_PAGE) {
      throw new BenchError('BAD_READ', false, `readdir ${parent}: page of ${page.kvs.length} rows, limit ${READDIR_PAGE}`);
    }
    for (const kv of page.kvs) {
      if (compareBytes(kv.key, prefix) < 0 || compareBytes(kv.key, end) >= 0) {
        throw new BenchError('BAD_READ', false, `readdir ${parent}: key outside the directory`);
      }
      if (last !== undefined && compareBytes(last, kv.key) >= 0) {
        throw new BenchError('BAD_READ', false, `readdir ${parent}: keys out of order or repeated across pages`);
      }
      if (verify) decodeDentry(kv.key, kv.value);
      last = kv.key;
    }
    entries += page.kvs.length;
    if (!page.hasMore || last === undefined) break;
    begin = keyAfter(last);
  }
  plan.outcome = entries > 0 ? 'ok' : 'empty';
  return 1;
}

/** `meta` invariants after a run: entries and inodes agree one to one. */
export interface MetaCheck {
  dirs: number;
  files: number;
  entries: number;
  problems: string[];
}

async function scanAll(session: BenchSession, prefix: Uint8Array): Promise<KV[]> {
  const out: KV[] = [];
  const end = prefixEnd(prefix);
  let begin = prefix;
  for (;;) {
    const page = await session.attempt({ kind: 'ro', oneShot: true }, (tx) => tx.getRange(begin, end, 1000));
    out.push(...page.kvs);
    const last = page.kvs[page.kvs.length - 1];
    if (!page.hasMore || last === undefined) return out;
    begin = keyAfter(last.key);
  }
}

/** Scans the whole namespace (run it when no load is running) and checks the invariants. */
export async function checkMetaNamespace(session: BenchSession): Promise<MetaCheck> {
  const problems: string[] = [];
  const inodes = new Map<number, { type: number; refs: number }>();
  for (const kv of await scanAll(session, INOD)) {
    const id = readU64le(kv.key, 4);
    try {
      inodes.set(id, { type: decodeInode(id, kv.value).type, refs: 0 });
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  const entries = await scanAll(session, DENT);
  for (const kv of entries) {
    const parent = readU64le(kv.key, 4);
    const name = Buffer.from(kv.key.subarray(12)).toString();
    let d: Dentry;
    try {
      d = decodeDentry(kv.key, kv.value);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    const inode = inodes.get(d.child);
    if (inode === undefined) problems.push(`entry ${parent}/${name} names inode ${d.child}, which does not exist`);
    else if (inode.type !== d.type) problems.push(`entry ${parent}/${name}: type ${d.type}, inode ${d.child} has type ${inode.type}`);
    else inode.refs++;
    if (!inodes.has(parent)) problems.push(`entry ${parent}/${name}: parent inode does not exist`);
  }
  let files = 0;
  let dirs = 0;
  for (const [id, inode] of inodes) {
    if (inode.type === TYPE_DIR) dirs++;
    else files++;
    const expectedRefs = id === ROOT_ID ? 0 : 1;
    if (inode.refs !== expectedRefs) problems.push(`inode ${id} is named by ${inode.refs} entries, expected ${expectedRefs}`);
  }
  return { dirs, files, entries: entries.length, problems };
}

export const meta: Workload = {
  name: 'meta',
  description: '3FS metadata mix: 40% stat, 20% create, 20% readdir, 10% rename, 10% remove; hot directory',
  opUnit: 'metadata ops',
  defaultClients: 100,
  ordered: true,
  rangeGroupBytes: 12, // "DENT" + the parent's id: one directory
  keyspace: 'meta',
  preload: preloadMeta,
  client(ctx: ClientContext): WorkloadClient {
    const { rng } = ctx;
    const layout = metaLayout(ctx.rows);
    let allocated = 0;
    const allocate = (): number => CLIENT_ID_BASE + ctx.clientId * CLIENT_ID_BLOCK + allocated++;
    const pickDir = (): number => (layout.dirs === 1 || rng.float() < HOT_FRACTION ? 0 : 1 + rng.int(layout.dirs - 1));
    const pickName = (dir: number): string => fileName(rng.int(layout.names(dir)));

    return {
      next(): TxnPlan {
        const dice = rng.int(100);
        const dir = pickDir();
        const parent = layout.dirId(dir);
        const name = pickName(dir);
        if (dice < 40) {
          const plan: TxnPlan = { op: 'stat', shape: { kind: 'ro' }, run: (tx) => stat(tx, parent, name, plan) };
          return plan;
        }
        if (dice < 60) {
          const id = allocate();
          const inodeVal = inodeValue(rng, id, TYPE_FILE);
          const plan: TxnPlan = {
            op: 'create',
            shape: { kind: 'rw' },
            async run(tx) {
              const ek = dentryKey(parent, name);
              // The parent must be a directory; the entry's read conflict makes two creates of one name collide.
              const [parentInode, existing] = await Promise.all([tx.get(inodeKey(parent)), tx.get(ek)]);
              if (parentInode === null || decodeInode(parent, parentInode).type !== TYPE_DIR) {
                throw new BenchError('INCONSISTENT', false, `create: parent ${parent} is not a directory`);
              }
              if (existing !== null) {
                plan.outcome = 'exists';
                return 1;
              }
              tx.set(inodeKey(id), inodeVal);
              tx.set(ek, dentryValue(ek, id, TYPE_FILE));
              plan.outcome = 'ok';
              return 1;
            },
          };
          return plan;
        }
        if (dice < 80) {
          const plan: TxnPlan = { op: 'readdir', shape: { kind: 'ro' }, run: (tx) => readdir(tx, parent, plan, ctx.verify) };
          return plan;
        }
        if (dice < 90) {
          const dstDir = rng.float() < 0.5 ? dir : pickDir();
          const dstParent = layout.dirId(dstDir);
          const dstName = pickName(dstDir);
          const plan: TxnPlan = {
            op: 'rename',
            shape: { kind: 'rw' },
            async run(tx) {
              const sk = dentryKey(parent, name);
              const dk = dentryKey(dstParent, dstName);
              const [src, dst] = await Promise.all([tx.get(sk), tx.get(dk)]);
              if (src === null) {
                plan.outcome = 'enoent';
                return 1;
              }
              if (dst !== null) {
                plan.outcome = 'exists'; // no replace: the destination must be free
                return 1;
              }
              const d = decodeDentry(sk, src);
              tx.clear(sk);
              tx.set(dk, dentryValue(dk, d.child, d.type));
              plan.outcome = 'ok';
              return 1;
            },
          };
          return plan;
        }
        const plan: TxnPlan = {
          op: 'remove',
          shape: { kind: 'rw' },
          async run(tx) {
            const ek = dentryKey(parent, name);
            const entry = await tx.get(ek);
            if (entry === null) {
              plan.outcome = 'enoent';
              return 1;
            }
            const d = decodeDentry(ek, entry);
            const inode = await tx.get(inodeKey(d.child));
            if (inode === null) {
              throw new BenchError('INCONSISTENT', false, `remove: entry ${parent}/${name} names inode ${d.child}, which is absent`);
            }
            tx.clear(ek);
            tx.clear(inodeKey(d.child));
            plan.outcome = 'ok';
            return 1;
          },
        };
        return plan;
      },
    };
  },
};
