// `txkv import`: loads a txkv-kvdump (e.g. a FoundationDB keyspace written by
// integrations/3fs/migrate/fdb_dump.py) into txkv in parallel, then verifies txkv against
// the dump (count + SHA-256 + row by row). --verify-only only verifies.
import { connect } from '../client/database.js';
import { checkDump, loadDump, verifyDump, type Progress, type VerifyResult } from '../migrate/import.js';
import { DumpError } from '../migrate/kvdump.js';
import { intFlag, parseFlags, stringFlag, UsageError, wantsHelp } from './args.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget } from './client-options.js';

export const USAGE = `usage: txkv import --in FILE [--parallel N] [--batch-bytes N] [--no-verify | --verify-only] [--ca-file PEM] [client options]

Loads a txkv-kvdump file (format: integrations/3fs/migrate/README.md; FoundationDB's
keyspace is dumped into one by integrations/3fs/migrate/fdb_dump.py) into txkv.
  1. check   the whole dump is read first: magic, lengths, ascending keys, record count
             and SHA-256 against its trailer. A truncated or corrupt dump writes nothing.
  2. load    records in transactions of about --batch-bytes (default 500000), --parallel
             (default 8) in flight, progress on stderr every second. Blind writes, safe to
             run again after a failure; not atomic as a whole.
  3. verify  reads the dump's range [begin, end) back from txkv and compares it row by row:
             count, SHA-256, and the first differences (missing, extra, value). Exit 3 when
             txkv differs from the dump.
--verify-only skips 1 and 2 (the dual-read check of a migrated cluster against a fresh dump).

${CLIENT_USAGE}`;

const hexKey = (k: Uint8Array): string => {
  const s = Buffer.from(k).toString('latin1');
  return /^[\x20-\x7e]*$/.test(s) ? JSON.stringify(s) : `0x${Buffer.from(k).toString('hex')}`;
};

function progressLine(p: Progress): string {
  const s = p.elapsedMs / 1000;
  const rate = s > 0 ? Math.round(p.rows / s) : 0;
  const total = p.totalRows > 0 ? `/${p.totalRows}` : '';
  const pct = p.totalRows > 0 ? ` (${Math.floor((100 * p.rows) / p.totalRows)}%)` : '';
  const eta = p.totalRows > 0 && rate > 0 ? `, ETA ${Math.ceil((p.totalRows - p.rows) / rate)} s` : '';
  const mb = p.bytes > 0 ? `, ${(p.bytes / 1e6).toFixed(1)} MB` : '';
  return `import ${p.phase}: ${p.rows}${total} rows${pct}${mb}, ${rate} rows/s${eta}\n`;
}

function report(v: VerifyResult): string {
  const lines = [
    `verify: txkv holds ${v.rows} rows in the dump's range, sha256 ${v.sha256}; the dump has ${v.expected.count} rows, sha256 ${v.expected.sha256}: ${v.match ? 'MATCH' : 'DIFFERENT'} (${v.verifyMs} ms)`,
  ];
  if (v.differenceCount > 0) {
    lines.push(`verify: ${v.differenceCount} differences; the first ${v.differences.length}:`);
    for (const d of v.differences) lines.push(`  ${d.kind.padEnd(7)} ${hexKey(d.key)}`);
  }
  return lines.join('\n') + '\n';
}

export async function importDump(argv: string[]): Promise<number> {
  const p = parseFlags(
    argv,
    {
      ...CLIENT_FLAGS,
      in: { type: 'string', short: 'i' },
      parallel: { type: 'string' },
      'batch-bytes': { type: 'string' },
      'no-verify': { type: 'boolean' },
      'verify-only': { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
    },
    USAGE,
  );
  if (wantsHelp(p, USAGE)) return 0;
  const file = stringFlag(p, 'in');
  if (!file || p.positionals.length > 0) throw new UsageError('txkv import needs --in FILE (and no other arguments)', USAGE);
  if (p.flags['no-verify'] && p.flags['verify-only']) throw new UsageError('--no-verify and --verify-only exclude each other', USAGE);
  const parallel = intFlag(p, 'parallel', USAGE) ?? 8;
  const batchBytes = intFlag(p, 'batch-bytes', USAGE) ?? 500_000;
  if (parallel < 1 || parallel > 256) throw new UsageError('--parallel must be 1..256', USAGE);
  if (batchBytes < 1 || batchBytes > 9_000_000) throw new UsageError('--batch-bytes must be 1..9000000 (txkv transactions are at most 10 MB)', USAGE);
  const onProgress = p.flags.quiet ? undefined : (pr: Progress) => process.stderr.write(progressLine(pr));

  const t = clientTarget(p);
  let checked: Awaited<ReturnType<typeof checkDump>> | undefined;
  try {
    if (!p.flags['verify-only']) checked = await checkDump(file, { onProgress }); // before connecting: a bad dump needs no server
  } catch (err) {
    if (err instanceof DumpError) {
      process.stderr.write(`txkv import: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const db = await connect({
    endpoints: t.endpoints,
    token: t.token,
    caFile: t.caFile,
    connectionPoolSize: Math.min(parallel, 8),
    transactionTimeoutMs: 60_000,
  });
  try {
    if (!p.flags['verify-only']) {
      const r = await loadDump(db, file, { parallel, batchBytes, onProgress, checked });
      const s = r.loadMs / 1000;
      process.stdout.write(
        `loaded ${r.rows} rows (${(r.bytes / 1e6).toFixed(1)} MB of keys and values, dump read version ${r.header.readVersion}) ` +
          `in ${r.transactions} transactions, ${s.toFixed(1)} s: ${Math.round(r.rows / Math.max(s, 0.001))} rows/s, ${r.retries} retries\n`,
      );
    }
    if (p.flags['no-verify']) return 0;
    const v = await verifyDump(db, file, { onProgress });
    process.stdout.write(report(v));
    return v.match ? 0 : 3;
  } catch (err) {
    if (err instanceof DumpError) {
      process.stderr.write(`txkv import: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await db.close();
  }
}
