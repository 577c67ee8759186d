// The txkv command line: one file per subcommand in this folder. Only the CLI reads
// the environment (TXKV_*, via config/load-config.ts and client-options.ts) and flags;
// the modules it calls never do.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.js';
import { RECOMMENDED_OPEN_FILES } from '../server/fd-limit.js';

/** The version in txkv's package.json (the first one named txkv above this file, from src/ or dist/). */
function packageVersion(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'txkv') return pkg.version ?? 'unknown';
    } catch {
      // no package.json here
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

export const USAGE = `usage: txkv <command> [options]      (txkv <command> --help for its options; txkv --version)

server:
  serve      run the server (config file, TXKV_* environment, flags)
  config     config --print: the effective server config, tokens masked
client:
  shell      interactive shell (get/set/clear/getrange, begin/commit/rollback, status)
  status     server status: versions, shards and their load, conflict rate, latency
  get        get KEY
  set        set KEY VALUE
  clear      clear KEY | clear --range BEGIN END
  range      range BEGIN [END] [--limit N]
  watch      watch KEY: wait for its value to change, print the new value
  subscribe  subscribe BEGIN END: every committed change of the range, as JSON lines
  backup     consistent snapshot of a key range at one read version, to a file
  restore    write a backup file back
  import     load a txkv-kvdump (e.g. from FoundationDB) in parallel, then verify it
  bench      benchmark workloads (bench/)
  shard      shard split KEY | merge KEY | move BEGIN WORKER | map: key ranges on workers
`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.js')).serve,
  config: async () => (await import('./config.js')).config,
  shell: async () => (await import('./shell.js')).shell,
  status: async () => (await import('./status.js')).status,
  get: async () => (await import('./get.js')).get,
  set: async () => (await import('./set.js')).set,
  clear: async () => (await import('./clear.js')).clear,
  range: async () => (await import('./range.js')).range,
  watch: async () => (await import('./watch.js')).watch,
  subscribe: async () => (await import('./subscribe.js')).subscribe,
  backup: async () => (await import('./backup.js')).backup,
  restore: async () => (await import('./restore.js')).restore,
  import: async () => (await import('./import.js')).importDump,
  bench: async () => (await import('./bench.js')).bench,
  shard: async () => (await import('./shard.js')).shard,
};

/** The soft open-files limit as /proc/self/limits says it ('unlimited' or a count), or '' (not Linux, or no descriptor left to read it). */
function openFilesLimit(): string {
  try {
    return /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}

/**
 * Under a very low open-files limit even loading the command's modules fails (Node opens
 * them in parallel): say which limit it is and how to raise it, not only the file. The
 * failure is EMFILE, or, when the descriptors ran out while Node read a package's
 * package.json, ERR_MODULE_NOT_FOUND naming a package that is installed (the CI run of
 * 20362ce: "Cannot find package '.../node_modules/jsonc-parser/index.js'" at 64 files;
 * 2 of 5 starts here). For the latter the limit is read once the other loads have let
 * their descriptors go (up to ~200 ms), and the hint given only when it is below 256.
 */
async function openFilesHint(e: { code?: string }): Promise<string> {
  if (e.code !== 'EMFILE' && e.code !== 'ERR_MODULE_NOT_FOUND') return '';
  let limit = openFilesLimit();
  for (let i = 0; limit === '' && i < 10; i++) {
    await new Promise((r) => setTimeout(r, 20));
    limit = openFilesLimit();
  }
  if (e.code === 'ERR_MODULE_NOT_FOUND' && !(/^\d+$/.test(limit) && Number(limit) < RECOMMENDED_OPEN_FILES)) return '';
  return ` (the open-files limit${limit ? `, ${limit},` : ''} is too low: txkv needs at least ${RECOMMENDED_OPEN_FILES}; raise it with ulimit -n, or LimitNOFILE= in systemd)`;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`txkv ${packageVersion()}\n`);
    return 0;
  }
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    if (cmd === 'help' && rest[0] && COMMANDS[rest[0]]) return (await COMMANDS[rest[0]]!())(['--help']);
    // no command is a usage error (2, as every other one), the usage on stderr
    if (cmd !== undefined) process.stdout.write(USAGE);
    else process.stderr.write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  // A reader that goes away (txkv range ... | head) closes the pipe: the next write fails
  // EPIPE, emitted on stdout, which crashed the CLI with Node's 'Unhandled error event' and a
  // stack trace. Like any Unix tool, stop quietly then. Not for serve: its log is stdout,
  // and a server does not exit because a log reader did.
  if (cmd !== 'serve') {
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(process.exitCode ?? 0);
    });
  }
  const load = COMMANDS[cmd];
  if (!load) {
    process.stderr.write(`txkv: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`txkv ${cmd}: ${err.message}`);
      return 2;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`txkv ${cmd}: ${e.name === 'TxnError' ? `${e.code}: ` : ''}${e.message}${await openFilesHint(e)}\n`);
    return 1;
  }
}
