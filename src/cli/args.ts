// Flag parsing shared by the subcommands (node:util parseArgs underneath): unknown
// flags and missing values fail with the subcommand's usage.
import { parseArgs } from 'node:util';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export class UsageError extends Error {
  constructor(message: string, readonly usage: string) {
    super(`${message}\n\n${usage}`);
    this.name = 'UsageError';
  }
}

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseFlags(argv: string[], spec: FlagSpec, usage: string): Parsed {
  try {
    const r = parseArgs({ args: argv, options: { ...spec, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { flags: r.values as Parsed['flags'], positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message, usage);
  }
}

/** A whole number flag (undefined when absent). */
export function intFlag(p: Parsed, name: string, usage: string): number | undefined {
  const v = p.flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${name} needs a whole number, got ${JSON.stringify(v)}`, usage);
  return Number(v);
}

export function stringFlag(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** Prints usage and returns true when --help was given. */
export function wantsHelp(p: Parsed, usage: string): boolean {
  if (!p.flags.help) return false;
  process.stdout.write(usage);
  return true;
}
