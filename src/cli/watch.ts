// `txkv watch KEY`: waits until KEY's value changes, then prints the new value.
import { parseFlags, UsageError, wantsHelp } from './args.js';
import { formatBytes, parseBytesArg } from './bytes-arg.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';

export const USAGE = `usage: txkv watch KEY [--forever] [client options]

Waits until the value of KEY differs from its value now, then prints the new value
(escaped, or hex with --hex; "(absent)" when the key was cleared). With --forever, prints
every change until interrupted (a write of the same value is not a change).

${CLIENT_USAGE}`;

export async function watch(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, forever: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  if (p.positionals.length !== 1) throw new UsageError('txkv watch needs exactly one KEY', USAGE);
  const t = clientTarget(p);
  const key = parseBytesArg(p.positionals[0]!, t.hex, 'key');
  const db = await connectTo(t);
  try {
    do {
      // the usual loop: read, watch in the same transaction, wait, read again
      const tx = db.createTransaction();
      await tx.get(key);
      const changed = tx.watch(key);
      await tx.commit();
      await changed;
      const now = await db.createReadOnlyTransaction().get(key);
      process.stdout.write((now === null ? '(absent)' : formatBytes(now, t.hex)) + '\n');
    } while (p.flags.forever);
    return 0;
  } finally {
    await db.close();
  }
}
