// `txkv shell`: an interactive shell in the manner of fdbcli (node:readline: history,
// tab completion). Outside `begin` every statement is its own transaction; between
// `begin` and `commit`/`rollback` statements share one transaction (reads see its
// writes, conflicts are checked at commit). Reads stdin line by line when it is not a
// terminal, so scripts and tests can pipe commands in.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Database } from '../client/database.js';
import type { Transaction } from '../client/transaction.js';
import { TxnError } from '../errors.js';
import { parseFlags, wantsHelp } from './args.js';
import { formatBytes, parseBytesArg } from './bytes-arg.js';
import { caOf, CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';
import { fetchStatus, formatStatus } from './status.js';
import { DEFAULT_RANGE_LIMIT } from '../keys/ranges.js';

/** The longest `watch KEY SECONDS` (setTimeout's 2^31-1 ms). */
const MAX_WATCH_SECONDS = 2_147_483;

const COMMANDS: [string, string, string][] = [
  ['get', 'get KEY', 'value of KEY'],
  ['set', 'set KEY VALUE', 'write KEY'],
  ['clear', 'clear KEY', 'delete KEY'],
  ['clearrange', 'clearrange BEGIN END', 'delete every key in [BEGIN, END)'],
  ['getrange', 'getrange BEGIN [END] [LIMIT]', `rows of [BEGIN, END) (END default \\xff, LIMIT default ${DEFAULT_RANGE_LIMIT}, also for 0, as in the SDK and the HTTP API)`],
  ['getrangekeys', 'getrangekeys BEGIN [END] [LIMIT]', 'keys only'],
  ['watch', 'watch KEY [SECONDS]', 'wait until KEY changes (at most SECONDS, default 60), print its new value'],
  ['begin', 'begin', 'start a transaction: the following statements share it'],
  ['commit', 'commit', 'commit the transaction begun with begin'],
  ['rollback', 'rollback', 'discard the transaction begun with begin'],
  ['getversion', 'getversion', 'the read version (of the open transaction, or a fresh one)'],
  ['status', 'status [json]', 'server status'],
  ['history', 'history', 'commands typed in this session'],
  ['help', 'help [COMMAND]', 'this list'],
  ['exit', 'exit', 'leave (also quit, Ctrl-D); an open transaction is rolled back'],
];

/**
 * Words past a command's syntax are an error, not dropped: `set greeting hello world`
 * stored "hello" and said "committed". The syntax's words ([optional] ones included) are
 * the most a command takes; reset and quit as their twins.
 */
function checkWordCount(cmd: string, words: string[]): void {
  const name = cmd === 'reset' ? 'rollback' : cmd === 'quit' ? 'exit' : cmd;
  const syntax = COMMANDS.find(([n]) => n === name)?.[1];
  if (syntax === undefined) return; // unknown: said below
  const most = syntax.split(' ').length;
  if (words.length <= most) return;
  const extra = words.slice(most).map((x) => JSON.stringify(x)).join(' ');
  throw new Error(`${cmd} takes ${syntax.slice(name.length).trim() || 'nothing'}; extra: ${extra} (quote a value with spaces: set KEY "hello world")`);
}

const HELP = COMMANDS.map(([, syntax, what]) => `  ${syntax.padEnd(34)}${what}`).join('\n');

export const USAGE = `usage: txkv shell [--exec "CMD; CMD; ..."] [client options]

An interactive shell against a txkv server, like fdbcli. Commands:
${HELP}

Keys and values: plain words, "double quoted" or 'single quoted' text, \\xNN escapes for any
byte (\\\\ for a backslash); with --hex, hex. Binary keys are printed escaped the same way.
Outside begin/commit every statement is its own transaction. Without a terminal, commands
are read from stdin one per line; --exec runs the given commands (separated by ;) and exits.
History is kept in ~/.txkv_history on a terminal.

${CLIENT_USAGE}`;

/** Splits a command line into words: whitespace-separated, quotes group, escapes stay for parseBytesArg. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && line[i + 1] === quote) {
        cur += quote;
        i++;
      } else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      if (c === '\\' && i + 1 < line.length) {
        cur += c + line[i + 1]!;
        i++;
      } else cur += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote`);
  if (inWord) out.push(cur);
  return out;
}

export interface ShellOptions {
  db: Database;
  endpoint: string;
  token: string | undefined;
  /** --ca-file's PEM, for `status` over https://. */
  ca?: Uint8Array;
  hex: boolean;
  write: (s: string) => void;
}

/** The shell's state and commands, apart from readline (so it can be driven by tests too). */
export class Shell {
  private tx: Transaction | null = null;
  readonly history: string[] = [];
  failures = 0;

  constructor(private readonly o: ShellOptions) {}

  get inTransaction(): boolean {
    return this.tx !== null;
  }

  private fmt(b: Uint8Array): string {
    return this.o.hex ? formatBytes(b, true) : `\`${formatBytes(b, false)}'`;
  }

  private arg(words: string[], i: number, what: string): Uint8Array {
    const w = words[i];
    if (w === undefined) throw new Error(`missing ${what}`);
    return parseBytesArg(w, this.o.hex, what);
  }

  /** Runs fn in the open transaction, or in a fresh one committed right after (retried on conflicts). */
  private async statement<T>(fn: (tx: Transaction) => Promise<T>, writes: boolean): Promise<T> {
    if (this.tx) return fn(this.tx);
    if (!writes) return fn(this.o.db.createTransaction());
    return this.o.db.transact(fn);
  }

  /** Runs one line; returns false when the shell should exit. */
  async run(line: string): Promise<boolean> {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) return true;
    this.history.push(trimmed);
    let words: string[];
    try {
      words = tokenize(trimmed);
    } catch (err) {
      this.error(err);
      return true;
    }
    const cmd = words[0]!.toLowerCase();
    const w = this.o.write;
    try {
      checkWordCount(cmd, words);
      switch (cmd) {
        case 'get': {
          const key = this.arg(words, 1, 'KEY');
          const v = await this.statement((tx) => tx.get(key), false);
          w(v === null ? `${this.fmt(key)}: not found\n` : `${this.fmt(key)} is ${this.fmt(v)}\n`);
          break;
        }
        case 'set': {
          const key = this.arg(words, 1, 'KEY');
          const value = this.arg(words, 2, 'VALUE');
          await this.statement(async (tx) => tx.set(key, value), true);
          w(this.tx ? `${this.fmt(key)} set (in the transaction)\n` : `committed: ${this.fmt(key)} set\n`);
          break;
        }
        case 'watch': {
          if (this.tx) throw new Error('watch waits outside a transaction: commit or rollback first');
          const key = this.arg(words, 1, 'KEY');
          const secs = words[2] === undefined ? 60 : Number(words[2]);
          // setTimeout holds at most 2^31-1 ms: a longer wait (or Infinity) fired after 1 ms and
          // said "no change within 1e9 s" at once
          if (!(secs > 0) || secs > MAX_WATCH_SECONDS) throw new Error(`SECONDS must be a positive number up to ${MAX_WATCH_SECONDS} (24 days), got ${JSON.stringify(words[2])}`);
          const watch = this.o.db.watch(key);
          let timer: NodeJS.Timeout | undefined;
          const changed = await Promise.race([
            Promise.resolve(watch).then(() => true),
            new Promise<false>((resolve) => {
              timer = setTimeout(() => resolve(false), secs * 1000);
            }),
          ]);
          clearTimeout(timer);
          if (!changed) {
            watch.cancel();
            w(`${this.fmt(key)}: no change within ${secs} s\n`);
            break;
          }
          const v = await this.o.db.createReadOnlyTransaction().get(key);
          w(v === null ? `${this.fmt(key)} changed: now absent\n` : `${this.fmt(key)} changed: now ${this.fmt(v)}\n`);
          break;
        }
        case 'clear': {
          const key = this.arg(words, 1, 'KEY');
          await this.statement(async (tx) => tx.clear(key), true);
          w(this.tx ? `${this.fmt(key)} cleared (in the transaction)\n` : `committed: ${this.fmt(key)} cleared\n`);
          break;
        }
        case 'clearrange': {
          const begin = this.arg(words, 1, 'BEGIN');
          const end = this.arg(words, 2, 'END');
          await this.statement(async (tx) => tx.clearRange(begin, end), true);
          w(`${this.tx ? '' : 'committed: '}range [${this.fmt(begin)}, ${this.fmt(end)}) cleared${this.tx ? ' (in the transaction)' : ''}\n`);
          break;
        }
        case 'getrange':
        case 'getrangekeys': {
          const begin = this.arg(words, 1, 'BEGIN');
          let end: Uint8Array = new Uint8Array([0xff]);
          let limit = DEFAULT_RANGE_LIMIT;
          // as in fdbcli: getrange BEGIN [END] [LIMIT]; one extra word is END (more: checkWordCount)
          if (words[2] !== undefined) end = parseBytesArg(words[2], this.o.hex, 'END');
          // 0 is the default page, as the SDK's limit <= 0 (the spec) and HTTP's limit=0: said
          // in the output, which printed "limit 0" above up to 1,000 rows
          let note = '';
          if (words[3] !== undefined) {
            if (!/^\d+$/.test(words[3])) throw new Error(`LIMIT must be a whole number, got ${JSON.stringify(words[3])}`);
            limit = Number(words[3]);
            if (limit === 0) {
              limit = DEFAULT_RANGE_LIMIT;
              note = ' (0: the default page)';
            }
          }
          const r = await this.statement((tx) => tx.getRange({ key: begin, inclusive: true }, { key: end, inclusive: false }, { limit }), false);
          let out = `range [${this.fmt(begin)}, ${this.fmt(end)}), limit ${limit}${note}:\n`;
          for (const { key, value } of r.kvs) out += cmd === 'getrangekeys' ? `${this.fmt(key)}\n` : `${this.fmt(key)} is ${this.fmt(value)}\n`;
          out += r.hasMore ? `(more rows; ${r.kvs.length} shown)\n` : `(${r.kvs.length} rows)\n`;
          w(out);
          break;
        }
        case 'begin':
          if (this.tx) throw new Error('a transaction is already open: commit or rollback first');
          this.tx = this.o.db.createTransaction();
          w('transaction started\n');
          break;
        case 'commit': {
          if (!this.tx) throw new Error('no transaction is open (begin starts one)');
          const tx = this.tx;
          this.tx = null; // committed or not, the transaction is over (as in fdbcli)
          await tx.commit();
          const v = tx.getCommittedVersion();
          w(v < 0n ? 'committed (nothing was written)\n' : `committed at version ${v}\n`);
          break;
        }
        case 'rollback':
        case 'reset':
          if (!this.tx) throw new Error('no transaction is open');
          this.tx.cancel();
          this.tx = null;
          w('transaction rolled back\n');
          break;
        case 'getversion': {
          const v = await (this.tx ?? this.o.db.createReadOnlyTransaction()).getReadVersion();
          w(`read version ${v}\n`);
          break;
        }
        case 'status': {
          if (words[1] !== undefined && words[1] !== 'json') throw new Error(`status takes [json], got ${JSON.stringify(words[1])}`);
          const s = await fetchStatus(this.o.endpoint, this.o.token, this.o.ca);
          w(words[1] === 'json' ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s as Parameters<typeof formatStatus>[0], this.o.endpoint));
          break;
        }
        case 'history':
          w(this.history.map((h, i) => `${String(i + 1).padStart(4)}  ${h}`).join('\n') + '\n');
          break;
        case 'help': {
          const c = words[1] ? COMMANDS.find(([n]) => n === words[1]) : undefined;
          w(c ? `  ${c[1]}\n    ${c[2]}\n` : `commands:\n${HELP}\nkeys/values: words, "quoted text", \\xNN escapes${this.o.hex ? ', hex (--hex)' : ''}\n`);
          break;
        }
        case 'exit':
        case 'quit':
          return false;
        default:
          throw new Error(`unknown command ${JSON.stringify(cmd)} (type help)`);
      }
    } catch (err) {
      this.error(err);
    }
    return true;
  }

  private error(err: unknown): void {
    this.failures++;
    if (err instanceof TxnError) {
      const hint =
        err.code === 'TOO_OLD'
          ? " (a transaction must finish within the server's MVCC window, mvccWindowMs, 5 s by default: its read version is now too old; the transaction is over: begin again and commit sooner)"
          : this.tx === null && err.code === 'CONFLICT'
            ? ' (the transaction is over; begin again)'
            : '';
      // a transaction whose read version expired cannot go on: later statements would fail the same way
      if (err.code === 'TOO_OLD' && this.tx) {
        this.tx.cancel();
        this.tx = null;
      }
      this.o.write(`ERROR: ${err.code}: ${err.message}${hint}\n`);
    } else this.o.write(`ERROR: ${(err as Error).message}\n`);
  }

  /** Ends the session: an open transaction is rolled back. */
  finish(): void {
    if (this.tx) {
      this.tx.cancel();
      this.tx = null;
      this.o.write('open transaction rolled back (not committed)\n');
    }
  }
}

export function completer(line: string): [string[], string] {
  const words = line.split(/\s+/);
  if (words.length <= 1) {
    const hits = COMMANDS.map(([n]) => n).filter((n) => n.startsWith(line.trimStart()));
    return [hits.length ? hits.map((h) => `${h} `) : COMMANDS.map(([n]) => n), line.trimStart()];
  }
  if (words[0] === 'help' && words.length === 2) {
    const hits = COMMANDS.map(([n]) => n).filter((n) => n.startsWith(words[1]!));
    return [hits, words[1]!];
  }
  return [[], line];
}

const HISTORY_FILE = path.join(os.homedir(), '.txkv_history');

export async function shell(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, exec: { type: 'string', short: 'x' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  const t = clientTarget(p);
  const db = await connectTo(t, 60_000);
  const sh = new Shell({ db, endpoint: t.endpoint, token: t.token, ca: caOf(t), hex: t.hex, write: (s) => process.stdout.write(s) });
  try {
    if (typeof p.flags.exec === 'string') {
      for (const cmd of p.flags.exec.split(';')) if (!(await sh.run(cmd))) break;
      sh.finish();
      return sh.failures > 0 ? 1 : 0;
    }
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
    let history: string[] = [];
    if (tty) {
      try {
        history = fs.readFileSync(HISTORY_FILE, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 1000);
      } catch {
        // no history yet
      }
      process.stdout.write(`txkv shell connected to ${t.endpoint}. Type help for commands, exit to leave.\n`);
    }
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty, completer, history, historySize: 1000 });
    const prompt = (): void => {
      if (!tty) return;
      rl.setPrompt(sh.inTransaction ? 'txkv (tx)> ' : 'txkv> ');
      rl.prompt();
    };
    prompt();
    for await (const line of rl) {
      if (!(await sh.run(line))) break;
      prompt();
    }
    rl.close();
    sh.finish();
    if (tty) {
      try {
        fs.appendFileSync(HISTORY_FILE, sh.history.map((h) => h + '\n').join(''), { mode: 0o600 });
      } catch {
        // history is a convenience
      }
    }
    return !tty && sh.failures > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}

