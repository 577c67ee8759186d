import { describe, expect, it } from 'vitest';
import { ADMISSION_SHARED_BYTES, Admission } from '../../../src/gateway/limits.js';
import { DEFAULT_CONFIG } from '../../../src/config/server-config.js';
import { TokenStore, bearer } from '../../../src/gateway/auth.js';

describe('Admission', () => {
  const limits = { ...DEFAULT_CONFIG.limits, maxConnections: 2, maxInflightPerConnection: 3, maxBufferedBytes: 100, maxBackpressureBytes: 1000 };
  it('bounds connections', () => {
    const a = new Admission(limits);
    expect([a.admitConnection(), a.admitConnection(), a.admitConnection()]).toEqual([true, true, false]);
    a.releaseConnection();
    expect(a.admitConnection()).toBe(true);
  });
  it('throttles a connection with too much in flight or unread replies', () => {
    const a = new Admission(limits);
    expect(a.admitRequest(2, 0)).toBeNull();
    expect(a.admitRequest(3, 0)?.code).toBe('THROTTLED');
    expect(a.admitRequest(0, 600)?.code).toBe('THROTTLED');
  });
  it('holds request bytes within the budget until released', () => {
    const a = new Admission(limits);
    expect(a.admitBytes(60)).toBeNull();
    expect(a.admitBytes(50)?.code).toBe('RESOURCE_CONSTRAINED');
    a.release(60);
    expect(a.admitBytes(100)).toBeNull();
    expect(a.peakBufferedBytes).toBe(100);
    expect(a.refused).toBe(1);
  });
});

describe('Admission over shared memory (gateway threads)', () => {
  const limits = { ...DEFAULT_CONFIG.limits, maxConnections: 2, maxInflightPerConnection: 3, maxBufferedBytes: 100, maxBackpressureBytes: 1000 };
  it('threads that share the buffer share one budget, peak and refusal count', () => {
    const sab = new SharedArrayBuffer(ADMISSION_SHARED_BYTES);
    const main = new Admission(limits, sab);
    const gateway = new Admission(limits, sab);
    expect(main.admitBytes(60)).toBeNull();
    // the other thread sees the bytes the first one holds
    expect(gateway.admitBytes(50)?.code).toBe('RESOURCE_CONSTRAINED');
    expect(gateway.grantReply(100, 0, 0)).toBe(40);
    expect(main.bufferedBytes).toBe(100);
    gateway.settleReply(40, 10);
    main.release(60);
    expect(gateway.bufferedBytes).toBe(10);
    expect(main.peakBufferedBytes).toBe(100);
    expect(main.refused).toBe(1);
    gateway.release(10);
    expect(main.bufferedBytes).toBe(0);
  });
});

describe('TokenStore', () => {
  const t = new TokenStore({ tokens: ['rw'], readOnlyTokens: ['ro'], tokenFile: '', protectStatus: false });
  it.each([
    ['rw', 'write'],
    ['ro', 'read'],
    ['r', 'none'],
    ['', 'none'],
    [undefined, 'none'],
  ])('token %j -> %s', (token, access) => expect(t.check(token)).toBe(access));
  it('without tokens everyone may write', () => {
    expect(new TokenStore({ tokens: [], readOnlyTokens: [], tokenFile: '', protectStatus: false }).check(undefined)).toBe('write');
  });
  it('parses Bearer headers', () => {
    expect(bearer('Bearer abc')).toBe('abc');
    expect(bearer('bearer  abc ')).toBe('abc');
    expect(bearer('Basic abc')).toBeUndefined();
  });
});

describe('Admission: reply bytes (issue 10 item 9)', () => {
  const l = { ...DEFAULT_CONFIG.limits, maxConnections: 10, maxInflightPerConnection: 10, maxBufferedBytes: 1000, maxBackpressureBytes: 400 };
  it('grants at most half the backpressure limit per connection, out of the server budget shared with requests', () => {
    const a = new Admission(l);
    expect(a.grantReply(Infinity, 0, 0)).toBe(200);
    expect(a.grantReply(Infinity, 150, 0)).toBe(50);
    expect(a.grantReply(Infinity, 100, 100)).toBe(0);
    expect(a.admitBytes(700)).toBeNull();
    expect(a.bufferedBytes).toBe(950);
    expect(a.grantReply(Infinity, 0, 0)).toBe(50);
    expect(a.grantReply(Infinity, 0, 0)).toBe(0);
    expect(a.replyRefusal(0, 0).code).toBe('RESOURCE_CONSTRAINED');
  });
  it('settling gives back what a reply did not use', () => {
    const a = new Admission(l);
    const g = a.grantReply(100, 0, 0);
    a.settleReply(g, 30);
    expect(a.bufferedBytes).toBe(30);
    a.release(30);
    expect(a.bufferedBytes).toBe(0);
  });
});
