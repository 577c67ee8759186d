// `txkv range BEGIN [END]`: the keys of [BEGIN, END) at one read version.
import { parseFlags, intFlag, UsageError, wantsHelp } from './args.js';
import { formatBytes, parseBytesArg } from './bytes-arg.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';

export const USAGE = `usage: txkv range BEGIN [END] [--limit N] [--reverse] [--keys-only] [--json] [client options]

Prints the rows of [BEGIN, END) as "key = value" lines (escaped, or hex with --hex), at one
read version. END defaults to \\xff (the end of the user keyspace). --limit N (default 100)
caps the rows; "(more rows)" is printed when the range has more. --json prints one JSON
object per row with base64 key and value.

${CLIENT_USAGE}`;

export async function range(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, limit: { type: 'string', short: 'n' }, reverse: { type: 'boolean' }, 'keys-only': { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  if (p.positionals.length < 1 || p.positionals.length > 2) throw new UsageError('txkv range needs BEGIN and optionally END', USAGE);
  const t = clientTarget(p);
  const begin = parseBytesArg(p.positionals[0]!, t.hex, 'begin');
  const end = p.positionals[1] !== undefined ? parseBytesArg(p.positionals[1], t.hex, 'end') : new Uint8Array([0xff]);
  const limit = intFlag(p, 'limit', USAGE) ?? 100;
  const db = await connectTo(t);
  try {
    const tx = db.createReadOnlyTransaction();
    const r = await tx.getRange({ key: begin, inclusive: true }, { key: end, inclusive: false }, { limit, reverse: p.flags.reverse === true });
    let out = '';
    for (const { key, value } of r.kvs) {
      if (p.flags.json) out += JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }) + '\n';
      else if (p.flags['keys-only']) out += formatBytes(key, t.hex) + '\n';
      else out += `${formatBytes(key, t.hex)} = ${formatBytes(value, t.hex)}\n`;
    }
    if (!p.flags.json) out += r.hasMore ? `(more rows; ${r.kvs.length} shown, raise --limit)\n` : `(${r.kvs.length} rows)\n`;
    process.stdout.write(out);
    return 0;
  } finally {
    await db.close();
  }
}
