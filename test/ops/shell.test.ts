// `txkv shell` driven through stdin: statements, multi-statement transactions,
// conflicts, binary keys, history, completion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completer, tokenize } from '../../src/cli/shell.js';
import { startTestServer, text, type TestServer } from '../support/server.js';
import { runShell, type ShellHooks } from '../support/shell.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ shards: 2 });
});
afterAll(async () => {
  await t.close();
});

const shell = (lines: string[], hooks?: ShellHooks) => runShell(t.server.url, lines, hooks);

describe('txkv shell', () => {
  it('runs statements, and begin/commit as one transaction', async () => {
    const { out, code } = await shell([
      'set sh/a 1',
      'begin',
      'get sh/a',
      'set sh/a 2',
      'set sh/b "two words"',
      'get sh/a',
      'getrange sh/ sh0',
      'commit',
      'get sh/a',
      'begin',
      'set sh/c 3',
      'rollback',
      'get sh/c',
      'set sh/\\x00bin \\xff\\x01',
      'getrange sh/ sh0 2',
      'clearrange sh/a sh/b',
      'getrangekeys sh/ sh0',
      'history',
      'exit',
      'get sh/never-run',
    ]);
    expect(code).toBe(0);
    expect(out).toContain("committed: `sh/a' set");
    expect(out).toContain('transaction started');
    expect(out).toContain("`sh/a' set (in the transaction)");
    // reads inside the transaction see its own writes
    expect(out).toContain("`sh/a' is `1'\n`sh/a' set (in the transaction)\n`sh/b' set (in the transaction)\n`sh/a' is `2'");
    expect(out).toContain("range [`sh/', `sh0'), limit 1000:\n`sh/a' is `2'\n`sh/b' is `two words'\n(2 rows)");
    expect(out).toMatch(/committed at version \d+/);
    expect(out).toContain('transaction rolled back');
    expect(out).toContain("`sh/c': not found");
    // binary keys print escaped; the limit cuts the range
    expect(out).toContain("range [`sh/', `sh0'), limit 2:\n`sh/\\x00bin' is `\\xff\\x01'\n`sh/a' is `2'\n(more rows; 2 shown)");
    expect(out).toContain("`sh/\\x00bin'\n`sh/b'\n(2 rows)");
    expect(out).toMatch(/ {3}1 {2}set sh\/a 1\n/);
    expect(out).not.toContain('never-run');
    expect(text(await t.db.createReadOnlyTransaction().get('sh/b'))).toBe('two words');
  });

  it('getrange with LIMIT 0 reads the default page, as the SDK and HTTP do, and says which limit it used (it printed "limit 0")', async () => {
    await t.db.transact(async (tx) => {
      for (const x of ['1', '2', '3']) tx.set(`shlim/${x}`, x);
    });
    const { out, code } = await shell(['getrange shlim/ shlim0 0', 'getrangekeys shlim/ shlim0 0', 'help getrange']);
    expect(code).toBe(0);
    expect(out).toContain("range [`shlim/', `shlim0'), limit 1000 (0: the default page):\n`shlim/1' is `1'\n`shlim/2' is `2'\n`shlim/3' is `3'\n(3 rows)");
    expect(out).toContain("range [`shlim/', `shlim0'), limit 1000 (0: the default page):\n`shlim/1'\n`shlim/2'\n`shlim/3'\n(3 rows)");
    expect(out).toContain('LIMIT default 1000, also for 0');
  });

  it('a transaction whose read was overwritten fails CONFLICT at commit', async () => {
    await t.db.transact(async (tx) => tx.set('sh/x', '0'));
    const { out, code } = await shell(['begin', 'get sh/x', 'set sh/y 1', 'commit', 'get sh/y'], {
      at: 1,
      marker: "`sh/x' is `0'",
      between: () => t.db.transact(async (tx) => tx.set('sh/x', 'changed')),
    });
    expect(out).toContain('ERROR: CONFLICT');
    expect(out).toContain("`sh/y': not found");
    expect(code).toBe(1); // not a terminal: a failed statement makes the exit code 1
  });

  it('reports errors and keeps going', async () => {
    const { out } = await shell(['bogus', 'get', 'commit', 'set "unterminated', 'set \\xff/sys 1', 'help get', 'get sh/a']);
    expect(out).toContain('ERROR: unknown command "bogus"');
    expect(out).toContain('ERROR: missing KEY');
    expect(out).toContain('ERROR: no transaction is open');
    expect(out).toContain('ERROR: unterminated " quote');
    expect(out).toContain('ERROR: INVALID_ARGUMENT');
    expect(out).toContain('get KEY');
  });

  it('words past a command\'s syntax are an error, not dropped (set KEY hello world stored "hello")', async () => {
    const { out } = await shell(['set sh/words hello world', 'get sh/words', 'get sh/words extra', 'begin now', 'set sh/words "hello world"', 'get sh/words']);
    expect(out).toContain('ERROR: set takes KEY VALUE; extra: "world" (quote a value with spaces');
    expect(out).toContain("`sh/words': not found");
    expect(out).toContain('ERROR: get takes KEY; extra: "extra"');
    expect(out).toContain('ERROR: begin takes nothing; extra: "now"');
    expect(out).toContain("`sh/words' is `hello world'");
  });

  it('status inside the shell', async () => {
    const { out } = await shell(['status']);
    expect(out).toMatch(/latest committed version \d+/);
  });

  it('tokenizes quotes and escapes; completes command names', () => {
    expect(tokenize(`set "a b" 'c d' e\\x00f \\\\`)).toEqual(['set', 'a b', 'c d', 'e\\x00f', '\\\\']);
    expect(completer('getr')[0]).toEqual(['getrange ', 'getrangekeys ']);
    expect(completer('help cl')[0]).toEqual(['clear', 'clearrange']);
  });
});
