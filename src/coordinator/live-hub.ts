// Watches and change feeds, main thread. The shards notice changes (shard/live.ts) and
// send events; this routes them to the watch or feed that asked, and holds each back
// until the oracle's committed version covers it: a client told "changed" (or given a
// change) can then read it with a fresh read version.
//
// Feeds: a subscription of [begin, end) asks every shard of the range for the changes
// its window holds after fromVersion (history) and for every change from then on
// (events). A cross-shard commit arrives in parts, one per shard, under one version;
// parts are merged by version and a version is released only once finishedVersion
// has passed it: by then every shard's part has arrived (a shard sends a commit's
// events ahead of its reply, and the oracle passes a version only after every reply).
import { TxnError } from '../errors.js';
import { compareKeys, keyFromString, keyString } from '../keys/bytes.js';
import { MutationKind, unpackMutations, type ChangeRecord, type ShardEvent, type ShardMutation } from '../shard/interface.js';
import type { ShardHandle } from './shard-handle.js';
import type { ShardMap } from './shard-map.js';
import type { TimestampOracle } from './timestamp-oracle.js';

/** One committed version of a feed: its changes within the subscribed range. */
export interface FeedVersion {
  version: number;
  mutations: ShardMutation[];
}

export interface FeedSink {
  /** Versions in order, each once; called with what became releasable. */
  deliver(versions: FeedVersion[]): void;
  /** The feed ended on the server's side (a shard refused it, or it is shutting down). */
  fail(err: TxnError): void;
}

interface WatchEntry {
  /** The shard it is registered at; -1 while a cluster replica waits to apply the log first (watch()). */
  shardId: number;
  key: Uint8Array;
  resolve: (version: number) => void;
  reject: (err: TxnError) => void;
}

/** A version's changes not delivered yet. */
interface PendingVersion {
  mutations: ShardMutation[];
  /** Identities (mutationId) of `mutations`, made once a second report of the version arrives. */
  seen: Set<string> | null;
}

/**
 * What a change is, for telling a repeated report of it (Feed.pending): within one commit
 * version a key is written once (its net effect) and keys of different shards differ.
 */
function mutationId(m: ShardMutation): string {
  return m.kind === MutationKind.ClearRange ? `r${keyString(m.key)}\u0000${keyString(m.param)}` : `p${keyString(m.key)}`;
}

interface Feed {
  begin: Uint8Array;
  end: Uint8Array;
  sink: FeedSink;
  /** Versions <= this are delivered (or were before the start). */
  delivered: number;
  /**
   * Changes not delivered yet, by version. A shard may report one commit twice to a new
   * feed: in the feed's history (every commit it applied before it took the subscription,
   * the batch it is still writing included) and as an event (it sends a batch's changes
   * whenever any feed there covers them, and those of that batch, or of one in flight to
   * this thread, come after the feed was registered here). A version reported more than
   * once keeps each change once (PendingVersion.seen).
   */
  pending: Map<number, PendingVersion>;
  /** Its subscriptions at the shards: at the start, and those added when a move handed part of the range to another worker (rangeMoved). */
  subs: { shardId: number; subId: number }[];
  /** Shards whose history has not arrived yet: nothing is released before they all have. */
  historyLeft: number;
  closed: boolean;
  releaseScheduled: boolean;
}

function clip(m: ShardMutation, begin: Uint8Array, end: Uint8Array): ShardMutation | null {
  if (m.kind === MutationKind.ClearRange) {
    const b = compareKeys(m.key, begin) < 0 ? begin : m.key;
    const e = compareKeys(m.param, end) > 0 ? end : m.param;
    return compareKeys(b, e) < 0 ? { kind: m.kind, key: b, param: e } : null;
  }
  return compareKeys(m.key, begin) >= 0 && compareKeys(m.key, end) < 0 ? m : null;
}

/** How long a feed's start waits for a version a cluster replica has not read from the log yet (as reads do). */
const FEED_FUTURE_WAIT_MS = 1000;

/**
 * How long a watch on a cluster replica waits for the node to apply the log up to the
 * cluster's read version before it is registered; then UNAVAILABLE, which the SDK answers
 * by arming the watch again.
 */
const WATCH_CATCH_UP_MS = 10_000;

export class LiveHub {
  private nextWatchId = 1;
  private readonly watches = new Map<number, WatchEntry>();
  private nextFeedId = 1;
  private readonly feeds = new Map<number, Feed>();
  /**
   * Cluster mode: "now" for a feed without fromVersion is the cluster's read version (a
   * replica asks the leader), not this node's last applied version, which lags: a feed
   * started there replayed commits acknowledged before the subscribe call.
   */
  clusterReadVersion: (() => Promise<number>) | null = null;

  constructor(
    private readonly oracle: TimestampOracle,
    private readonly shards: readonly ShardHandle[],
    private readonly getShardMap: () => ShardMap,
  ) {
    for (const s of shards) s.onEvent = (e) => this.onEvent(e);
  }

  get watchCount(): number {
    return this.watches.size;
  }

  get feedCount(): number {
    return this.feeds.size;
  }

  // ---------------------------------------------------------------- watches

  /**
   * Resolves with a version at which the key's value differs from { present, value }
   * (covered by every read version taken afterwards). Returns the watch's id, for cancel().
   */
  watch(key: Uint8Array, present: boolean, value: Uint8Array, resolve: (version: number) => void, reject: (err: TxnError) => void): number {
    const watchId = this.nextWatchId++;
    // a copy: the key may be a view of the whole request frame, kept as long as the watch
    const entry: WatchEntry = { shardId: -1, key: key.slice(), resolve, reject };
    this.watches.set(watchId, entry);
    const register = (): void => {
      if (this.watches.get(watchId) !== entry) return; // canceled meanwhile
      entry.shardId = this.getShardMap().shardOfKey(entry.key);
      this.shards[entry.shardId]!.post({ t: 'watch', watches: [{ watchId, key: entry.key, present, value }] });
    };
    if (!this.clusterReadVersion || !this.oracle.isFollowing) {
      register();
      return watchId;
    }
    // A cluster replica applies the log a little after the leader acknowledged: the value a
    // client watches (its own write, acknowledged before it sent the watch; or a value it
    // read) may be newer than what this node has applied, and the shard, comparing with its
    // older value, fired at once although nothing changed since. The cluster's read version
    // now covers that value: the watch is registered once this node has applied it.
    void this.clusterReadVersion()
      .then(async (rv) => {
        if (!(await this.oracle.waitFor(rv, WATCH_CATCH_UP_MS))) {
          throw new TxnError('UNAVAILABLE', `this cluster node has not applied the log up to version ${rv} within ${WATCH_CATCH_UP_MS} ms; watch again`);
        }
        register();
      })
      .catch((err: unknown) => {
        if (this.watches.get(watchId) !== entry) return;
        this.watches.delete(watchId);
        reject(err instanceof TxnError ? err : new TxnError('UNAVAILABLE', `watch: ${(err as Error).message}`));
      });
    return watchId;
  }

  /** Drops watches without settling them (the caller answers its client): one message per shard. */
  cancelWatches(watchIds: Iterable<number>): void {
    const byShard = new Map<number, number[]>();
    for (const id of watchIds) {
      const w = this.watches.get(id);
      if (!w) continue;
      this.watches.delete(id);
      if (w.shardId < 0) continue; // not registered at a shard yet (watch() drops it when its wait ends)
      let list = byShard.get(w.shardId);
      if (!list) byShard.set(w.shardId, (list = []));
      list.push(id);
    }
    for (const [shardId, ids] of byShard) this.shards[shardId]!.post({ t: 'unwatch', watchIds: ids });
  }

  // ---------------------------------------------------------------- feeds

  /**
   * Starts a feed of [begin, end) after `fromVersion` (the current read version when
   * undefined). Rejects TOO_OLD when a shard's window no longer holds fromVersion.
   * Returns the feed's id, for unsubscribe().
   */
  async subscribe(begin: Uint8Array, end: Uint8Array, fromVersion: number | undefined, sink: FeedSink): Promise<number> {
    // refused here, for every front door: an inverted range would otherwise be a feed that
    // never reports anything (the shard map splits it into no parts) and never ends
    if (compareKeys(begin, end) > 0) throw new TxnError('INVALID_ARGUMENT', 'subscribe: begin is after end (inverted range)');
    const from = fromVersion ?? (this.clusterReadVersion ? await this.clusterReadVersion() : this.oracle.readVersion());
    // a cluster replica may not have read that far in the log yet: wait for it briefly, as
    // reads do (a follower's waitFor asks the leader and reads the log)
    if (from > this.oracle.lastAssignedVersion && !(this.oracle.isFollowing && (await this.oracle.waitFor(from, FEED_FUTURE_WAIT_MS)))) {
      throw new TxnError('FUTURE_VERSION', `fromVersion ${from} is ahead of the server (latest assigned ${this.oracle.lastAssignedVersion})`);
    }
    const parts = this.partsFrom(begin, end, from);
    const feedId = this.nextFeedId++;
    const feed: Feed = {
      begin,
      end,
      sink,
      delivered: from,
      pending: new Map(),
      subs: [],
      historyLeft: parts.length,
      closed: false,
      releaseScheduled: false,
    };
    this.feeds.set(feedId, feed);
    const replies = await Promise.all(
      parts.map((p) => {
        const subId = this.nextFeedId++;
        feed.subs.push({ shardId: p.shardId, subId });
        return this.shards[p.shardId]!.request({ t: 'subscribe', subId, begin: p.begin, end: p.end, fromVersion: p.from });
      }),
    );
    const refusal = replies.find((r) => 'error' in r);
    if (refusal && 'error' in refusal) {
      this.unsubscribe(feedId);
      throw TxnError.fromWire(refusal.error);
    }
    if (feed.closed) return feedId;
    for (const r of replies) if ('history' in r) this.addRecords(feed, r.history);
    feed.historyLeft = 0;
    this.scheduleRelease(feed);
    return feedId;
  }

  /**
   * Where a feed of [begin, end) after `from` asks for its history and changes: each range's
   * owner, neighbours of one owner joined; and for a range moved at a switch version vm
   * above `from` (its previous owner still serves reads below vm), the previous owner for
   * the commits below vm and the owner from vm on, as a running feed goes on across a move
   * (rangeMoved). The owner keeps no changes of the range from before vm: a feed resumed
   * from a version before a recent move (well inside the MVCC window) was refused TOO_OLD.
   */
  private partsFrom(begin: Uint8Array, end: Uint8Array, from: number): { shardId: number; begin: Uint8Array; end: Uint8Array; from: number }[] {
    if (compareKeys(begin, end) >= 0) return [];
    const map = this.getShardMap();
    const b = keyString(begin);
    const e = keyString(end);
    const out: { shardId: number; begin: Uint8Array; end: Uint8Array; from: number }[] = [];
    const add = (shardId: number, pb: Uint8Array, pe: Uint8Array, v: number): void => {
      // joined to the last part of the same worker and version when they meet
      for (let i = out.length - 1; i >= 0; i--) {
        const o = out[i]!;
        if (o.shardId === shardId && o.from === v) {
          if (compareKeys(o.end, pb) === 0) {
            o.end = pe;
            return;
          }
          break;
        }
      }
      out.push({ shardId, begin: pb, end: pe, from: v });
    };
    const first = map.indexOf(b);
    for (let i = first; i < map.ranges.length; i++) {
      const r = map.ranges[i]!;
      if (i > first && r.begin >= e) break;
      const pb = r.begin > b ? keyFromString(r.begin) : begin;
      const pe = r.end !== null && r.end < e ? keyFromString(r.end) : end;
      if (r.prev && from < r.prev.until) {
        add(r.prev.owner, pb, pe, from);
        add(r.owner, pb, pe, r.prev.until);
      } else add(r.owner, pb, pe, from);
    }
    return out;
  }

  unsubscribe(feedId: number): void {
    const feed = this.feeds.get(feedId);
    if (!feed) return;
    feed.closed = true;
    this.feeds.delete(feedId);
    for (const h of feed.subs) this.shards[h.shardId]!.post({ t: 'unsubscribe', subId: h.subId });
  }

  /**
   * A move switched [begin, end) from worker `from` to `to` at version vm
   * (coordinator/distribution.ts), in the turn the map changed.
   * Feeds go on: the old owner reports the range's commits below vm (it applies each of
   * them before the move's catch-up ends), and the new owner is asked here to report the
   * part of the feed's range that moved from vm on. It has nothing of it above vm yet
   * (its commits wait behind the move's barrier, posted before this request), so the
   * reply's history is empty and versions are neither lost nor repeated.
   * Watches of keys in the range end with a retryable UNAVAILABLE (the SDK arms them
   * again): armed at the new owner now, they would compare against rows the catch-up may
   * not have brought yet and could fire on a value that did not change. Watches of other
   * keys stay where they are.
   */
  rangeMoved(from: number, begin: Uint8Array, end: Uint8Array | null, to: number, vm: number): void {
    const inRange = (k: Uint8Array): boolean => compareKeys(k, begin) >= 0 && (end === null || compareKeys(k, end) < 0);
    const gone: number[] = [];
    for (const [id, w] of this.watches) {
      // (one still waiting to be registered, shardId -1, will be at the new owner)
      if (w.shardId !== from || !inRange(w.key)) continue;
      this.watches.delete(id);
      gone.push(id);
      w.reject(new TxnError('UNAVAILABLE', 'the key\'s range moved to another shard worker; watch again'));
    }
    if (gone.length > 0) this.shards[from]!.post({ t: 'unwatch', watchIds: gone });
    for (const [feedId, f] of this.feeds) {
      if ((end !== null && compareKeys(f.begin, end) >= 0) || compareKeys(f.end, begin) <= 0) continue;
      const b = compareKeys(f.begin, begin) > 0 ? f.begin : begin;
      const e = end === null || compareKeys(f.end, end) < 0 ? f.end : end;
      const subId = this.nextFeedId++;
      f.subs.push({ shardId: to, subId });
      void this.shards[to]!.request({ t: 'subscribe', subId, begin: b, end: e, fromVersion: vm }).then((r) => {
        if (!('error' in r) || f.closed) return;
        this.unsubscribe(feedId);
        f.sink.fail(TxnError.fromWire(r.error));
      });
    }
  }

  /** Server shutdown: every watch and feed fails with `err`. */
  closeAll(err: TxnError): void {
    for (const [id, w] of this.watches) {
      this.watches.delete(id);
      w.reject(err);
    }
    for (const [id, f] of this.feeds) {
      this.unsubscribe(id);
      f.sink.fail(err);
    }
  }

  // ---------------------------------------------------------------- events

  private onEvent(e: ShardEvent): void {
    if (e.event === 'fired') {
      const fired: WatchEntry[] = [];
      for (const id of e.watchIds) {
        const w = this.watches.get(id);
        if (!w) continue; // canceled meanwhile
        this.watches.delete(id);
        fired.push(w);
      }
      if (fired.length === 0) return;
      void this.oracle.waitFor(e.version, Infinity).then(() => {
        for (const w of fired) w.resolve(e.version);
      });
      return;
    }
    for (const feed of this.feeds.values()) {
      this.addRecords(feed, e.records);
      this.scheduleRelease(feed);
    }
  }

  private addRecords(feed: Feed, records: ChangeRecord[]): void {
    for (const r of records) {
      if (r.version <= feed.delivered) continue;
      let pv = feed.pending.get(r.version);
      // a version already reported (another shard's part of the commit, or this one's again):
      // each change once (Feed.pending)
      const again = pv !== undefined;
      for (const m of unpackMutations(r.mutations)) {
        const c = clip(m, feed.begin, feed.end);
        if (!c) continue;
        if (!pv) feed.pending.set(r.version, (pv = { mutations: [], seen: null }));
        if (again) {
          if (!pv.seen) pv.seen = new Set(pv.mutations.map(mutationId));
          const id = mutationId(c);
          if (pv.seen.has(id)) continue;
          pv.seen.add(id);
        }
        // copies: the views share the event's buffer, which a feed may hold a while
        pv.mutations.push({ kind: c.kind, key: c.key.slice(), param: c.param.slice() });
      }
    }
  }

  private scheduleRelease(feed: Feed): void {
    if (feed.releaseScheduled || feed.historyLeft > 0 || feed.pending.size === 0) return;
    feed.releaseScheduled = true;
    let newest = 0;
    for (const v of feed.pending.keys()) if (v > newest) newest = v;
    void this.oracle.waitFor(newest, Infinity).then(() => {
      feed.releaseScheduled = false;
      if (feed.closed) return;
      this.release(feed);
      this.scheduleRelease(feed);
    });
  }

  private release(feed: Feed): void {
    const upTo = this.oracle.finishedVersion;
    const ready = [...feed.pending.keys()].filter((v) => v <= upTo).sort((a, b) => a - b);
    if (ready.length === 0) return;
    const out: FeedVersion[] = ready.map((version) => {
      const { mutations } = feed.pending.get(version)!;
      feed.pending.delete(version);
      return { version, mutations };
    });
    feed.delivered = ready[ready.length - 1]!;
    feed.sink.deliver(out);
  }
}
