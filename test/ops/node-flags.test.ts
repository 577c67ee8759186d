// The server process starts with SERVER_NODE_FLAGS (src/server/node-flags.ts): one V8 helper
// thread instead of Node's four. Every way of starting it must pass them, since they cannot be
// set once node runs. Real processes: the thread count comes from /proc.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVER_NODE_FLAGS } from '../../src/server/node-flags.js';
import { freePort, killAllServers, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const ROOT = path.resolve(__dirname, '../..');

afterAll(() => killAllServers());

/** Threads of process `pid` (/proc/PID/task). */
function threads(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/task`).length;
}

describe('the server process starts with SERVER_NODE_FLAGS', () => {
  it('bin/txkv.js, npm start and the Docker image pass them to node', () => {
    const flags = SERVER_NODE_FLAGS.join(' ');
    expect(fs.readFileSync(path.join(ROOT, 'bin/txkv.js'), 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toContain(`exec node ${flags} bin/txkv.js serve`);
    expect(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).toContain(`ENTRYPOINT ["node", ${SERVER_NODE_FLAGS.map((f) => JSON.stringify(f)).join(', ')}, "/app/bin/txkv.js"]`);
  });

  it.skipIf(process.platform !== 'linux')('txkv serve run as a program has three threads fewer than under a bare node (V8 pool of 1, not 4)', async () => {
    const dirs = [tempDir('txkv-flags'), tempDir('txkv-flags')];
    try {
      const [a, b] = await Promise.all([spawnServer(dirs[0]!, await freePort(), { direct: true }), spawnServer(dirs[1]!, await freePort())]);
      const direct = threads(a.proc.pid!);
      const bare = threads(b.proc.pid!);
      for (const c of [a, b]) c.proc.kill('SIGTERM');
      await Promise.all([a.exited, b.exited]);
      expect(bare - direct, `threads: ${direct} run as a program, ${bare} under a bare node`).toBe(3);
    } finally {
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
