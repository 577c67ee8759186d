// Online data distribution: split, merge and move key ranges between shard workers
// while transactions run. Main thread; the coordinator owns one Distribution, which
// owns the current ShardMap. The protocol and its crash cases: docs/distribution.md.
//
// Persisted state (default column, one key, written with fsync at every step):
//   distribution/state = {map, move}: the map, and the move in progress (if any) with
//   its phase ('copying' before the switch, 'switched' after it).
//   distribution/moved/<id>: the move's marker, written by the target in the same batch
//   as the barrier that ends the move (every commit below the switch is in its column).
//
// Cluster mode (a replicated CommitLog): every map change is a log entry (DistEntry) at a
// version of its own, appended by the leader through the same seam as commits (fenced
// the same way); every node applies the entries in log order through this class
// (applyLogged), so the maps and the shards' contents are the same on every node. A move
// is two entries: moveStart (each node copies the range between its own workers, as
// below) and moveSwitch at the switch version vm (each node switches at vm once its copy
// is complete); a leader that took over in the middle of a copy logs moveAbort.
import type { RocksLevel } from '@nxtedition/rocksdb';
import { TxnError } from '../errors.js';
import type { Failpoints } from '../failpoints/failpoints.js';
import { keyFromString, keyString } from '../keys/bytes.js';
import { columnName, encodeVersion, appliedKey, packMutations, type MapRequest, type ShardReply } from '../shard/interface.js';
import { LocalLog, type CommitLog, type DistEntry, type MoveEntry } from './commit-log.js';

export type { DistEntry } from './commit-log.js';
import type { ShardHandle } from './shard-handle.js';
import { ShardMap, type ShardMapJson } from './shard-map.js';
import type { TimestampOracle } from './timestamp-oracle.js';
import type { DistributionCounters } from '../metrics/server-metrics.js';

export const STATE_KEY = new TextEncoder().encode('distribution/state');
export const markerKey = (id: number): Uint8Array => new TextEncoder().encode(`distribution/moved/${id}`);

export interface MoveState {
  id: number;
  /** Hex keys of the moving range; end null = end of the keyspace. */
  begin: string;
  end: string | null;
  from: number;
  to: number;
  phase: 'copying' | 'switched';
  switchVersion?: number;
  startedMs: number;
  reason: string;
  /** Cluster mode: the log version of the moveStart entry (a node's log position stays below it until the move is done). */
  startVersion?: number;
  /** What the balancer measured (its reason in words), for status. */
  detail?: string;
  /** Cluster mode, once switched: the map before the switch (a restart without the marker goes back to it and replays the move). */
  before?: ShardMapJson;
}

interface PersistedState {
  map: ShardMapJson;
  move: MoveState | null;
  nextMoveId: number;
  /** Cluster mode: the version of the last log entry (DistEntry) this state reflects; replayed entries at or below it are skipped. */
  logVersion?: number;
}



/** One split, merge or move, for /v1/status. */
export interface DistributionEvent {
  kind: 'split' | 'merge' | 'move';
  /** Hex key (split/merge: the boundary; move: the range's begin). */
  begin: string;
  end?: string | null;
  from?: number;
  to?: number;
  /** A short label ('operator', 'balancer: load', ...; a Prometheus label). */
  reason: string;
  /** The balancer's figures behind the reason (free text), if any. */
  detail?: string;
  at: string;
  ms: number;
  rows?: number;
  bytes?: number;
  outcome: 'done' | 'failed';
  error?: string;
}

const hex = (s: string): string => Buffer.from(keyFromString(s)).toString('hex');
const unhex = (h: string): string => keyString(Buffer.from(h, 'hex'));

const NO_OPS = packMutations([]);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rows per chunk of a move's copy, and its byte cap. */
const CHUNK_ROWS = 1000;
const CHUNK_BYTES = 1 << 20;

function readState(db: RocksLevel): PersistedState | null {
  const [raw] = db._getManySync([STATE_KEY]);
  return raw ? (JSON.parse(Buffer.from(raw).toString('utf8')) as PersistedState) : null;
}

/**
 * `sync: false` where a later fsync'd write covers it: every column family shares one
 * WAL, recovered as a prefix, so an fsync makes every earlier record durable, and a write
 * that is lost takes every later one with it. A move's steps are ordered on that WAL.
 */
function writeState(db: RocksLevel, state: PersistedState, extra?: (b: ReturnType<RocksLevel['batch']>) => void, sync = true): void {
  const b = db.batch();
  try {
    b._put(STATE_KEY, Buffer.from(JSON.stringify(state)));
    extra?.(b);
    b._writeSync({ sync });
  } finally {
    void b.close();
  }
}

/** Deletes [begin, end) from worker `shard`'s column, on this thread (recovery: no worker runs). */
function deleteRows(db: RocksLevel, shard: number, begin: string, end: string | null): void {
  const column = db.columns[columnName(shard)]!;
  const it = db.iterator({ column, gte: keyFromString(begin), ...(end !== null ? { lt: keyFromString(end) } : {}), keyEncoding: 'buffer', valueEncoding: 'buffer', values: false });
  try {
    for (;;) {
      const { rows } = it._nextvSync(1000);
      if (rows.length === 0) break;
      const b = db.batch();
      for (let i = 0; i < rows.length; i += 2) b._del(rows[i]!, { column });
      b._writeSync({ sync: false });
      void b.close();
    }
  } finally {
    void it.close();
  }
}

/** Copies [begin, end) from one worker's column to another's, on this thread (recovery). */
function copyRows(db: RocksLevel, from: number, to: number, begin: string, end: string | null): void {
  const src = db.columns[columnName(from)]!;
  const dst = db.columns[columnName(to)]!;
  const it = db.iterator({ column: src, gte: keyFromString(begin), ...(end !== null ? { lt: keyFromString(end) } : {}), keyEncoding: 'buffer', valueEncoding: 'buffer' });
  try {
    for (;;) {
      const { rows } = it._nextvSync(1000);
      if (rows.length === 0) break;
      const b = db.batch();
      for (let i = 0; i < rows.length; i += 2) b._put(rows[i]!, rows[i + 1]!, { column: dst });
      b._writeSync({ sync: false });
      void b.close();
    }
  } finally {
    void it.close();
  }
}

/**
 * At start-up, before recovery of decision records: the persisted map, and the step
 * that finishes or rolls back a move the crash interrupted (to run between the
 * decision records below its switch version and the rest, see recover()).
 * After it ran, `finish()` persists the consistent state.
 */
export function loadDistribution(
  db: RocksLevel,
  splitPoints: Uint8Array[],
  clustered = false,
): { map: ShardMap; at?: { version: number; run: (watermarks: number[]) => void }; finish: () => { map: ShardMap; nextMoveId: number; recovered: string | null; logVersion: number } } {
  const state = readState(db);
  if (!state) {
    const map = new ShardMap(1, splitPoints);
    return { map, finish: () => ({ map, nextMoveId: 1, recovered: null, logVersion: 0 }) };
  }
  if (clustered) return loadClustered(db, state);
  let map = ShardMap.fromJSON(state.map);
  const move = state.move;
  let recovered: string | null = null;
  let at: { version: number; run: (watermarks: number[]) => void } | undefined;
  if (move && move.phase === 'switched') {
    const [marker] = db._getManySync([markerKey(move.id)]);
    if (!marker) {
      // the switch is durable but the target's barrier (and so its copy) may not be:
      // the source's column holds the range exactly as of the switch (it never takes a
      // commit of it afterwards); copy it over, between the decision records below the
      // switch (they may still add to the source) and those above (they may add to the target)
      at = {
        version: move.switchVersion!,
        run: (watermarks) => {
          deleteRows(db, move.to, unhex(move.begin), move.end === null ? null : unhex(move.end));
          copyRows(db, move.from, move.to, unhex(move.begin), move.end === null ? null : unhex(move.end));
          // no read below the switch may reach the target after restart
          if (watermarks[move.to]! < move.switchVersion!) {
            watermarks[move.to] = move.switchVersion!;
            const b = db.batch();
            b._put(appliedKey(move.to), encodeVersion(move.switchVersion!));
            b._writeSync({ sync: false });
            void b.close();
          }
        },
      };
      recovered = `move ${move.id} rolled forward (copied again from worker ${move.from})`;
    } else recovered = `move ${move.id} was complete`;
  } else if (move) recovered = `move ${move.id} rolled back (it had not switched)`;
  return {
    map,
    at,
    finish: () => {
      if (move && move.phase === 'copying') deleteRows(db, move.to, unhex(move.begin), move.end === null ? null : unhex(move.end));
      // after a restart no read is older than any shard's watermark, so the previous
      // owners' rows are no longer needed: delete them and forget the previous owners
      for (let i = 0; i < map.ranges.length; i++) {
        const r = map.ranges[i]!;
        if (!r.prev) continue;
        deleteRows(db, r.prev.owner, r.begin, r.end);
        map = map.withoutPrev(i);
      }
      writeState(db, { map: map.toJSON(), move: null, nextMoveId: state.nextMoveId }, (b) => {
        if (move) b._del(markerKey(move.id));
      });
      return { map, nextMoveId: state.nextMoveId, recovered, logVersion: 0 };
    },
  };
}

/**
 * Cluster mode: the log is the truth. A move whose marker is durable is complete; any
 * other move in progress is undone locally (the target's rows of the range deleted, the
 * map as before the switch) and replayed from the log: the node's log position stayed
 * below the move's start, so the moveStart entry (and the switch, if logged) come again.
 * Previous owners keep their rows until the log's drop entry.
 */
function loadClustered(db: RocksLevel, state: PersistedState): ReturnType<typeof loadDistribution> {
  let map = ShardMap.fromJSON(state.map);
  const move = state.move;
  let logVersion = state.logVersion ?? 0;
  let recovered: string | null = null;
  let complete = false;
  if (move) {
    const [marker] = db._getManySync([markerKey(move.id)]);
    complete = move.phase === 'switched' && marker !== undefined && marker !== null;
    if (complete) {
      recovered = `move ${move.id} was complete`;
      logVersion = Math.max(logVersion, move.switchVersion!);
    } else {
      if (move.phase === 'switched') map = ShardMap.fromJSON(move.before!);
      recovered = `move ${move.id} undone here; the log replays it from version ${move.startVersion} (state at log version ${logVersion})`;
    }
  }
  return {
    map,
    finish: () => {
      if (move && !complete) deleteRows(db, move.to, unhex(move.begin), move.end === null ? null : unhex(move.end));
      // rows of a range in a column that neither owns it nor serves its old reads: a drop
      // whose deletion (done after the map change, retried while busy) a restart cut short
      for (let w = 0; w < map.workers; w++) {
        for (const r of map.ranges) if (r.owner !== w && r.prev?.owner !== w) deleteRows(db, w, r.begin, r.end);
      }
      writeState(db, { map: map.toJSON(), move: null, nextMoveId: state.nextMoveId, logVersion }, (b) => {
        if (move) b._del(markerKey(move.id));
      });
      return { map, nextMoveId: state.nextMoveId, recovered, logVersion };
    },
  };
}

/** What a shard may serve reads for under `map` (MapRequest.served). */
function servedBy(map: ShardMap, shard: number): MapRequest['served'] {
  const out: MapRequest['served'] = [];
  for (const r of map.ranges) {
    if (r.owner === shard) out.push([r.begin, r.end, r.prev ? r.prev.until : 0, null]);
    else if (r.prev && r.prev.owner === shard) out.push([r.begin, r.end, 0, r.prev.until]);
  }
  return out;
}

interface CopyStats {
  rows: number;
  bytes: number;
}

export class Distribution {
  readonly counters: DistributionCounters = { splits: 0, merges: 0, moves: 0, movesFailed: 0, movesInProgress: 0, rowsMoved: 0, bytesMoved: 0 };
  /** Recent splits, merges and moves, newest last (bounded). */
  readonly history: DistributionEvent[] = [];
  /** Every split, merge and move since start, by kind, reason and outcome (Prometheus: txkv_distribution_*_total). */
  readonly byReason: { kind: DistributionEvent['kind']; reason: string; outcome: DistributionEvent['outcome']; count: number; ms: number }[] = [];
  private moving: MoveState | null = null;
  /** Serializes map changes (one at a time). */
  private lock: Promise<unknown> = Promise.resolve();
  private janitor: NodeJS.Timeout | null = null;
  /** Called at a move's switch of [begin, end) from worker `from` to `to` at version vm (the coordinator hands its feeds over, live-hub.ts). */
  onSwitch: ((from: number, begin: Uint8Array, end: Uint8Array | null, to: number, vm: number) => void) | null = null;
  /** Cluster mode: a node that cannot go on with the log (a local step failed) exits; the log is replayed at its next start. */
  onFatal: (err: Error) => void = (err) => {
    throw err;
  };
  private closed = false;
  private readonly clustered: boolean;
  /** Cluster mode: the copy this node runs for a logged move (cancelled by a moveAbort). */
  private copy: { id: number; cancelled: boolean; done: Promise<CopyStats>; t: number } | null = null;
  /**
   * Cluster mode: a switched move's catch-up running behind the log (applySwitch), or null.
   * It always resolves. Every later map change waits for it, as the leader's moves wait
   * for their own catch-up: a source worker feeds one move at a time, and the persisted
   * state names one move in progress.
   */
  private catching: Promise<void> | null = null;
  /** Source worker -> the move whose changes it feeds to a target (a shard keeps one feed). */
  private readonly feeding = new Map<number, number>();

  constructor(
    private current: ShardMap,
    private nextMoveId: number,
    private readonly db: RocksLevel,
    private readonly shards: readonly ShardHandle[],
    private readonly oracle: TimestampOracle,
    private readonly failpoints: Failpoints,
    private readonly oldestReadable: () => number,
    /** Where commits become durable: a replicated log makes every map change a log entry (cluster mode). */
    private readonly log: CommitLog = new LocalLog(),
    /** Cluster mode: the version of the last log entry the persisted state reflects. */
    private logVersion = 0,
  ) {
    this.clustered = log.kind === 'replicated';
  }

  /** Why the balancer may not change ranges on this node now (a cluster replica: the leader decides), or null. */
  get disabled(): string | null {
    return this.clustered && !this.log.writable ? 'a cluster replica (the leader splits, merges and moves ranges)' : null;
  }

  /** Cluster mode: map changes are decided by the leader only. */
  private checkLeader(): void {
    if (this.clustered && !this.log.writable) throw new TxnError('UNAVAILABLE', 'this cluster node is not the leader: ranges are split, merged and moved by the leader (send the request to it)');
  }

  get map(): ShardMap {
    return this.current;
  }

  /** The move in progress, for status. */
  get moveInProgress(): MoveState | null {
    return this.moving;
  }

  /**
   * Cluster mode, a node re-seeded by snapshot at version `v` (cluster/snapshot.ts): the
   * leader's map at v becomes this node's (its shards were emptied; rows are copied by it);
   * log entries at or below v are already in it.
   */
  adopt(map: ShardMapJson, v: number): void {
    if (this.copy) this.copy.cancelled = true;
    this.copy = null;
    if (this.moving) {
      this.counters.movesInProgress--;
      this.endFeed(this.moving);
    }
    this.moving = null;
    this.current = ShardMap.fromJSON(map);
    this.logVersion = v;
    this.persist();
    this.sendMaps();
  }

  /**
   * Cluster mode: the highest log position this node may report as applied (the log is
   * replayed from there after a restart): below a move's start while the move is not
   * complete here, so a restart replays the move.
   */
  get positionCap(): number {
    return this.moving?.startVersion !== undefined ? this.moving.startVersion - 1 : Infinity;
  }

  /** Tells every shard what it serves, and starts dropping moved-away rows once no read needs them. */
  start(): void {
    this.sendMaps();
    this.janitor = setInterval(() => void this.dropPrevious(), 250);
    this.janitor.unref();
  }

  stop(): void {
    this.closed = true;
    if (this.janitor) clearInterval(this.janitor);
    if (this.copy) this.copy.cancelled = true;
  }

  private sendMaps(): void {
    for (let w = 0; w < this.shards.length; w++) this.shards[w]!.post({ t: 'map', mapVersion: this.current.version, served: servedBy(this.current, w) });
  }

  /** Writes the state; `sync: false` only where a later fsync'd write covers it (writeState). */
  private persist(extra?: (b: ReturnType<RocksLevel['batch']>) => void, sync = true): void {
    writeState(this.db, { map: this.current.toJSON(), move: this.moving, nextMoveId: this.nextMoveId, logVersion: this.logVersion }, extra, sync);
  }

  private record(e: DistributionEvent): void {
    let c = this.byReason.find((x) => x.kind === e.kind && x.reason === e.reason && x.outcome === e.outcome);
    if (!c) this.byReason.push((c = { kind: e.kind, reason: e.reason, outcome: e.outcome, count: 0, ms: 0 }));
    c.count++;
    c.ms += e.ms;
    this.history.push(e);
    if (this.history.length > 50) this.history.shift();
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    // a node that became leader may still be finishing a move it followed from the log
    const after = async (): Promise<T> => {
      await this.catching;
      return fn();
    };
    const run = this.lock.then(after, after);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Cluster mode, leader: appends a map change to the replicated log at a fresh version
   * (fenced like commits) and resolves with that version once a majority has it. The
   * version stays unfinished: the caller applies the change, then finishes it.
   */
  private async logged(d: DistEntry): Promise<number> {
    this.checkLeader();
    const v = this.oracle.assignCommitVersion();
    this.log.reserve(v);
    try {
      await this.log.append({ commitVersion: v, parts: [], dist: d });
    } catch (err) {
      this.oracle.finish(v);
      throw err;
    }
    return v;
  }

  /** Adds a boundary at `key` (no data moves). */
  split(key: Uint8Array, reason = 'operator', detail?: string): Promise<ShardMap> {
    return this.changeBoundary('split', key, reason, detail);
  }

  /** Removes the boundary at `key` (both sides must have one owner). */
  merge(key: Uint8Array, reason = 'operator', detail?: string): Promise<ShardMap> {
    return this.changeBoundary('merge', key, reason, detail);
  }

  /** Split or merge: checked against the current map, logged first in cluster mode, then applied. */
  private changeBoundary(kind: 'split' | 'merge', key: Uint8Array, reason: string, detail?: string): Promise<ShardMap> {
    return this.serialized(async () => {
      this.checkLeader();
      const t = performance.now();
      const k = keyString(key);
      try {
        withBoundaryChange(this.current, kind, k);
      } catch (err) {
        throw new TxnError('INVALID_ARGUMENT', (err as Error).message);
      }
      const v = this.clustered ? await this.logged({ kind, key: hex(k), reason }) : null;
      this.applyBoundary(kind, k, reason, v, t, detail);
      if (v !== null) this.oracle.finish(v);
      return this.current;
    });
  }

  /** Applies a split or merge; `v` is its log version in cluster mode, null on a single node. */
  private applyBoundary(kind: 'split' | 'merge', key: string, reason: string, v: number | null, t = performance.now(), detail?: string): void {
    this.current = withBoundaryChange(this.current, kind, key);
    if (v !== null) this.logVersion = v;
    this.persist();
    this.sendMaps();
    if (kind === 'split') this.counters.splits++;
    else this.counters.merges++;
    this.record({ kind, begin: hex(key), reason, ...(detail ? { detail } : {}), at: new Date().toISOString(), ms: Math.round(performance.now() - t), outcome: 'done' });
  }

  /**
   * Moves the range that begins at `begin` to worker `to`, online. Steps (docs/distribution.md):
   * 1 persist 'copying'; 2 the source feeds every batch's changes of the range to the
   * target, and its rows are copied in chunks; 3 switch at one version vm (persisted):
   * commits from vm on go to the target, reads below vm still to the source; the target
   * holds its commits from vm behind a barrier until the source applied everything below
   * vm; 4 the barrier's batch writes the marker (the target is complete); 5 once the
   * MVCC window passed vm, the source deletes its rows (dropPrevious).
   * Cluster mode: the start and the switch are log entries (every node moves the range too).
   */
  move(begin: Uint8Array, to: number, reason = 'operator', detail?: string): Promise<DistributionEvent> {
    return this.serialized(() => (this.clustered ? this.runLoggedMove(keyString(begin), to, reason, detail) : this.runMove(keyString(begin), to, reason, detail)));
  }

  /** Validates a move request; returns the range's index. */
  private checkMove(beginS: string, to: number): number {
    const i = this.current.rangeAt(beginS);
    if (i < 0) throw new TxnError('INVALID_ARGUMENT', `no range begins at ${JSON.stringify(beginS)}; split there first`);
    if (!Number.isInteger(to) || to < 0 || to >= this.shards.length) throw new TxnError('INVALID_ARGUMENT', `worker ${to} does not exist (there are ${this.shards.length})`);
    const range = this.current.ranges[i]!;
    if (range.owner === to) throw new TxnError('INVALID_ARGUMENT', `the range is already on worker ${to}`);
    if (range.prev) throw new TxnError('INVALID_ARGUMENT', 'the range moved recently; its previous owner still serves old reads');
    if (this.current.ranges.some((r) => r.prev && r.prev.owner === to && r.begin === beginS)) throw new TxnError('INVALID_ARGUMENT', 'target still holds old rows of this range');
    return i;
  }

  /**
   * Steps 1-3 of a move on this node: clean the target's part of the range, feed the
   * source's changes of the range to the target, copy the rows in chunks. Resolves once
   * everything copied so far is written at the target.
   */
  private async copyRange(m: MoveState, st: CopyStats, cancelled: () => boolean, onFirstChunk: () => void, chunkDelayMs = 0): Promise<void> {
    const bKey = keyFromString(unhex(m.begin));
    const eKey = m.end === null ? null : keyFromString(unhex(m.end));
    const src = this.shards[m.from]!;
    const dst = this.shards[m.to]!;
    // rows the target may still hold from an earlier stay of the range would come back to
    // life; and range tombstones it still has there would later delete what it receives
    for (let waited = 0; ; waited += 50) {
      const clean = await dst.request({ t: 'dropRange', begin: bKey, end: eKey });
      if ('error' in clean) throw TxnError.fromWire(clean.error);
      if (!('busy' in clean && clean.busy)) break;
      if (waited > 60_000) throw new Error(`worker ${m.to} still holds range tombstones over the range`);
      if (cancelled()) throw new Error('move cancelled');
      await sleep(50);
    }
    // everything the source applies from now on reaches the target in the source's order,
    // and so does every chunk; the target keeps what came last (the newest state)
    const feeds = this.feeding.get(m.from);
    if (feeds !== undefined) throw new Error(`move ${m.id}: worker ${m.from} still feeds move ${feeds}'s changes (one move at a time)`);
    this.feeding.set(m.from, m.id);
    src.onFeed = (r) => {
      if (r.feed.moveId !== m.id) return;
      const n = r.feed.ops.kinds.length;
      if (n === 0) return;
      st.rows += n;
      st.bytes += r.feed.ops.bytes.data.length;
      dst.post({ t: 'ingest', ops: r.feed.ops });
    };
    src.post({ t: 'feed', moveId: m.id, begin: bKey, end: eKey });
    let cursor: Uint8Array | null = bKey;
    let chunks = 0;
    while (cursor) {
      if (this.closed) throw new Error('server shutting down');
      if (cancelled()) throw new Error('move cancelled');
      if (chunkDelayMs > 0) await sleep(chunkDelayMs);
      const r: ShardReply = await src.request({ t: 'chunk', moveId: m.id, begin: cursor, end: eKey, limit: CHUNK_ROWS, maxBytes: CHUNK_BYTES });
      if ('error' in r) throw TxnError.fromWire(r.error);
      if (!('feed' in r)) throw new Error(`shard ${m.from}: unexpected reply to chunk`);
      cursor = r.next ?? null;
      if (++chunks === 1) {
        // the target wrote the first chunk (so a crash here leaves rows there that recovery must remove)
        const first = await dst.request({ t: 'ingest', ops: NO_OPS });
        if ('error' in first) throw TxnError.fromWire(first.error);
        onFirstChunk();
        if (cursor === null) return; // one chunk: written already
      }
    }
    // the ingests are in the target's queue; make sure they were written before switching
    const sync = await dst.request({ t: 'ingest', ops: NO_OPS });
    if ('error' in sync) throw TxnError.fromWire(sync.error);
  }

  /** The source stops feeding `m`'s changes (if it still does: a later move's feed is left alone). */
  private endFeed(m: MoveState): void {
    if (this.feeding.get(m.from) !== m.id) return;
    this.feeding.delete(m.from);
    const src = this.shards[m.from]!;
    src.post({ t: 'feed', moveId: 0, begin: new Uint8Array(0), end: null });
    src.onFeed = null;
  }

  /** Before the switch nothing is lost by giving up: the source still owns the range. */
  private async undoCopy(m: MoveState): Promise<void> {
    this.endFeed(m);
    await this.shards[m.to]!.request({ t: 'dropRange', begin: keyFromString(unhex(m.begin)), end: m.end === null ? null : keyFromString(unhex(m.end)) });
  }

  private moveEvent(m: MoveState, t: number, outcome: 'done' | 'failed', st?: CopyStats, error?: string): DistributionEvent {
    return {
      kind: 'move',
      begin: m.begin,
      end: m.end,
      from: m.from,
      to: m.to,
      reason: m.reason,
      ...(m.detail ? { detail: m.detail } : {}),
      at: new Date().toISOString(),
      ms: Math.round(performance.now() - t),
      ...(st ? { rows: st.rows, bytes: st.bytes } : {}),
      outcome,
      ...(error !== undefined ? { error } : {}),
    };
  }

  /**
   * The switch, in one turn of the event loop: every commit version assigned before vm
   * was planned with the old map (and sent already), every one after with the new.
   */
  private switchAt(m: MoveState, vm: number): MoveState {
    const i = this.current.rangeAt(unhex(m.begin));
    if (i < 0) throw new Error(`move ${m.id}: no range begins at ${m.begin}`);
    const before = this.current;
    this.current = this.current.withOwner(i, m.to, vm);
    this.moving = { ...m, phase: 'switched', switchVersion: vm, ...(this.clustered ? { before: before.toJSON() } : {}) };
    // no fsync: the target's barrier batch, after this record in the WAL, is fsync'd before
    // any commit of the range at vm or later (queued behind it) can be acknowledged; lost
    // with it, the move rolls back at recovery (phase 'copying') as if it never switched
    this.persist(undefined, false);
    const bKey = keyFromString(unhex(m.begin));
    const eKey = m.end === null ? null : keyFromString(unhex(m.end));
    this.shards[m.to]!.post({ t: 'moveIn', begin: bKey, end: eKey, switchVersion: vm });
    this.sendMaps();
    this.onSwitch?.(m.from, bKey, eKey, m.to, vm);
    return this.moving;
  }

  /**
   * Steps 4-5: once every version below vm finished (the source's feed of them
   * forwarded), release the target's barrier with the marker and finish vm.
   */
  private async catchUp(m: MoveState, vm: number): Promise<void> {
    try {
      while (!this.oracle.allFinishedBelow(vm)) await this.oracle.waitFor(vm - 1, 20);
    } finally {
      // a source reports a batch's changes before the batch's replies, so every change
      // below vm was forwarded by the time those versions finished
      this.endFeed(m);
    }
    const released = this.shards[m.to]!.request({ t: 'decide', commitVersion: vm, commit: true, sync: true, decision: { key: markerKey(m.id), value: encodeVersion(vm) } });
    // reads at vm and later may start now: they reach the target behind the ingests
    this.oracle.finish(vm);
    const r = await released;
    if ('error' in r) {
      // the target could not write: its state is unknown; recovery finishes the move at the next start
      throw new TxnError('FAILED', `move ${m.id}: target worker ${m.to} failed to write its barrier: ${r.error.message}`);
    }
  }

  private completed(m: MoveState, st: CopyStats, t: number): DistributionEvent {
    if (this.moving?.id === m.id) this.moving = null;
    if (this.clustered) this.logVersion = Math.max(this.logVersion, m.switchVersion!);
    // no fsync: if lost, recovery finds the move switched with its marker, i.e. complete
    this.persist((b) => b._del(markerKey(m.id)), false);
    this.counters.movesInProgress--;
    this.counters.moves++;
    this.counters.rowsMoved += st.rows;
    this.counters.bytesMoved += st.bytes;
    const e = this.moveEvent(m, t, 'done', st);
    this.record(e);
    return e;
  }

  private async runMove(beginS: string, to: number, reason: string, detail?: string): Promise<DistributionEvent> {
    const t = performance.now();
    const i = this.checkMove(beginS, to);
    const range = this.current.ranges[i]!;
    const id = this.nextMoveId++;
    const m: MoveState = { id, begin: hex(beginS), end: range.end === null ? null : hex(range.end), from: range.owner, to, phase: 'copying', startedMs: Date.now(), reason, ...(detail ? { detail } : {}) };
    this.moving = m;
    this.counters.movesInProgress++;
    const st: CopyStats = { rows: 0, bytes: 0 };
    // 1: in the WAL before the target holds any row of the range (recovery deletes them on
    // rollback); no fsync: the target's rows are written after it, lost with it if it is lost
    this.persist(undefined, false);
    this.failpoints.hitCount('move.after-start');
    try {
      await this.copyRange(m, st, () => false, () => this.failpoints.hitCount('move.after-copy'));
    } catch (err) {
      await this.undoCopy(m);
      this.moving = null;
      this.persist();
      this.counters.movesInProgress--;
      this.counters.movesFailed++;
      this.record(this.moveEvent(m, t, 'failed', undefined, (err as Error).message));
      throw err;
    }
    const vm = this.oracle.assignCommitVersion();
    const sw = this.switchAt(m, vm);
    this.failpoints.hitCount('move.after-switch');
    await this.catchUp(sw, vm);
    this.failpoints.hitCount('move.after-marker');
    return this.completed(sw, st, t);
  }

  /**
   * Cluster mode, leader: the same move, with its start and its switch in the log. The
   * switch entry is appended at vm in the same turn as the local switch, so every commit
   * above vm (planned with the new map) is in the log after it; the target's barrier is
   * released only once the log acknowledged vm.
   */
  private async runLoggedMove(beginS: string, to: number, reason: string, detail?: string): Promise<DistributionEvent> {
    this.checkLeader();
    const t = performance.now();
    const i = this.checkMove(beginS, to);
    const range = this.current.ranges[i]!;
    const id = this.nextMoveId++;
    const entry = { id, begin: hex(beginS), end: range.end === null ? null : hex(range.end), from: range.owner, to, reason };
    const v0 = await this.logged({ kind: 'moveStart', ...entry });
    const m: MoveState = { ...entry, phase: 'copying', startedMs: Date.now(), startVersion: v0, ...(detail ? { detail } : {}) };
    this.moving = m;
    this.persist();
    this.oracle.finish(v0);
    this.counters.movesInProgress++;
    const st: CopyStats = { rows: 0, bytes: 0 };
    // registered like a replica's copy: if this node stops leading, the new leader's abort cancels it
    const c = { id, cancelled: false, done: Promise.resolve(st), t };
    c.done = this.copyRange(m, st, () => c.cancelled, () => this.failpoints.hitCount('cluster-move.after-copy')).then(() => st);
    this.copy = c;
    try {
      await c.done;
      this.checkLeader();
    } catch (err) {
      if (this.copy === c) this.copy = null;
      await this.abortLogged(m, t, (err as Error).message);
      throw err;
    }
    this.copy = null;
    const vm = this.oracle.assignCommitVersion();
    this.log.reserve(vm);
    const sw = this.switchAt(m, vm);
    const acked = this.log.append({ commitVersion: vm, parts: [], dist: { kind: 'moveSwitch', ...entry } });
    try {
      await acked;
    } catch (err) {
      // the target holds later commits behind its barrier and the map names it: this node
      // cannot go on; at its restart the move is undone locally and the log (which may or
      // may not hold the switch) is replayed
      const e = new TxnError('UNAVAILABLE', `move ${id}: the switch did not reach the log (${(err as Error).message}); this node restarts`);
      this.onFatal(e);
      throw e;
    }
    this.failpoints.hitCount('cluster-move.after-switch');
    await this.catchUp(sw, vm);
    return this.completed(sw, st, t);
  }

  /** Cluster mode, leader: gives up a move before its switch (logged, so every node gives it up). */
  private async abortLogged(m: MoveState, t: number, why: string): Promise<void> {
    if (this.moving !== m) return; // undone already (a moveAbort from a newer leader)
    this.moving = null;
    await this.undoCopy(m);
    this.persist();
    this.counters.movesInProgress--;
    this.counters.movesFailed++;
    this.record(this.moveEvent(m, t, 'failed', undefined, why));
    // the other nodes stop their copies (a new leader aborts what it finds unfinished too)
    const v = await this.logged({ kind: 'moveAbort', id: m.id, reason: why }).catch(() => null);
    if (v !== null) {
      this.logVersion = v;
      this.persist();
      this.oracle.finish(v);
    }
  }

  /**
   * Cluster mode: a node that just became leader finishes what the previous leader left:
   * a move still copying (its switch is not in the log) is aborted through the log.
   */
  tookOver(): Promise<void> {
    return this.serialized(async () => {
      const m = this.moving;
      if (!m || m.phase !== 'copying') return;
      const c = this.copy;
      if (c && c.id === m.id) {
        c.cancelled = true;
        await c.done.catch(() => undefined);
      }
      if (this.copy === c) this.copy = null;
      await this.abortLogged(m, c?.t ?? performance.now(), 'the leader changed before the switch');
    });
  }

  /**
   * Cluster mode: applies a map change from the log at its version `v` (observed by the
   * oracle; this finishes it). Resolves when the log may go on being applied: at once,
   * or, for a switch, once this node's copy of the range is complete and switched.
   */
  applyLogged(v: number, d: DistEntry): Promise<void> | null {
    if (v <= this.logVersion) {
      this.oracle.finish(v); // replayed after a restart: already in the persisted state
      return null;
    }
    // the previous move's catch-up first (the leader logged this change after its own)
    const before = this.catching;
    if (before) return before.then(() => this.applyLogged(v, d) ?? undefined);
    switch (d.kind) {
      case 'split':
      case 'merge':
        this.applyBoundary(d.kind, unhex(d.key), d.reason, v);
        break;
      case 'drop':
        this.applyDrop(d, v);
        break;
      case 'moveStart':
        this.startCopy(d, v);
        break;
      case 'moveAbort':
        return this.applyAbort(d.id, d.reason, v);
      case 'moveSwitch':
        return this.applySwitch(d, v);
    }
    this.oracle.finish(v);
    return null;
  }

  /** Replica: starts copying a logged move between this node's workers (while the log goes on). */
  private startCopy(d: MoveEntry, v: number): { id: number; cancelled: boolean; done: Promise<CopyStats>; t: number } {
    const m: MoveState = { id: d.id, begin: d.begin, end: d.end, from: d.from, to: d.to, reason: d.reason, phase: 'copying', startedMs: Date.now(), startVersion: v };
    if (d.id >= this.nextMoveId) this.nextMoveId = d.id + 1;
    this.moving = m;
    this.persist();
    this.counters.movesInProgress++;
    const st: CopyStats = { rows: 0, bytes: 0 };
    const c = { id: d.id, cancelled: false, done: Promise.resolve(st), t: performance.now() };
    c.done = this.copyRange(m, st, () => c.cancelled, () => undefined, this.failpoints.delayMs('cluster-move.replica-slow')).then(() => st);
    c.done.catch(() => undefined);
    this.copy = c;
    return c;
  }

  private async applyAbort(id: number, why: string, v: number): Promise<void> {
    const c = this.copy;
    if (c && c.id === id) {
      c.cancelled = true;
      await c.done.catch(() => undefined);
      if (this.copy === c) this.copy = null;
    }
    const m = this.moving;
    if (m && m.id === id && m.phase === 'copying') {
      this.moving = null;
      await this.undoCopy(m);
      this.counters.movesInProgress--;
      this.counters.movesFailed++;
      this.record(this.moveEvent(m, c?.t ?? performance.now(), 'failed', undefined, `aborted by the leader: ${why}`));
    }
    this.logVersion = v;
    this.persist();
    this.oracle.finish(v);
  }

  private async applySwitch(d: Extract<DistEntry, { kind: 'moveSwitch' }>, vm: number): Promise<void> {
    let c = this.copy;
    if (!c || c.id !== d.id || this.moving?.id !== d.id) {
      // this node never saw the start (a leader's switch whose start it undid): copy now
      c = this.startCopy(d, vm);
    }
    let st: CopyStats;
    try {
      st = await c.done;
    } catch (err) {
      this.onFatal(new Error(`move ${d.id}: copying the range here failed: ${(err as Error).message}`));
      return;
    }
    this.copy = null;
    const m = this.moving;
    if (!m || m.id !== d.id) {
      this.onFatal(new Error(`log entry ${vm}: switch of move ${d.id}, but this node's move in progress is ${m ? m.id : 'none'}`));
      return;
    }
    const sw = this.switchAt(m, vm);
    this.failpoints.hitCount('cluster-move.replica-after-switch');
    const delay = this.failpoints.delayMs('cluster-move.replica-slow');
    // the catch-up waits for the versions below vm, applied by the log behind us
    const catching: Promise<void> = (delay > 0 ? sleep(delay) : Promise.resolve())
      .then(() => this.catchUp(sw, vm))
      .then(
        () => void this.completed(sw, st, c.t),
        (err: Error) => void this.onFatal(err),
      )
      .catch(() => undefined)
      .finally(() => {
        if (this.catching === catching) this.catching = null;
      });
    this.catching = catching;
  }

  private applyDrop(d: Extract<DistEntry, { kind: 'drop' }>, v: number): void {
    const i = this.current.rangeAt(unhex(d.begin));
    const r = i >= 0 ? this.current.ranges[i] : undefined;
    if (!r || !r.prev || r.prev.owner !== d.owner) {
      this.onFatal(new Error(`log entry ${v}: drop of ${d.begin} from worker ${d.owner}, which this node's map does not name`));
      return;
    }
    const old = this.shards[d.owner]!;
    old.post({ t: 'horizon', horizon: d.horizon });
    this.current = this.current.withoutPrev(i);
    this.logVersion = v;
    this.persist();
    this.sendMaps();
    // the rows go once no range tombstone of the old owner's window covers them (the map
    // no longer routes a read there; a later move to it cleans the range first anyway)
    const begin = keyFromString(r.begin);
    const end = r.end === null ? null : keyFromString(r.end);
    void (async () => {
      for (let n = 0; n < 200 && !this.closed; n++) {
        const reply = await old.request({ t: 'dropRange', begin, end });
        if (!('error' in reply) && !('busy' in reply && reply.busy)) return;
        await sleep(250);
      }
    })();
  }

  /** 5: previous owners delete rows no read can need any more (the window passed the switch). */
  private dropping = false;
  async dropPrevious(): Promise<void> {
    if (this.dropping || this.closed) return;
    if (this.clustered && !this.log.writable) return; // the leader decides (drop entries in the log)
    this.dropping = true;
    try {
      await this.serialized(async () => {
        // cluster mode: a margin of 1 s of versions, for replicas whose window lags the leader's
        const horizon = this.oldestReadable() - (this.clustered ? 1_000_000 : 0);
        for (let i = 0; i < this.current.ranges.length; i++) {
          const r = this.current.ranges[i]!;
          if (!r.prev || r.prev.until >= horizon) continue;
          const old = this.shards[r.prev.owner]!;
          // reads below the horizon are TOO_OLD there from now on, before the rows go
          old.post({ t: 'horizon', horizon });
          const reply = await old.request({ t: 'dropRange', begin: keyFromString(r.begin), end: r.end === null ? null : keyFromString(r.end) });
          if ('error' in reply || ('busy' in reply && reply.busy)) continue;
          this.failpoints.hitCount('move.after-drop');
          if (this.clustered) {
            const v = await this.logged({ kind: 'drop', begin: hex(r.begin), owner: r.prev.owner, until: r.prev.until, horizon }).catch(() => null);
            if (v === null) return;
            const j = this.current.rangeAt(r.begin);
            this.current = this.current.withoutPrev(j);
            this.logVersion = v;
            this.persist();
            this.sendMaps();
            this.oracle.finish(v);
            continue;
          }
          this.current = this.current.withoutPrev(i);
          this.persist();
          this.sendMaps();
        }
      });
    } finally {
      this.dropping = false;
    }
  }
}

/** `map` with a boundary at `key` added (split) or removed (merge); throws on a change the map refuses. */
function withBoundaryChange(map: ShardMap, kind: 'split' | 'merge', key: string): ShardMap {
  return kind === 'split' ? map.withSplit(key) : map.withMerge(key);
}
