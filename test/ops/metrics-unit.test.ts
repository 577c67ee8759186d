// Pure parts of the observability code: the latency histogram, its quantiles and its
// Prometheus text; environment variable names; CLI byte escaping round trips.
import { describe, expect, it } from 'vitest';
import { formatBytes, parseBytesArg } from '../../src/cli/bytes-arg.js';
import { envName } from '../../src/config/load-config.js';
import { histogramText, LATENCY_BOUNDS_SEC, LatencyHistogram, quantile } from '../../src/metrics/latency-histogram.js';

describe('LatencyHistogram', () => {
  it('counts into buckets and interpolates quantiles inside them', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 90; i++) h.observe(0.0008); // (0.0005, 0.001]
    for (let i = 0; i < 10; i++) h.observe(0.04); // (0.025, 0.05]
    expect(h.count).toBe(100);
    expect(quantile(h.counts, 0.5)).toBeGreaterThan(0.0005);
    expect(quantile(h.counts, 0.5)).toBeLessThanOrEqual(0.001);
    expect(quantile(h.counts, 0.99)).toBeGreaterThan(0.025);
    expect(quantile(h.counts, 0.99)).toBeLessThanOrEqual(0.05);
    expect(quantile(new Float64Array(LATENCY_BOUNDS_SEC.length + 1), 0.5)).toBeNaN();
    h.observe(99); // beyond the last bound: +Inf bucket
    expect(h.counts[LATENCY_BOUNDS_SEC.length]).toBe(1);
  });

  it('renders cumulative Prometheus buckets', () => {
    const h = new LatencyHistogram();
    h.observe(0.0001);
    h.observe(0.2);
    const text = histogramText('x_seconds', 'help', [[{ kind: 'get' }, h]]);
    expect(text).toContain('# TYPE x_seconds histogram');
    expect(text).toContain('x_seconds_bucket{kind="get",le="0.0001"} 1');
    expect(text).toContain('x_seconds_bucket{kind="get",le="0.25"} 2');
    expect(text).toContain('x_seconds_bucket{kind="get",le="+Inf"} 2');
    expect(text).toContain('x_seconds_count{kind="get"} 2');
  });
});

describe('names and escapes', () => {
  it.each([
    ['port', 'TXKV_PORT'],
    ['dataDir', 'TXKV_DATA_DIR'],
    ['mvccWindowMs', 'TXKV_MVCC_WINDOW_MS'],
    ['limits.maxInflightPerConnection', 'TXKV_LIMITS_MAX_INFLIGHT_PER_CONNECTION'],
    ['auth.readOnlyTokens', 'TXKV_AUTH_READ_ONLY_TOKENS'],
  ])('%s -> %s', (p, name) => expect(envName(p)).toBe(name));

  it('escaped and hex arguments round-trip through the printed form', () => {
    const bytes = new Uint8Array([0x61, 0x00, 0x5c, 0xff, 0x7e, 0x20]);
    expect(formatBytes(bytes, false)).toBe('a\\x00\\x5c\\xff~ ');
    expect([...parseBytesArg(formatBytes(bytes, false), false)]).toEqual([...bytes]);
    expect([...parseBytesArg(formatBytes(bytes, true), true)]).toEqual([...bytes]);
    expect([...parseBytesArg('a\\\\b', false)]).toEqual([0x61, 0x5c, 0x62]);
    expect(() => parseBytesArg('xyz', true)).toThrow(/not hex/);
  });
});
