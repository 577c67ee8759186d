// One node of a replicated cluster (docs/cluster.md). Main thread.
//
// Every node runs the same coordinator and shards as a single server. Roles:
//   leader    - holds txkv/leader (kept by its heartbeats, not by an etcd lease); assigns versions,
//               checks conflicts, appends each group-commit batch to the log in etcd
//               (EtcdLog, fenced by the leader key's create revision), applies after
//               etcd acknowledged. Hands out read versions only while its own
//               monotonic-clock heartbeat deadline holds and below the grant in etcd.
//   replica   - tails the log (etcd watch as a wake-up, linearizable range reads as
//               the source), applies it through the same shard code, serves reads at
//               versions it has applied, forwards read-version and commit requests to
//               the leader over the ordinary client protocol.
//   candidate - no leader known, or changing role: read-version and commit requests
//               fail with UNAVAILABLE (retryable).
// Every leader action that changes etcd is a transaction comparing the leader key's
// create revision: the helper's belief that it leads is never enough on its own.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { EtcdLeaseInvalidError, type Etcd3, type Lease } from 'etcd3';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { TxnError } from '../errors.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { CommitInput } from '../coordinator/commit-plan.js';
import type { CommitResult } from '../coordinator/commit-coordinator.js';
import type { LogEntry } from '../coordinator/commit-log.js';
import { microClock } from '../coordinator/timestamp-oracle.js';
import { Connection } from '../client/connection.js';
import { decodeVersion, encodeVersion } from '../shard/interface.js';
import { CALL_DEADLINE_MS, EtcdHosts, K, decodeEntry, logKey, nodeKey, versionOfLogKey } from './etcd.js';
import { EtcdLog } from './etcd-log.js';
import { LogWatch } from './log-watch.js';
import { seedFromSnapshot, type SeedResult } from './snapshot.js';
import { StartupError } from '../server/startup-errors.js';

export interface ClusterSettings {
  etcdEndpoints: string[];
  nodeId: string;
  /** ws://host:port where the other nodes reach this one (forwarding, snapshots). */
  advertiseUrl: string;
  /** etcd lease TTL (ms; etcd counts whole seconds, at least 2 with default etcd timing). */
  leaseTtlMs: number;
  /** Log entries younger than this are kept even when every live node applied them (a paused node can resume). */
  logRetentionMs: number;
}

export type Role = 'leader' | 'replica' | 'candidate';

interface Member {
  nodeId: string;
  url: string;
  applied: number;
  role: Role;
  /** Leader only: the newest version in the log (lag is measured against it, not against its clock-driven read version). */
  logged?: number;
}

/** Key of this node's durable log position (every log entry <= it is applied here) in the default column. */
export const CLUSTER_APPLIED_KEY = new TextEncoder().encode('cluster/applied');

/** How far ahead of the clock the leader's read-version grant runs (µs). */
const GRANT_AHEAD_US = 1_000_000;
const TICK_MS = 100;
const SYNC_MS = 500;
const TRIM_MS = 1000;
const COMPACT_LAG_MS = 5000;
/**
 * How long past its serving deadline a leader keeps its term while etcd does not answer
 * (ms). Past the deadline it hands out no read version (the clock rule: another node may
 * have taken over); whether it still leads is etcd's to say: a fenced beat, append or grant
 * renewal refused, and it steps down at once. Only when etcd says nothing for this long
 * does it step down on its own. Why not at the deadline, as it did: while etcd elects a new
 * Raft leader (its leader paused, killed or cut off) no member takes a write, for etcd's
 * election timeout to twice it (1-2 s with --election-timeout 1000) plus a vote; at the
 * default 2 s TTL the serving deadline (1.5 s after the last answered beat, sent up to
 * TTL/4 before etcd stopped) passed in many such elections, and the leader gave up a term
 * that nobody could take from it meanwhile (no write lands, and the replicas give it half a
 * TTL after the election: noteEtcdTerm): a failover, the commits in flight failing, with no
 * txkv node at fault (bench/etcd-pause.ts --targets leader). 4 s: two election timeouts of
 * the recommended 1 s, a vote, the next beat (TTL/4), and a loaded machine's slack.
 */
const ETCD_ELECTION_ALLOWANCE_MS = 4000;
/** Longest wait of a read-version request on a leader past its serving deadline for a renewal (then UNAVAILABLE, retryable). */
const LEASE_WAIT_MS = 1500;
/** Bounds of requests forwarded to the leader. */
const FORWARD_GRV_MS = 2000;
const FORWARD_COMMIT_MS = 5000;

const mono = (): number => performance.now();

/** The connection requests are forwarded on, to the leader at `url`. */
interface Forward {
  url: string;
  conn: Promise<Connection>;
  /** Requests sent on it and not answered yet. */
  pending: Set<Promise<unknown>>;
}

/**
 * How long a forward connection to a leader that is no longer the leader stays open for the
 * requests already sent on it (dropForward). A leader that stops gracefully answers them
 * within milliseconds (their outcome, or UNAVAILABLE once it is stopping); closed at once,
 * each commit among them failed MAYBE_COMMITTED on this node. A dead leader never answers:
 * its requests fail after this, instead of at once (a take-over takes a lease TTL anyway).
 */
const FORWARD_GRACE_MS = 500;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function readClusterApplied(db: RocksLevel): number {
  const [v] = db._getManySync([CLUSTER_APPLIED_KEY]);
  return v ? decodeVersion(v) : 0;
}

export class ClusterNode {
  role: Role = 'candidate';
  leader: { nodeId: string; url: string } | null = null;
  readonly log: EtcdLog;
  private readonly hosts: EtcdHosts;
  private coordinator: Coordinator | null = null;
  private shardApplied: number[] = [];
  private lease: Lease | null = null;
  private leaseId = '';
  /**
   * This process's mark in the leader key it creates: the key is on no lease, so a node
   * tells its own live key (a campaign whose answer was lost) from one it left before a
   * restart by this, not by the key's lease.
   */
  private readonly incarnation = randomUUID();
  /** performance.now() after which this node's lease may have expired in etcd. */
  private leaseDeadline = 0;
  private keepalivesInFlight = 0;
  private leaseLostLogged = false;
  private replacingLease: Promise<void> | null = null;
  private term: string | null = null;
  private grant = 0;
  /** Leader: mod revision of txkv/grant as this node last wrote (or, taking over, read) it; each renewal is fenced on it. */
  private grantRev = '0';
  private ready = false;
  private transitioning = false;
  private closed = false;
  private timers: NodeJS.Timeout[] = [];
  /** The etcd watch on the log (a wake-up for the tailer; re-created when etcd ends it). */
  private logWatch: LogWatch | null = null;
  private tailing = false;
  private fetching: Promise<void> | null = null;
  /** fetchAll runs one at a time (start, the tailer and a takeover may each ask for one). */
  private fetchLock: Promise<void> = Promise.resolve();
  /** While a snapshot is copied in: the version it is at once pinned (published as this node's position). */
  private reseeding: { version: number | null } | null = null;
  private lastSeed: SeedResult | null = null;
  private fetchAgain = false;
  private pendingCovers: number[] = [];
  private coverCheck = false;
  private wantCover = 0;
  private forward: Forward | null = null;
  /** Requests forwarded to a leader and not answered yet, on any forward connection (a graceful close waits for them). */
  private readonly forwardedInFlight = new Set<Promise<unknown>>();
  /**
   * Leader (from the won campaign on, also while taking over): the term whose key this
   * node beats, and until when (performance.now()) its last answered beat lets it hand
   * out read versions (see beat()).
   */
  private beatTerm: string | null = null;
  private beatDeadline = 0;
  private beatsInFlight = 0;
  /** Leader: performance.now() since when it is past its serving deadline, waiting for etcd (null: serving). */
  private waitingSince: number | null = null;
  /** Read-version requests waiting for a renewal (woken by renewed() and stepDown()). */
  private renewalWaiters: (() => void)[] = [];
  private renewingGrant = false;
  /** The highest etcd Raft term seen in an answer, and since when (performance.now(); see noteEtcdTerm). */
  private etcdTerm = 0;
  private etcdTermAt = 0;
  /**
   * etcd's recent write latency (ms), from this node's Raft writes (beats, grant renewals,
   * appends, campaigns): rises to a slower answer at once, falls a fifth of the way to
   * each faster one. Sets the hedge of beats and renewals and the campaign's deadline.
   */
  private writeMs = 0;
  /** Replica: the leader key as last read (create and mod revision) and since when it has not changed (see deposeStale()). */
  private leaderKeySeen: { create: string; mod: string; since: number } | null = null;
  private members: Member[] = [];
  private lastLeaderSeen = mono();
  private leadStartPos = 0;
  private compactRevs: { at: number; rev: string }[] = [];
  /** This node's position as leader, sampled at each trim (wall-clock ms): the log is kept logRetentionMs back. */
  private positions: { at: number; v: number }[] = [];
  readonly stats = {
    failovers: 0,
    lastFailoverMs: null as number | null,
    lastFailoverAt: null as string | null,
    forwardedCommits: 0,
    forwardedReadVersions: 0,
    appliedFromLog: 0,
    trimmedThrough: 0,
    reseeds: 0,
    etcdErrors: 0,
    lastEtcdOk: 0,
    /** Leader: times it passed its serving deadline and kept its term until etcd answered again, and the longest such wait (ms). */
    leaseWaits: 0,
    longestLeaseWaitMs: 0,
  };

  constructor(
    private readonly etcd: Etcd3,
    private readonly s: ClusterSettings,
    private readonly db: RocksLevel,
    private readonly logger: Logger,
    private readonly token: string | undefined,
    /** The cluster's database id: a leader URL that answers with another is not forwarded to. */
    private readonly databaseId: string,
  ) {
    this.hosts = new EtcdHosts(s.etcdEndpoints);
    this.log = new EtcdLog(this.hosts, (why, detail) => void this.stepDown(`${why}: ${detail}`), { deadlineMs: () => this.appendDeadlineMs(), hedgeMs: () => this.hedgeMs(), note: (ms) => this.noteWrite(ms) });
  }

  private get ttlSec(): number {
    return Math.max(2, Math.ceil(this.s.leaseTtlMs / 1000));
  }

  /**
   * Runs one etcd call on one member at a time (EtcdHosts.run): the member that answered
   * last first, then the others, each attempt with its own deadline. The multi-member
   * client sent a share of the calls to a member that is cut off and its one retry
   * inherited the first attempt's spent deadline, so a takeover during a partition failed
   * on whichever of its calls went there (seen in test/cluster/partition.test.ts: a 7 s
   * failover instead of 2-3 s).
   */
  private kv<T>(f: (c: Etcd3) => Promise<T>): Promise<T> {
    return this.hosts.run(f);
  }

  /** Grants this node's lease and publishes it under txkv/nodes/<id> (before seeding: it holds back log trimming). */
  async register(applied: number): Promise<void> {
    await this.checkLogCovers(applied);
    await this.newLease();
    await this.claimNodeId(applied);
    await this.publish(applied);
    // keep the lease from now on: seeding and starting the shards may take a while
    this.every(this.ttlSec * 250, () => this.keepalive());
  }

  /**
   * Every version a node has applied is at or below the read-version grant in etcd (the
   * leader writes the grant before it hands out or logs anything under it, and each new
   * leader's grant starts above the last). A node whose data is past the grant follows
   * an etcd that lost its newest state (restored from an older etcd snapshot, or wiped
   * and the cluster record written again): the log would skip the commits this node has
   * and the others do not, and the nodes would disagree for good. Refuse to start.
   */
  private async checkLogCovers(applied: number): Promise<void> {
    if (applied === 0) return;
    const g = await this.kv((c) => c.kv.range({ key: Buffer.from(K.grant) }));
    const grant = g.kvs[0] ? Number(g.kvs[0].value.toString()) : 0;
    if (applied <= grant) return;
    throw new StartupError(
      `this node's data is ahead of the cluster's log in etcd: node ${this.s.nodeId} applied every commit through version ${applied}, ` +
        `but etcd's read-version grant (${K.grant}) is ${grant === 0 ? 'absent' : grant}, and no leader could have handed out a version above it. ` +
        'etcd lost its newest data (restored from an older snapshot, or wiped and refilled). Not starting: following that log would skip commits ' +
        'this node has and the others may not. Restore etcd from a newer snapshot, or (losing the commits past the log) give this node an empty data ' +
        'directory so it copies the cluster\'s data (docs/cluster.md, "etcd lost its data")',
    );
  }

  /**
   * Creates txkv/nodes/<id> on this node's lease, only if no live node holds it. Two
   * processes with one id would overwrite each other's position (trimming could pass the
   * slower one) and each would take the other's leader key for its own. The key of this
   * node before a restart (kill -9) expires with its old lease: wait for that, then refuse.
   */
  private async claimNodeId(applied: number): Promise<void> {
    const key = Buffer.from(nodeKey(this.s.nodeId));
    const until = mono() + Math.max(10_000, 3 * this.ttlSec * 1000);
    for (;;) {
      const m: Member = { nodeId: this.s.nodeId, url: this.s.advertiseUrl, applied, role: this.role };
      const res = await this.kv((c) => c.kv.txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key, value: Buffer.from(JSON.stringify(m)), lease: this.leaseId } }],
        failure: [{ request_range: { key } }],
      }));
      if (res.succeeded) return;
      if (mono() > until) {
        const kv = res.responses[0]?.response_range.kvs[0];
        const url = kv ? (JSON.parse(kv.value.toString()) as Member).url : '?';
        throw new Error(`node id ${this.s.nodeId} is in use by a live node of this cluster (it advertises ${url}); give every node its own --node-id (cluster.nodeId)`);
      }
      await sleep(250);
    }
  }

  private async newLease(): Promise<void> {
    const sent = mono();
    let lease: Lease | null = null;
    this.leaseId = await this.kv((c) => {
      lease = c.lease(this.ttlSec, { autoKeepAlive: false });
      lease.on('lost', () => {});
      return lease.grant();
    });
    this.lease = lease;
    this.leaseDeadline = sent + this.ttlSec * 1000 - this.margin();
  }

  private margin(): number {
    return Math.max(300, (this.ttlSec * 1000) / 4);
  }

  /**
   * How long after its send an answer to a beat or keepalive can still be of use: it moves
   * the serving deadline to send + TTL - margin, so an answer later than that moves nothing.
   * 1.5 s with the default 2 s TTL, 7.5 s with 10 s.
   */
  get horizonMs(): number {
    return this.ttlSec * 1000 - this.margin();
  }

  /**
   * Deadline of one attempt of a campaign and of the deletion of this node's own old key:
   * three times etcd's recent write latency, at least CALL_DEADLINE_MS, at most the
   * horizon. A fixed 1 s failed every one of them once etcd's writes took longer (a slow
   * disk under its WAL), and no node could take over. Only when the outcome is known
   * changes: each is fenced in etcd itself.
   */
  private writeDeadlineMs(): number {
    return Math.min(this.horizonMs, Math.max(CALL_DEADLINE_MS, 3 * this.writeMs));
  }

  /**
   * How long a beat or grant renewal waits on one member before it goes to every other:
   * twice etcd's recent write latency, at least 200 ms (a stopped member), at most half the
   * horizon. A slow etcd must not get each of them three times (each a write of its own).
   */
  private hedgeMs(): number {
    return Math.min(this.horizonMs / 2, Math.max(CALL_DEADLINE_MS / 5, 2 * this.writeMs));
  }

  /**
   * One etcd write's round trip (ms), answered or not: a write that ran out its deadline
   * says etcd took at least that long, so the next ones wait longer (up to the horizon).
   * Without that, a sudden slowdown was never learnt: every write failed at 1 s.
   */
  private noteWrite(ms: number): void {
    this.writeMs = Math.max(ms, this.writeMs * 0.8 + ms * 0.2);
  }

  private timed<T>(p: Promise<T>): Promise<T> {
    const sent = mono();
    return p.finally(() => this.noteWrite(mono() - sent));
  }

  /**
   * Leader: performance.now() until which it may hand out read versions: its last answered
   * beat's send time + TTL - margin. Only its beats count, not its lease: the leader key is
   * on no lease (see tick(), the campaign), so the only way another node can take over is
   * by deleting a key whose beats it saw stop (deposeStale), and that deadline passed
   * `margin` before.
   */
  private servingDeadline(): number {
    return this.beatDeadline;
  }

  /**
   * Leader: performance.now() until which it keeps its term without an answer from etcd
   * (ETCD_ELECTION_ALLOWANCE_MS past its serving deadline); it steps down there.
   */
  private termDeadline(): number {
    return this.servingDeadline() + ETCD_ELECTION_ALLOWANCE_MS;
  }

  /**
   * Deadline of one append (EtcdLog.send): until the leader would give up its term, at
   * least the horizon. An append is fenced on the term in etcd itself, so its answer is of
   * use as long as the term may last: at the horizon alone (1.5 s at the default TTL) an
   * append that went out as etcd lost its Raft leader ended MAYBE_COMMITTED during etcd's
   * election, and the leader stepped down with it.
   */
  private appendDeadlineMs(): number {
    return Math.max(this.horizonMs, this.termDeadline() - mono());
  }

  /**
   * Leader: notes being past the serving deadline (once per wait: the log line, and the
   * wait's start for status).
   */
  private noteWaiting(now: number): void {
    if (this.waitingSince !== null || this.role !== 'leader') return;
    this.waitingSince = now;
    this.logger.warn(
      { event: 'LeaseUnconfirmed', keepTermMs: Math.round(this.termDeadline() - now) },
      `etcd has not answered this leader's heartbeats in time: no read versions until it does (etcd may be electing a leader); stepping down if it stays silent ${Math.round(this.termDeadline() - now)} ms more`,
    );
  }

  /** A keepalive, beat or grant renewal was answered: wakes waiting read-version requests, and ends a wait that is over. */
  private renewed(): void {
    if (this.waitingSince !== null && mono() < this.servingDeadline()) {
      const ms = Math.round(mono() - this.waitingSince);
      this.waitingSince = null;
      this.stats.leaseWaits++;
      this.stats.longestLeaseWaitMs = Math.max(this.stats.longestLeaseWaitMs, ms);
      this.logger.info({ event: 'LeaseConfirmed', waitedMs: ms, term: this.term }, `etcd answered again: leading on (term ${this.term}) after ${ms} ms without read versions`);
    }
    const w = this.renewalWaiters;
    this.renewalWaiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next renewed() or step-down, or after `ms`. */
  private nextRenewal(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, ms));
      this.renewalWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * The leader's heartbeat: every TTL/4 a fenced put that only bumps txkv/leader's mod
   * revision (same value). Each answered beat moves the leader's serving deadline to its
   * send time + TTL - margin; past that deadline it hands out no read version (and steps
   * down if etcd stays silent ETCD_ELECTION_ALLOWANCE_MS more). The replicas watch the mod
   * revision (deposeStale): a key whose beats stopped for a TTL is deleted, and that is how
   * a dead leader's key goes (it is on no lease: tick()). It used to be on the leader's
   * lease as well, but etcd extends every lease by TTL + its election timeout when its own
   * Raft leader changes (a txkv leader cut off together with the etcd leader kept its key
   * 4.4-5 s after the cut, measured in test/cluster/partition.test.ts), and etcd 3.4.23
   * revokes leases under a live leader (keepalive()).
   *
   * A beat waits for its answer as long as the answer can be of use (horizonMs), not a
   * fixed 1 s: a beat is a Raft write, and with etcd's writes slower than 1 s (a slow
   * fsync of its WAL) every beat failed and the leader stepped down after TTL - margin
   * although etcd answered each beat well within that (test/cluster/etcd-trouble.test.ts).
   * Beats go out every TTL/4 whatever the ones before are doing (up to 4 in flight), so
   * with write latency W the leader keeps serving while W < TTL - margin - TTL/4 (1 s at
   * the default 2 s TTL, 5 s at 10 s); beyond that it serves between answered beats and
   * steps down once none is answered for ETCD_ELECTION_ALLOWANCE_MS past its deadline.
   *
   * Why a late answer is still safe: it extends the serving deadline to the beat's SEND
   * time + TTL - margin, and only if etcd applied the beat (its compare on this term's
   * create revision held). A replica deletes the key only after it has seen the key's mod
   * revision unchanged for the leader's TTL on its own clock (deposeStale), fenced on that
   * mod revision. The beat that made that revision was sent before the replica first saw
   * it, so its deadline passed `margin` before the delete; a later beat either landed
   * before the delete (the delete's compare fails: the leader stays) or after it (its own
   * compare fails: no extension). So no answered beat lets the leader serve a read version
   * after a new leader's key exists, however late the answer comes.
   */
  private beat(): void {
    const term = this.beatTerm;
    if (term === null || this.closed || this.beatsInFlight >= 4) return;
    const sent = mono();
    const deadline = Date.now() + this.horizonMs;
    this.beatsInFlight++;
    // one member, then (no answer within the hedge) every other: a beat only bumps the
    // revision, so one landing twice is harmless, and a stopped member must not hold it for
    // its deadline
    this.hosts.first((c) => c.kv.txn({
      compare: [{ key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: term }],
      success: [{ request_put: { key: Buffer.from(K.leader), value: Buffer.alloc(0), ignore_value: true, ignore_lease: true } }],
      failure: [],
    }, { deadline }), this.hedgeMs())
      .then(async (res) => {
        this.noteWrite(mono() - sent);
        if (term !== this.beatTerm) return;
        if (res.succeeded) {
          this.beatDeadline = Math.max(this.beatDeadline, sent + this.ttlSec * 1000 - this.margin());
          this.renewed();
          return;
        }
        // deposed (or the key expired): another node may be taking over
        this.beatTerm = null;
        this.beatDeadline = 0;
        if (this.role === 'leader') await this.stepDown('the leader key is no longer ours (heartbeat refused)');
      })
      .catch(() => {
        // not answered: the deadline stays where the last answered beat put it
        this.noteWrite(mono() - sent);
        this.stats.etcdErrors++;
      })
      .finally(() => this.beatsInFlight--);
  }

  /**
   * etcd's Raft term, from an answer's header: when it goes up, etcd elected a new Raft
   * leader, and no write (no beat of the txkv leader) could land for a while before.
   * deposeStale then gives the leader half a TTL (two beat rounds) of a working etcd before
   * it deletes a key whose beats it counted silent across the election. Without that, a
   * replica whose first answered read after the election still showed the key's old mod
   * revision (the leader's next beat not sent or not landed yet) deleted the key of a
   * leader that had kept its term: a failover, with commits in flight failing, although no
   * txkv node failed. (etcd's own lessor extends every lease by TTL + its election timeout
   * on a leader change, for the same reason.) Later deposing is as safe as ever: the
   * leader's serving deadline passed earlier still.
   */
  private noteEtcdTerm(raftTerm: string | undefined): void {
    const t = Number(raftTerm ?? 0);
    if (!(t > this.etcdTerm)) return;
    if (this.etcdTerm !== 0) {
      this.etcdTermAt = mono();
      this.logger.info({ event: 'EtcdLeaderChanged', raftTerm: t, was: this.etcdTerm }, `etcd elected a new Raft leader (Raft term ${t})`);
    }
    this.etcdTerm = t;
  }

  /**
   * Replica: deletes the leader key when its beats stopped, i.e. when its mod revision has
   * not changed for a whole TTL of the leader (beatTtlMs in its key), measured on this
   * node's monotonic clock. Safe for reads: that
   * revision's beat was sent (by the leader's clock) before this node first read it, so
   * the leader's serving deadline (send + TTL - margin) passed at least `margin` ago and
   * it hands out no read version any more. Safe for commits: every write of that term is
   * fenced on the key's create revision, and the delete is fenced on both revisions (a
   * beat that landed meanwhile keeps the leader). Returns true when the key was deleted
   * (the next tick campaigns).
   */
  private async deposeStale(nodeId: string, create: string, mod: string, beatTtlMs: unknown): Promise<boolean> {
    // the LEADER's TTL, from its key, not this node's: cluster.leaseTtlMs is a per-node
    // setting, and a leader with a longer one serves read versions up to its TTL - margin
    // after a beat (and beats every TTL/4): measured on this node's shorter TTL, a healthy
    // leader was deposed while it still handed out read versions (stale reads once the
    // next leader committed). A key without it is from a leader that does not beat (an
    // older version): it is left to expire with its lease.
    if (typeof beatTtlMs !== 'number' || !(beatTtlMs > 0)) return false;
    const now = mono();
    const seen = this.leaderKeySeen;
    if (!seen || seen.create !== create || seen.mod !== mod) {
      this.leaderKeySeen = { create, mod, since: now };
      return false;
    }
    const stale = now - seen.since;
    if (stale < beatTtlMs) return false;
    // etcd just elected a Raft leader: the beats could not land meanwhile (noteEtcdTerm)
    if (now - this.etcdTermAt < beatTtlMs / 2) return false;
    const res = await this.kv((c) => c.kv.txn({
      compare: [
        { key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: create },
        { key: Buffer.from(K.leader), target: 'Mod', result: 'Equal', mod_revision: mod },
      ],
      success: [{ request_delete_range: { key: Buffer.from(K.leader) } }],
      failure: [],
    }));
    this.leaderKeySeen = null;
    if (!res.succeeded) return false;
    this.logger.warn(
      { event: 'LeaderDeposed', leader: nodeId, term: create, staleMs: Math.round(stale) },
      `leader ${nodeId} sent no heartbeat for ${Math.round(stale)} ms: its key is deleted, an election follows`,
    );
    if (this.leader?.nodeId === nodeId) {
      this.dropForward();
      this.leader = null;
      this.role = 'candidate';
    }
    return true;
  }

  private async publish(applied: number): Promise<void> {
    // copying a snapshot in: the copy's version is what this node needs the log from
    if (this.reseeding?.version != null) applied = this.reseeding.version;
    const m: Member = { nodeId: this.s.nodeId, url: this.s.advertiseUrl, applied, role: this.role };
    if (this.role === 'leader') m.logged = Math.max(this.leadStartPos, this.log.lastAcked);
    // a Raft write every SYNC_MS on every node: how a replica learns etcd's write latency
    // before it takes over (its election checks are reads, tick())
    await this.timed(this.kv((c) => c.kv.put({ key: Buffer.from(nodeKey(this.s.nodeId)), value: Buffer.from(JSON.stringify(m)), lease: this.leaseId })));
  }

  /**
   * Connects to this node's own advertised URL once its gateway listens: the node that
   * answers must be this one. An --advertise that names another node's address (a
   * copy-paste slip) would have every forward to this node, once it leads, land on that
   * node, which forwards again. Throws a start-up error when another node or another
   * database answers; an URL that cannot be reached from here (a proxy, NAT) is only
   * logged, and the forwarding check (leaderConnection) still guards it later.
   */
  async checkAdvertised(): Promise<void> {
    const url = this.s.advertiseUrl;
    let conn: Connection;
    try {
      conn = await Connection.open(url, this.token, 2000);
    } catch (err) {
      this.logger.warn({ event: 'AdvertiseUnverified', url, err: (err as Error).message }, `cannot reach this node's advertised URL ${url} from here (${(err as Error).message}); the other nodes must reach it`);
      return;
    }
    try {
      if (conn.databaseId !== this.databaseId || conn.nodeId !== this.s.nodeId) {
        const who = conn.databaseId !== this.databaseId ? `a server of database ${conn.databaseId || '(none named)'}, not this cluster's ${this.databaseId}` : `node ${conn.nodeId || '(none named)'} of this cluster`;
        throw new StartupError(
          `--advertise ${url} (cluster.advertiseUrl) of node ${this.s.nodeId} reaches ${who}, not this node: the other nodes would forward commits meant for ${this.s.nodeId} there. ` +
            'Give every node the address of its own port',
        );
      }
    } finally {
      conn.close();
    }
  }

  /** Starts following the log, keeping the lease, campaigning. The coordinator must be a follower at its log position. */
  async start(coordinator: Coordinator): Promise<void> {
    this.coordinator = coordinator;
    this.shardApplied = [...coordinator.recovery.appliedVersions];
    coordinator.distribution.onFatal = (err) => this.fatal(err);
    coordinator.oracle.beyond = (v) => this.wantCoverOf(v);
    this.tailing = true;
    // a wake-up only: the reads below and the 200 ms poll are what the node follows the
    // log by; the watch keeps a replica's apply latency at etcd's (log-watch.ts)
    this.logWatch = new LogWatch(this.hosts, K.logPrefix, () => this.requestFetch(), this.logger);
    await this.logWatch.start();
    // catch up to the log's tail before taking part in elections
    this.logger.info({ event: 'ClusterReplay', from: coordinator.oracle.lastAssignedVersion, shards: this.shardApplied }, 'replaying the log from this node\'s position');
    await this.fetchAll();
    this.ready = true;
    this.every(TICK_MS, () => this.tick());
    this.every(this.ttlSec * 250, () => this.beat());
    this.every(SYNC_MS, () => this.sync());
    this.every(TRIM_MS, () => this.trim());
    this.every(200, () => {
      if (!this.tailing) return;
      this.logWatch?.check();
      this.requestFetch();
    });
    this.logger.info({ event: 'ClusterJoined', nodeId: this.s.nodeId, applied: coordinator.oracle.finishedVersion }, `cluster node ${this.s.nodeId} following the log`);
  }

  private every(ms: number, f: () => Promise<void> | void): void {
    let busy = false;
    const t = setInterval(() => {
      if (busy || this.closed) return;
      busy = true;
      Promise.resolve()
        .then(f)
        .catch((err: Error) => this.logger.warn({ event: 'ClusterTaskFailed', err: err.message }, 'cluster task failed'))
        .finally(() => (busy = false));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  private get c(): Coordinator {
    if (!this.coordinator) throw new Error('cluster node not started');
    return this.coordinator;
  }

  // ---- following the log -------------------------------------------------------

  private requestFetch(): void {
    if (!this.tailing || this.closed) return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = this.fetchAll()
      .catch((err: Error) => {
        this.stats.etcdErrors++;
        this.logger.debug({ event: 'LogFetchFailed', err: err.message }, 'log fetch failed');
      })
      .finally(() => {
        this.fetching = null;
        if (this.fetchAgain) {
          this.fetchAgain = false;
          this.requestFetch();
        }
      });
  }

  /**
   * Reads (linearizably) and applies every log entry above this node's position, then
   * raises the position to the read versions that were known to be handed out before
   * the read started (nothing at or below them can be missing any more). One at a time.
   */
  private fetchAll(): Promise<void> {
    const p = this.fetchLock.then(() => this.fetchAllNow());
    this.fetchLock = p.catch(() => {});
    return p;
  }

  private async fetchAllNow(): Promise<void> {
    const covers = this.pendingCovers;
    this.pendingCovers = [];
    for (;;) {
      const from = this.c.oracle.lastAssignedVersion + 1;
      const res = await this.kv((c) => c.kv.txn(
        {
          compare: [],
          success: [
            // the entry that may hold `from` without starting at it (a position saved mid-entry)
            { request_range: { key: Buffer.from(K.logPrefix), range_end: Buffer.from(logKey(from)), limit: 1, sort_order: 'Descend', sort_target: 'Key' } },
            { request_range: { key: Buffer.from(logKey(from)), range_end: Buffer.from(K.logEnd), limit: 500 } },
            { request_range: { key: Buffer.from(K.trimmed) } },
          ],
          failure: [],
        },
        { deadline: Date.now() + CALL_DEADLINE_MS * 2 },
      ));
      this.stats.lastEtcdOk = Date.now();
      // everything in the log at this revision is read: a watch re-created later starts after it
      this.logWatch?.readAt(res.header.revision);
      const trimmedKv = res.responses[2]!.response_range.kvs[0];
      const trimmed = trimmedKv ? Number(trimmedKv.value.toString()) : 0;
      if (trimmed > from - 1) {
        // the entries this node needs are gone: copy a snapshot in, then read on from it
        await this.reseed(from - 1, trimmed);
        continue;
      }
      const rows = [...res.responses[0]!.response_range.kvs, ...res.responses[1]!.response_range.kvs];
      // the watch must report these too (a silent one is moved: LogWatch.check)
      let newest = 0n;
      for (const kv of res.responses[1]!.response_range.kvs) if (BigInt(kv.mod_revision) > newest) newest = BigInt(kv.mod_revision);
      if (newest > 0n) this.logWatch?.sawEntries(String(newest));
      for (const kv of rows) {
        const entries = decodeEntry(kv.value);
        // a map change may have to wait (a switch waits for this node's copy of the range)
        if (entries.some((e) => e.dist)) await this.applyEntries(entries);
        else this.applyEntry(entries);
      }
      if (!res.responses[1]!.response_range.more) break;
    }
    if (covers.length > 0) this.c.oracle.coverUpTo(Math.max(...covers));
  }

  /**
   * The log was trimmed past this node's position: copy a consistent snapshot from the
   * leader into the shards while the node runs (snapshot.ts), then follow the log from
   * its version. Watches and change feeds on this node end (they would miss the
   * commits in between); reads below the snapshot's version fail TOO_OLD.
   */
  private async reseed(applied: number, trimmed: number): Promise<void> {
    const oracle = this.c.oracle;
    this.logger.warn({ event: 'LogTrimmedPastNode', applied, trimmed }, `the log was trimmed through ${trimmed}, past this node's position ${applied}: copying a snapshot from the leader`);
    for (let i = 0; oracle.inflightCount > 0; i++) {
      if (i > 2000) throw new Error('log apply did not finish within 10 s');
      await sleep(5);
    }
    this.reseeding = { version: null };
    try {
      const url = await this.seedSource(30_000);
      this.c.live.closeAll(new TxnError('TOO_OLD', 'this node is copying a snapshot (it fell behind the log); watch or subscribe again'));
      const onPinned = (v: number): void => {
        this.reseeding!.version = v;
        void this.publish(v).catch(() => {});
      };
      // a map change during the copy (the leader's balancer) means copying again: at start-up
      // too, where a failed fetch would otherwise end the process
      let r: SeedResult;
      for (let attempt = 1; ; attempt++) {
        try {
          r = await seedFromSnapshot(this.db, this.c, url, this.token, this.logger, this.databaseId, onPinned);
          break;
        } catch (err) {
          if (!(err as { mapChanged?: boolean }).mapChanged || attempt >= 10) throw err;
          this.logger.warn({ event: 'SnapshotRetry', attempt, err: (err as Error).message }, 'copying the snapshot again');
          await sleep(100 * attempt);
        }
      }
      // in one synchronous step: the durable position, the shards' log positions, the oracle
      const b = this.db.batch();
      b._put(CLUSTER_APPLIED_KEY, encodeVersion(r.version));
      try {
        b._writeSync({ sync: true });
      } finally {
        void b.close();
      }
      this.shardApplied = this.shardApplied.map(() => r.version);
      oracle.coverUpTo(r.version);
      this.stats.reseeds++;
      this.lastSeed = r;
    } finally {
      this.reseeding = null;
    }
  }

  /** The node to copy a snapshot from: the leader (waiting up to `ms` for one that is not this node). */
  private async seedSource(ms: number): Promise<string> {
    const until = Date.now() + ms;
    for (;;) {
      const r = await this.kv((c) => c.kv.range({ key: Buffer.from(K.leader) })).catch(() => null);
      const kv = r?.kvs[0];
      if (kv) {
        const info = JSON.parse(kv.value.toString()) as { nodeId: string; url: string };
        if (info.nodeId !== this.s.nodeId) return info.url;
      }
      if (Date.now() > until) throw new TxnError('UNAVAILABLE', `no cluster leader to copy a snapshot from within ${ms} ms`);
      await sleep(200);
    }
  }

  private applyEntry(commits: LogEntry[]): void {
    const oracle = this.c.oracle;
    for (const e of commits) {
      const v = e.commitVersion;
      if (v <= oracle.lastAssignedVersion) continue; // applied already (or a re-sent append)
      oracle.observe(v);
      const sent = [];
      for (const p of e.parts) {
        if (v <= (this.shardApplied[p.shardId] ?? 0)) continue; // on disk before this start
        const shard = this.c.shards[p.shardId];
        if (!shard) this.fatal(new Error(`log entry ${v} names shard ${p.shardId}, but there are ${this.c.shards.length}`));
        sent.push(shard!.request({ t: 'commit', commitVersion: v, mutations: p.mutations, sync: false }));
      }
      this.stats.appliedFromLog++;
      Promise.all(sent).then(
        (replies) => {
          for (const r of replies) if ('error' in r) this.fatal(new Error(`applying log version ${v}: ${r.error.code} ${r.error.message}`));
          oracle.finish(v);
        },
        (err: Error) => this.fatal(err),
      );
    }
  }

  /** applyEntry for entries that hold map changes (splits, merges, moves: coordinator/distribution.ts), in log order. */
  private async applyEntries(commits: LogEntry[]): Promise<void> {
    for (const e of commits) {
      if (!e.dist) {
        this.applyEntry([e]);
        continue;
      }
      const v = e.commitVersion;
      if (v <= this.c.oracle.lastAssignedVersion) continue;
      this.c.oracle.observe(v);
      const wait = this.c.distribution.applyLogged(v, e.dist);
      if (wait) await wait.catch((err: Error) => this.fatal(err));
    }
  }

  private fatal(err: Error): never {
    this.logger.fatal({ event: 'ClusterApplyFailed', err: err.message, stack: err.stack }, 'applying the log failed; exiting (the log is replayed at the next start)');
    process.exit(70);
  }

  /** A reader waits for `v`, beyond what this replica has seen: ask the leader how far it handed out versions, then read the log. */
  private wantCoverOf(v: number): void {
    if (v > this.wantCover) this.wantCover = v;
    if (this.coverCheck || this.role === 'leader') return;
    this.coverCheck = true;
    void (async () => {
      try {
        while (this.wantCover > this.c.oracle.lastAssignedVersion && !this.closed) {
          const want = this.wantCover;
          const rv = await this.forwardReadVersion();
          this.pendingCovers.push(rv);
          this.requestFetch();
          if (rv < want) break; // never handed out (yet): the reader ends with FUTURE_VERSION
          await (this.fetching ?? Promise.resolve());
        }
      } catch {
        /* no leader: readers time out with FUTURE_VERSION */
      } finally {
        this.coverCheck = false;
      }
    })();
  }

  // ---- the gateway's entry points ----------------------------------------------

  /** GetReadVersion: the leader's own (lease and grant permitting), or forwarded to the leader. */
  async readVersion(): Promise<number> {
    if (this.closed) throw new TxnError('UNAVAILABLE', 'this node is shutting down; ask another node of the cluster');
    if (this.role === 'leader') return this.leaderReadVersion();
    const rv = await this.forwardReadVersion();
    // the replica will be asked to read at rv: start reading the log now
    this.pendingCovers.push(rv);
    this.requestFetch();
    return rv;
  }

  /**
   * The leader's read version: only before its serving deadline and at or below its grant.
   * Past either it waits (up to LEASE_WAIT_MS) for a renewal instead of refusing at once:
   * during an etcd election the leader keeps its term and renews within a second or two,
   * and a client's retries would only add load. Then UNAVAILABLE (retryable), as before.
   */
  private async leaderReadVersion(): Promise<number> {
    const until = mono() + LEASE_WAIT_MS;
    for (;;) {
      if (this.role !== 'leader') throw new TxnError('UNAVAILABLE', 'this node stopped leading; an election may be running');
      const now = mono();
      let why: string;
      if (now < this.servingDeadline()) {
        const rv = this.c.oracle.readVersion();
        if (rv <= this.grant) return rv;
        why = 'the leader has not renewed its read-version grant in etcd; an election may be running';
      } else {
        this.noteWaiting(now);
        why = 'the leader cannot confirm its lease; an election may be running';
      }
      if (now >= until) throw new TxnError('UNAVAILABLE', why);
      await this.nextRenewal(until - now);
    }
  }

  async commit(input: CommitInput): Promise<CommitResult> {
    // not attempted: the client retries it on another node
    if (this.closed) throw new TxnError('UNAVAILABLE', 'this node is shutting down; the commit was not attempted (send it to another node of the cluster)');
    if (this.role === 'leader') return this.c.commits.commit(input);
    const [conn, via] = await this.leaderConnection();
    this.stats.forwardedCommits++;
    const r = await this.forwarded(
      via,
      conn.request(
        {
          type: 'commit',
          readVersion: BigInt(input.readVersion),
          readConflicts: input.readConflicts,
          mutations: input.mutations,
        },
        true,
      ),
      FORWARD_COMMIT_MS,
      new TxnError('MAYBE_COMMITTED', 'the leader did not answer a forwarded commit in time; it may or may not have been applied'),
    );
    if (r.type !== 'commit') throw new TxnError('FAILED', `leader answered a commit with ${r.type}`);
    const commitVersion = Number(r.commitVersion);
    // this node answers reads at that version soon: wake the log reader
    this.pendingCovers.push(commitVersion);
    this.requestFetch();
    return { commitVersion, versionstamp: r.versionstamp };
  }

  /** The forward connection goes (its pending requests fail): the leader changed or stopped answering. */
  private dropForward(graceMs = 0): void {
    const f = this.forward;
    this.forward = null;
    if (!f) return;
    const close = (): void => void f.conn.then((c) => c.close(), () => {});
    if (graceMs <= 0 || f.pending.size === 0) return close();
    // no new request goes on it (this.forward is null); those sent get their answers first
    let timer: NodeJS.Timeout | undefined;
    void Promise.race([Promise.allSettled([...f.pending]), new Promise((r) => (timer = setTimeout(r, graceMs)))]).then(() => {
      clearTimeout(timer);
      close();
    });
  }

  /**
   * A forwarded request, bounded: a paused or cut-off leader must not hold a client
   * forever. At the bound the connection it went on is dropped only if it is still the
   * current one (a newer one, to a new leader, keeps its requests).
   */
  private async forwarded<T>(via: Forward, p: Promise<T>, ms: number, onTimeout: TxnError): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    this.forwardedInFlight.add(p);
    via.pending.add(p);
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            if (this.forward === via) this.dropForward();
            reject(onTimeout);
          }, ms);
        }),
      ]);
    } catch (err) {
      if (err instanceof TxnError && err.code === 'NETWORK_ERROR') throw new TxnError('UNAVAILABLE', `the leader could not be reached: ${err.message}`);
      throw err;
    } finally {
      this.forwardedInFlight.delete(p);
      via.pending.delete(p);
      clearTimeout(timer);
    }
  }

  private async forwardReadVersion(): Promise<number> {
    const [conn, via] = await this.leaderConnection();
    this.stats.forwardedReadVersions++;
    const r = await this.forwarded(via, conn.request({ type: 'grv' }, false), FORWARD_GRV_MS, new TxnError('UNAVAILABLE', 'the leader did not answer a read-version request in time'));
    if (r.type !== 'grv') throw new TxnError('FAILED', `leader answered a read-version request with ${r.type}`);
    return Number(r.readVersion);
  }

  /**
   * The connection to the leader, and the forward entry it belongs to. A cached connection
   * found dead is replaced once (`reopened`): no request of the caller went on it yet.
   */
  private async leaderConnection(reopened = false): Promise<[Connection, Forward]> {
    const leader = this.leader;
    if (this.role === 'candidate' || !leader || leader.nodeId === this.s.nodeId) {
      throw new TxnError('UNAVAILABLE', 'the cluster has no leader right now (an election is running); try again');
    }
    if (!this.forward || this.forward.url !== leader.url) {
      this.dropForward();
      this.forward = { url: leader.url, conn: Connection.open(leader.url, this.token, 1000), pending: new Set() };
      this.forward.conn.catch(() => {});
    }
    const via = this.forward;
    let conn: Connection;
    try {
      conn = await via.conn;
    } catch (err) {
      if (this.forward === via) this.forward = null;
      throw new TxnError('UNAVAILABLE', `cannot reach the leader ${leader.nodeId} at ${leader.url}: ${(err as Error).message}`);
    }
    if (!conn.alive) {
      if (this.forward === via) this.forward = null;
      // it dropped while idle: this node was paused past the connection's ping bound (on
      // resume its own clock says the leader was silent that long: replica-view.test.ts),
      // or the leader closed it. Failing the request here failed one client call per drop
      // with the leader healthy (cluster.test.ts's final read version, once at load 6.7)
      if (!reopened) return this.leaderConnection(true);
      throw new TxnError('UNAVAILABLE', `the connection to the leader ${leader.nodeId} dropped; try again`);
    }
    if (conn.databaseId !== this.databaseId) {
      // a wrong --advertise on the leader: forwarding would commit into another database
      if (this.forward === via) this.dropForward();
      const why = `the leader ${leader.nodeId} advertises ${leader.url}, but the server there serves database ${conn.databaseId || '(none named)'}, not this cluster's ${this.databaseId}; fix that node's --advertise (cluster.advertiseUrl)`;
      this.logger.error({ event: 'LeaderUrlWrongDatabase', leader: leader.nodeId, url: leader.url, databaseId: conn.databaseId }, why);
      throw new TxnError('UNAVAILABLE', why);
    }
    if (conn.nodeId !== leader.nodeId) {
      // the leader's --advertise names another node of this cluster (or this one): that
      // node is no leader and would forward again, to the same URL, in a loop
      if (this.forward === via) this.dropForward();
      const why = `the leader ${leader.nodeId} advertises ${leader.url}, but node ${conn.nodeId || '(none named)'} of this cluster answers there${conn.nodeId === this.s.nodeId ? ' (this node)' : ''}; forwarding there would loop. Fix ${leader.nodeId}'s --advertise (cluster.advertiseUrl)`;
      this.logger.error({ event: 'LeaderUrlWrongNode', leader: leader.nodeId, url: leader.url, answeredBy: conn.nodeId }, why);
      throw new TxnError('UNAVAILABLE', why);
    }
    return [conn, via];
  }

  // ---- lease, election, leadership ---------------------------------------------

  /**
   * Renews the lease: a round goes to every etcd member at once (EtcdHosts.keepalive),
   * bounded by CALL_DEADLINE_MS, and a new round starts every TTL/4 even while the last
   * one waits (at most two in flight), so a slow answer never delays the next attempt.
   * Each answer moves the lease deadline to its round's send time + TTL - margin: this
   * node never counts on the lease longer than etcd keeps it (a replica past it does not
   * campaign). The lease holds the node's txkv/nodes key (its position, which holds back
   * log trimming); the leader key is on no lease (tick()).
   */
  private keepalive(): void {
    if (this.closed) return;
    if (!this.lease) {
      // the lease expired and getting a new one failed (etcd unreachable): try again, or
      // this node would never publish its position or campaign again
      void this.replaceLease();
      return;
    }
    if (this.keepalivesInFlight >= 4) return;
    const sent = mono();
    const id = this.leaseId;
    this.keepalivesInFlight++;
    this.hosts
      // an answer is of use until send + TTL - margin (as a beat's)
      .keepalive(id, this.horizonMs)
      .then(
        (ttl) => {
          if (id !== this.leaseId) return;
          if (!(ttl > 0)) throw new EtcdLeaseInvalidError(id);
          this.leaseDeadline = Math.max(this.leaseDeadline, sent + this.ttlSec * 1000 - this.margin());
          this.stats.lastEtcdOk = Date.now();
          this.leaseLostLogged = false;
          this.renewed();
        },
      )
      .catch(async (err: Error) => {
        if (id !== this.leaseId || this.closed) return;
        this.stats.etcdErrors++;
        const expired = err instanceof EtcdLeaseInvalidError || /expired or revoked|not found/.test(err.message);
        if (expired || mono() >= this.leaseDeadline) {
          // once per loss, not every failed round while etcd stays out of reach
          if (expired || !this.leaseLostLogged) this.logger.warn({ event: 'LeaseLost', expired, err: err.message }, expired ? 'this node lost its etcd lease' : 'this node cannot confirm its etcd lease');
          this.leaseLostLogged = true;
          // the lease holds this node's txkv/nodes key, not the leader key: a leader keeps
          // leading on its beats. (A lease can go although its keepalives were answered:
          // etcd 3.4.23's old Raft leader, paused past a lease's TTL, revokes that lease
          // when it resumes, by its own clock: etcd issue 15247, fixed in 3.4.28. With the
          // leader key on the lease that cost the txkv leader its term at each such pause.)
          if (expired) await this.replaceLease();
        }
      })
      .catch((err: Error) => this.logger.warn({ event: 'ClusterTaskFailed', err: err.message }, 'lease keepalive failed'))
      .finally(() => this.keepalivesInFlight--);
  }

  /** A new lease after the old one expired; the node's key is published again on it. One at a time. */
  private replaceLease(): Promise<void> {
    this.replacingLease ??= (async () => {
      try {
        this.lease = null;
        await this.newLease();
        await this.publish(this.coordinator?.oracle.finishedVersion ?? 0);
      } catch (err) {
        this.logger.warn({ event: 'LeaseRenewFailed', err: (err as Error).message }, 'could not get a new etcd lease; trying again');
      } finally {
        this.replacingLease = null;
      }
    })();
    return this.replacingLease;
  }

  private async tick(): Promise<void> {
    if (!this.ready || this.transitioning) return;
    // (a leader checks its term deadline also while it has no lease: the lease holds only
    // its txkv/nodes key, and it may be replacing one that etcd revoked)
    if (this.role === 'leader') {
      const now = mono();
      if (now >= this.termDeadline()) {
        await this.stepDown(`heartbeat deadline passed and etcd answered no beat for ${ETCD_ELECTION_ALLOWANCE_MS} ms more`);
        return;
      }
      if (now >= this.servingDeadline()) this.noteWaiting(now);
      // not awaited: a renewal waits up to the horizon for etcd, and the term deadline above
      // must be checked every tick meanwhile
      if (!this.renewingGrant) {
        this.renewingGrant = true;
        this.renewGrant()
          .catch((err: Error) => {
            this.stats.etcdErrors++;
            this.logger.warn({ event: 'GrantRenewFailed', err: err.message }, 'renewing the read-version grant failed');
          })
          .finally(() => (this.renewingGrant = false));
      }
      return;
    }
    if (!this.lease || mono() >= this.leaseDeadline) return; // do not campaign on a lease that may be gone
    if (this.reseeding) return; // far behind: copying a snapshot in
    // First a linearizable read of the leader key; the campaign (a Raft write) only when it
    // is absent. The check used to BE the campaign, a create-if-absent txn that fails while
    // a leader exists: every replica wrote to etcd's Raft log every tick (10/s each, 20/s
    // for two replicas; an fsync on a majority of etcd members each), all to learn that the
    // leader is still there. Why a read decides as well:
    //   - who leads is still decided by etcd alone: a node leads only by the campaign txn
    //     (create-if-absent), whatever its read said; a read that is out of date at once
    //     costs at most a failed campaign or one tick of following the old leader (whose
    //     forwarded requests it refuses itself once it no longer leads);
    //   - deposeStale's argument needs only that this node cannot see a mod revision before
    //     the beat that made it was sent, true of any read; and its delete is fenced on that
    //     mod revision, so a beat that landed after the read keeps the leader;
    //   - the read is linearizable (etcd's ReadIndex: the member confirms with a quorum that
    //     its Raft leader still leads and answers once it applied everything committed
    //     before the read began), so it shows the key as the failed txn's range did: a key
    //     deleted or re-created before the read began is seen so, not an older copy.
    // Not serializable: a serializable read on a member cut off from its peers would show
    // the old key for as long as the cut lasts (no takeover, no deposing from this node).
    // (the write deadline: a linearizable read waits for the member to apply up to etcd's
    // commit index, which a slow etcd disk delays too)
    const cur = await this.kv((c) => c.kv.range({ key: Buffer.from(K.leader) }, { deadline: Date.now() + this.writeDeadlineMs() }));
    this.stats.lastEtcdOk = Date.now();
    this.noteEtcdTerm(cur.header.raft_term);
    let kv = cur.kvs[0];
    if (!kv) {
      // beatTtlMs: how long the replicas wait for a beat before deleting the key (deposeStale)
      // incarnation: this process's key, told from one it left before a restart (below).
      // On no lease: the key stays while the leader beats, and goes when a node deletes it
      // after its beats stopped (deposeStale), or when the leader steps down or stops. An
      // etcd lease can be revoked under a live leader (LeaseLost in keepalive()), and etcd
      // extends every lease on each change of its own Raft leader anyway
      const me = JSON.stringify({ nodeId: this.s.nodeId, url: this.s.advertiseUrl, beatTtlMs: this.ttlSec * 1000, incarnation: this.incarnation });
      const sent = mono();
      // a Raft write: its deadline and its round trip as the leader's writes'
      const res = await this.timed(this.kv((c) => c.kv.txn({
        compare: [{ key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: Buffer.from(K.leader), value: Buffer.from(me) } }],
        failure: [{ request_range: { key: Buffer.from(K.leader) } }],
      }, { deadline: Date.now() + this.writeDeadlineMs() })));
      this.stats.lastEtcdOk = Date.now();
      this.noteEtcdTerm(res.header.raft_term);
      if (res.succeeded) {
        // the put is this term's first beat
        this.beatTerm = String(res.header.revision);
        this.beatDeadline = sent + this.ttlSec * 1000 - this.margin();
        await this.becomeLeader(String(res.header.revision));
        return;
      }
      kv = res.responses[0]?.response_range.kvs[0];
      if (!kv) {
        this.leaderKeySeen = null;
        return;
      }
    }
    const { beatTtlMs, incarnation, ...info } = JSON.parse(kv.value.toString()) as { nodeId: string; url: string; beatTtlMs?: unknown; incarnation?: unknown };
    this.lastLeaderSeen = mono();
    if (info.nodeId === this.s.nodeId) {
      // ours, made by this process (a campaign whose answer was lost, or a step-down that
      // did not delete it). Never lead again under that term: an append of it whose answer
      // was lost may still reach etcd (its compare holds while this key exists) after a
      // new reign read the log, and sit in the log below versions every node has passed.
      // Delete the key (fenced by its revision); the next tick campaigns for a new term.
      if (incarnation === this.incarnation || (incarnation === undefined && String(kv.lease) === this.leaseId)) {
        const ms = this.writeDeadlineMs();
        await this.timed(this.kv((c) => c.kv.txn({
          compare: [{ key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: String(kv.create_revision) }],
          success: [{ request_delete_range: { key: Buffer.from(K.leader) } }],
          failure: [],
        }, { deadline: Date.now() + ms })));
        return;
      }
      // our key from before a restart: nobody beats it; deleted as any silent leader's is,
      // once its mod revision has stood still a TTL (a key of an older build goes with its
      // lease). Do not follow ourselves meanwhile
      this.leader = null;
      this.role = 'candidate';
      await this.deposeStale(info.nodeId, String(kv.create_revision), String(kv.mod_revision), beatTtlMs);
      return;
    }
    if (await this.deposeStale(info.nodeId, String(kv.create_revision), String(kv.mod_revision), beatTtlMs)) return;
    if (!this.leader || this.leader.nodeId !== info.nodeId || this.leader.url !== info.url) {
      this.dropForward(FORWARD_GRACE_MS);
      this.logger.info({ event: 'LeaderChanged', leader: info.nodeId, url: info.url }, `leader is ${info.nodeId}`);
    }
    this.leader = info;
    this.role = 'replica';
  }

  private async becomeLeader(rev: string): Promise<void> {
    const started = mono();
    const gap = started - this.lastLeaderSeen;
    this.transitioning = true;
    this.role = 'candidate';
    this.leader = null;
    this.leaderKeySeen = null;
    // requests this node forwarded to the old leader fail now (a commit MAYBE_COMMITTED, a
    // read version UNAVAILABLE; both retryable by the client) instead of at their bound:
    // a client of this node waited up to FORWARD_COMMIT_MS after the takeover. Unless the
    // old leader answers them within FORWARD_GRACE_MS: one that stops gracefully does
    this.dropForward(FORWARD_GRACE_MS);
    try {
      // stop tailing, then read the log to its end: every acknowledged commit of every
      // earlier leader is there (their appends were acknowledged before our key existed)
      this.tailing = false;
      await this.fetching;
      await this.fetchAll();
      const oracle = this.c.oracle;
      for (let i = 0; oracle.inflightCount > 0; i++) {
        if (i > 2000) throw new Error('log apply did not finish within 10 s');
        await sleep(5);
      }
      const g = await this.kv((c) => c.kv.range({ key: Buffer.from(K.grant) }));
      const oldGrant = g.kvs[0] ? Number(g.kvs[0].value.toString()) : 0;
      this.grantRev = g.kvs[0] ? String(g.kvs[0].mod_revision) : '0';
      this.leadStartPos = oracle.lastAssignedVersion;
      // above every logged version and every read version an earlier leader could hand out
      oracle.lead(Math.max(oracle.lastAssignedVersion, oldGrant));
      // the conflict history begins here: earlier leaders' commits are not in it, so read
      // versions from before (up to the old grant) are refused TOO_OLD (retryable)
      this.c.commits.resetHistory();
      this.term = rev;
      this.positions = [];
      this.log.activate(rev);
      this.grant = 0;
      // no read is served here above the grant (oracle.capReads): none until it is written
      oracle.capReads(0);
      if (!(await this.renewGrant())) throw new Error('could not write the read-version grant');
      this.role = 'leader';
      this.leader = { nodeId: this.s.nodeId, url: this.s.advertiseUrl };
      this.stats.failovers++;
      this.stats.lastFailoverMs = Math.round(mono() - started + Math.min(gap, 60_000));
      this.stats.lastFailoverAt = new Date().toISOString();
      // a move the previous leader left before its switch is aborted through the log
      this.c.distribution.tookOver().catch((err: Error) => this.logger.warn({ event: 'MoveAbortFailed', err: err.message }, 'aborting the unfinished move failed'));
      this.logger.info(
        { event: 'BecameLeader', nodeId: this.s.nodeId, term: rev, startVersion: oracle.lastAssignedVersion, oldGrant, takeoverMs: Math.round(mono() - started), sinceLeaderSeenMs: Math.round(gap) },
        `${this.s.nodeId} leads (term ${rev})`,
      );
    } catch (err) {
      this.logger.warn({ event: 'TakeoverFailed', err: (err as Error).message }, 'taking over as leader failed; stepping down');
      this.transitioning = false;
      await this.stepDown(`takeover failed: ${(err as Error).message}`, true);
      return;
    } finally {
      this.transitioning = false;
    }
  }

  /** Moves the grant ahead of the clock when it runs short; fenced. Returns false when refused. */
  private async renewGrant(): Promise<boolean> {
    const oracle = this.c.oracle;
    // the oracle's own clock too: an idle leader's read versions move up to it, and after a
    // restart it starts above the bound persisted while this node last led (up to 10 s past
    // the grant it inherits), so a grant below it refused every read version until the
    // first one had moved the counter and the next tick renewed
    const base = Math.max(microClock(), oracle.lastAssignedVersion, oracle.clockVersion);
    // a horizon ahead (at least 1 s), renewed at half of it: a renewal is a Raft write, and
    // one that takes W must land before the grant runs out, or every read version is
    // refused while etcd is slow. 1 s ahead refused them as soon as W passed 0.5 s (and
    // learning W from the writes first left ~5 s of refusals at the start of a slowdown).
    // The next leader's versions start above this grant: they may jump that far ahead of
    // the clock after a failover (1.5 s at the default 2 s TTL, 7.5 s at 10 s; a restarted
    // node's jump up to 10 s, above, is of the same kind).
    const aheadUs = Math.max(GRANT_AHEAD_US, this.horizonMs * 1000);
    if (this.grant - base > aheadUs / 2) return true;
    const next = base + aheadUs;
    // the term of this call, also for a retry on another member after a step-down
    const term = this.term;
    if (term === null) return false;
    // as a beat: waits as long as an answer is of use, on one member and after the hedge on
    // every other. Fenced on the grant's mod revision as well as the term: the grant in
    // etcd must never go down (the next leader starts above it, and this one hands out
    // read versions up to what it last wrote), and a copy of an older renewal (hedged to a
    // slow member, or one that timed out here) may be applied after a newer one. Only the
    // first applied of the renewals made from one revision takes effect.
    const rev = this.grantRev;
    const deadline = Date.now() + this.horizonMs;
    const res = await this.timed(this.hosts.first((c) => c.kv.txn({
      compare: [
        { key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: term },
        { key: Buffer.from(K.grant), target: 'Mod', result: 'Equal', mod_revision: rev },
      ],
      success: [{ request_put: { key: Buffer.from(K.grant), value: Buffer.from(String(next)) } }],
      failure: [{ request_range: { key: Buffer.from(K.leader) } }, { request_range: { key: Buffer.from(K.grant) } }],
    }, { deadline }), this.hedgeMs()));
    if (term !== this.term) return false;
    if (!res.succeeded) {
      const leader = res.responses[0]?.response_range.kvs[0];
      const grant = res.responses[1]?.response_range.kvs[0];
      if (!leader || String(leader.create_revision) !== term || !grant) {
        await this.stepDown('the leader key is no longer ours (grant refused)');
        return false;
      }
      // another copy of this renewal (hedged), or an earlier renewal whose answer was lost,
      // was applied first: the grant in etcd is what it wrote, under this term. This node
      // may count on it: it never goes down (every renewal is fenced on the revision before
      // it), and the next leader starts above it. (Taking the refused copy's answer as
      // "not renewed" left read versions refused while the applied copy's answer was slow:
      // 44 of 69 in one run of test/cluster/etcd-trouble.test.ts.)
      this.grantRev = String(grant.mod_revision);
      this.grant = Math.max(this.grant, Number(grant.value.toString()));
      this.c.oracle.capReads(this.grant);
      this.renewed();
      return true;
    }
    this.grantRev = String(res.header.revision);
    this.grant = next;
    this.c.oracle.capReads(next);
    this.stats.lastEtcdOk = Date.now();
    this.renewed();
    return true;
  }

  /**
   * Stops leading (or a takeover that failed): pending commits fail, in-flight ones
   * finish, the oracle goes back to following at the last version etcd acknowledged
   * from us, and the log is tailed from there (it may hold a commit whose append
   * ended MAYBE_COMMITTED).
   */
  private async stepDown(why: string, force = false): Promise<void> {
    if ((this.role !== 'leader' && !force) || this.transitioning) return;
    this.transitioning = true;
    const wasTerm = this.term;
    this.role = 'candidate';
    this.leader = null;
    this.term = null;
    this.beatTerm = null;
    this.waitingSince = null;
    this.renewed(); // read-version requests waiting for a renewal fail now (UNAVAILABLE)
    this.log.deactivate(why);
    this.logger.warn({ event: 'SteppedDown', why, term: wasTerm }, `${this.s.nodeId} stops leading: ${why}`);
    try {
      const oracle = this.c.oracle;
      for (let i = 0; oracle.inflightCount > 0; i++) {
        if (i > 2000) this.fatal(new Error('commits in flight did not finish within 10 s of stepping down'));
        await sleep(5);
      }
      if (!oracle.isFollowing) oracle.follow(Math.max(this.leadStartPos, this.log.lastAcked));
      this.tailing = true;
      this.requestFetch();
    } finally {
      this.transitioning = false;
    }
  }

  // ---- durability of the position, members, trimming ---------------------------

  /** Every log entry at or below this is applied here (what a restart may resume from). */
  private position(): number | null {
    if (this.transitioning) return null;
    const oracle = this.c.oracle;
    // below a move not yet complete here: a restart undoes it locally and replays it from the log
    const cap = this.c.distribution.positionCap;
    if (this.role === 'leader') {
      // a leader's finished version follows the clock while it is idle, also past its grant
      // when renewing the grant fails (etcd cut off). The next leader assigns versions from
      // above that grant (and, with a clock behind ours, below our clock): a position past
      // the grant would have a restart skip them. Nothing above the grant can be in the log
      // from this leader, so the grant bounds what is known.
      const known = Math.min(oracle.finishedVersion, this.grant, cap);
      return this.log.unknownFrom !== null ? Math.min(known, this.log.unknownFrom - 1) : known;
    }
    return oracle.isFollowing ? Math.min(cap, oracle.finishedVersion) : null;
  }

  private async sync(): Promise<void> {
    if (this.reseeding) {
      // the copy's version holds the log's trimming above it; the durable position stays
      if (this.reseeding.version !== null && this.lease) await this.publish(this.reseeding.version);
      return;
    }
    const v = this.position();
    if (v === null || !this.lease) return;
    // the shards wrote without fsync: one synced write covers them (one WAL)
    const b = this.db.batch();
    b._put(CLUSTER_APPLIED_KEY, encodeVersion(v));
    try {
      b._writeSync({ sync: true });
    } finally {
      void b.close();
    }
    await this.publish(v);
    const res = await this.kv((c) => c.kv.range({ key: Buffer.from(K.nodesPrefix), range_end: Buffer.from(K.nodesEnd) }));
    this.members = res.kvs.map((kv) => JSON.parse(kv.value.toString()) as Member).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    this.stats.lastEtcdOk = Date.now();
  }

  /** Leader: delete log entries every live node applied (and older than the retention), compact etcd now and then. */
  private async trim(): Promise<void> {
    if (this.role !== 'leader' || this.transitioning) return;
    const mine = this.position();
    if (mine === null) return;
    // the live members now (a node that just registered holds trimming back at its position)
    const live = await this.kv((c) => c.kv.range({ key: Buffer.from(K.nodesPrefix), range_end: Buffer.from(K.nodesEnd) }));
    // age by this leader's wall clock, not by version distance: versions can run ahead of
    // time (the grant after each failover, the version bound after a restart)
    const now = Date.now();
    await this.compactEtcd(now, String(live.header.revision));
    this.positions.push({ at: now, v: mine });
    let old: number | null = null;
    while (this.positions.length > 0 && now - this.positions[0]!.at >= this.s.logRetentionMs) old = this.positions.shift()!.v;
    if (old !== null) this.positions.unshift({ at: now - this.s.logRetentionMs, v: old });
    if (old === null) return;
    let cut = Math.min(mine, old);
    for (const kv of live.kvs) {
      const m = JSON.parse(kv.value.toString()) as Member;
      if (m.nodeId !== this.s.nodeId) cut = Math.min(cut, m.applied);
    }
    if (cut <= this.stats.trimmedThrough) return;
    // keep the entry that may hold cut + 1 (entries hold versions up to the next entry's first)
    const k = await this.kv((c) => c.kv.range({
      key: Buffer.from(K.logPrefix),
      range_end: Buffer.from(logKey(cut + 2)),
      limit: 1,
      sort_order: 'Descend',
      sort_target: 'Key',
      keys_only: true,
    }));
    const keep = k.kvs[0];
    if (!keep) return;
    const keepFirst = versionOfLogKey(keep.key.toString());
    const through = keepFirst - 1;
    if (through <= this.stats.trimmedThrough) return;
    const term = this.term;
    if (term === null) return;
    const res = await this.kv((c) => c.kv.txn({
      compare: [{ key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: term }],
      success: [
        { request_delete_range: { key: Buffer.from(K.logPrefix), range_end: keep.key } },
        { request_put: { key: Buffer.from(K.trimmed), value: Buffer.from(String(through)) } },
      ],
      failure: [],
    }));
    if (!res.succeeded) return;
    this.stats.trimmedThrough = through;
  }

  /**
   * Leader, every trim round: compacts etcd's history to a revision a few seconds old (so
   * watches that just reconnected are not cut off). Not only after a trim: an idle
   * cluster writes revisions all the time (heartbeats, grant renewals, positions: 9 a
   * second measured with one 10 s-TTL node, more with 2 s TTLs) and trims nothing, and
   * etcd's history grew without bound (test/cluster/heartbeat.test.ts).
   */
  private async compactEtcd(now: number, rev: string): Promise<void> {
    this.compactRevs.push({ at: now, rev });
    let target: string | null = null;
    while (this.compactRevs.length > 0 && now - this.compactRevs[0]!.at >= COMPACT_LAG_MS) target = this.compactRevs.shift()!.rev;
    if (target !== null) {
      await this.kv((c) => c.kv.compact({ revision: target, physical: false })).catch((err: Error) => {
        if (!/compacted/.test(err.message)) throw err;
      });
    }
  }

  // ---- status ------------------------------------------------------------------

  status(): Record<string, unknown> {
    const applied = this.coordinator?.oracle.finishedVersion ?? 0;
    // this node's own row as it is now: the published one (etcd, every 0.5 s) lagged by
    // up to a sync period, so a leader reported its own log end late and the lag of every
    // member against it was off by up to that much. Other members' rows are as they last
    // published them (each at most 0.5 s old, plus this node's last read of them).
    const published = this.members.find((m) => m.nodeId === this.s.nodeId);
    const mine: Member = { nodeId: this.s.nodeId, url: this.s.advertiseUrl, applied: (this.coordinator && this.position()) ?? published?.applied ?? 0, role: this.role };
    if (this.role === 'leader') mine.logged = Math.max(this.leadStartPos, this.log.lastAcked);
    const members = [...this.members.filter((m) => m.nodeId !== this.s.nodeId), mine].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    const lm = members.find((m) => m.nodeId === this.leader?.nodeId);
    const leaderApplied = lm ? (lm.logged ?? lm.applied) : null;
    return {
      nodeId: this.s.nodeId,
      role: this.role,
      leader: this.leader?.nodeId ?? null,
      leaderUrl: this.leader?.url ?? null,
      term: this.term,
      appliedVersion: applied,
      lagVersions: leaderApplied !== null && this.role === 'replica' ? Math.max(0, leaderApplied - applied) : 0,
      members: members.map((m) => ({ ...m, lagVersions: leaderApplied !== null ? Math.max(0, leaderApplied - m.applied) : null })),
      lastFailoverMs: this.stats.lastFailoverMs,
      lastFailoverAt: this.stats.lastFailoverAt,
      failovers: this.stats.failovers,
      leaseWaits: this.stats.leaseWaits,
      longestLeaseWaitMs: this.stats.longestLeaseWaitMs,
      log: { ...this.log.counters, pending: this.log.pending, trimmedThrough: this.stats.trimmedThrough },
      forwarded: { commits: this.stats.forwardedCommits, readVersions: this.stats.forwardedReadVersions },
      appliedFromLog: this.stats.appliedFromLog,
      logWatch: this.logWatch?.status() ?? null,
      reseeding: this.reseeding !== null,
      reseeds: this.stats.reseeds,
      lastReseed: this.lastSeed,
      etcd: { endpoints: this.s.etcdEndpoints, order: this.hosts.orderedEndpoints(), errors: this.stats.etcdErrors, lastOkMsAgo: this.stats.lastEtcdOk ? Date.now() - this.stats.lastEtcdOk : null },
    };
  }

  /** Leaves: hands the leadership over at once (deletes the key, revokes the lease), stops the loops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.beatTerm = null;
    for (const t of this.timers) clearInterval(t);
    this.tailing = false;
    this.log.deactivate('the node is shutting down');
    // A graceful stop lets the commits in flight end with their real outcome (txkv serve:
    // "in-flight commits drain"): the leader's append in flight (its commits were failed
    // MAYBE_COMMITTED when the etcd clients below closed under it, or fenced once the key
    // was deleted), a replica's forwarded requests (failed MAYBE_COMMITTED when
    // dropForward closed their connection). Both are bounded by their own deadlines.
    // A leader also lets the commits of that append be applied and answered before its key
    // goes: replicas drop their forward connection the moment they see the key gone, and
    // a forwarded commit still unanswered then failed MAYBE_COMMITTED on them.
    const oracle = this.coordinator?.oracle;
    const answered = this.log.whenIdle().then(() => (this.role === 'leader' && oracle ? oracle.waitFor(oracle.lastAssignedVersion, FORWARD_COMMIT_MS) : true));
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([answered, ...this.forwardedInFlight]),
      new Promise((resolve) => (bound = setTimeout(resolve, FORWARD_COMMIT_MS))),
    ]);
    clearTimeout(bound);
    this.logWatch?.close();
    const term = this.term;
    if (term) {
      await this.kv((c) => c.kv
        .txn({
          compare: [{ key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: term }],
          success: [{ request_delete_range: { key: Buffer.from(K.leader) } }],
          failure: [],
        }))
        .catch(() => {});
    }
    await this.lease?.revoke().catch(() => {});
    this.dropForward();
    this.etcd.close();
    this.hosts.close();
  }
}

export interface ClusterDatabase {
  databaseId: string;
  shards: number;
  splitPoints: string[];
  createdAt?: string;
}

/**
 * The cluster's database: its id and shard layout, made by the first node that starts
 * (a create-if-absent transaction), read by every other. `local` is the database the
 * node's data directory already holds (null for an empty directory): such a node never
 * creates the record. An etcd without it has lost its data (wiped, replaced, restored
 * empty) or is another etcd, and a fresh database made there would start empty beside
 * the data this node holds. Throws a StartupError that says what to do instead.
 */
export async function ensureClusterDatabase(
  etcd: Etcd3,
  wanted: { databaseId: string; shards: number; splitPoints: string[] },
  local: { databaseId?: string; createdAt: string; dataDir: string } | null,
  endpoints: string[],
): Promise<ClusterDatabase> {
  let kv;
  if (local) {
    // a node with data of its own only reads
    kv = (await etcd.kv.range({ key: Buffer.from(K.database) })).kvs[0];
  } else {
    const value = JSON.stringify({ ...wanted, createdAt: new Date().toISOString() });
    const res = await etcd.kv.txn({
      compare: [{ key: Buffer.from(K.database), target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: Buffer.from(K.database), value: Buffer.from(value) } }],
      failure: [{ request_range: { key: Buffer.from(K.database) } }],
    });
    if (res.succeeded) return wanted;
    kv = res.responses[0]!.response_range.kvs[0];
  }
  if (!kv) {
    throw new StartupError(
      `etcd (${endpoints.join(', ')}) holds no txkv cluster record (key ${K.database}), but the data directory ${local!.dataDir} holds database ` +
        `${local!.databaseId ?? '(unnamed)'} (created ${local!.createdAt}). Either etcd lost its data (wiped, or replaced by an empty cluster; ` +
        'or these are the endpoints of another etcd), or this directory is a single server\'s. Not starting: a cluster created now would be a new, empty ' +
        'database beside this data, and the commits still in the lost log would be gone without a word. If etcd lost its data, restore it from an etcd ' +
        'snapshot (etcdctl snapshot restore) or a surviving member (etcd --force-new-cluster), then restart the nodes (docs/cluster.md, "etcd lost its data"); ' +
        'to start a new cluster instead, give this node an empty data directory',
    );
  }
  const d = JSON.parse(kv.value.toString()) as ClusterDatabase;
  if (local?.databaseId !== undefined && local.databaseId !== d.databaseId) {
    throw new StartupError(
      `the data directory ${local.dataDir} holds database ${local.databaseId} (created ${local.createdAt}), but the cluster in etcd (${endpoints.join(', ')}) ` +
        `is database ${d.databaseId} (created ${d.createdAt ?? '?'}). Either this directory belongs to another cluster or a single server, or etcd lost ` +
        'its data and a new cluster was created in it since (a node with an empty data directory started first). Not starting: this node would serve ' +
        'another database\'s data as this one\'s. Point --etcd at this directory\'s own cluster, or give this node an empty data directory ' +
        '(docs/cluster.md, "etcd lost its data")',
    );
  }
  return { databaseId: d.databaseId, shards: d.shards, splitPoints: d.splitPoints, createdAt: d.createdAt };
}
