// `txkv serve`: loads the config (defaults < file < TXKV_* < flags), starts the
// server, stops it gracefully on SIGINT/SIGTERM (a second signal, a second or more later, exits at once).
import { loadConfig, maskSecrets } from '../config/load-config.js';
import { startServer } from '../server/start-server.js';
import { StartupError } from '../server/startup-errors.js';
import { parseFlags, wantsHelp } from './args.js';
import { makeLogger } from './logger.js';
import { SERVER_FLAGS, SERVER_FLAGS_USAGE, serverFlags } from './server-flags.js';

export const USAGE = `usage: txkv serve [options]

Runs the server: the binary protocol (WebSocket), the HTTP API, /v1/status, /metrics and
the dashboard (GET /), all on one port.

${SERVER_FLAGS_USAGE}  --new-database             create an empty database where the data directory's layout file
                             says one existed but it is gone (refused without this flag)
Stops gracefully on SIGINT or SIGTERM (in-flight commits drain); another signal a second or
more later exits at once.
`;

/**
 * A signal that arrives this soon after the first is the same request to stop, not a
 * second one: Ctrl-C in a terminal signals the whole foreground process group, and npm
 * (`npm start`, `npx txkv serve`) forwards the signal it got to its child too, so the
 * server gets every Ctrl-C twice within milliseconds. Counted as "exit now", that skipped
 * the graceful stop on every Ctrl-C of `npm start` (exit 130, no drain).
 */
export const REPEAT_SIGNAL_MS = 1000;


/** A start-up error's message with the causes RocksDB and Node keep in err.cause. */
export function startFailureMessage(err: unknown): string {
  if (err instanceof StartupError) return err.message;
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const m = e instanceof Error ? e.message : String(e);
    if (!parts.includes(m)) parts.push(m);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}

export async function serve(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...SERVER_FLAGS, 'new-database': { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  const { config, file } = loadConfig({ file: p.flags.config as string | undefined, env: process.env, flags: serverFlags(p, USAGE) });
  const logger = await makeLogger(config);
  // the first line, before anything that can take long (opening RocksDB, its recovery, the
  // shard threads): a start that stalls says how far it got, and how long Node took to get
  // here (sinceProcessStartMs: the process's start and module loading)
  logger.info(
    { event: 'ServerStarting', pid: process.pid, dataDir: config.dataDir, sinceProcessStartMs: Math.round(performance.now()) },
    `txkv starting (pid ${process.pid}; data in ${config.dataDir})`,
  );
  logger.debug({ event: 'ConfigLoaded', file, config: maskSecrets(config) }, `config: ${file ?? 'defaults'}`);
  // a crash leaves one fatal JSON line behind (then exits as Node would have)
  process.on('uncaughtException', (err) => {
    logger.fatal({ event: 'UncaughtException', err: err.stack ?? String(err) }, 'uncaught exception; exiting');
    process.exit(70);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ event: 'UnhandledRejection', err: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) }, 'unhandled rejection; exiting');
    process.exit(70);
  });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, { logger, failpoints: process.env.TXKV_FAILPOINTS, allowNewDatabase: p.flags['new-database'] === true });
  } catch (err) {
    // Printed once: the log line is the report (main() would print the same message
    // again), with the causes RocksDB keeps in err.cause. Then exit 1 at once: a
    // half-started server (a worker thread, an open handle) must not keep the
    // process alive.
    const message = startFailureMessage(err);
    logger.fatal({ event: 'StartFailed', err: message }, 'txkv could not start');
    if (!logger.isLevelEnabled('fatal')) process.stderr.write(`txkv serve: ${message}\n`);
    process.exit(1);
  }
  let firstSignalAt: number | null = null;
  const stop = (sig: string): void => {
    if (firstSignalAt !== null) {
      if (performance.now() - firstSignalAt < REPEAT_SIGNAL_MS) return; // the same Ctrl-C, delivered twice
      process.stderr.write(`txkv: second ${sig}: exiting now\n`);
      process.exit(130);
    }
    firstSignalAt = performance.now();
    logger.info({ event: 'ShutdownRequested', signal: sig }, `${sig}: stopping`);
    server.close().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ event: 'ShutdownFailed', err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return new Promise<number>(() => {}); // runs until a signal
}
