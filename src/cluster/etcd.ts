// etcd access for cluster mode: the client with the fault handling the design study
// asked for, the key layout, and the encoding of log entries. Main thread.
//
// Keys (all under txkv/):
//   txkv/database        JSON { databaseId, shards, splitPoints (hex), createdAt }: written once
//   txkv/leader          JSON { nodeId, url, beatTtlMs }, on no lease (docs/cluster.md says why); its create
//                        revision identifies one term of one leader and fences every write;
//                        its mod revision is the leader's heartbeat (bumped every TTL/4)
//   txkv/grant           decimal: read versions the leader may hand out are <= this
//   txkv/log/<16 hex>    one group-commit batch, keyed by its first commit version
//   txkv/trimmed         decimal: every log entry holding versions <= this may be deleted
//   txkv/nodes/<nodeId>  JSON { nodeId, url, applied, role }, attached to the node's lease
import { createRequire } from 'node:module';
import { Etcd3, isRecoverableError } from 'etcd3';
// types only (etcd3's own types name it): the module is loaded from etcd3's place, below
import type * as Grpc from '@grpc/grpc-js';
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
 * member). Calls go to the member that answered last, then to the others by how recently
 * they answered (a call asked of several members counts its first answer only;
 * keepalives ask every member every TTL/4, so a cut-off member drops to the end within
 * one round).
 */
export class EtcdHosts {
  private readonly clients: Etcd3[];
  /** performance.now() of each member's last answer (0: none yet). */
  private readonly lastOk: number[];

  constructor(private readonly endpoints: string[]) {
    const requireLeader = requireLeaderInterceptor();
    this.clients = endpoints.map(
      (e) =>
        new Etcd3({
          hosts: [e],
          dialTimeout: 1000,
          faultHandling: { host: () => noop, global: noop },
          // watches (log-watch.ts) carry etcd's require-leader metadata: see requireLeaderInterceptor
          defaultCallOptions: (ctx) => (ctx.isStream ? (ctx.service === 'Watch' ? { interceptors: [requireLeader] } : {}) : { deadline: Date.now() + CALL_DEADLINE_MS }),
        }),
    );
    this.lastOk = endpoints.map(() => 0);
  }

  get size(): number {
    return this.clients.length;
  }

  /** Member i's own client (a watch on it stays on that member). */
  client(i: number): Etcd3 {
    return this.clients[i]!;
  }

  endpoint(i: number): string {
    return this.endpoints[i]!;
  }

  /** The members' endpoints in the order calls try them (for /v1/status). */
  orderedEndpoints(): string[] {
    return this.order().map((i) => this.endpoints[i]!);
  }

  /** The member first in order() other than `avoid` (for a watch that just failed on `avoid`). */
  pick(avoid = -1): number {
    const o = this.order();
    return o.find((i) => i !== avoid) ?? o[0]!;
  }

  /** Notes an answer from member i (it moves to the front of order()). */
  answered(i: number): void {
    this.lastOk[i] = performance.now();
  }

  /** performance.now() of member i's last answer (0: none yet). */
  lastAnswer(i: number): number {
    return this.lastOk[i]!;
  }

  /**
   * The members in the order to try them: most recent answer first. It used to be the
   * last member that answered, moved on by one after a call failed everywhere: after
   * calls failed during an etcd election that could be a cut-off member, and a takeover's
   * log read (2 s deadline, 2 s budget) spent its whole budget there and failed (the new
   * leader stepped down, 2 s lost; seen in test/cluster/partition.test.ts).
   */
  order(): number[] {
    return this.clients.map((_, i) => i).sort((a, b) => this.lastOk[b]! - this.lastOk[a]! || a - b);
  }

  /**
   * Runs `f` on the member that answered last, then (after an error) on the others in
   * turn, within `budgetMs` (but on two members at least). `attempt` is 0 for the first
   * try: a caller whose operation is not idempotent can tell a retry apart.
   */
  async run<T>(f: (c: Etcd3, attempt: number) => Promise<T>, budgetMs = 2 * CALL_DEADLINE_MS): Promise<T> {
    const until = Date.now() + budgetMs;
    const order = this.order();
    let last: unknown;
    for (let attempt = 0; attempt < order.length; attempt++) {
      const i = order[attempt]!;
      try {
        const r = await f(this.clients[i]!, attempt);
        this.answered(i);
        return r;
      } catch (err) {
        last = err;
        // a second member is always tried: one attempt may use up the budget (its own deadline)
        if (attempt >= 1 && Date.now() >= until) break;
      }
    }
    throw last;
  }

  /**
   * `f` on the member first in order(), and on every other member too when it has not
   * answered within `hedgeMs` (or failed); resolves with the first answer, rejects when
   * every member asked failed. Only for calls that may take effect more than once (the
   * leader's heartbeat): a stopped member must not hold the call for its whole deadline.
   * Not every member at once: each member passes the put to etcd's Raft leader as a write
   * of its own (a revision and an fsync), so a beat sent to all three wrote three times.
   */
  first<T>(f: (c: Etcd3) => Promise<T>, hedgeMs = CALL_DEADLINE_MS / 5): Promise<T> {
    const [head, ...rest] = this.order();
    return new Promise<T>((resolve, reject) => {
      let asked = 0;
      let failed = 0;
      let settled = false;
      let widened = false;
      let timer: NodeJS.Timeout | undefined;
      const ask = (i: number): void => {
        asked++;
        f(this.clients[i]!).then(
          (r) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            this.answered(i);
            resolve(r);
          },
          (err: unknown) => {
            failed++;
            widen();
            if (failed === asked && !settled) {
              settled = true;
              reject(err);
            }
          },
        );
      };
      const widen = (): void => {
        if (widened || settled) return;
        widened = true;
        clearTimeout(timer);
        for (const i of rest) ask(i);
      };
      ask(head!);
      timer = setTimeout(widen, hedgeMs);
    });
  }

  /**
   * One lease keepalive, sent to every member at once; resolves with the first answer's
   * remaining TTL in seconds (0 = the lease is gone). A keepalive is idempotent and every
   * member passes it to the Raft leader, so the first answer is as good as any. Asking
   * the members one after another let one stalled or cut-off member use up the whole
   * deadline (a second, healthy member was asked only after it, by then often past the
   * node's lease margin, so the leader stepped down with etcd healthy); now the call
   * takes as long as the fastest member, and at most `deadlineMs`.
   */
  keepalive(leaseId: string, deadlineMs = CALL_DEADLINE_MS): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let failed = 0;
      let settled = false;
      let lastErr: unknown;
      this.clients.forEach((c, i) => {
        keepaliveOn(c, leaseId, deadlineMs).then(
          (ttl) => {
            if (settled) return;
            settled = true;
            // only the first answer counts for order(): every member answers a round, and
            // marking each as it answered put the slowest (a loaded one, or a follower
            // that passes the keepalive on to etcd's leader) first for every other call
            this.answered(i);
            resolve(ttl);
          },
          (err: unknown) => {
            lastErr = err;
            if (++failed === this.clients.length && !settled) {
              settled = true;
              reject(lastErr);
            }
          },
        );
      });
    });
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

/** `require` as etcd3's own main module does: its files and its copies of its dependencies. */
const fromEtcd3 = createRequire(createRequire(import.meta.url).resolve('etcd3'));

/**
 * A gRPC interceptor that sends etcd's require-leader metadata (`hasleader: true`, as etcd's
 * Go client's WithRequireLeader) with a call. A member cut off from its peers keeps its
 * client connections and answers nothing new: a watch on it just stays silent (no error,
 * no event), so the replica followed the log by its 200 ms poll for as long as the cut
 * lasted. With the metadata the member refuses such a watch while it has no Raft leader,
 * and ends one already open (error "etcdserver: no leader") once it has had none for 3
 * election timeouts (etcd's monitorLeader): the watch moves to another member.
 * grpc-js comes from where etcd3 loads it (the same copy; no dependency of our own).
 */
function requireLeaderInterceptor(): Grpc.Interceptor {
  const grpc = fromEtcd3('@grpc/grpc-js') as typeof Grpc;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('hasleader', 'true');
        next(metadata, listener);
      },
    });
}

/**
 * etcd3 1.1.2 (the newest on npm) throws from its watch stream's data handler when a
 * response names a watcher it no longer has (WatchManager.handleResponse: "Failed to find
 * watcher for IWatchResponse"). That happens when txkv cancels a watch (LogWatch moves it
 * to another member) while the member still had events of it on the way; the throw lands
 * as an unhandled rejection, which ends `txkv serve` (exit 70) and any process embedding a
 * cluster node. The CI run of bc250a5 lost the partitioned leader of
 * test/cluster/partition.test.ts this way right after its partition healed. A response for
 * a watcher that is gone carries nothing anyone waits for: it is dropped here, before the
 * library's lookup. (A watch that stops reporting is found by LogWatch's own silent-watch
 * check and opened again.) Installed once, on etcd3's own module.
 */
function dropResponsesOfGoneWatchers(): void {
  interface Manager {
    watchers: { id: string | null }[];
    handleResponse(res: { watch_id: string }): void;
  }
  const { WatchManager } = fromEtcd3('./watch.js') as { WatchManager: { prototype: Manager & { txkvPatched?: boolean } } };
  const proto = WatchManager.prototype;
  if (proto.txkvPatched) return;
  const handle = proto.handleResponse;
  proto.handleResponse = function (this: Manager, res: { watch_id: string }): void {
    if (!this.watchers.some((w) => w.id === res.watch_id)) return;
    handle.call(this, res);
  };
  proto.txkvPatched = true;
}
dropResponsesOfGoneWatchers();

/** One keepalive on one member's own stream: the stream's opening and the answer within `deadlineMs`; the stream always ends. */
function keepaliveOn(c: Etcd3, leaseId: string, deadlineMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let stream: { end(): void } | null = null;
    let done = false;
    const finish = (err: Error | null, ttl = 0): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        stream?.end();
      } catch {
        /* already closed */
      }
      if (err) reject(err);
      else resolve(ttl);
    };
    const timer = setTimeout(() => finish(new Error(`lease keepalive: no answer within ${deadlineMs} ms`)), deadlineMs);
    c.leaseClient.leaseKeepAlive().then(
      (s) => {
        stream = s;
        if (done) {
          s.end();
          return;
        }
        s.on('data', (r: { TTL: string }) => finish(null, Number(r.TTL)));
        s.on('error', (err: Error) => finish(err));
        s.write({ ID: leaseId });
      },
      (err: Error) => finish(err),
    );
  });
}
