// The dashboard in a real browser: Debian's chromium driven by playwright-core. The
// page is loaded, transactions run, and the numbers on the page must change. Skipped
// (saying so) where /usr/bin/chromium is not installed; .ci/run installs it.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startServer } from '../../src/index.js';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) console.warn(`dashboard browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

describe.skipIf(!haveChromium)('dashboard in chromium', () => {
  let t: TestServer;
  let browser: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    // the balancer off: the distribution panel test checks the exact ranges of its own splits and move
    t = await startTestServer({ shards: 3, splitPoints: ['h', 'p'], distribution: { enabled: false } });
    profile = tempDir('txkv-chromium');
    // a fresh profile (user data dir) per run
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1100 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
      timeout: 30_000,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it('loads, shows the shards, and its numbers move when transactions run', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const base = t.server.url.replace(/^ws/, 'http');
    await page.goto(`${base}/`);
    await page.waitForSelector('#state.ok', { timeout: 10_000 });
    const committedBefore = await page.textContent('#committed-total');
    expect(await page.locator('#shards tr').count()).toBe(3);
    expect(await page.textContent('#shards tr[data-shard="1"] td.key')).toBe('[h, p)');
    expect(await page.locator('.uplot').count()).toBe(7); // uPlot loaded from /dashboard/uPlot.iife.min.js

    // load: commits across shards, reads, and some conflicts
    const stop = Date.now() + 3000;
    let n = 0;
    const worker = async (): Promise<void> => {
      while (Date.now() < stop) {
        const i = n++;
        await t.db
          .transact(async (tx) => {
            await tx.get(`hot/${i % 2}`);
            tx.set(`hot/${i % 2}`, String(i));
            tx.set(`q/${i}`, 'x');
          }, { maxRetryCount: 0 })
          .catch(() => {});
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);

    await page.waitForFunction((before) => document.getElementById('committed-total')!.textContent !== before, committedBefore, { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.getElementById('commits-per-sec')!.textContent!.replace(/,/g, '')) > 0, undefined, { timeout: 10_000 });
    const committed = Number((await page.textContent('#committed-total'))!.replace(/,/g, ''));
    expect(committed).toBeGreaterThan(Number(committedBefore!.replace(/,/g, '') || 0));
    expect(await page.textContent('#commit-p50')).toMatch(/\d+(\.\d+)? ms/);
    expect(await page.textContent('#latest-version')).toMatch(/^\d{16}$/);
    const shardCommits = await page.locator('#shards td.shard-commits').allTextContents();
    expect(shardCommits.map((s) => Number(s.replace(/,/g, ''))).reduce((a, b) => a + b)).toBeGreaterThan(0);
    // conflicts happened on the hot keys: shown as conflicts (normal under optimistic
    // concurrency), not as errors
    await page.waitForFunction(() => document.getElementById('conflicts')!.textContent!.includes('CONFLICT'), undefined, { timeout: 10_000 });
    expect(await page.textContent('#errors')).not.toContain('CONFLICT');
    expect(await page.textContent('#errors'), 'errors other than conflicts').toContain('none');

    // HTTP traffic shows on the page (finding 6)
    const httpBefore = Number((await page.textContent('#http-total'))!.replace(/,/g, '') || 0);
    for (let i = 0; i < 30; i++) await fetch(`${base}/v1/kv/${Buffer.from('hot/0').toString('base64url')}`);
    await page.waitForFunction((b) => Number(document.getElementById('http-total')!.textContent!.replace(/,/g, '')) >= b + 30, httpBefore, { timeout: 10_000 });

    // latency charts: idle intervals are gaps (not a line across them), and the legend
    // shows the latest values when the cursor is not on the chart (not "--")
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#chart-commit-latency .u-legend .u-value')).slice(1).every((e) => /\d|^idle$/.test(e.textContent!)), undefined, { timeout: 10_000 });
    const legend = await page.locator('#chart-commit-latency .u-legend .u-value').allTextContents();
    expect(legend.join(' ')).not.toMatch(/--|^-$/);
    expect(await page.evaluate(() => (window as unknown as { txkvCharts: Record<string, { series: { spanGaps?: boolean }[] }> }).txkvCharts.commit!.series.slice(1).map((x) => x.spanGaps))).toEqual([false, false, false]);

    // an operator's figures (finding 12): disk, WAL latency, process, event loop, compactions, replication slot
    await page.waitForFunction(() => /ms$/.test(document.getElementById('wal-ms')!.textContent!), undefined, { timeout: 10_000 });
    expect(await page.textContent('#disk-used')).toMatch(/\d+(\.\d)? (B|KiB|MiB|GiB)$/);
    expect(await page.textContent('#disk-free')).toMatch(/\d+(\.\d)? (KiB|MiB|GiB|TiB)$/);
    expect(await page.textContent('#cpu')).toMatch(/^\d[\d,.]* %$/);
    expect(await page.textContent('#rss')).toMatch(/MiB$/);
    expect(await page.textContent('#loop-lag')).toMatch(/ ms$/);
    expect(await page.textContent('#compactions')).toMatch(/^\d+ running$/);
    expect(await page.textContent('#write-stall')).toBe('no');
    expect(await page.textContent('#replication')).toContain('single node');
    expect(await page.textContent('#storage')).toContain('data directory');
    // keys counted per shard: the three shards hold different numbers of keys
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#shards tr')).every((tr) => /\d/.test(tr.children[8]!.textContent!)), undefined, { timeout: 15_000 });

    const shot = process.env.TXKV_DASHBOARD_SCREENSHOT ?? path.join(profile, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
    expect(errors).toEqual([]);
  });

  it('lists each worker\'s ranges with size and load, and the recent splits and moves with reason and duration', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const base = t.server.url.replace(/^ws/, 'http');
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 20; i++) tx.set(`dm/${i}`, 'v');
    });
    const post = async (q: string): Promise<void> => {
      const r = await fetch(`${base}/v1/shard/${q}`, { method: 'POST' });
      if (!r.ok) throw new Error(`${q}: ${r.status} ${await r.text()}`);
    };
    const k = (s: string): string => Buffer.from(s).toString('base64url');
    await post(`split?key=${k('dm/')}`);
    await post(`split?key=${k('dm0')}`);
    await post(`move?begin=${k('dm/')}&to=2`);
    await page.goto(`${base}/`);
    await page.waitForSelector('#state.ok', { timeout: 10_000 });
    expect(await page.locator('#workers tr').count()).toBe(3);
    // worker 2 owns its own range and the moved one; worker 0 serves old reads of it until the window passes
    await page.waitForFunction(() => document.querySelector('#workers tr[data-worker="2"] td.key')!.textContent!.includes('[dm/, dm0)'), undefined, { timeout: 10_000 });
    expect(await page.textContent('#workers tr[data-worker="1"] td.key')).toContain('[h, p)');
    await page.waitForFunction(() => /\d/.test(document.querySelector('#workers tr[data-worker="2"]')!.children[2]!.textContent!), undefined, { timeout: 15_000 });
    const move = page.locator('#distribution-events tr[data-kind="move"]');
    expect(await move.count()).toBe(1);
    const cells = await move.locator('td').allTextContents();
    expect(cells[1]).toBe('move [dm/, dm0) 0 → 2');
    expect(cells[2]).toBe('operator');
    expect(cells[3]).toMatch(/^\d[\d,]* ms$/);
    expect(cells[5]).toBe('done');
    expect(await page.locator('#distribution-events tr[data-kind="split"]').count()).toBe(2);
    expect(await page.textContent('#distribution-summary')).toMatch(/2 splits · 0 merges · 1 moves/);
    expect(errors).toEqual([]);
  });

  it('with auth.protectStatus: the page loads, and polls with the token from its URL fragment', async () => {
    const dataDir = tempDir('txkv-dash-auth');
    const server = await startServer(
      { port: 0, host: '127.0.0.1', dataDir, shards: 2, auth: { tokens: ['s3cret'], protectStatus: true } },
      { logger: pino({ level: 'warn' }) },
    );
    try {
      const base = server.url.replace(/^ws/, 'http');
      expect((await fetch(`${base}/v1/status`)).status).toBe(401);
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      expect((await fetch(`${base}/`)).status).toBe(200); // static page: no data in it
      const page = await browser.newPage();
      await page.goto(`${base}/`);
      await page.waitForSelector('#state.bad', { timeout: 10_000 });
      expect(await page.textContent('#state')).toContain('401');
      await page.goto(`${base}/#token=s3cret`);
      await page.reload();
      await page.waitForSelector('#state.ok', { timeout: 10_000 });
      expect(await page.locator('#shards tr').count()).toBe(2);
      await page.close();
    } finally {
      await server.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
