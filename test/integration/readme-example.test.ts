// The README's client example, run as written (against a test server instead of :7070),
// so the first code a user copies cannot rot.
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

const ROOT = path.resolve(__dirname, '../..');
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

describe('README example', () => {
  it('runs against a live server and prints the page size and hasMore', { timeout: 30_000 }, async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /```ts\n(import \{ connect \} from 'txkv';[\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README has the example').toBeTruthy();
    const code = block!.replace('ws://127.0.0.1:7070', s.server.url);
    // run from the repository root so that 'txkv' resolves through the package's self-reference
    const file = path.join(ROOT, `.readme-example-${process.pid}.mjs`);
    fs.writeFileSync(file, code);
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: ROOT });
      expect(stdout.trim()).toBe('1 false');
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
