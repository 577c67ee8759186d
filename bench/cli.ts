// `txkv bench`: runs one or more workloads against txkv (or a peer) and prints a table or JSON.
// Entry of the CLI subcommand (runBenchCli) and runnable as `node dist/bench/cli.js`.
// Without --endpoint it starts a server itself (txkv: in-process, on a temp dir) and stops it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AdapterSpec } from './adapter.js';
import { benchSplitPoints } from './data.js';
import { createAdapter } from './adapters/index.js';
import { formatTable } from './generator.js';
import { startPeer, type RunningPeer } from './peers.js';
import { runSuite, type SuiteReport } from './suite.js';
import { WORKLOAD_NAMES, workloadByName } from './workloads/index.js';

const SYSTEMS = ['txkv', 'etcd', 'redis', 'postgres'] as const;
type System = (typeof SYSTEMS)[number];

export const USAGE = `usage: txkv bench --workload NAME[,NAME...] [options]
  --workload W        ${WORKLOAD_NAMES.join(', ')} (comma-separated for several; 'all' for every one)
  --system S          ${SYSTEMS.join(', ')} (default txkv)
  --endpoint URL      the system to drive: ws://host:port (txkv), http://host:port (etcd),
                      redis://host:port, postgres://user@host:port/db
  --start-server      start the system on loopback with a temp data dir (default without --endpoint;
                      txkv runs in this process)
  --shards N          shards of a started txkv server (default 2)
  --durability D      durability of a started txkv server: fsync (default) or buffered
  --clients N         concurrent client loops (default: 1 for w1, 100 otherwise)
  --seconds S         measured seconds per workload (default 10)
  --warmup S          seconds run before measuring (default 1)
  --rows N            preloaded keyspace size (meta: files) (default 1000000)
  --no-load           skip the preload (keyspace already loaded)
  --rate N            pace the clients to N transactions/s in total (latency from the intended
                      start, so queueing counts); default: as fast as they go
  --procs N           generator processes (default 1; 0 = inside this process)
  --pool N            txkv connectionPoolSize per generator process
  --seed N            PRNG seed (default 1)
  --verify            check every value read and, for meta, the namespace afterwards
  --json              print the reports as JSON (one array)
  --quiet             no progress line on stderr`;

function parseSpec(system: System, endpoint: string, pool: number | undefined): AdapterSpec {
  switch (system) {
    case 'txkv':
      return { system, endpoint, ...(pool !== undefined ? { connectionPoolSize: pool } : {}) };
    case 'etcd':
      return { system, url: endpoint };
    case 'redis': {
      const u = new URL(endpoint);
      return { system, host: u.hostname || '127.0.0.1', port: Number(u.port || 6379) };
    }
    case 'postgres': {
      const u = new URL(endpoint);
      return { system, host: u.hostname || '127.0.0.1', port: Number(u.port || 5432), user: decodeURIComponent(u.username || 'postgres'), database: u.pathname.slice(1) || 'postgres' };
    }
  }
}

function intOpt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got '${v}'`);
  return n;
}

/** Runs `txkv bench` with `argv` (the arguments after `bench`); resolves to the exit code. */
export async function runBenchCli(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        workload: { type: 'string', short: 'w' },
        system: { type: 'string', default: 'txkv' },
        endpoint: { type: 'string' },
        'start-server': { type: 'boolean', default: false },
        shards: { type: 'string' },
        durability: { type: 'string', default: 'fsync' },
        clients: { type: 'string', short: 'c' },
        seconds: { type: 'string', short: 's' },
        warmup: { type: 'string' },
        rows: { type: 'string' },
        'no-load': { type: 'boolean', default: false },
        procs: { type: 'string' },
        rate: { type: 'string' },
        pool: { type: 'string' },
        seed: { type: 'string' },
        verify: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  let workloads;
  let o;
  try {
    if (!args.workload) throw new Error('--workload is required');
    const names = args.workload === 'all' ? WORKLOAD_NAMES : args.workload.split(',');
    workloads = names.map((n) => workloadByName(n.trim()));
    const system = args.system as System;
    if (!SYSTEMS.includes(system)) throw new Error(`--system: one of ${SYSTEMS.join(', ')}`);
    o = {
      system,
      shards: intOpt(args.shards, 'shards', 2),
      clients: args.clients !== undefined ? intOpt(args.clients, 'clients', 1) : undefined,
      seconds: intOpt(args.seconds, 'seconds', 10),
      warmup: intOpt(args.warmup, 'warmup', 1),
      rows: intOpt(args.rows, 'rows', 1_000_000),
      procs: intOpt(args.procs, 'procs', 1),
      pool: args.pool !== undefined ? intOpt(args.pool, 'pool', 1) : undefined,
      seed: intOpt(args.seed, 'seed', 1),
      rate: args.rate !== undefined ? intOpt(args.rate, 'rate', 0) : undefined,
    };
    if (args.durability !== 'fsync' && args.durability !== 'buffered') throw new Error('--durability: fsync or buffered');
    if (args.endpoint && args['start-server']) throw new Error('--endpoint and --start-server exclude each other');
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }

  const progress = !args.quiet;
  let spec: AdapterSpec;
  let stop: () => Promise<void> = async () => undefined;
  try {
    if (args.endpoint) {
      spec = parseSpec(o.system, args.endpoint, o.pool);
    } else if (o.system === 'txkv') {
      const { startServer } = await import('../src/index.js');
      const dataDir = mkdtempSync(join(tmpdir(), 'txkv-bench-'));
      const durability = args.durability as 'fsync' | 'buffered';
      const server = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: o.shards, splitPoints: benchSplitPoints(o.rows, o.shards), durability, logLevel: 'error' });
      if (progress) process.stderr.write(`[bench] txkv server (in-process) on ${server.url}, ${o.shards} shard(s), durability ${durability}, data in ${dataDir}\n`);
      spec = { system: 'txkv', endpoint: server.url, durability, ...(o.pool !== undefined ? { connectionPoolSize: o.pool } : {}) };
      stop = async () => {
        await server.close();
        rmSync(dataDir, { recursive: true, force: true });
      };
    } else {
      const started = await startPeer(o.system, o.shards, o.rows);
      if (!started.ok) throw new Error(`cannot start ${o.system}: ${started.reason}`);
      const peer: RunningPeer = started.peer;
      if (progress) process.stderr.write(`[bench] started ${peer.version}\n`);
      spec = peer.spec;
      stop = () => peer.stop();
    }
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 1;
  }

  const reports: SuiteReport[] = [];
  let failed = false;
  try {
    const loaded = new Set<string>();
    for (const workload of workloads) {
      const adapter = await createAdapter(spec);
      const load = !args['no-load'] && !loaded.has(workload.keyspace);
      loaded.add(workload.keyspace);
      reports.push(
        await runSuite(adapter, spec, {
          workload,
          ...(o.clients !== undefined ? { clients: o.clients } : {}),
          seconds: o.seconds,
          warmupSeconds: o.warmup,
          rows: o.rows,
          seed: o.seed,
          verify: args.verify,
          procs: o.procs,
          progress,
          load,
          ratePerSec: o.rate,
        }),
      );
    }
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).stack ?? (err as Error).message}\n`);
    failed = true;
  } finally {
    await stop().catch((err: unknown) => process.stderr.write(`bench: stopping the server failed: ${(err as Error).message}\n`));
  }
  if (args.json) process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
  else if (reports.length > 0) process.stdout.write(formatTable(reports) + '\n');
  const hadErrors = reports.some((r) => Object.keys(r.errors).length > 0);
  return failed ? 1 : hadErrors ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runBenchCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
