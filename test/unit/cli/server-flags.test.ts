// `txkv serve` / `txkv config --print` flags: every value a flag cannot take is a usage
// error (exit 2) naming the flag and what it allows, never a config error (exit 1) that
// names the setting ("command line: port: expected at most 65535") or a value taken silently.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError } from '../../../src/cli/args.js';
import { SERVER_FLAGS, serverFlags } from '../../../src/cli/server-flags.js';

const run = promisify(execFile);
const BIN = path.resolve(__dirname, '../../../bin/txkv.js');

function usageErrorOf(argv: string[]): string {
  try {
    serverFlags(parseFlags(argv, SERVER_FLAGS, 'USAGE'), 'USAGE');
  } catch (e) {
    expect(e, argv.join(' ')).toBeInstanceOf(UsageError);
    return (e as Error).message.split('\n')[0]!;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('server flags', () => {
  it('a value out of its setting’s range or set is a usage error naming the flag and the allowed values', () => {
    const cases: [string[], string][] = [
      [['--port', 'abc'], '--port must be a whole number from 0 to 65535, got "abc"'],
      [['--port', '65536'], '--port must be a whole number from 0 to 65535, got "65536"'],
      [['--port=-1'], '--port must be a whole number from 0 to 65535, got "-1"'],
      [['--shards', '65'], '--shards must be a whole number from 0 to 64, got "65"'],
      [['--shards', '1.5'], '--shards must be a whole number from 0 to 64, got "1.5"'],
      [['--mvcc-window-ms', '5'], '--mvcc-window-ms must be a whole number, at least 100, got "5"'],
      [['--slow-transaction-ms=-3'], '--slow-transaction-ms must be a whole number, at least 0, got "-3"'],
      [['--durability', 'sometimes'], '--durability must be one of fsync, buffered, got "sometimes"'],
      [['--log-level', 'loud'], '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
      [['--log-format', 'xml'], '--log-format must be one of auto, json, pretty, got "xml"'],
      [['--etcd', 'etcd-1:2379'], '--etcd must be URLs like http://host:2379, comma-separated, got "etcd-1:2379"'],
      [['--etcd', 'http://e:2379', '--node-id', 'a b'], `--node-id must be 1-64 letters, digits, '.', '_' or '-', not starting with a symbol, got "a b"`],
      [['--etcd', 'http://e:2379', '--advertise', 'kv-2:7070'], '--advertise must be a URL like ws://HOST:PORT, got "kv-2:7070"'],
      [['--host', ''], '--host needs a value (a non-empty string), got an empty string'],
      [['--data-dir', ''], '--data-dir needs a value (a non-empty string), got an empty string'],
      [['--node-id', ''], `--node-id needs a value (1-64 letters, digits, '.', '_' or '-', not starting with a symbol), got an empty string`],
      [['--token-file', ''], '--token-file needs a value (a file name), got an empty string'],
    ];
    for (const [argv, message] of cases) expect(usageErrorOf(argv), argv.join(' ')).toBe(message);
  });

  it('good values pass through unchanged', () => {
    const cfg = serverFlags(
      parseFlags(['--port', '0', '--shards', '64', '--durability', 'buffered', '--etcd', 'http://a:2379,http://b:2379', '--node-id', 'kv-1', '--advertise', 'wss://kv-1:7070'], SERVER_FLAGS, 'U'),
      'U',
    );
    expect(cfg).toMatchObject({ port: 0, shards: 64, durability: 'buffered', cluster: { etcdEndpoints: ['http://a:2379', 'http://b:2379'], nodeId: 'kv-1', advertiseUrl: 'wss://kv-1:7070' } });
  });

  it('txkv serve and txkv config --print exit 2 on --port 65536 (it was 1, and --port abc 2)', { timeout: 30_000 }, async () => {
    for (const cmd of [['serve'], ['config', '--print']]) {
      const r = await run(process.execPath, [BIN, ...cmd, '--port', '65536'], { timeout: 20_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(r.code, cmd.join(' ')).toBe(2);
      expect(r.stderr).toContain('--port must be a whole number from 0 to 65535, got "65536"');
    }
  });
});
