// etcd access for cluster mode: the client with the fault handling the design study
// asked for, the key layout, and the encoding of log entries. Main thread.
//
// Keys (all under txkv/):
//   txkv/database        JSON { databaseId, shards, splitPoints (hex), createdAt }: written once
//   txkv/leader          JSON { nodeId, url }, attached to the leader's lease; its create
//                        revision identifies one term of one leader and fences every write
//   txkv/grant           decimal: read versions the leader may hand out are <= this
//   txkv/log/<16 hex>    one group-commit batch, keyed by its first commit version
//   txkv/trimmed         decimal: every log entry holding versions <= this may be deleted
//   txkv/nodes/<nodeId>  JSON { nodeId, url, applied, role }, attached to the node's lease
import { Etcd3, isRecoverableError } from 'etcd3';
import { ConstantBackoff, handleWhen, noop, retry, type IBackoff } from 'cockatiel';
import { decodeDecision, encodeDecision } from '../coordinator/decision-log.js';
import type { LogEntry } from '../coordinator/commit-log.js';
import { MutationKind } from '../shard/interface.js';

export const K = {
  database: 'txkv/database',
  leader: 'txkv/leader',
  grant: 'txkv/grant',
  logPrefix: 'txkv/log/',
  /** One past every log key (for ranges to the end of the log). */
  logEnd: 'txkv/log0',
  trimmed: 'txkv/trimmed',
  nodesPrefix: 'txkv/nodes/',
  nodesEnd: 'txkv/nodes0',
} as const;

/** Every etcd call has a deadline: a call that hangs must become an error the node acts on. */
export const CALL_DEADLINE_MS = 1000;

export function logKey(version: number): string {
  return K.logPrefix + version.toString(16).padStart(16, '0');
}

export function versionOfLogKey(key: string): number {
  return parseInt(key.slice(K.logPrefix.length), 16);
}

export function nodeKey(nodeId: string): string {
  return K.nodesPrefix + nodeId;
}

/**
 * The design study saw etcd3's default per-host circuit breakers open on every host
 * during an etcd leader election and stall the client for seconds
 * (BrokenCircuitError). So: no per-host breaker, one retry on another host for
 * recoverable errors, and a deadline on every unary call.
 */
export function makeEtcdClient(endpoints: string[]): Etcd3 {
  return new Etcd3({
    hosts: endpoints,
    dialTimeout: 1000,
    faultHandling: {
      host: () => noop,
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 1, backoff: new ConstantBackoff(20) }),
      // etcd3 types this slot as a backoff instance but only calls next() on it (a factory)
      watchBackoff: new ConstantBackoff(200) as unknown as IBackoff<unknown>,
    },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
  });
}

const FORMAT = 1;

/** A batch of commits (version order) as one log value: [format][count][len, decision record]... */
/** Part shard id that marks a map change (LogEntry.dist, JSON in the part's one mutation) instead of a commit. */
const DIST_PART = 0xffffffff;

export function encodeEntry(commits: LogEntry[]): Buffer {
  const parts = commits.map((c) =>
    c.dist
      ? encodeDecision({ commitVersion: c.commitVersion, parts: [{ shardId: DIST_PART, mutations: [{ kind: MutationKind.Set, key: new Uint8Array(0), param: Buffer.from(JSON.stringify(c.dist)) }] }] })
      : encodeDecision(c),
  );
  let size = 5;
  for (const p of parts) size += 4 + p.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = FORMAT;
  out.writeUInt32BE(parts.length, 1);
  let o = 5;
  for (const p of parts) {
    out.writeUInt32BE(p.length, o);
    out.set(p, o + 4);
    o += 4 + p.length;
  }
  return out;
}

export function decodeEntry(b: Buffer): LogEntry[] {
  if (b.length < 5 || b[0] !== FORMAT) throw new Error(`log entry: format ${b[0]} is not ${FORMAT}`);
  const n = b.readUInt32BE(1);
  const out: LogEntry[] = [];
  let o = 5;
  for (let i = 0; i < n; i++) {
    if (o + 4 > b.length) throw new Error('log entry truncated');
    const len = b.readUInt32BE(o);
    if (o + 4 + len > b.length) throw new Error('log entry truncated');
    const d = decodeDecision(b.subarray(o + 4, o + 4 + len));
    const dist = d.parts.length === 1 && d.parts[0]!.shardId === DIST_PART ? d.parts[0]!.mutations[0] : undefined;
    out.push(dist ? { commitVersion: d.commitVersion, parts: [], dist: JSON.parse(Buffer.from(dist.param).toString('utf8')) as LogEntry['dist'] } : d);
    o += 4 + len;
  }
  return out;
}

/**
 * One etcd client per member, no retry inside: for the calls whose retry needs care
 * (fenced appends: a retry after an unknown outcome must not report "did not happen")
 * and for lease keepalives (a stream the multi-host client would keep sending to a dead
 * member). Calls go to the member that answered last; on an error the next one is tried.
 */
export class EtcdHosts {
  private readonly clients: Etcd3[];
  private preferred = 0;

  constructor(endpoints: string[]) {
    this.clients = endpoints.map(
      (e) =>
        new Etcd3({
          hosts: [e],
          dialTimeout: 1000,
          faultHandling: { host: () => noop, global: noop },
          defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
        }),
    );
  }

  /**
   * Runs `f` on the preferred member, then (after an error) on the others in turn,
   * within `budgetMs`. `attempt` is 0 for the first try: a caller whose operation is
   * not idempotent can tell a retry apart.
   */
  async run<T>(f: (c: Etcd3, attempt: number) => Promise<T>, budgetMs = 2 * CALL_DEADLINE_MS): Promise<T> {
    const until = Date.now() + budgetMs;
    let last: unknown;
    for (let attempt = 0; attempt < this.clients.length; attempt++) {
      const i = (this.preferred + attempt) % this.clients.length;
      try {
        const r = await f(this.clients[i]!, attempt);
        this.preferred = i;
        return r;
      } catch (err) {
        last = err;
        if (Date.now() >= until) break;
      }
    }
    this.preferred = (this.preferred + 1) % this.clients.length;
    throw last;
  }

  /** One lease keepalive; resolves with the remaining TTL in seconds (0 = the lease is gone). */
  keepalive(leaseId: string): Promise<number> {
    return this.run(async (c) => {
      const stream = await c.leaseClient.leaseKeepAlive();
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('lease keepalive: no answer within the deadline')), CALL_DEADLINE_MS);
          stream.on('data', (r: { TTL: string }) => {
            clearTimeout(t);
            resolve(r);
          });
          stream.on('error', (err: Error) => {
            clearTimeout(t);
            reject(err);
          });
          stream.write({ ID: leaseId });
        });
        return Number(res.TTL);
      } finally {
        stream.end();
      }
    });
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
