// Differential test against an in-memory model: seeded random transactions (sets,
// clears, clearRanges, point and range reads with random selectors, limits and
// direction, before and after buffered writes) run one after another against a real
// 4-shard server and against a sorted map. Every read must match the model's view
// (committed state + the transaction's own writes), and reads at an older read version
// must match the model's snapshot of that version. Meanwhile a second seeded stream of
// splits, moves and merges of the key ranges (issue 13) runs against the same server,
// interleaved with the transactions: none of it may show in any read (moves keep the
// old owner for reads at older versions, so the snapshot reads at the end cross them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { SHARD_PREFIXES } from '../support/keys.js';
import { mulberry32, randInt, seeds, type Rng } from '../support/rng.js';

let s: TestServer;

type Model = Map<string, string>;
const enc = new TextEncoder();
const dec = new TextDecoder();
/** Keys as latin-1 strings of their UTF-8 bytes, so JS ordering is byte order. */
const bytesKey = (k: string): string => String.fromCharCode(...enc.encode(k));

/** Seeded splits, moves and merges through /v1/shard/*, one at a time, while the transactions run. */
class Redistributor {
  readonly done = { split: 0, move: 0, merge: 0 };
  /** Refused with INVALID_ARGUMENT (e.g. a range that moved recently, neighbours with different owners). */
  refused = 0;
  private running: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly base: string,
    private readonly rng: Rng,
    private readonly keyspace: readonly string[],
  ) {}

  private async call(path: string, method = 'POST'): Promise<{ status: number; body: { map: { workers: number; ranges: { begin: string; owner: number }[] }; error?: { code: string } } }> {
    const r = await fetch(this.base + path, { method });
    return { status: r.status, body: (await r.json()) as never };
  }

  private async step(): Promise<void> {
    const r = this.rng();
    const { map } = (await this.call('/v1/shard/map', 'GET')).body;
    const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
    let kind: 'split' | 'move' | 'merge';
    let res;
    if (r < 0.35) {
      kind = 'split';
      const k = this.keyspace[randInt(this.rng, this.keyspace.length)]! + (this.rng() < 0.3 ? '\u0001' : '');
      res = await this.call(`/v1/shard/split?key=${b64(enc.encode(k))}`);
    } else if (r < 0.85 || map.ranges.length < 2) {
      kind = 'move';
      const range = map.ranges[randInt(this.rng, map.ranges.length)]!;
      const to = (range.owner + 1 + randInt(this.rng, map.workers - 1)) % map.workers;
      res = await this.call(`/v1/shard/move?begin=${b64(Buffer.from(range.begin, 'hex'))}&to=${to}`);
    } else {
      kind = 'merge';
      const range = map.ranges[1 + randInt(this.rng, map.ranges.length - 1)]!;
      res = await this.call(`/v1/shard/merge?key=${b64(Buffer.from(range.begin, 'hex'))}`);
    }
    if (res.status === 200) this.done[kind]++;
    else if (res.body.error?.code === 'INVALID_ARGUMENT') this.refused++;
    else throw new Error(`${kind}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Starts the next step unless one is still running (called between operations of the transactions). */
  poke(): void {
    if (this.failure) throw this.failure;
    if (this.running) return;
    this.running = this.step().then(
      () => void (this.running = null),
      (err: Error) => void (this.failure = err),
    );
  }

  async finish(): Promise<void> {
    await this.running;
    if (this.failure) throw this.failure;
  }
}

function rowsOf(m: Model, begin: string, end: string, limit: number, reverse: boolean): { keys: string[]; hasMore: boolean } {
  const keys = [...m.keys()].filter((k) => bytesKey(k) >= bytesKey(begin) && bytesKey(k) < bytesKey(end)).sort((a, b) => (bytesKey(a) < bytesKey(b) ? -1 : 1));
  if (reverse) keys.reverse();
  return { keys: keys.slice(0, limit), hasMore: keys.length > limit };
}

describe.each(seeds(3, 101))('random transactions against a model (seed %i)', (seed) => {
  // a fresh server per seed: range reads see the whole keyspace, not just this seed's keys
  beforeAll(async () => {
    // a window longer than the run: the snapshot reads at the end reach back to its start
    // (and the moved ranges' old owners keep serving them meanwhile)
    s = await startTestServer({ mvccWindowMs: 60_000 });
  });
  afterAll(async () => {
    await s?.close();
  });
  it('every read matches the model', { timeout: 90_000 }, async () => {
    const rng: Rng = mulberry32(seed);
    const ns = `m${seed}/`;
    // a small key alphabet, spread over all shards, so ranges and overwrites collide often
    const keyspace = SHARD_PREFIXES.flatMap((p) => ['a', 'b', 'c', 'd', 'e'].map((x) => `${p}${ns}${x}`));
    keyspace.sort((a, b) => (bytesKey(a) < bytesKey(b) ? -1 : 1));
    const bound = (): string => {
      const k = keyspace[randInt(rng, keyspace.length)]!;
      return rng() < 0.3 ? k + '\u0001' : k; // sometimes between keys
    };
    const committed: Model = new Map();
    const snapshots: { version: bigint; model: Model }[] = [];
    // its own stream: the transactions are the same with or without it
    const moves = new Redistributor(s.server.url.replace(/^ws/, 'http'), mulberry32(seed ^ 0x5eed), keyspace);
    for (let t = 0; t < 40; t++) {
      const tx = s.db.createTransaction();
      const own: Model = new Map(committed);
      const ops = 1 + randInt(rng, 8);
      for (let o = 0; o < ops; o++) {
        moves.poke();
        const r = rng();
        if (r < 0.3) {
          const k = keyspace[randInt(rng, keyspace.length)]!;
          const v = `v${t}.${o}`;
          tx.set(k, v);
          own.set(k, v);
        } else if (r < 0.4) {
          const k = keyspace[randInt(rng, keyspace.length)]!;
          tx.clear(k);
          own.delete(k);
        } else if (r < 0.5) {
          let [b, e] = [bound(), bound()];
          if (bytesKey(b) > bytesKey(e)) [b, e] = [e, b];
          tx.clearRange(b, e);
          for (const k of [...own.keys()]) if (bytesKey(k) >= bytesKey(b) && bytesKey(k) < bytesKey(e)) own.delete(k);
        } else if (r < 0.7) {
          const k = keyspace[randInt(rng, keyspace.length)]!;
          const got = rng() < 0.5 ? await tx.get(k) : await tx.snapshotGet(k);
          expect(got === null ? null : dec.decode(got), `seed ${seed} tx ${t} op ${o}: get ${JSON.stringify(k)}`).toBe(own.get(k) ?? null);
        } else {
          let [b, e] = [bound(), bound()];
          if (bytesKey(b) > bytesKey(e)) [b, e] = [e, b];
          const limit = 1 + randInt(rng, 6);
          const reverse = rng() < 0.5;
          const res = await (rng() < 0.5 ? tx.getRange : tx.snapshotGetRange).call(tx, { key: b, inclusive: true }, { key: e, inclusive: false }, { limit, reverse });
          const want = rowsOf(own, b, e, limit, reverse);
          const what = `seed ${seed} tx ${t} op ${o}: range [${JSON.stringify(b)}, ${JSON.stringify(e)}) limit ${limit} reverse ${reverse}`;
          expect(res.kvs.map((kv) => dec.decode(kv.key)), what).toEqual(want.keys);
          expect(res.kvs.map((kv) => dec.decode(kv.value)), what).toEqual(want.keys.map((k) => own.get(k)));
          expect(res.hasMore, what).toBe(want.hasMore);
        }
      }
      // one transaction at a time: nothing can conflict with it, moves included (the resolver
      // on the main thread keeps the conflict history, whichever shard owns a range): a
      // CONFLICT here would be a false one
      await tx.commit();
      for (const k of keyspace) {
        if (own.has(k)) committed.set(k, own.get(k)!);
        else committed.delete(k);
      }
      if (tx.getCommittedVersion() > 0n) snapshots.push({ version: tx.getCommittedVersion(), model: new Map(committed) });
    }
    await moves.finish();
    // the ranges did move, split and merge during the run
    expect(moves.done.move, `seed ${seed}: moves ${JSON.stringify(moves.done)}, ${moves.refused} refused`).toBeGreaterThanOrEqual(3);
    expect(moves.done.split).toBeGreaterThanOrEqual(2);
    // reads at older versions see exactly those versions, across every shard (and across the moves)
    for (const snap of snapshots.filter((_, i) => i % 5 === 0)) {
      const ro = s.db.createReadOnlyTransaction();
      ro.setReadVersion(snap.version);
      const all = await ro.getRange({ key: keyspace[0]!, inclusive: true }, { key: keyspace[keyspace.length - 1]!, inclusive: true }, { limit: 1000 });
      expect(all.kvs.map((kv) => `${dec.decode(kv.key)}=${dec.decode(kv.value)}`), `seed ${seed} at version ${snap.version}`).toEqual(
        rowsOf(snap.model, keyspace[0]!, keyspace[keyspace.length - 1]! + '\u0000', 1000, false).keys.map((k) => `${k}=${snap.model.get(k)}`),
      );
    }
  });
});
