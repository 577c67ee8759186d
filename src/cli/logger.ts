// The server's logger: pino JSON lines, or pino-pretty on a terminal (logFormat
// "auto") or when asked ("pretty"). pino-pretty is a development dependency: where it
// is not installed (e.g. the Docker image) the logs stay JSON.
import { pino, type Logger } from 'pino';
import type { ServerConfig } from '../config/server-config.js';

export async function makeLogger(config: Pick<ServerConfig, 'logLevel' | 'logFormat'>): Promise<Logger> {
  const options = { name: 'txkv', level: config.logLevel };
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  if (pretty) {
    try {
      const { default: pinoPretty } = await import('pino-pretty');
      return pino(options, pinoPretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', sync: true }));
    } catch {
      const logger = pino(options);
      if (config.logFormat === 'pretty') logger.warn({ event: 'PrettyLogsUnavailable' }, 'logFormat "pretty" needs the pino-pretty package; logging JSON');
      return logger;
    }
  }
  return pino(options);
}
