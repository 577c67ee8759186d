// Seeded fuzzing of the wire: valid request frames mutated (bit flips, truncation,
// splicing, forged length fields) and sent to a live server. Afterwards the server is
// alive, a normal client works, and committed data did not change. Bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeRequests, type Envelope, type RequestBody } from '../../src/protocol/codec.js';
import { startTestServer, text, type TestServer } from '../support/server.js';
import { mulberry32, randInt, seeds, type Rng } from '../support/rng.js';

// The fuzzer's connections use a read-only token: its mutated commits may be valid
// (a flipped byte can turn a clearRange into one over every key), and must then be
// refused, so the data written by the read-write client cannot change.
const RW = 'fuzz-rw-token';
const RO = 'fuzz-ro-token';
let s: TestServer;
const CANARY = Array.from({ length: 20 }, (_, i) => [`canary/${i}`, `value-${i}`] as const);
beforeAll(async () => {
  s = await startTestServer({ auth: { tokens: [RW], readOnlyTokens: [RO] } }, { token: RW });
  await s.db.transact(async (tx) => {
    for (const [k, v] of CANARY) tx.set(k, v);
  });
});
afterAll(async () => {
  await s?.close();
});

const te = (x: string): Uint8Array => new TextEncoder().encode(x);
const helloWith = (token: string): Uint8Array => encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token, clientName: 'fuzz' } }]);

function validFrames(rv: bigint): Uint8Array[] {
  const bodies: RequestBody[] = [
    { type: 'grv' },
    { type: 'get', readVersion: rv, key: te('canary/3') },
    { type: 'range', readVersion: rv, beginKey: te('canary/'), beginInclusive: true, endKey: te('canary0'), endInclusive: false, limit: 5, reverse: false },
    {
      type: 'commit',
      readVersion: rv,
      readConflicts: [{ begin: te('fz/a'), end: te('fz/b') }],
      mutations: [
        { type: 0, key: te('fz/key'), param: te('fuzzed'), offset: 0 },
        { type: 2, key: te('fz/c'), param: te('fz/d'), offset: 0 },
        { type: 4, key: te('fz/vs'), param: new Uint8Array(12), offset: 1 },
      ],
    },
  ];
  const envs: Envelope<RequestBody>[] = bodies.map((body, i) => ({ requestId: 10 + i, body }));
  return [...bodies.map((body, i) => encodeRequests([{ requestId: 100 + i, body }])), encodeRequests(envs)];
}

function mutate(rng: Rng, frames: Uint8Array[]): Uint8Array {
  const base = frames[randInt(rng, frames.length)]!.slice();
  switch (randInt(rng, 5)) {
    case 0: // bit flips
      for (let i = 1 + randInt(rng, 8); i > 0; i--) base[randInt(rng, base.length)]! ^= 1 << randInt(rng, 8);
      return base;
    case 1: // truncation
      return base.subarray(0, randInt(rng, base.length));
    case 2: {
      // splice two frames
      const other = frames[randInt(rng, frames.length)]!;
      const cut = randInt(rng, base.length);
      const out = new Uint8Array(cut + other.length - Math.min(cut, other.length));
      out.set(base.subarray(0, cut));
      out.set(other.subarray(Math.min(cut, other.length)), cut);
      return out;
    }
    case 3: {
      // forge a length or offset field: overwrite an aligned word with a large value
      const at = randInt(rng, Math.floor(base.length / 4)) * 4;
      new DataView(base.buffer).setUint32(at, [0xffffffff, 0x7fffffff, base.length, base.length + 4, 0x10000][randInt(rng, 5)]!, true);
      return base;
    }
    default: // random bytes
      return new Uint8Array(Array.from({ length: randInt(rng, 64) }, () => randInt(rng, 256)));
  }
}

/** Sends 5 connections x 150 mutated frames; returns how many replies came back. */
async function fuzz(seed: number, token: string): Promise<number> {
  const rng = mulberry32(seed);
  const rv = await s.db.createTransaction().getReadVersion();
  const frames = validFrames(rv);
  let replies = 0;
  for (let conn = 0; conn < 5; conn++) {
    const ws = new WebSocket(s.server.url, { perMessageDeflate: false });
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    ws.on('message', () => replies++);
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.send(helloWith(token));
    for (let i = 0; i < 150; i++) ws.send(mutate(rng, frames));
    ws.send(frames[0]!); // a valid request last: the connection (if still open) keeps answering
    await Promise.race([closed, new Promise((r) => setTimeout(r, 400))]);
    ws.close();
  }
  return replies;
}

async function stillServing(seed: number): Promise<void> {
  expect((await fetch(`http://127.0.0.1:${s.server.port}/v1/status`)).status).toBe(200);
  await s.db.transact(async (t) => t.set(`after-fuzz/${seed}`, 'ok'));
  expect(text(await s.db.createTransaction().get(`after-fuzz/${seed}`))).toBe('ok');
}

describe.each(seeds(2, 5))('fuzzed frames against a live server (seed %i)', (seed) => {
  it('read-only fuzzer: server survives, answers, and committed data is unchanged', { timeout: 60_000 }, async () => {
    expect(await fuzz(seed, RO), `seed ${seed}`).toBeGreaterThan(0);
    const tx = s.db.createReadOnlyTransaction();
    for (const [k, v] of CANARY) expect(text(await tx.get(k)), `seed ${seed}: ${k}`).toBe(v);
    await stillServing(seed);
  });

  it('read-write fuzzer (mutated commits reach validation and the shards): server survives and answers', { timeout: 60_000 }, async () => {
    expect(await fuzz(seed + 1, RW), `seed ${seed + 1}`).toBeGreaterThan(0);
    await stillServing(seed + 1);
  });
});

describe('frames over the size limit', () => {
  it('close the connection with a reason; others are unaffected', { timeout: 30_000 }, async () => {
    const t = await startTestServer({ maxFrameBytes: 64 * 1024 });
    const hello = encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 'big' } }]);
    try {
      const ws = new WebSocket(t.server.url, { perMessageDeflate: false });
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
      const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
      ws.send(hello);
      ws.send(new Uint8Array(100 * 1024));
      expect(await closed).toBe(1009); // message too big, with a reason
      await t.db.transact(async (tx) => tx.set('still', 'fine'));
      expect(text(await t.db.createTransaction().get('still'))).toBe('fine');
    } finally {
      await t.close();
    }
  });
});
