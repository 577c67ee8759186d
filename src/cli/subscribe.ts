// `txkv subscribe BEGIN END`: every committed change of [BEGIN, END) as JSON lines.
import { parseFlags, UsageError, wantsHelp } from './args.js';
import { formatBytes, parseBytesArg } from './bytes-arg.js';
import { MAX_VERSION } from '../keys/versions.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';

export const USAGE = `usage: txkv subscribe BEGIN END [--from VERSION] [--count N] [client options]

Prints every committed change of [BEGIN, END), one JSON line per version, in version order:
{"version":"...","mutations":[{"type":"set","key":"k","value":"v"},{"type":"clear","key":"k"},
{"type":"clearRange","key":"b","end":"e"}]} (keys and values escaped, or hex with --hex).
--from VERSION starts after that version (within the server's MVCC window, else TOO_OLD);
--count N stops after N versions. Runs until interrupted otherwise.

${CLIENT_USAGE}`;

export async function subscribe(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, from: { type: 'string' }, count: { type: 'string' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  if (p.positionals.length !== 2) throw new UsageError('txkv subscribe needs BEGIN and END', USAGE);
  const t = clientTarget(p);
  const begin = parseBytesArg(p.positionals[0]!, t.hex, 'begin');
  const end = parseBytesArg(p.positionals[1]!, t.hex, 'end');
  const from = p.flags.from === undefined ? undefined : String(p.flags.from);
  // a version is int64; past it, a usage error (a version past 2^53 is the server's to answer: FUTURE_VERSION)
  if (from !== undefined && (!/^\d+$/.test(from) || from.length > 20 || BigInt(from) > MAX_VERSION)) {
    throw new UsageError(`--from needs a version, 0 to 2^63-1 (9223372036854775807), got ${JSON.stringify(from)}`, USAGE);
  }
  const count = p.flags.count === undefined ? Infinity : Number(p.flags.count);
  if (!(count > 0)) throw new UsageError(`--count needs a positive number, got ${JSON.stringify(p.flags.count)}`, USAGE);
  const db = await connectTo(t);
  try {
    let n = 0;
    for await (const v of db.subscribe(begin, end, { fromVersion: from === undefined ? undefined : BigInt(from) })) {
      const mutations = v.mutations.map((m) =>
        m.type === 'set'
          ? { type: m.type, key: formatBytes(m.key, t.hex), value: formatBytes(m.value!, t.hex) }
          : m.type === 'clear'
            ? { type: m.type, key: formatBytes(m.key, t.hex) }
            : { type: m.type, key: formatBytes(m.key, t.hex), end: formatBytes(m.end!, t.hex) },
      );
      process.stdout.write(JSON.stringify({ version: String(v.version), mutations }) + '\n');
      if (++n >= count) break;
    }
    return 0;
  } finally {
    await db.close();
  }
}
