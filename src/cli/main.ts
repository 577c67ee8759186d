// The txkv command line. Reads the environment (TXKV_FAILPOINTS) and flags; the
// modules it calls never do.
import { startServer } from '../server/start-server.js';
import type { ServerConfig } from '../config/server-config.js';

const USAGE = `usage: txkv <command> [options]

commands:
  serve     run the server (txkv serve --help)

txkv serve [--port N] [--host H] [--data-dir DIR] [--shards N] [--readonly]
           [--durability fsync|buffered] [--log-level LEVEL]
`;

function parseServeFlags(argv: string[]): Partial<ServerConfig> {
  const cfg: Partial<ServerConfig> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (): number => {
      const v = value();
      if (!/^\d+$/.test(v)) throw new Error(`${a} needs a whole number, got ${JSON.stringify(v)}`);
      return Number(v);
    };
    switch (a) {
      case '--port':
        cfg.port = int();
        break;
      case '--host':
        cfg.host = value();
        break;
      case '--data-dir':
        cfg.dataDir = value();
        break;
      case '--shards':
        cfg.shards = int();
        break;
      case '--readonly':
        cfg.readonly = true;
        break;
      case '--durability':
        cfg.durability = value() as ServerConfig['durability'];
        break;
      case '--log-level':
        cfg.logLevel = value();
        break;
      default:
        throw new Error(`unknown option ${a}\n\n${USAGE}`);
    }
  }
  return cfg;
}

async function serve(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const server = await startServer(parseServeFlags(argv), { failpoints: process.env.TXKV_FAILPOINTS });
  let signals = 0;
  const stop = (sig: string): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`txkv: second ${sig}: exiting now\n`);
      process.exit(130);
    }
    server.close().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`txkv: shutdown failed: ${err.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return new Promise<number>(() => {}); // runs until a signal
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      process.stderr.write(`txkv: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 1;
  }
}
