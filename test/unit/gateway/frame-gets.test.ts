// FrameGets (gateway/dispatch.ts): a frame's point reads over several rounds. Reads a shard
// refused past the reply grant (RESOURCE_CONSTRAINED) stay pending; a request is answered
// once all its reads are, and a GetManyReply keeps the values of earlier rounds.
import { describe, expect, it } from 'vitest';
import { FrameGets, type GetResult } from '../../../src/gateway/dispatch.js';

const b = (s: string): Uint8Array => Buffer.from(s);
const REFUSED = { code: 'RESOURCE_CONSTRAINED', message: 'reply memory budget reached' };

describe('FrameGets rounds', () => {
  it('answers complete requests at once and asks again only for the refused reads', () => {
    const f = new FrameGets();
    f.add(1, { type: 'get', readVersion: 5n, key: b('a') });
    f.add(2, { type: 'getMany', readVersion: 5n, keys: [b('b'), b('c'), b('d')] });
    f.add(3, { type: 'get', readVersion: 5n, key: b('e') });
    expect(f.pendingCount).toBe(5);
    const r1 = f.absorb([b('A'), b('BB'), REFUSED, null, REFUSED] as GetResult[]);
    expect(r1.replies.map((r) => r.requestId)).toEqual([1]);
    expect(r1.bytes).toBe(3); // 'A' replied, 'BB' held for request 2
    expect(r1.answered).toBe(3);
    expect(f.pendingCount).toBe(2);
    expect(f.ask().keys.map((k) => Buffer.from(k).toString())).toEqual(['c', 'e']);
    const r2 = f.absorb([REFUSED, b('EEE')] as GetResult[]);
    expect(r2.replies).toEqual([{ requestId: 3, body: { type: 'get', value: b('EEE') }, bytes: 3 }]);
    const r3 = f.absorb([b('C')] as GetResult[]);
    expect(r3.replies).toEqual([{ requestId: 2, body: { type: 'getMany', values: [b('BB'), b('C'), null], errors: null }, bytes: 3 }]);
    expect(f.pendingCount).toBe(0);
  });

  it('one round without refusals answers every request in arrival order', () => {
    const f = new FrameGets();
    f.add(7, { type: 'getMany', readVersion: 5n, keys: [b('x'), b('y')] });
    f.add(8, { type: 'get', readVersion: 5n, key: b('z') });
    const r = f.absorb([b('1'), { code: 'TOO_OLD', message: 'old' }, null]);
    expect(r.replies.map((x) => x.requestId)).toEqual([7, 8]);
    expect(r.replies[0]!.body).toEqual({ type: 'getMany', values: [b('1'), null], errors: [null, { code: 'TOO_OLD', message: 'old' }] });
    expect(f.pendingCount).toBe(0);
  });

  it('refuseRest answers what is left with the error, keeping the values already read', () => {
    const f = new FrameGets();
    f.add(1, { type: 'getMany', readVersion: 5n, keys: [b('a'), b('b')] });
    f.add(2, { type: 'get', readVersion: 5n, key: b('c') });
    f.absorb([b('A'), REFUSED, REFUSED] as GetResult[]);
    const spent = { code: 'RESOURCE_CONSTRAINED', message: 'reply memory budget spent' };
    const r = f.refuseRest(spent);
    expect(r).toEqual([
      { requestId: 1, body: { type: 'getMany', values: [b('A'), null], errors: [null, spent] }, bytes: 1 },
      { requestId: 2, body: { type: 'error', ...spent }, bytes: 0 },
    ]);
  });
});
