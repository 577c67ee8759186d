// `txkv status`: the server's GET /v1/status, as a summary or as JSON.
import { parseFlags, wantsHelp } from './args.js';
import { answerJson, httpRequest, UnreachableError } from '../client/http-request.js';
import { caOf, CLIENT_FLAGS, CLIENT_USAGE, clientTarget, httpBase } from './client-options.js';

export const USAGE = `usage: txkv status [--json] [client options]

Shows the server's status: version, uptime, durability, latest committed version, MVCC
window, connections, in-flight requests and commits, transaction counts, the recent
(~10 s) commit rate, conflict rate and latency percentiles, every shard with its key
range, load and RocksDB size estimates, RocksDB stats, what recovery did at start-up, and
the data distribution: each worker's ranges with its size and load, the move in progress,
and the recent splits, merges and moves with their reason and duration.
--json prints GET /v1/status as it is.

${CLIENT_USAGE}`;

interface Status {
  version: string;
  uptimeSec: number;
  durability: string;
  readonly: boolean;
  dataDir: string;
  latestCommittedVersion: string;
  mvccWindowMs: number;
  connections: number;
  inflightRequests: number;
  inflightCommits: number;
  transactions: { transactionsStarted: number; committed: number; conflicts: number; aborted: number; gets: number; ranges: number };
  errorsByCode: Record<string, number>;
  recent: null | {
    windowSec: number;
    committedPerSec: number;
    readsPerSec: number;
    conflictRate: number;
    commitLatencyMs: { p50: number | null; p95: number | null; p99: number | null };
    readLatencyMs: { p50: number | null; p95: number | null; p99: number | null };
  };
  shards: {
    shardId: number;
    beginKey: string;
    endKey: string | null;
    utilization: number | null;
    queueDepth: number;
    queued: number;
    commits: number;
    reads: number;
    fsyncs: number;
    estimatedKeys: number | null;
    estimatedBytes: number | null;
  }[];
  storage: {
    disk: { usedBytes: number; sstBytes: number; walBytes: number; fsTotalBytes: number; fsAvailableBytes: number };
    runningCompactions: number | null;
    backgroundErrors: number | null;
    writeStopped: boolean | null;
    blockCacheBytes: number | null;
  };
  process: { cpuPercent: number | null; rssBytes: number; eventLoopLagP99Ms: number | null; walWriteMs: number | null } | null;
  recovery: { lastCommittedVersion: string; decisionRecords: number; partsReplayed: number; ms: number };
  databaseId?: string;
  distribution?: null | {
    map: { version: number };
    move: { id: number; begin: string; end: string | null; from: number; to: number; phase: string; startedMs: number; reason: string } | null;
    splits: number;
    merges: number;
    moves: number;
    movesFailed: number;
    rowsMoved: number;
    bytesMoved: number;
    workers?: {
      worker: number;
      ranges: { beginKey: string; endKey: string | null; movedFrom?: number; bytes?: number | null; readsPerSec?: number | null; writesPerSec?: number | null }[];
      oldReads: { beginKey: string; endKey: string | null }[];
      estimatedKeys: number | null;
      estimatedBytes: number | null;
      utilization: number | null;
      commitsPerSec: number | null;
      readsPerSec: number | null;
    }[];
    history: { kind: string; begin: string; end?: string | null; from?: number; to?: number; reason: string; at: string; ms: number; rows?: number; outcome: string; error?: string }[];
  };
  cluster?: null | {
    nodeId: string;
    role: string;
    leader: string | null;
    appliedVersion: number;
    lastFailoverMs: number | null;
    members: { nodeId: string; role: string; applied: number; lagVersions: number | null }[];
    log: { pending: number; trimmedThrough: number };
  };
}

const dur = (s: number): string => {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${d ? `${d}d ` : ''}${d || h ? `${h}h ` : ''}${d || h || m ? `${m}m ` : ''}${s % 60}s`;
};
const n = (x: number | null | undefined, digits = 0): string => (x === null || x === undefined ? '-' : x.toFixed(digits));
const pad = (s: string, w: number): string => (s.length >= w ? s : s + ' '.repeat(w - s.length));

export function formatStatus(s: Status, endpoint: string): string {
  const lines: string[] = [];
  lines.push(`txkv ${s.version} at ${endpoint}: up ${dur(s.uptimeSec)}, durability ${s.durability}${s.readonly ? ', READ-ONLY' : ''}, data ${s.dataDir}`);
  if (s.databaseId) lines.push(`database ${s.databaseId}`);
  const cl = s.cluster;
  if (cl) {
    lines.push(
      `cluster: node ${cl.nodeId} is ${cl.role}, leader ${cl.leader ?? 'none (election running)'}, applied ${cl.appliedVersion}` +
        `${cl.lastFailoverMs !== null ? `, last take-over here ${cl.lastFailoverMs} ms` : ''}; members ` +
        cl.members.map((m) => `${m.nodeId} ${m.role}${m.lagVersions ? ` lag ${(m.lagVersions / 1000).toFixed(0)} ms` : ''}`).join(', '),
    );
  }
  lines.push(`latest committed version ${s.latestCommittedVersion}, MVCC window ${(s.mvccWindowMs / 1000).toFixed(1)} s`);
  lines.push(`connections ${s.connections}, in flight: ${s.inflightRequests} requests, ${s.inflightCommits} commits`);
  const t = s.transactions;
  lines.push(`transactions: ${t.transactionsStarted} started, ${t.committed} committed, ${t.conflicts} conflicts, ${t.aborted} aborted; reads: ${t.gets} gets, ${t.ranges} ranges`);
  const r = s.recent;
  if (r) {
    lines.push(
      `recent ${n(r.windowSec, 0)} s: ${n(r.committedPerSec, 1)} commits/s, ${n(r.readsPerSec, 1)} reads/s, conflict rate ${n(r.conflictRate * 100, 1)} %`,
    );
    lines.push(`  commit latency p50/p95/p99 ${n(r.commitLatencyMs.p50, 2)} / ${n(r.commitLatencyMs.p95, 2)} / ${n(r.commitLatencyMs.p99, 2)} ms`);
    lines.push(`  read latency   p50/p95/p99 ${n(r.readLatencyMs.p50, 2)} / ${n(r.readLatencyMs.p95, 2)} / ${n(r.readLatencyMs.p99, 2)} ms`);
  }
  const errs = Object.entries(s.errorsByCode);
  lines.push(`errors: ${errs.length === 0 ? 'none' : errs.map(([c, k]) => `${c} ${k}`).join(', ')}`);
  lines.push(`recovery: ${s.recovery.ms} ms, last committed version on disk ${s.recovery.lastCommittedVersion}, ${s.recovery.decisionRecords} decision records, ${s.recovery.partsReplayed} parts replayed`);
  const d = s.storage.disk;
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
  lines.push(
    `disk: data directory ${mib(d.usedBytes)} (SST ${mib(d.sstBytes)}, WAL ${mib(d.walBytes)}), file system ${mib(d.fsAvailableBytes)} free of ${mib(d.fsTotalBytes)}`,
  );
  lines.push(
    `rocksdb: running compactions ${s.storage.runningCompactions ?? '-'}, write stall ${s.storage.writeStopped ? 'YES (writes stopped)' : 'no'}, background errors ${s.storage.backgroundErrors ?? '-'}, block cache ${mib(s.storage.blockCacheBytes ?? 0)}`,
  );
  if (s.process) {
    lines.push(
      `process: CPU ${n(s.process.cpuPercent, 1)} %, RSS ${mib(s.process.rssBytes)}, event-loop lag p99 ${n(s.process.eventLoopLagP99Ms, 1)} ms, WAL write ${n(s.process.walWriteMs, 2)} ms`,
    );
  }
  // one row per worker (a shard thread): the ranges it owns, its counters once
  lines.push('shards:');
  lines.push(`  ${pad('id', 4)}${pad('ranges [begin, end)', 34)}${pad('util', 8)}${pad('queue', 8)}${pad('commits', 10)}${pad('reads', 10)}${pad('fsyncs', 9)}${pad('keys', 10)}bytes (counted)`);
  const seen = new Set<number>();
  for (const sh of s.shards) {
    if (seen.has(sh.shardId)) continue;
    seen.add(sh.shardId);
    const ranges = s.shards.filter((r) => r.shardId === sh.shardId).map((r) => `[${r.beginKey === '' ? '""' : r.beginKey}, ${r.endKey === null ? 'end' : r.endKey})`);
    lines.push(
      `  ${pad(String(sh.shardId), 4)}${pad(ranges.join(' '), 33)} ${pad(sh.utilization === null ? '-' : `${(sh.utilization * 100).toFixed(1)}%`, 8)}${pad(`${sh.queueDepth}/${sh.queued}`, 8)}${pad(String(sh.commits), 10)}${pad(String(sh.reads), 10)}${pad(String(sh.fsyncs), 9)}${pad(String(sh.estimatedKeys ?? '-'), 10)}${sh.estimatedBytes ?? '-'}`,
    );
  }
  const dist = s.distribution;
  const bytesText = (b: number): string => (b < 1024 ? `${b} B` : b < 1048576 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 1048576).toFixed(1)} MiB`);
  if (dist?.workers) {
    const hexText = (h: string | null | undefined): string => (h === null || h === undefined ? 'end' : h === '' ? '""' : Buffer.from(h, 'hex').toString('latin1').replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
    lines.push(
      `distribution: map version ${dist.map.version}; ${dist.splits} splits, ${dist.merges} merges, ${dist.moves} moves (${dist.movesFailed} failed), ${dist.rowsMoved} rows / ${dist.bytesMoved} bytes moved`,
    );
    if (dist.move) lines.push(`  moving [${hexText(dist.move.begin)}, ${hexText(dist.move.end)}) worker ${dist.move.from} -> ${dist.move.to}: ${dist.move.phase}, ${((Date.now() - dist.move.startedMs) / 1000).toFixed(1)} s (${dist.move.reason})`);
    lines.push(`  ${pad('worker', 8)}${pad('keys', 10)}${pad('bytes', 12)}${pad('util', 8)}${pad('commits/s', 11)}${pad('reads/s', 9)}ranges [begin, end)`);
    for (const w of dist.workers) {
      // each range with its size (counted bytes) and load (keys read / written per second)
      const sizeLoad = (r: { bytes?: number | null; readsPerSec?: number | null; writesPerSec?: number | null }): string =>
        r.bytes === undefined ? '' : ` ${r.bytes === null ? '-' : bytesText(r.bytes)} ${n(r.readsPerSec ?? null, 1)}r/${n(r.writesPerSec ?? null, 1)}w/s`;
      const ranges = w.ranges.map((r) => `[${r.beginKey === '' ? '""' : r.beginKey}, ${r.endKey ?? 'end'})${r.movedFrom !== undefined ? ` (from ${r.movedFrom})` : ''}${sizeLoad(r)}`);
      const old = w.oldReads.map((r) => `old reads [${r.beginKey === '' ? '""' : r.beginKey}, ${r.endKey ?? 'end'})`);
      lines.push(
        `  ${pad(String(w.worker), 8)}${pad(String(w.estimatedKeys ?? '-'), 10)}${pad(String(w.estimatedBytes ?? '-'), 12)}${pad(w.utilization === null ? '-' : `${(w.utilization * 100).toFixed(1)}%`, 8)}${pad(n(w.commitsPerSec, 1), 11)}${pad(n(w.readsPerSec, 1), 9)}${[...ranges, ...old].join(' ') || '(none)'}`,
      );
    }
    const recentEvents = dist.history.slice(-10);
    if (recentEvents.length > 0) {
      lines.push('  recent splits, merges and moves (newest last):');
      for (const e of recentEvents) {
        const what = e.kind === 'move' ? `move [${hexText(e.begin)}, ${hexText(e.end)}) ${e.from} -> ${e.to}${e.rows !== undefined ? `, ${e.rows} rows` : ''}` : `${e.kind} at ${hexText(e.begin)}`;
        lines.push(`    ${e.at} ${what}: ${e.outcome}${e.error ? ` (${e.error})` : ''}, ${e.ms} ms, reason ${e.reason}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

export async function fetchStatus(endpoint: string, token: string | undefined, ca?: Uint8Array): Promise<unknown> {
  const url = `${httpBase(endpoint)}/v1/status`;
  const r = await httpRequest(url, { token, ca });
  const body = answerJson<{ error?: { code: string; message: string } }>(r);
  if (r.status < 200 || r.status > 299) throw new Error(`${url}: ${r.status} ${body.error ? `${body.error.code}: ${body.error.message}` : ''}`);
  return body;
}

export async function status(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  const t = clientTarget(p);
  const ca = caOf(t);
  // a cluster's nodes: the first that answers (a node that is down is passed over, as by
  // every other client command; before, status failed while the first node was down)
  for (const [i, endpoint] of t.endpoints.entries()) {
    let s: unknown;
    try {
      s = await fetchStatus(endpoint, t.token, ca);
    } catch (err) {
      if (err instanceof UnreachableError && i + 1 < t.endpoints.length) {
        process.stderr.write(`txkv status: ${err.message}; asking ${t.endpoints[i + 1]}\n`);
        continue;
      }
      throw err;
    }
    process.stdout.write(p.flags.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s as Status, endpoint));
    return 0;
  }
  return 1; // not reached: the last endpoint's error is thrown
}
