// `txkv bench`: hands over to the benchmark CLI (bench/cli.ts, built to dist/bench/).
import { UsageError } from './args.js';

const USAGE = 'usage: txkv bench --workload NAME [options]   (txkv bench --help for all options)\n';

export async function bench(argv: string[]): Promise<number> {
  // a variable specifier: the bench folder is optional in an installed package
  const spec = '../../bench/cli.js';
  let mod: { runBenchCli?: (argv: string[]) => Promise<number> };
  try {
    mod = (await import(spec)) as typeof mod;
  } catch (err) {
    throw new UsageError(`the benchmark is not available in this installation (${(err as Error).message})`, USAGE);
  }
  if (typeof mod.runBenchCli !== 'function') throw new UsageError('bench/cli.js does not export runBenchCli', USAGE);
  return mod.runBenchCli(argv);
}
