// The benchmark scripts' command lines: compare.js and http.js list their flags (--help), a
// mistyped flag is one line of error, and http.js counts the 409 conflicts of POST /v1/txn
// apart from failures (it exited 1 on them, though they are contention, not errors).
import { describe, expect, it } from 'vitest';
import { OPTIONS as COMPARE_OPTIONS, runCompare } from '../../bench/compare.js';
import { OPTIONS as HTTP_OPTIONS, runHttpBench, type HttpResult } from '../../bench/http.js';

/** What `fn` writes to stdout and stderr (the scripts' entry points, called in this process: no Node start per call). */
async function captured(fn: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const [w1, w2] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((chunk: string) => ((out.stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((out.stderr += chunk), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), ...out };
  } finally {
    [process.stdout.write, process.stderr.write] = [w1, w2];
  }
}

describe('bench command lines', () => {
  it('compare.js and http.js --help list every flag with its default; a mistyped flag is one line naming it', async () => {
    for (const [script, options, main] of [['compare.js', COMPARE_OPTIONS, runCompare], ['http.js', HTTP_OPTIONS, runHttpBench]] as const) {
      const help = await captured(() => main(['--help']));
      expect(help.code, script).toBe(0);
      expect(help.stdout, script).toMatch(/^usage: node dist\/bench\//);
      for (const name of Object.keys(options)) expect(help.stdout, `${script} --${name}`).toMatch(new RegExp(`^ +(-h, )?--${name}\\b`, 'm'));
      // a default is shown as the value parseArgs gets
      for (const [name, o] of Object.entries(options)) {
        const def = (o as { default?: unknown }).default;
        if (typeof def === 'string' && def !== '') expect(help.stdout, `${script} --${name}`).toContain(`default ${def}`);
      }
      const bad = await captured(() => main(['--secnds', '5']));
      expect(bad.code, script).toBe(1);
      expect(bad.stderr.trim().split('\n'), script).toEqual([expect.stringMatching(/Unknown option '--secnds' \(--help lists the flags\)$/)]);
    }
  });

  it('http.js counts the 409 conflicts of txn apart and exits 0 when nothing else failed', { timeout: 60_000 }, async () => {
    // 4 keys, 16 connections, each transaction reads 9 and writes 1: most of them conflict
    const r = await captured(() => runHttpBench(['--scenarios', 'txn', '--rows', '4', '--connections', '16', '--seconds', '1', '--json']));
    const [txn] = JSON.parse(r.stdout) as HttpResult[];
    expect(txn!.statusCodes['409']).toBeGreaterThan(0);
    expect(txn!.statusCodes['200']).toBeGreaterThan(0);
    expect(r.code).toBe(0);
    expect(txn!.conflicts).toBe(txn!.statusCodes['409']);
    expect(txn!.failed).toBe(0);
  });
});
