// `txkv range BEGIN [END]`: the keys of [BEGIN, END) at one read version.
import { parseFlags, intFlag, UsageError, wantsHelp } from './args.js';
import { formatBytes, parseBytesArg } from './bytes-arg.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';
import { DEFAULT_RANGE_LIMIT } from '../keys/ranges.js';
import type { KeySelector, KeyValue, RangeResult, ReadTransaction } from '../client/index.js';

export const USAGE = `usage: txkv range BEGIN [END] [--limit N] [--reverse] [--keys-only] [--json] [client options]

Prints the rows of [BEGIN, END) as "key = value" lines (escaped, or hex with --hex), at one
read version. END defaults to \\xff (the end of the user keyspace). --limit N (default
${DEFAULT_RANGE_LIMIT}, the page size of the SDK, the HTTP API and the shell) caps the rows; "(more rows)"
is printed when the range has more. --json prints one JSON document, the shape of the HTTP
API's GET /v1/range: {"kvs": [{"key", "value"}, ...], "hasMore": true|false}, keys and values
base64url; hasMore true means rows past the last one exist (raise --limit, or continue from
the last key).

${CLIENT_USAGE}`;

/**
 * Up to `limit` rows of [begin, end), page after page in one transaction (one read
 * version). A server page is also cut at about 1 MB, so a single getRange stopped at 12
 * rows of 90 KB values and said "raise --limit" to a user whose --limit was 1000.
 */
async function readRows(tx: ReadTransaction, begin: Uint8Array, end: Uint8Array, limit: number, reverse: boolean): Promise<RangeResult> {
  const kvs: KeyValue[] = [];
  let b: KeySelector = { key: begin, inclusive: true };
  let e: KeySelector = { key: end, inclusive: false };
  for (;;) {
    const page = await tx.getRange(b, e, { limit: limit - kvs.length, reverse });
    kvs.push(...page.kvs);
    if (!page.hasMore || kvs.length >= limit || page.kvs.length === 0) return { kvs, hasMore: page.hasMore };
    const last = page.kvs[page.kvs.length - 1]!.key;
    if (reverse) e = { key: last, inclusive: false };
    else b = { key: last, inclusive: false };
  }
}

export async function range(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, limit: { type: 'string', short: 'n' }, reverse: { type: 'boolean' }, 'keys-only': { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  if (p.positionals.length < 1 || p.positionals.length > 2) throw new UsageError('txkv range needs BEGIN and optionally END', USAGE);
  const t = clientTarget(p);
  const begin = parseBytesArg(p.positionals[0]!, t.hex, 'begin');
  const end = p.positionals[1] !== undefined ? parseBytesArg(p.positionals[1], t.hex, 'end') : new Uint8Array([0xff]);
  const limit = intFlag(p, 'limit', USAGE) ?? DEFAULT_RANGE_LIMIT;
  const db = await connectTo(t);
  try {
    const tx = db.createReadOnlyTransaction();
    const r = await readRows(tx, begin, end, limit > 0 ? limit : DEFAULT_RANGE_LIMIT, p.flags.reverse === true);
    const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.length).toString('base64url');
    if (p.flags.json) {
      process.stdout.write(JSON.stringify({ kvs: r.kvs.map(({ key, value }) => (p.flags['keys-only'] ? { key: b64(key) } : { key: b64(key), value: b64(value) })), hasMore: r.hasMore }) + '\n');
      return 0;
    }
    let out = '';
    for (const { key, value } of r.kvs) {
      if (p.flags['keys-only']) out += formatBytes(key, t.hex) + '\n';
      else out += `${formatBytes(key, t.hex)} = ${formatBytes(value, t.hex)}\n`;
    }
    out += r.hasMore ? `(more rows; ${r.kvs.length} shown, raise --limit)\n` : `(${r.kvs.length} rows)\n`;
    process.stdout.write(out);
    return 0;
  } finally {
    await db.close();
  }
}
