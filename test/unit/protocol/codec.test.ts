import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeReplies, decodeRequests, encodeReplies, encodeRequests, FrameError, type Envelope, type RequestBody } from '../../../src/protocol/codec.js';
import { verifyFrame } from '../../../src/protocol/verify.js';
import { toBytes } from '../../../src/keys/bytes.js';

const sample: Envelope<RequestBody>[] = [
  { requestId: 1, body: { type: 'hello', protocolVersion: 1, token: 't', clientName: 'c' } },
  { requestId: 2, body: { type: 'grv' } },
  { requestId: 3, body: { type: 'get', readVersion: 123n, key: toBytes('k') } },
  { requestId: 4, body: { type: 'range', readVersion: 5n, beginKey: toBytes('a'), beginInclusive: false, endKey: toBytes('z'), endInclusive: true, limit: 7, reverse: true } },
  {
    requestId: 5,
    body: {
      type: 'commit',
      readVersion: 9n,
      readConflicts: [{ begin: toBytes('a'), end: toBytes('b') }],
      mutations: [{ type: 3, key: new Uint8Array(12), param: toBytes('v'), offset: 2 }],
    },
  },
];

describe('codec', () => {
  it('round-trips every request type in one frame', () => {
    const decoded = decodeRequests(encodeRequests(sample));
    expect(JSON.parse(JSON.stringify(decoded, (_, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)))).toEqual(
      JSON.parse(JSON.stringify(sample, (_, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))),
    );
  });

  it('round-trips replies, absent vs empty values included', () => {
    const frame = encodeReplies([
      { requestId: 1, body: { type: 'get', value: null } },
      { requestId: 2, body: { type: 'get', value: new Uint8Array(0) } },
      { requestId: 3, body: { type: 'range', kvs: [toBytes('k'), toBytes('v')], hasMore: true } },
      { requestId: 4, body: { type: 'error', code: 'CONFLICT', message: 'm' } },
      { requestId: 5, body: { type: 'commit', commitVersion: -1n, versionstamp: new Uint8Array(10) } },
    ]);
    const d = decodeReplies(frame);
    expect(d[0]!.body).toEqual({ type: 'get', value: null });
    expect(d[1]!.body).toEqual({ type: 'get', value: new Uint8Array(0) });
    expect(d[2]!.body).toMatchObject({ type: 'range', hasMore: true });
    expect(d[3]!.body).toEqual({ type: 'error', code: 'CONFLICT', message: 'm' });
    expect(d[4]!.body).toMatchObject({ type: 'commit', commitVersion: -1n });
  });

  it('refuses garbage, truncation and forged lengths with FrameError, never a hang', () => {
    const good = encodeRequests(sample);
    expect(() => decodeRequests(new Uint8Array([1, 2, 3]))).toThrow(FrameError);
    expect(() => decodeRequests(good.subarray(0, good.length - 9))).toThrow(FrameError);
    const forged = good.slice();
    // find the key vector of the GetRequest ('k' preceded by length 1) and claim 2^31 bytes
    for (let i = 0; i + 4 < forged.length; i++) {
      if (forged[i] === 1 && forged[i + 1] === 0 && forged[i + 2] === 0 && forged[i + 3] === 0 && forged[i + 4] === 0x6b) {
        forged[i + 3] = 0x7f;
        break;
      }
    }
    expect(() => decodeRequests(forged)).toThrow(FrameError);
  });

  it('property: any mutation of a valid frame decodes or throws FrameError (no other failure)', () => {
    const good = encodeRequests(sample);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(good.length), (flips, cut) => {
        const b = good.slice(0, Math.max(cut, 1));
        for (const [i, v] of flips) if (i < b.length) b[i] = v;
        try {
          decodeRequests(b);
        } catch (e) {
          if (!(e instanceof FrameError)) throw e;
        }
      }),
      { seed: 20261125, numRuns: 2000 },
    );
  });

  it('property: random bytes are refused or decoded, never crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (b) => {
        try {
          verifyFrame(b);
        } catch (e) {
          if (!(e instanceof FrameError)) throw e;
        }
      }),
      { seed: 7, numRuns: 2000 },
    );
  });
});

describe('generated code', () => {
  it('matches schemas/txkv.fbs (npm run gen regenerates it)', async () => {
    const { generate } = (await import('../../../scripts/gen-flatbuffers.mjs')) as { generate: () => Promise<Record<string, string>> };
    const out = await generate();
    const root = path.resolve(__dirname, '../../..');
    for (const [name, text] of Object.entries(out)) {
      const file = path.join(root, 'src/protocol/generated', name.replace(/^\/+/, ''));
      expect(fs.readFileSync(file, 'utf8'), `${name} is stale: run npm run gen`).toBe(text);
    }
  });
});
