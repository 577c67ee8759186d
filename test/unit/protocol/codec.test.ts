import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeReplies, decodeRequests, encodeReplies, encodeRequests, FrameError, FrameLimitError, MAX_FRAME_ENVELOPES, MAX_GET_MANY_KEYS, REPLY_ENCODER_KEEP_BYTES, ReplyEncoder, type Envelope, type ReplyBody, type RequestBody } from '../../../src/protocol/codec.js';
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
      mutations: [
        { type: 3, key: new Uint8Array(12), param: toBytes('v'), offset: 2 },
        { type: 5, key: toBytes('counter'), param: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), offset: 0 },
        { type: 14, key: toBytes('c'), param: toBytes('x'), offset: 0 },
      ],
    },
  },
  { requestId: 6, body: { type: 'watch', key: toBytes('w'), present: true, value: toBytes('seen') } },
  { requestId: 7, body: { type: 'subscribe', begin: toBytes('a'), end: toBytes('b'), fromVersion: 77n, windowBytes: 1 << 20 } },
  { requestId: 8, body: { type: 'subscribeAck', subscribeRequestId: 7, bytes: 4096 } },
  { requestId: 9, body: { type: 'cancel', targetRequestId: 6 } },
  { requestId: 10, body: { type: 'getMany', readVersion: 321n, keys: [toBytes('k1'), new Uint8Array(0), toBytes('key3')] } },
];

describe('codec', () => {
  it('round-trips watch and change-feed replies', () => {
    const frame = encodeReplies([
      { requestId: 6, body: { type: 'watch', version: 123n } },
      {
        requestId: 7,
        body: {
          type: 'changes',
          bytes: 99,
          versions: [
            { version: 10n, mutations: [{ type: 0, key: toBytes('a1'), param: toBytes('v'), offset: 0 }] },
            { version: 11n, mutations: [{ type: 2, key: toBytes('a'), param: toBytes('a5'), offset: 0 }, { type: 1, key: toBytes('a7'), param: new Uint8Array(0), offset: 0 }] },
          ],
        },
      },
    ]);
    const d = decodeReplies(frame);
    expect(d[0]).toEqual({ requestId: 6, body: { type: 'watch', version: 123n } });
    const c = d[1]!.body as Extract<(typeof d)[number]['body'], { type: 'changes' }>;
    expect(c.bytes).toBe(99);
    expect(c.versions.map((v) => [v.version, v.mutations.map((m) => [m.type, Buffer.from(m.key).toString(), Buffer.from(m.param).toString()])])).toEqual([
      [10n, [[0, 'a1', 'v']]],
      [11n, [[2, 'a', 'a5'], [1, 'a7', '']]],
    ]);
  });

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

  it('round-trips GetManyReply: values, absent, empty and failed reads in order; Hello says getMany', () => {
    const frame = encodeReplies([
      {
        requestId: 1,
        body: {
          type: 'getMany',
          values: [toBytes('v1'), null, new Uint8Array(0), null, toBytes('v5')],
          errors: [null, null, null, { code: 'TOO_OLD', message: 'old' }, null],
        },
      },
      { requestId: 2, body: { type: 'getMany', values: [null, toBytes('x')], errors: null } },
      { requestId: 3, body: { type: 'hello', protocolVersion: 1, serverVersion: 's', readOnly: false, databaseId: '', getMany: true } },
    ]);
    const d = decodeReplies(frame);
    expect(d[0]!.body).toEqual({
      type: 'getMany',
      values: [toBytes('v1'), null, new Uint8Array(0), null, toBytes('v5')],
      errors: [null, null, null, { code: 'TOO_OLD', message: 'old' }, null],
    });
    expect(d[1]!.body).toEqual({ type: 'getMany', values: [null, toBytes('x')], errors: null });
    expect(d[2]!.body).toMatchObject({ type: 'hello', getMany: true });
  });

  it('repeated error replies in one frame share their code and message strings (a frame of refusals stays small)', () => {
    const message = 'connection has 10000 requests in flight; limit 10000';
    const envs = Array.from({ length: 1000 }, (_, i) => ({ requestId: i + 1, body: { type: 'error' as const, code: 'THROTTLED', message } }));
    const frame = encodeReplies(envs);
    // each reply is an envelope and an ErrorReply table pointing at the one copy of each string
    expect(frame.length).toBeLessThan(40 * 1000);
    const back = decodeReplies(frame);
    expect(back).toHaveLength(1000);
    for (const [i, e] of back.entries()) expect(e).toEqual({ requestId: i + 1, body: { type: 'error', code: 'THROTTLED', message } });
    // different messages stay different
    const two = decodeReplies(encodeReplies([envs[0]!, { requestId: 7, body: { type: 'error', code: 'CONFLICT', message: 'other' } }, envs[1]!]));
    expect(two.map((e) => (e.body as { code: string }).code)).toEqual(['THROTTLED', 'CONFLICT', 'THROTTLED']);
  });

  it('ReplyEncoder: frames equal to encodeReplies, written into one buffer kept between frames (a 1 MB page leaves no buffers behind)', () => {
    const page = (n: number, size: number): Envelope<ReplyBody>[] => [
      { requestId: n, body: { type: 'range', kvs: Array.from({ length: 20 }, (_, i) => (i % 2 ? new Uint8Array(size).fill(n + i) : toBytes(`k${n}/${i}`))), hasMore: true } },
      { requestId: n + 1, body: { type: 'error', code: 'THROTTLED', message: 'later' } },
    ];
    const enc = new ReplyEncoder();
    const first = enc.encode(page(1, 100_000));
    // compared before the next encode: the frame is a view into the encoder's buffer
    expect(Buffer.from(first).equals(Buffer.from(encodeReplies(page(1, 100_000))))).toBe(true);
    // (compared with ===: a failed toBe would print both megabyte buffers)
    const buffer = first.buffer;
    for (let n = 2; n < 6; n++) {
      const f = enc.encode(page(n, 100_000 - n));
      expect(Buffer.from(f).equals(Buffer.from(encodeReplies(page(n, 100_000 - n))))).toBe(true);
      expect(decodeReplies(f)[0]!.requestId).toBe(n);
      // the same buffer each time: a builder per frame doubles from 256 bytes to 2 MB (~4 MB of garbage per frame)
      expect(f.buffer === buffer).toBe(true);
    }
    // small frames after a large one reuse it too, and decode as themselves
    const small = enc.encode([{ requestId: 9, body: { type: 'watch', version: 5n } }]);
    expect(small.buffer === buffer).toBe(true);
    expect(decodeReplies(small)).toEqual([{ requestId: 9, body: { type: 'watch', version: 5n } }]);
    // one frame past REPLY_ENCODER_KEEP_BYTES is not kept: the next frame gets a new buffer
    const huge = enc.encode(page(20, Math.ceil((REPLY_ENCODER_KEEP_BYTES * 1.2) / 10)));
    expect(huge.byteLength).toBeGreaterThan(REPLY_ENCODER_KEEP_BYTES);
    const after = enc.encode(page(30, 1000));
    expect(after.buffer === huge.buffer).toBe(false);
    expect(after.buffer.byteLength).toBeLessThanOrEqual(REPLY_ENCODER_KEEP_BYTES);
    expect(decodeReplies(after)[0]!.requestId).toBe(30);
  });

  it('refuses a GetManyRequest whose key lengths exceed its key bytes', () => {
    const frame = encodeRequests([{ requestId: 1, body: { type: 'getMany', readVersion: 1n, keys: [toBytes('abc'), toBytes('de')] } }]);
    // the key length vector [3, 2] follows the 5 key bytes 'abcde': claim 3 + 200
    const forged = Buffer.from(frame);
    const at = forged.indexOf(Buffer.from([2, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0]));
    expect(at).toBeGreaterThan(0);
    forged[at + 8] = 200;
    expect(() => decodeRequests(new Uint8Array(forged))).toThrow(/key lengths add up/);
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
    // the message names the table, the field and the claim (built only when a check fails)
    expect(() => decodeRequests(forged)).toThrow(/^GetRequest field \d+: 2130706433 elements of 1 bytes do not fit in the frame$/);
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

describe('per-frame limits of request frames (MAX_FRAME_ENVELOPES, MAX_GET_MANY_KEYS)', () => {
  const grvs = (n: number): Envelope<RequestBody>[] => Array.from({ length: n }, (_, i) => ({ requestId: i + 1, body: { type: 'grv' } }));
  const many = (requestId: number, n: number): Envelope<RequestBody> => ({ requestId, body: { type: 'getMany', readVersion: 1n, keys: Array.from({ length: n }, () => new Uint8Array(0)) } });

  it('a request frame of MAX_FRAME_ENVELOPES envelopes decodes; one more is a FrameLimitError naming the limit; reply frames have no cap', () => {
    expect(decodeRequests(encodeRequests(grvs(MAX_FRAME_ENVELOPES)))).toHaveLength(MAX_FRAME_ENVELOPES);
    const over = encodeRequests(grvs(MAX_FRAME_ENVELOPES + 1));
    expect(() => decodeRequests(over)).toThrow(FrameLimitError);
    expect(() => decodeRequests(over)).toThrow(/frame holds 10001 requests; limit 10000 per frame \(MAX_FRAME_ENVELOPES\)/);
    // a limit error is a frame error (callers that only know FrameError still answer PROTOCOL_ERROR)
    expect(() => decodeRequests(over)).toThrow(FrameError);
    const replies = Array.from({ length: MAX_FRAME_ENVELOPES + 1 }, (_, i) => ({ requestId: i + 1, body: { type: 'grv' as const, readVersion: 1n } }));
    expect(decodeReplies(encodeReplies(replies))).toHaveLength(MAX_FRAME_ENVELOPES + 1);
  });

  it('GetManyRequest keys: MAX_GET_MANY_KEYS in one request or spread over a frame decode; one more in one request or in the frame together is a FrameLimitError', () => {
    expect((decodeRequests(encodeRequests([many(1, MAX_GET_MANY_KEYS)]))[0]!.body as { keys: unknown[] }).keys).toHaveLength(MAX_GET_MANY_KEYS);
    expect(decodeRequests(encodeRequests([many(1, MAX_GET_MANY_KEYS / 2), many(2, MAX_GET_MANY_KEYS / 2)]))).toHaveLength(2);
    expect(() => decodeRequests(encodeRequests([many(1, MAX_GET_MANY_KEYS + 1)]))).toThrow(/at least 10001 keys; limit 10000 per frame \(MAX_GET_MANY_KEYS\)/);
    expect(() => decodeRequests(encodeRequests([many(1, 6000), { requestId: 2, body: { type: 'grv' } }, many(3, 6000)]))).toThrow(FrameLimitError);
    // the verifier refuses it (decodeRequests never reaches its keys); no wall-time bound (CI is loaded)
    expect(() => verifyFrame(encodeRequests([many(1, 200_000)]), { envelopes: MAX_FRAME_ENVELOPES, getManyKeys: MAX_GET_MANY_KEYS })).toThrow(FrameLimitError);
    expect(() => verifyFrame(encodeRequests([many(1, 200_000)]))).not.toThrow();
  });
});

describe('a CommitRequest whose counts alone pass the transaction size limit', () => {
  const commit = (mutations: number, ranges: number): Envelope<RequestBody> => ({
    requestId: 4,
    body: {
      type: 'commit',
      readVersion: 0n,
      readConflicts: Array.from({ length: ranges }, () => ({ begin: new Uint8Array(0), end: new Uint8Array(0) })),
      mutations: Array.from({ length: mutations }, () => ({ type: 1, key: new Uint8Array(0), param: new Uint8Array(0), offset: 0 })),
    },
  });

  it('is refused TRANSACTION_TOO_LARGE without being decoded (72 B per mutation, 32 B per range at least); one at the limit is decoded', () => {
    // 138,888 x 72 = 9,999,936 bytes: within the limit, decoded; one more mutation passes it
    expect(decodeRequests(encodeRequests([commit(138_888, 0)]))[0]!.body).toMatchObject({ type: 'commit' });
    expect(decodeRequests(encodeRequests([commit(138_889, 0)]))[0]!.body).toEqual({
      type: 'refused',
      code: 'TRANSACTION_TOO_LARGE',
      message: 'transaction is at least 10000008 bytes (138889 mutations, 0 read conflict ranges, before their keys and values); limit 10000000',
    });
    expect(decodeRequests(encodeRequests([commit(100_000, 87_501)]))[0]!.body).toMatchObject({ type: 'refused', code: 'TRANSACTION_TOO_LARGE' });
    expect(decodeRequests(encodeRequests([commit(100_000, 87_500)]))[0]!.body).toMatchObject({ type: 'commit' });
    // without caps (reply frames) the verifier walks every table, as before
    expect(() => verifyFrame(encodeRequests([commit(138_889, 0)]))).not.toThrow();
  });
});
