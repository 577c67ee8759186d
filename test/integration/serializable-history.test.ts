// Randomized histories checked against a serial model: concurrent clients run random
// transactions (point and range reads with limits, reverse and both selector kinds,
// snapshot reads, explicit read-conflict ranges, sets, clears, range clears, atomic adds,
// versionstamped keys and values, read-your-writes, old read versions near the MVCC
// horizon) on a real 4-shard server; afterwards every transaction is replayed on a model
// in commit-version order and checked:
//  - every read (snapshot or not, committed or not) returned what the model holds at its
//    read version, with the transaction's own earlier writes applied (MVCC, snapshots
//    across shards, read-your-writes);
//  - a committed transaction: no commit between its read version and its commit version
//    wrote anything it read (keys, ranges as far as a limited result reached, explicit
//    conflict ranges): the resolver's rule, which makes commit-version order a serial order;
//  - versionstamps carry the commit version; the final database equals the replay.
// Keys hold 0x00, 0x01, 0xfe and 0xff bytes and some are 2,000 bytes long. Two more runs
// move ranges between workers while the clients run, one with a gateway thread (reads on
// its own routes to the shards).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxnError, type Database, type Transaction } from '../../src/index.js';
import { mulberry32, randInt, seeds, type Rng } from '../support/rng.js';
import { startTestServer, type TestServer } from '../support/server.js';

const L = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const S = (u: Uint8Array): string => Buffer.from(u).toString('latin1');
const keyAfter = (k: string): string => k + '\0';

type Sel = { key: string; inclusive: boolean };
type Op =
  | { t: 'get'; key: string; snapshot: boolean; got?: string | null }
  | { t: 'range'; b: Sel; e: Sel; limit: number; reverse: boolean; snapshot: boolean; got?: [string, string][]; more?: boolean }
  | { t: 'conflict'; b: string; e: string }
  | { t: 'set'; key: string; value: string }
  | { t: 'clear'; key: string }
  | { t: 'clearRange'; b: string; e: string }
  | { t: 'add'; key: string; param: string }
  | { t: 'vsk'; prefix: string }
  | { t: 'vsv'; key: string };

interface Txn {
  id: number;
  readVersion: number;
  ops: Op[];
  outcome: 'committed' | 'readonly' | string;
  commitVersion?: number;
  stamp?: string;
  error?: string;
}

const ALPHA = ['\x00', '\x01', 'm', '\xfe', '\xff'];
const LONG = 'L'.repeat(2000);

function randKey(rng: Rng): string {
  let k = 'abcd'[randInt(rng, 4)]!;
  const n = randInt(rng, 3);
  for (let i = 0; i < n; i++) k += ALPHA[randInt(rng, ALPHA.length)]!;
  if (rng() < 0.05) k += LONG + ALPHA[randInt(rng, ALPHA.length)]!;
  return k;
}

/** FoundationDB's add: little-endian, the parameter's length wins. */
function addLE(old: string | null, param: string): string {
  const out: number[] = [];
  let carry = 0;
  for (let i = 0; i < param.length; i++) {
    const s = (old !== null && i < old.length ? old.charCodeAt(i) : 0) + param.charCodeAt(i) + carry;
    out.push(s & 0xff);
    carry = s >> 8;
  }
  return String.fromCharCode(...out);
}

/** Keys of the state in [b, e) for the selectors, sorted. */
function selRange(b: Sel, e: Sel): [string, string] {
  return [b.inclusive ? b.key : keyAfter(b.key), e.inclusive ? keyAfter(e.key) : e.key];
}

function rangeOf(state: Map<string, string>, b: Sel, e: Sel, limit: number, reverse: boolean): { rows: [string, string][]; more: boolean } {
  const [lo, hi] = selRange(b, e);
  const all = [...state].filter(([k]) => k >= lo && k < hi).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  if (reverse) all.reverse();
  const n = limit > 0 ? limit : 1000;
  return { rows: all.slice(0, n), more: all.length > n };
}

/** The ranges a non-snapshot read of op depends on (what the resolver must see as read). */
function readRanges(op: Op): [string, string][] {
  if (op.t === 'get' && !op.snapshot) return [[op.key, keyAfter(op.key)]];
  if (op.t === 'conflict') return op.b < op.e ? [[op.b, op.e]] : [];
  if (op.t === 'range' && !op.snapshot) {
    const [lo, hi] = selRange(op.b, op.e);
    if (lo >= hi) return [];
    if (!op.more || op.got!.length === 0) return [[lo, hi]];
    const last = op.got![op.got!.length - 1]![0];
    return op.reverse ? [[last, hi]] : [[lo, keyAfter(last)]];
  }
  return [];
}

/** Applies one write op to a state (versionstamped ones need the commit's stamp). */
function applyWrite(state: Map<string, string>, op: Op, stamp: string | undefined): void {
  switch (op.t) {
    case 'set':
      state.set(op.key, op.value);
      break;
    case 'clear':
      state.delete(op.key);
      break;
    case 'clearRange':
      for (const k of [...state.keys()]) if (k >= op.b && k < op.e) state.delete(k);
      break;
    case 'add':
      state.set(op.key, addLE(state.get(op.key) ?? null, op.param));
      break;
    case 'vsk':
      state.set(op.prefix + stamp!, 'stamped');
      break;
    case 'vsv':
      state.set(op.key, 'V' + stamp!);
      break;
    default:
  }
}

/** Keys and ranges a committed transaction wrote (final keys). */
function writeSet(t: Txn): { keys: string[]; ranges: [string, string][] } {
  const keys: string[] = [];
  const ranges: [string, string][] = [];
  for (const op of t.ops) {
    if (op.t === 'set' || op.t === 'clear' || op.t === 'add' || op.t === 'vsv') keys.push(op.key);
    else if (op.t === 'vsk') keys.push(op.prefix + t.stamp!);
    else if (op.t === 'clearRange') ranges.push([op.b, op.e]);
  }
  return { keys, ranges };
}

/** Replays t's ops on a copy of `state` and returns the first read that disagrees (null: all agree). */
function checkReads(t: Txn, state: Map<string, string>, which: 'all' | 'conflicting'): string | null {
  const local = new Map(state);
  for (const op of t.ops) {
    if (op.t === 'get') {
      if (op.got === undefined || (which === 'conflicting' && op.snapshot)) continue;
      const want = local.get(op.key) ?? null;
      if (want !== op.got) return `get ${JSON.stringify(op.key.slice(0, 12))}${op.snapshot ? ' (snapshot)' : ''}: got ${JSON.stringify(op.got)}, model ${JSON.stringify(want)}`;
    } else if (op.t === 'range') {
      if (op.got === undefined || (which === 'conflicting' && op.snapshot)) continue;
      const want = rangeOf(local, op.b, op.e, op.limit, op.reverse);
      if (which === 'conflicting' && op.more) {
        // only as far as the rows returned reach: they, and nothing between them
        const [lo, hi] = readRanges(op)[0]!;
        const inside = want.rows.filter(([k]) => k >= lo && k < hi);
        if (JSON.stringify(inside.slice(0, op.got!.length)) !== JSON.stringify(op.got)) return `range (limited) ${JSON.stringify(op)}: model ${JSON.stringify(inside)}`;
        continue;
      }
      if (JSON.stringify(want.rows) !== JSON.stringify(op.got) || want.more !== op.more) {
        return `range ${JSON.stringify({ b: op.b, e: op.e, limit: op.limit, reverse: op.reverse, snapshot: op.snapshot })}: got ${JSON.stringify(op.got)} more=${op.more}, model ${JSON.stringify(want.rows)} more=${want.more}`;
      }
    } else applyWrite(local, op, t.stamp);
  }
  return null;
}

/** One random transaction; returns its record (reads with their results, outcome). */
async function runOne(db: Database, rng: Rng, id: number, oldVersions: number[]): Promise<Txn> {
  const tx: Transaction = db.createTransaction();
  const rec: Txn = { id, readVersion: 0, ops: [], outcome: 'pending' };
  try {
    if (oldVersions.length > 0 && rng() < 0.25) {
      const v = oldVersions[randInt(rng, oldVersions.length)]!;
      tx.setReadVersion(BigInt(v));
    }
    rec.readVersion = Number(await tx.getReadVersion());
    oldVersions.push(rec.readVersion);
    if (oldVersions.length > 200) oldVersions.splice(0, 100);
    const n = 1 + randInt(rng, 7);
    let writes = false;
    for (let i = 0; i < n; i++) {
      const p = rng();
      if (p < 0.25) {
        const op: Op = { t: 'get', key: randKey(rng), snapshot: rng() < 0.25 };
        rec.ops.push(op);
        const v = op.snapshot ? await tx.snapshotGet(L(op.key)) : await tx.get(L(op.key));
        op.got = v === null ? null : S(v);
      } else if (p < 0.45) {
        let [x, y] = [randKey(rng), randKey(rng)];
        if (x > y) [x, y] = [y, x];
        const op: Op = {
          t: 'range',
          b: { key: x, inclusive: rng() < 0.5 },
          e: { key: y, inclusive: rng() < 0.5 },
          limit: [0, 1, 2, 3][randInt(rng, 4)]!,
          reverse: rng() < 0.4,
          snapshot: rng() < 0.25,
        };
        rec.ops.push(op);
        const sel = (s: Sel): { key: Uint8Array; inclusive: boolean } => ({ key: L(s.key), inclusive: s.inclusive });
        const opts = { limit: op.limit, reverse: op.reverse };
        const r = op.snapshot ? await tx.snapshotGetRange(sel(op.b), sel(op.e), opts) : await tx.getRange(sel(op.b), sel(op.e), opts);
        op.got = r.kvs.map((kv) => [S(kv.key), S(kv.value)]);
        op.more = r.hasMore;
      } else if (p < 0.5) {
        let [x, y] = [randKey(rng), randKey(rng)];
        if (x > y) [x, y] = [y, x];
        rec.ops.push({ t: 'conflict', b: x, e: y });
        tx.addReadConflictRange(L(x), L(y));
      } else if (p < 0.72) {
        const op: Op = { t: 'set', key: randKey(rng), value: `v${id}.${i}` };
        rec.ops.push(op);
        tx.set(L(op.key), L(op.value));
        writes = true;
      } else if (p < 0.8) {
        const op: Op = { t: 'clear', key: randKey(rng) };
        rec.ops.push(op);
        tx.clear(L(op.key));
        writes = true;
      } else if (p < 0.88) {
        let [x, y] = [randKey(rng), randKey(rng)];
        if (x > y) [x, y] = [y, x];
        rec.ops.push({ t: 'clearRange', b: x, e: y });
        tx.clearRange(L(x), L(y));
        writes = true;
      } else {
        const op: Op = { t: 'add', key: randKey(rng), param: String.fromCharCode(1 + randInt(rng, 200), randInt(rng, 3)) };
        rec.ops.push(op);
        tx.add(L(op.key), L(op.param));
        writes = true;
      }
    }
    // versionstamped writes last: a key with a pending versionstamped value is unreadable
    if (rng() < 0.15) {
      const prefix = 'abcd'[randInt(rng, 4)]! + '\x01vs';
      rec.ops.push({ t: 'vsk', prefix });
      tx.setVersionstampedKey(L(prefix + '\0'.repeat(10)), prefix.length, L('stamped'));
      writes = true;
    }
    if (rng() < 0.1) {
      const op: Op = { t: 'vsv', key: randKey(rng) };
      rec.ops.push(op);
      tx.setVersionstampedValue(L(op.key), L('V' + '\0'.repeat(10)), 1);
      writes = true;
    }
    const stampP = writes ? tx.getVersionstamp() : null;
    stampP?.catch(() => undefined);
    await tx.commit();
    // an empty clearRange (b == e) writes nothing: such a transaction commits as read-only
    if (!writes || tx.getCommittedVersion() === -1n) {
      rec.outcome = 'readonly';
      return rec;
    }
    rec.commitVersion = Number(tx.getCommittedVersion());
    rec.stamp = S(await stampP!);
    rec.outcome = 'committed';
  } catch (err) {
    if (!(err instanceof TxnError)) throw err;
    rec.outcome = err.code;
    rec.error = err.message;
  }
  return rec;
}

const MIN_COMMITTED = 100;

/**
 * `clients` clients run random transactions for `ms`, and on past it (up to 4x `ms`) until
 * MIN_COMMITTED have committed: on a loaded machine 6 s gave 36 commits (load ~18), too
 * few a history to mean much.
 */
async function runHistory(s: TestServer, seed: number, clients: number, ms: number, during?: () => Promise<void>): Promise<Txn[]> {
  const rng = mulberry32(seed);
  const oldVersions: number[] = [];
  const txns: Txn[] = [];
  let id = 0;
  let committed = 0;
  const end = Date.now() + ms;
  const last = Date.now() + 4 * ms;
  let stop = false;
  const bg = during ? (async () => { while (!stop) await during(); })() : null;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end || (committed < MIN_COMMITTED && Date.now() < last)) {
        const t = await runOne(s.db, rng, id++, oldVersions);
        if (t.outcome === 'committed') committed++;
        txns.push(t);
      }
    }),
  );
  stop = true;
  await bg;
  return txns;
}

/** Every check of the header over one history; returns the failures (empty: it holds). */
async function verify(s: TestServer, txns: Txn[]): Promise<string[]> {
  const fails: string[] = [];
  const committed = txns.filter((t) => t.outcome === 'committed').sort((a, b) => a.commitVersion! - b.commitVersion!);
  for (let i = 1; i < committed.length; i++) if (committed[i]!.commitVersion === committed[i - 1]!.commitVersion) fails.push(`two commits at version ${committed[i]!.commitVersion}`);
  for (const t of committed) {
    const v = Buffer.from(t.stamp!, 'latin1');
    if (v.length !== 10 || v.readBigUInt64BE(0) !== BigInt(t.commitVersion!)) fails.push(`txn ${t.id}: versionstamp ${v.toString('hex')} is not its commit version ${t.commitVersion}`);
  }
  // the state before each version: walk the commits in order, answering the checks on the way
  const checks: { at: number; t: Txn; which: 'all' | 'conflicting' }[] = [];
  for (const t of txns) if (t.readVersion > 0 && t.ops.some((o) => 'got' in o && o.got !== undefined)) checks.push({ at: t.readVersion, t, which: 'all' });
  for (const t of committed) checks.push({ at: t.commitVersion! - 1, t, which: 'conflicting' });
  checks.sort((a, b) => a.at - b.at);
  const state = new Map<string, string>();
  let next = 0;
  for (const c of checks) {
    while (next < committed.length && committed[next]!.commitVersion! <= c.at) {
      const t = committed[next++]!;
      for (const op of t.ops) applyWrite(state, op, t.stamp);
    }
    const bad = checkReads(c.t, state, c.which);
    if (bad) fails.push(`txn ${c.t.id} (${c.t.outcome}, read ${c.t.readVersion}${c.t.commitVersion ? `, commit ${c.t.commitVersion}` : ''}) at ${c.which === 'all' ? 'its read version' : 'its commit version - 1'}: ${bad}`);
  }
  while (next < committed.length) {
    const t = committed[next++]!;
    for (const op of t.ops) applyWrite(state, op, t.stamp);
  }
  // the resolver's rule, on write sets: nothing read was written in (read version, commit version)
  const writes = committed.map((t) => ({ t, ...writeSet(t) }));
  for (const t of committed) {
    const reads = t.ops.flatMap(readRanges);
    for (const w of writes) {
      if (w.t.commitVersion! <= t.readVersion || w.t.commitVersion! >= t.commitVersion!) continue;
      for (const [lo, hi] of reads) {
        const hit = w.keys.find((k) => k >= lo && k < hi) ?? w.ranges.find(([b, e]) => b < e && b < hi && lo < e)?.[0];
        if (hit !== undefined) fails.push(`txn ${t.id} (read ${t.readVersion}, commit ${t.commitVersion}) read [${JSON.stringify(lo.slice(0, 12))}, ${JSON.stringify(hi.slice(0, 12))}), written by txn ${w.t.id} at ${w.t.commitVersion} (${JSON.stringify(hit.slice(0, 12))})`);
      }
    }
  }
  // the database at the end is the replay
  const rows: [string, string][] = [];
  const tx = s.db.createReadOnlyTransaction();
  let from = { key: L(''), inclusive: true };
  for (;;) {
    const page = await tx.getRange(from, { key: L('\xff'), inclusive: false }, { limit: 500 });
    for (const kv of page.kvs) rows.push([S(kv.key), S(kv.value)]);
    if (!page.hasMore) break;
    from = { key: page.kvs[page.kvs.length - 1]!.key, inclusive: false };
  }
  const model = [...state].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  if (JSON.stringify(rows) !== JSON.stringify(model)) fails.push(`final state: ${rows.length} rows, model ${model.length}`);
  return fails;
}

function summary(txns: Txn[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of txns) {
    out[t.outcome] = (out[t.outcome] ?? 0) + 1;
    if (!['committed', 'readonly', 'CONFLICT', 'TOO_OLD'].includes(t.outcome)) out[`${t.outcome}: ${t.error}`] = 1;
  }
  return out;
}

describe.each(seeds(2, 5))('random histories on 4 shards are serializable in commit-version order (seed %i)', (seed) => {
  let s: TestServer;
  beforeAll(async () => {
    // a 1 s window: old read versions reach the horizon; a small row cache: evictions
    s = await startTestServer({ splitPoints: ['b', 'c', 'd'], durability: 'buffered', mvccWindowMs: 1000, distribution: { enabled: false }, rocksdb: { rowCacheBytes: 64 * 1024 } });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('8 clients, 6 s: every read matches the model, no committed transaction missed a write to what it read', { timeout: 120_000 }, async () => {
    const txns = await runHistory(s, seed, 8, 6000);
    const counts = summary(txns);
    expect(counts.committed ?? 0, JSON.stringify(counts)).toBeGreaterThanOrEqual(MIN_COMMITTED);
    expect(Object.keys(counts).filter((k) => !['committed', 'readonly', 'CONFLICT', 'TOO_OLD'].includes(k)), JSON.stringify(counts)).toEqual([]);
    const fails = await verify(s, txns);
    expect(fails.slice(0, 10), JSON.stringify(counts)).toEqual([]);
  });
});

// TXKV_SEED replays these runs too (the history's seed; the moves' schedule follows from it)
const moveSeed = seeds(1, 99)[0]!;
describe.each([0, 1])(`random histories while ranges move between workers (gatewayThreads %i, seed ${moveSeed})`, (gatewayThreads) => {
  let s: TestServer;
  beforeAll(async () => {
    // with a gateway thread, reads go to the shards on its own routes (its copy of the map)
    s = await startTestServer({ splitPoints: ['b', 'c', 'd'], durability: 'buffered', mvccWindowMs: 1000, distribution: { enabled: false }, gatewayThreads });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });
  const admin = async (route: string): Promise<unknown> => {
    const res = await fetch(s.server.url.replace('ws://', 'http://') + route, { method: 'POST' });
    const body = await res.json();
    if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const b64 = (k: string): string => Buffer.from(k, 'latin1').toString('base64url');

  it('8 clients, 8 s, splits and moves meanwhile: every read matches the model, nothing read was overwritten', { timeout: 150_000 }, async () => {
    const rng = mulberry32(moveSeed + 1);
    let moves = 0;
    const cuts = ['a\x01', 'am', 'b\x00', 'bm\xff', 'c\xfe', 'd\x01vs', 'dm'];
    for (const c of cuts) await admin(`/v1/shard/split?key=${b64(c)}`);
    const begins = ['a\x01', 'am', 'b', 'b\x00', 'bm\xff', 'c', 'c\xfe', 'd', 'd\x01vs', 'dm'];
    const txns = await runHistory(s, moveSeed, 8, 8000, async () => {
      try {
        await admin(`/v1/shard/move?begin=${b64(begins[randInt(rng, begins.length)]!)}&to=${randInt(rng, 4)}`);
        moves++;
      } catch (err) {
        // a range moved lately waits for the window; moving a range to its owner is refused
        if (!/recently|already|INVALID_ARGUMENT|in progress/i.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    const counts = summary(txns);
    expect(moves, 'ranges moved while the clients ran').toBeGreaterThan(2);
    expect(counts.committed ?? 0, JSON.stringify(counts)).toBeGreaterThanOrEqual(MIN_COMMITTED);
    expect(Object.keys(counts).filter((k) => !['committed', 'readonly', 'CONFLICT', 'TOO_OLD'].includes(k)), JSON.stringify(counts)).toEqual([]);
    const fails = await verify(s, txns);
    expect(fails.slice(0, 10), `${JSON.stringify(counts)}, ${moves} moves`).toEqual([]);
  });
});
