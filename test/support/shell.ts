// Drives `txkv shell` through stdin, for the shell and operator tests.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/txkv.js');

export interface ShellHooks {
  /** Index of the last line sent before waiting for `marker`. */
  at?: number;
  /** Output that releases the rest of the lines, after `between` resolved. */
  marker?: string;
  between?: () => Promise<void>;
}

/** Runs the shell against `endpoint` with `lines` on stdin; its output (stdout and stderr) and exit code. Fails after 20 s. */
export function runShell(endpoint: string, lines: string[], hooks: ShellHooks = {}): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'shell', '--endpoint', endpoint], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let fired = false;
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`shell did not finish:\n${out}`));
    }, 20_000);
    const rest = hooks.at === undefined ? [] : lines.splice(hooks.at + 1);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!fired && hooks.marker && out.includes(hooks.marker)) {
        fired = true;
        void hooks.between!().then(() => {
          p.stdin.write(rest.join('\n') + '\n');
          p.stdin.end();
        });
      }
    });
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ out, code });
    });
    p.stdin.write(lines.join('\n') + '\n');
    if (hooks.at === undefined) p.stdin.end();
  });
}
