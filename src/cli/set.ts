// `txkv set KEY VALUE`: one write, one transaction.
import { parseFlags, UsageError, wantsHelp } from './args.js';
import { parseBytesArg } from './bytes-arg.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';

export const USAGE = `usage: txkv set KEY VALUE [client options]

Writes VALUE under KEY in its own transaction and prints the commit version.

${CLIENT_USAGE}`;

export async function set(argv: string[]): Promise<number> {
  const p = parseFlags(argv, CLIENT_FLAGS, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  if (p.positionals.length !== 2) throw new UsageError('txkv set needs KEY and VALUE', USAGE);
  const t = clientTarget(p);
  const key = parseBytesArg(p.positionals[0]!, t.hex, 'key');
  const value = parseBytesArg(p.positionals[1]!, t.hex, 'value');
  const db = await connectTo(t);
  try {
    const tx = db.createTransaction();
    tx.set(key, value);
    await tx.commit();
    process.stdout.write(`committed at version ${tx.getCommittedVersion()}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
