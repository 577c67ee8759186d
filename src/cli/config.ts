// `txkv config --print`: the settings `txkv serve` would run with, given the same
// --config, flags and environment. Token values are masked.
import { configToToml, loadConfig, maskSecrets } from '../config/load-config.js';
import { parseFlags, UsageError, wantsHelp } from './args.js';
import { SERVER_FLAGS, SERVER_FLAGS_USAGE, serverFlags } from './server-flags.js';

export const USAGE = `usage: txkv config --print [--json] [--config FILE] [serve options]

Prints the effective server config (defaults < config file < TXKV_* environment < flags) as
TOML (loadable again with --config) or JSON. Token values are printed as "<redacted>".
A bad file or variable fails here as it would at start-up, naming the key.

  --print        print the effective config
  --json         as JSON instead of TOML
${SERVER_FLAGS_USAGE}`;

export async function config(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...SERVER_FLAGS, print: { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  if (!p.flags.print) throw new UsageError('txkv config needs --print', USAGE);
  const { config: cfg, file } = loadConfig({ file: p.flags.config as string | undefined, env: process.env, flags: serverFlags(p, USAGE) });
  if (p.flags.json) process.stdout.write(JSON.stringify(maskSecrets(cfg), null, 2) + '\n');
  else process.stdout.write(`# effective txkv config (${file ? `file ${file}` : 'no config file'}; environment and flags applied)\n${configToToml(cfg)}`);
  return 0;
}
