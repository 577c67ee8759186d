// `txkv clear KEY` / `txkv clear --range BEGIN END`: one transaction.
import { parseFlags, UsageError, wantsHelp } from './args.js';
import { parseBytesArg } from './bytes-arg.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';

export const USAGE = `usage: txkv clear KEY [client options]
       txkv clear --range BEGIN END [client options]

Clears KEY, or every key in [BEGIN, END), in one transaction; prints the commit version.

${CLIENT_USAGE}`;

export async function clear(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, range: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  const t = clientTarget(p);
  const n = p.flags.range ? 2 : 1;
  if (p.positionals.length !== n) throw new UsageError(p.flags.range ? 'txkv clear --range needs BEGIN and END' : 'txkv clear needs exactly one KEY', USAGE);
  const args = p.positionals.map((s, i) => parseBytesArg(s, t.hex, i === 0 ? 'key' : 'end'));
  const db = await connectTo(t);
  try {
    const tx = db.createTransaction();
    if (p.flags.range) tx.clearRange(args[0]!, args[1]!);
    else tx.clear(args[0]!);
    await tx.commit();
    process.stdout.write(`committed at version ${tx.getCommittedVersion()}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
