// Failover under a steady write load, for bench/compare.ts (system `txkv-cluster`): writers
// commit distinct keys through a client that lists every node; the leader is killed with
// SIGKILL; the time from the kill to the first acknowledged commit that started after it is
// the failover time. Afterwards the killed node is restarted and every node must return every
// acknowledged commit (none lost). Main thread of the compare process.
import { connect, type Database } from '../src/index.js';
import { type LoopbackCluster, sleep } from './cluster.js';

export interface FailoverOptions {
  writers: number;
  /** Steady load before the kill, ms. */
  beforeMs: number;
  /** Load kept running after commits resumed, ms. */
  afterMs: number;
}

export interface FailoverResult {
  writers: number;
  killedNode: string;
  newLeader: string;
  /** Kill -> first acknowledgement of a commit that started after the kill (ms). */
  failoverMs: number;
  /** Longest time without any acknowledgement around the kill (ms). */
  ackGapMs: number;
  /** Commits acknowledged to the writers over the whole run. */
  acked: number;
  /** Commits/s before the kill (steady state). */
  commitsPerSecBefore: number;
  /** Of the acknowledged commits, how many a node did not return afterwards, per node (must be 0). */
  lostByNode: Record<string, number>;
  /**
   * Keys a node holds that no writer saw acknowledged (at most one per writer whose last commit timed
   * out at the stop; a writer retries a MAYBE_COMMITTED key until acknowledged, so those count as acked).
   */
  unackedFound: number;
  /** Errors the writers saw, by code (they retry the same key). */
  errors: Record<string, number>;
  /** The leader's /v1/status lastFailoverMs (its own view: old leader last seen -> serving). */
  reportedFailoverMs: number | null;
}

interface Ack {
  key: string;
  started: number;
  at: number;
}

const PREFIX = 'failover/';

/** `p`, or a rejection after `ms` (a connection to a dead node may never answer). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** Every key under PREFIX with its value, read in pages (one transaction per page). */
async function scanAll(db: Database): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let begin: Uint8Array = Buffer.from(PREFIX);
  const end = Buffer.from(PREFIX.slice(0, -1) + String.fromCharCode(PREFIX.charCodeAt(PREFIX.length - 1) + 1));
  let inclusive = true;
  for (;;) {
    const page = await db.transact((tx) => tx.snapshotGetRange({ key: begin, inclusive }, { key: end, inclusive: false }, { limit: 5000 }));
    for (const kv of page.kvs) out.set(Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString());
    if (!page.hasMore || page.kvs.length === 0) return out;
    begin = page.kvs[page.kvs.length - 1]!.key;
    inclusive = false;
  }
}

export async function measureFailover(cluster: LoopbackCluster, o: FailoverOptions): Promise<FailoverResult> {
  const db = await connect({ endpoints: cluster.urls, connectionPoolSize: 3 });
  const acked: Ack[] = [];
  const errors: Record<string, number> = {};
  let stopped = false;
  const writer = async (w: number): Promise<void> => {
    for (let seq = 0; !stopped; seq++) {
      const key = `${PREFIX}${String(w).padStart(3, '0')}/${String(seq).padStart(8, '0')}`;
      // the same key and value until acknowledged: a retry after MAYBE_COMMITTED is harmless
      while (!stopped) {
        const started = Date.now();
        try {
          const tx = db.createTransaction();
          tx.set(key, `v${seq}`);
          await within(tx.commit(), 3000);
          acked.push({ key, started, at: Date.now() });
          break;
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'ERROR';
          errors[code] = (errors[code] ?? 0) + 1;
          await sleep(20);
        }
      }
    }
  };
  const loops = Array.from({ length: o.writers }, (_, w) => writer(w));
  try {
    await sleep(1000); // connections up, first commits through
    const steadyFrom = Date.now();
    const ackedAtSteady = acked.length;
    await sleep(o.beforeMs);
    const leader = await cluster.leader(5000);
    const commitsPerSecBefore = ((acked.length - ackedAtSteady) * 1000) / (Date.now() - steadyFrom);
    const killedAt = Date.now();
    cluster.kill(cluster.nodes[leader]!, 'SIGKILL');
    let failoverMs = -1;
    for (const until = killedAt + 30_000; Date.now() < until; await sleep(10)) {
      const first = acked.find((a) => a.started > killedAt);
      if (first) {
        failoverMs = first.at - killedAt;
        break;
      }
    }
    await sleep(o.afterMs);
    stopped = true;
    await Promise.all(loops);
    if (failoverMs < 0) throw new Error('no commit acknowledged within 30 s of killing the leader');
    const times = acked.map((a) => a.at).sort((a, b) => a - b);
    let ackGapMs = 0;
    for (let i = 1; i < times.length; i++) if (times[i - 1]! <= killedAt + failoverMs && times[i]! >= killedAt) ackGapMs = Math.max(ackGapMs, times[i]! - times[i - 1]!);
    const newLeader = await cluster.leader(10_000, leader);
    const reportedFailoverMs = (await cluster.status(newLeader))?.cluster?.lastFailoverMs ?? null;
    // the killed node comes back and catches up; then every node must hold every acknowledged commit
    await cluster.startNode(leader);
    const lostByNode: Record<string, number> = {};
    let unackedFound = 0;
    const want = new Map<string, string>();
    for (const a of acked) want.set(a.key, `v${Number(a.key.slice(a.key.lastIndexOf('/') + 1))}`);
    for (const nd of cluster.nodes) {
      const one = await connect({ endpoints: [nd.url], connectionPoolSize: 1 });
      try {
        const got = await scanAll(one);
        let lost = 0;
        for (const [k, v] of want) if (got.get(k) !== v) lost++;
        lostByNode[nd.name] = lost;
        unackedFound = Math.max(unackedFound, [...got.keys()].filter((k) => !want.has(k)).length);
      } finally {
        await one.close();
      }
    }
    return {
      writers: o.writers,
      killedNode: cluster.nodes[leader]!.name,
      newLeader: cluster.nodes[newLeader]!.name,
      failoverMs,
      ackGapMs,
      acked: acked.length,
      commitsPerSecBefore: Math.round(commitsPerSecBefore),
      lostByNode,
      unackedFound,
      errors,
      reportedFailoverMs,
    };
  } finally {
    stopped = true;
    await Promise.all(loops);
    await db.close();
  }
}
