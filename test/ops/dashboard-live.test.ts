// The dashboard's live-keys panel in Chromium: the page loads the browser SDK from the
// server (/sdk/...), subscribes to a prefix over its own WebSocket, and renders changes
// as they commit (no polling). Skipped where /usr/bin/chromium is not installed.
import fs from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);

describe.skipIf(!haveChromium)('dashboard live keys in chromium', () => {
  let t: TestServer;
  let browser: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    t = await startTestServer();
    profile = tempDir('txkv-chromium-live');
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
      timeout: 30_000,
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it('follows a prefix and renders sets, atomic adds and clears as they commit', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(t.server.url.replace(/^ws/, 'http') + '/');
    await page.fill('#live-prefix', 'live/');
    await page.click('#live-form button');
    await page.waitForFunction(() => document.getElementById('live-state')?.textContent?.startsWith('following'), undefined, { timeout: 20_000 });
    await new Promise((r) => setTimeout(r, 300)); // the subscription reaches the shards
    await t.db.transact(async (tx) => {
      tx.set('live/a', 'one');
      tx.set('other/x', 'not shown');
    });
    await page.waitForSelector('#live-rows tr[data-key="live/a"]', { timeout: 20_000 });
    expect(await page.textContent('#live-rows tr[data-key="live/a"] td.val')).toBe('one');
    await t.db.transact(async (tx) => tx.add('live/n', new Uint8Array([0x41])));
    await page.waitForSelector('#live-rows tr[data-key="live/n"]', { timeout: 20_000 });
    expect(await page.textContent('#live-rows tr[data-key="live/n"] td.val')).toBe('A');
    await t.db.transact(async (tx) => tx.clear('live/a'));
    await page.waitForFunction(() => !document.querySelector('#live-rows tr[data-key="live/a"]'), undefined, { timeout: 20_000 });
    expect(await page.locator('#live-rows tr').count()).toBe(1);
    expect(await page.textContent('#live-state')).toMatch(/^version \d+$/);
    expect(errors).toEqual([]);
  });
});
