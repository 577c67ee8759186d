// `txkv get KEY`: one read at the latest version.
import { parseFlags, UsageError, wantsHelp } from './args.js';
import { formatBytes, parseBytesArg } from './bytes-arg.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';

export const USAGE = `usage: txkv get KEY [--raw] [client options]

Prints the value of KEY (escaped, or hex with --hex; --raw writes the bytes as they are).
Exits 1 when the key is absent.

${CLIENT_USAGE}`;

export async function get(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, raw: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  if (p.positionals.length !== 1) throw new UsageError('txkv get needs exactly one KEY', USAGE);
  const t = clientTarget(p);
  const key = parseBytesArg(p.positionals[0]!, t.hex, 'key');
  const db = await connectTo(t);
  try {
    const value = await db.createReadOnlyTransaction().get(key);
    if (value === null) {
      process.stderr.write(`${formatBytes(key, t.hex)}: not found\n`);
      return 1;
    }
    if (p.flags.raw) process.stdout.write(value);
    else process.stdout.write(formatBytes(value, t.hex) + '\n');
    return 0;
  } finally {
    await db.close();
  }
}
