// The coordinator <-> shard codec (src/shard/wire.ts): every message comes out as it went
// in, in order, whether encoded or sent as an object; a commit's mutations view the batch.
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { packBytes, packMutations, type ShardReply, type ShardRequest } from '../../../src/shard/interface.js';
import { decodeReplies, decodeRequests, encodeReplies, encodeRequests, FORGET_DELAY_MS, RequestOutbox, TRANSFER_MIN_BYTES, type OutgoingRequest, type PackedBatch } from '../../../src/shard/wire.js';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Through a real MessagePort, the buffer transferred as the server sends it. */
function overPort<T>(m: PackedBatch): Promise<T> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port2.once('message', (x: T) => {
      port1.close();
      port2.close();
      resolve(x);
    });
    port1.postMessage(m, m.t ? [m.b, ...m.t] : [m.b]);
  });
}

describe('shard wire codec', () => {
  it('a range page of TRANSFER_MIN_BYTES or more moves with its batch (not cloned); a small one is cloned; both arrive whole', async () => {
    const page = packBytes([b('k1'), new Uint8Array(TRANSFER_MIN_BYTES).fill(9), b('k2'), b('v2')]);
    const small = packBytes([b('k3'), b('v3')]);
    const batch = encodeReplies([
      { id: 1, kvs: page, more: true },
      { id: 2, kvs: small, more: false },
      { id: 3, ok: true },
    ]);
    expect(batch.t).toEqual([page.data.buffer]);
    const got = decodeReplies(await overPort<PackedBatch>(batch)) as { id: number; kvs: { data: Uint8Array; lens: Int32Array } }[];
    // moved: the shard's copy is detached, none was made
    expect(page.data.byteLength).toBe(0);
    expect(small.data.byteLength).toBe(4);
    expect(got.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(got[0]!.kvs.data.byteLength).toBe(TRANSFER_MIN_BYTES + 6);
    expect(got[0]!.kvs.data[3]).toBe(9);
    expect(Buffer.from(got[1]!.kvs.data).toString()).toBe('k3v3');
    expect(encodeReplies([{ id: 4, ok: true }]).t).toBeUndefined();
  });

  it('round-trips requests of every encoded kind, with object messages kept in their place', async () => {
    const reqs: ShardRequest[] = [
      { t: 'horizon', id: 0, horizon: 12 },
      { t: 'gets', id: 7, readVersions: [1.5e15, 1.5e15 + 3], keys: packBytes([b('a'), b('key-two')]) },
      { t: 'gets', id: 2 ** 40, readVersions: [5], keys: packBytes([b('')]), maxBytes: 4096 },
      {
        t: 'commit',
        id: 8,
        commitVersion: 101,
        mutations: packMutations([
          { kind: 0, key: b('k1'), param: b('v1') },
          { kind: 2, key: b('r0'), param: b('r9') },
          { kind: 1, key: b('k2'), param: new Uint8Array(0) },
        ]),
        sync: true,
      },
      { t: 'forget', id: 0, keys: [b('d/1'), b(''), b('decision/12345678')] },
      { t: 'prepare', id: 0, commitVersion: 102, mutations: packMutations([{ kind: 5, key: b('ctr'), param: b('\x01') }]) },
      { t: 'decide', id: 9, commitVersion: 102, commit: true, sync: true, decision: { key: b('decision/102'), value: b('parts...') } },
      { t: 'decide', id: 0, commitVersion: 103, commit: false, sync: false },
      { t: 'stats', id: 10 },
    ];
    const expected = structuredClone(reqs);
    const got = decodeRequests(await overPort<PackedBatch>(encodeRequests(reqs)));
    expect(got).toEqual(expected);
    // a commit's mutations view the batch's buffer (no copy per commit: shard.ts unpacks and
    // copies what it keeps when it applies them); a decision record is copied
    const commit = got[3] as Extract<ShardRequest, { t: 'commit' }>;
    const gets = got[1] as Extract<ShardRequest, { t: 'gets' }>;
    expect(commit.mutations.bytes.data.buffer).toBe(gets.keys.data.buffer);
    const decide = got[6] as Extract<ShardRequest, { t: 'decide' }>;
    expect(decide.decision!.key.buffer).not.toBe(gets.keys.data.buffer);
    expect('maxBytes' in gets).toBe(false);
  });

  it('decision keys to forget ride with the next request to the shard, or leave alone after FORGET_DELAY_MS', async () => {
    const { port1, port2 } = new MessageChannel();
    const got: { at: number; reqs: ShardRequest[] }[] = [];
    port2.on('message', (m: PackedBatch) => got.push({ at: performance.now(), reqs: decodeRequests(m) }));
    const outbox = new RequestOutbox(port1);
    try {
      outbox.forget(b('decision/1'));
      outbox.forget(b('decision/2'));
      outbox.push({ t: 'decide', id: 4, commitVersion: 9, commit: true, sync: false });
      await new Promise((r) => setTimeout(r, 3 * FORGET_DELAY_MS));
      // one message: the request, then the keys (and nothing more once the delay passed)
      expect(got.map((g) => g.reqs)).toEqual([
        [
          { t: 'decide', id: 4, commitVersion: 9, commit: true, sync: false },
          { t: 'forget', id: 0, keys: [b('decision/1'), b('decision/2')] },
        ],
      ]);
      const start = performance.now();
      outbox.forget(b('decision/3'));
      // alone, it leaves after the delay (waited for up to 2 s: a loaded machine runs timers late)
      for (let waited = 0; got.length < 2 && waited < 2000; waited += 5) await new Promise((r) => setTimeout(r, 5));
      expect(got.slice(1).map((g) => g.reqs)).toEqual([[{ t: 'forget', id: 0, keys: [b('decision/3')] }]]);
      expect(got[1]!.at - start).toBeGreaterThanOrEqual(FORGET_DELAY_MS - 2);
      // a shutdown sends what waits at once
      outbox.forget(b('decision/4'));
      outbox.flushAll();
      for (let waited = 0; got.length < 3 && waited < 2000; waited += 5) await new Promise((r) => setTimeout(r, 5));
      expect(got.slice(2).map((g) => g.reqs)).toEqual([[{ t: 'forget', id: 0, keys: [b('decision/4')] }]]);
    } finally {
      outbox.close();
      port1.close();
      port2.close();
    }
  });

  it('writes a commit or prepare given as a mutation list as it writes the packed form', async () => {
    const list = [
      { kind: 0, key: b('k1'), param: b('v1') },
      { kind: 2, key: b('r0'), param: b('r9') },
      { kind: 1, key: b('k2'), param: new Uint8Array(0) },
      { kind: 6, key: b('ctr'), param: b('x'.repeat(3000)) },
    ];
    const sent: OutgoingRequest[] = [
      { t: 'commit', id: 3, commitVersion: 7, mutations: list, sync: true },
      { t: 'prepare', id: 0, commitVersion: 8, mutations: list.slice(1, 2) },
      { t: 'prepare', id: 0, commitVersion: 9, mutations: [] },
    ];
    const got = decodeRequests(await overPort<PackedBatch>(encodeRequests(sent)));
    expect(got).toEqual([
      { t: 'commit', id: 3, commitVersion: 7, mutations: packMutations(list), sync: true },
      { t: 'prepare', id: 0, commitVersion: 8, mutations: packMutations(list.slice(1, 2)) },
      { t: 'prepare', id: 0, commitVersion: 9, mutations: packMutations([]) },
    ]);
  });

  it('round-trips replies: ok, values (nulls included), and any other reply as an object', async () => {
    const replies: ShardReply[] = [
      { id: 1, ok: true },
      { id: 2, values: packBytes([b('v'), null, new Uint8Array(0), b('x'.repeat(1000))]), errors: null },
      { id: 3, values: packBytes([null]), errors: [{ code: 'TOO_OLD', message: 'old' }] },
      { id: 4, error: { code: 'CONFLICT', message: 'a key read was written' } },
      { id: 5, ok: true, busy: true },
      { id: 0, event: 'fired', version: 9, watchIds: [1, 2] },
      { id: 6, ok: true },
    ];
    const expected = structuredClone(replies);
    expect(decodeReplies(await overPort<PackedBatch>(encodeReplies(replies)))).toEqual(expected);
  });

  it('passes plain arrays through (senders that do not pack)', () => {
    const reqs: ShardRequest[] = [{ t: 'stats', id: 1 }];
    expect(decodeRequests(reqs)).toBe(reqs);
    const replies: ShardReply[] = [{ id: 1, ok: true }];
    expect(decodeReplies(replies)).toBe(replies);
  });

  it('grows its buffer for large batches', () => {
    const big = new Uint8Array(100_000).fill(7);
    const reqs: ShardRequest[] = Array.from({ length: 30 }, (_, i) => ({
      t: 'commit' as const,
      id: i + 1,
      commitVersion: 1000 + i,
      mutations: packMutations([{ kind: 0, key: b(`k${i}`), param: big }]),
      sync: false,
    }));
    const got = decodeRequests(encodeRequests(reqs)) as Extract<ShardRequest, { t: 'commit' }>[];
    expect(got.map((r) => r.commitVersion)).toEqual(reqs.map((r) => (r as { commitVersion: number }).commitVersion));
    expect(got[29]!.mutations.bytes.data.length).toBe(100_000 + 3);
  });
});
