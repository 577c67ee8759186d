// Shared launcher for integration tests: a real server (RocksDB, worker threads,
// uWS) on an ephemeral port and a temp data dir, and a client connected to it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { connect, startServer, type Database, type PartialServerConfig, type RunningServer } from '../../src/index.js';

export interface TestServer {
  server: RunningServer;
  db: Database;
  dataDir: string;
  close(): Promise<void>;
}

export function tempDir(tag = 'txkv-test'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
}

export async function startTestServer(config: PartialServerConfig = {}, client: { token?: string } = {}): Promise<TestServer> {
  const dataDir = config.dataDir ?? tempDir();
  const server = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: 4, ...config }, { logger: pino({ level: 'warn' }) });
  const db = await connect({ endpoints: [server.url], token: client.token });
  return {
    server,
    db,
    dataDir,
    close: async () => {
      await db.close();
      await server.close();
      if (!config.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const text = (u: Uint8Array | null): string | null => (u === null ? null : Buffer.from(u).toString());

/**
 * A server in this process on `config.dataDir` (4 shards unless set), its info log kept as
 * JSON lines: for fault tests that restart on the data directory a crashed child left and
 * read RecoveryDone. Recovery is startServer's, as in `txkv serve`; a child's Node start
 * and module loading (~0.6 s of CPU a start) is what this saves.
 */
export async function startLoggedServer(config: PartialServerConfig & { dataDir: string }): Promise<{ server: RunningServer; logs: string[] }> {
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line.trimEnd()) });
  const server = await startServer({ port: 0, host: '127.0.0.1', shards: 4, ...config }, { logger });
  return { server, logs };
}
