// Bad input to the operator routes of data distribution (/v1/shard/*): a stable code, a
// clear message, and the map unchanged (a reviewer's findings: a 20,000-byte boundary was
// accepted and then carried by every map change and status).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

describe('/v1/shard/* bad input', () => {
  let s: TestServer;
  let http: string;
  const b64 = (k: Uint8Array | string): string => Buffer.from(k).toString('base64url');
  const post = async (route: string): Promise<{ status: number; body: { error?: { code: string; message: string }; map?: { version: number } } }> => {
    const r = await fetch(`${http}/v1/shard/${route}`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: (await r.json()) as never };
  };
  const mapVersion = async (): Promise<number> => ((await (await fetch(`${http}/v1/shard/map`)).json()) as { map: { version: number } }).map.version;

  beforeAll(async () => {
    s = await startTestServer();
    http = s.server.url.replace(/^ws/, 'http');
  });
  afterAll(async () => s?.close());

  it('boundaries over the key limit: KEY_TOO_LARGE (413), nothing changes', async () => {
    const v = await mapVersion();
    const huge = b64(new Uint8Array(10_001).fill(0x61));
    for (const route of [`split?key=${huge}`, `merge?key=${huge}`, `move?begin=${huge}&to=1`]) {
      const r = await post(route);
      expect(r.status, route.slice(0, 30)).toBe(413);
      expect(r.body.error?.code, route.slice(0, 30)).toBe('KEY_TOO_LARGE');
      expect(r.body.error?.message, route.slice(0, 30)).toMatch(/10001 bytes; limit 10000/);
    }
    expect(await mapVersion()).toBe(v);
  });

  it('binary boundaries at the limit work, and each mistake has its code', async () => {
    const bin = new Uint8Array(10_000).fill(0x00);
    bin[0] = 0x71;
    bin[9_999] = 0xfe;
    const ok = await post(`split?key=${b64(bin)}`);
    expect(ok.status).toBe(200);
    const cases: [string, number, string, RegExp][] = [
      [`split?key=${b64(bin)}`, 400, 'INVALID_ARGUMENT', /already begins/],
      ['split?key=', 400, 'INVALID_ARGUMENT', /empty key/],
      ['split?key=a%2Bb', 400, 'INVALID_ARGUMENT', /base64url/],
      [`merge?key=${b64('nope')}`, 400, 'INVALID_ARGUMENT', /no range boundary/],
      [`move?begin=${b64(bin)}&to=99`, 400, 'INVALID_ARGUMENT', /worker 99 does not exist/],
      [`move?begin=${b64(bin)}&to=-1`, 400, 'INVALID_ARGUMENT', /worker number/],
      [`move?begin=${b64('nope')}&to=1`, 400, 'INVALID_ARGUMENT', /no range begins/],
    ];
    for (const [route, status, code, why] of cases) {
      const r = await post(route);
      expect([r.status, r.body.error?.code], route).toEqual([status, code]);
      expect(r.body.error?.message, route).toMatch(why);
    }
    // concurrent moves of one range: serialized, each either done or refused with a reason
    const moves = await Promise.all([1, 2, 3, 1].map((w) => post(`move?begin=${b64(bin)}&to=${w}`)));
    for (const m of moves) expect(m.status === 200 || m.body.error?.code === 'INVALID_ARGUMENT', JSON.stringify(m.body)).toBe(true);
    expect(moves.filter((m) => m.status === 200).length).toBeGreaterThan(0);
  });
});
