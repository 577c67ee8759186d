// Online data distribution: split, merge and move key ranges between shard workers
// while transactions run. Main thread; the coordinator owns one Distribution, which
// owns the current ShardMap. The protocol and its crash cases: docs/distribution.md.
//
// Persisted state (default column, one key, written with fsync at every step):
//   distribution/state = {map, move}: the map, and the move in progress (if any) with
//   its phase ('copying' before the switch, 'switched' after it).
//   distribution/moved/<id>: the move's marker, written by the target in the same batch
//   as the barrier that ends the move (every commit below the switch is in its column).
import type { RocksLevel } from '@nxtedition/rocksdb';
import { TxnError } from '../errors.js';
import type { Failpoints } from '../failpoints/failpoints.js';
import { keyFromString, keyString } from '../keys/bytes.js';
import { columnName, encodeVersion, appliedKey, packMutations, type MapRequest, type ShardReply } from '../shard/interface.js';
import type { ShardHandle } from './shard-handle.js';
import { ShardMap, type ShardMapJson } from './shard-map.js';
import type { TimestampOracle } from './timestamp-oracle.js';

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
}

interface PersistedState {
  map: ShardMapJson;
  move: MoveState | null;
  nextMoveId: number;
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

function writeState(db: RocksLevel, state: PersistedState, extra?: (b: ReturnType<RocksLevel['batch']>) => void): void {
  const b = db.batch();
  try {
    b._put(STATE_KEY, Buffer.from(JSON.stringify(state)));
    extra?.(b);
    b._writeSync({ sync: true });
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
): { map: ShardMap; at?: { version: number; run: (watermarks: number[]) => void }; finish: () => { map: ShardMap; nextMoveId: number; recovered: string | null } } {
  const state = readState(db);
  if (!state) {
    const map = new ShardMap(1, splitPoints);
    return { map, finish: () => ({ map, nextMoveId: 1, recovered: null }) };
  }
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
      return { map, nextMoveId: state.nextMoveId, recovered };
    },
  };
}

export interface DistributionCounters {
  splits: number;
  merges: number;
  moves: number;
  movesFailed: number;
  movesInProgress: number;
  rowsMoved: number;
  bytesMoved: number;
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
  /** Called at a move's switch (the coordinator ends the watches and feeds it would break). */
  onSwitch: ((from: number, begin: Uint8Array, end: Uint8Array | null) => void) | null = null;
  private closed = false;

  constructor(
    private current: ShardMap,
    private nextMoveId: number,
    private readonly db: RocksLevel,
    private readonly shards: readonly ShardHandle[],
    private readonly oracle: TimestampOracle,
    private readonly failpoints: Failpoints,
    private readonly oldestReadable: () => number,
    /** Why ranges may not change on this server (e.g. 'cluster mode'), or null. */
    readonly disabled: string | null = null,
  ) {}

  private checkEnabled(): void {
    if (this.disabled) throw new TxnError('INVALID_ARGUMENT', `ranges cannot be split, merged or moved in ${this.disabled} yet`);
  }

  get map(): ShardMap {
    return this.current;
  }

  /** The move in progress, for status. */
  get moveInProgress(): MoveState | null {
    return this.moving;
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
  }

  private sendMaps(): void {
    for (let w = 0; w < this.shards.length; w++) this.shards[w]!.post({ t: 'map', mapVersion: this.current.version, served: servedBy(this.current, w) });
  }

  private persist(extra?: (b: ReturnType<RocksLevel['batch']>) => void): void {
    writeState(this.db, { map: this.current.toJSON(), move: this.moving, nextMoveId: this.nextMoveId }, extra);
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
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Adds a boundary at `key` (no data moves). */
  split(key: Uint8Array, reason = 'operator', detail?: string): Promise<ShardMap> {
    return this.serialized(async () => {
      this.checkEnabled();
      const t = performance.now();
      let next: ShardMap;
      try {
        next = this.current.withSplit(keyString(key));
      } catch (err) {
        throw new TxnError('INVALID_ARGUMENT', (err as Error).message);
      }
      this.current = next;
      this.persist();
      this.sendMaps();
      this.counters.splits++;
      this.record({ kind: 'split', begin: hex(keyString(key)), reason, ...(detail ? { detail } : {}), at: new Date().toISOString(), ms: Math.round(performance.now() - t), outcome: 'done' });
      return next;
    });
  }

  /** Removes the boundary at `key` (both sides must have one owner). */
  merge(key: Uint8Array, reason = 'operator', detail?: string): Promise<ShardMap> {
    return this.serialized(async () => {
      this.checkEnabled();
      const t = performance.now();
      let next: ShardMap;
      try {
        next = this.current.withMerge(keyString(key));
      } catch (err) {
        throw new TxnError('INVALID_ARGUMENT', (err as Error).message);
      }
      this.current = next;
      this.persist();
      this.sendMaps();
      this.counters.merges++;
      this.record({ kind: 'merge', begin: hex(keyString(key)), reason, ...(detail ? { detail } : {}), at: new Date().toISOString(), ms: Math.round(performance.now() - t), outcome: 'done' });
      return next;
    });
  }

  /**
   * Moves the range that begins at `begin` to worker `to`, online. Steps (docs/distribution.md):
   * 1 persist 'copying'; 2 the source feeds every batch's changes of the range to the
   * target, and its rows are copied in chunks; 3 switch at one version vm (persisted):
   * commits from vm on go to the target, reads below vm still to the source; the target
   * holds its commits from vm behind a barrier until the source applied everything below
   * vm; 4 the barrier's batch writes the marker (the target is complete); 5 once the
   * MVCC window passed vm, the source deletes its rows (dropPrevious).
   */
  move(begin: Uint8Array, to: number, reason = 'operator', detail?: string): Promise<DistributionEvent> {
    return this.serialized(() => this.runMove(keyString(begin), to, reason, detail));
  }

  private async runMove(beginS: string, to: number, reason: string, detail?: string): Promise<DistributionEvent> {
    this.checkEnabled();
    const t = performance.now();
    const i = this.current.rangeAt(beginS);
    if (i < 0) throw new TxnError('INVALID_ARGUMENT', `no range begins at ${JSON.stringify(beginS)}; split there first`);
    if (!Number.isInteger(to) || to < 0 || to >= this.shards.length) throw new TxnError('INVALID_ARGUMENT', `worker ${to} does not exist (there are ${this.shards.length})`);
    const range = this.current.ranges[i]!;
    if (range.owner === to) throw new TxnError('INVALID_ARGUMENT', `the range is already on worker ${to}`);
    if (range.prev) throw new TxnError('INVALID_ARGUMENT', 'the range moved recently; its previous owner still serves old reads');
    if (this.current.ranges.some((r) => r.prev && r.prev.owner === to && r.begin === beginS)) throw new TxnError('INVALID_ARGUMENT', 'target still holds old rows of this range');
    const from = range.owner;
    const id = this.nextMoveId++;
    const endS = range.end;
    const bKey = keyFromString(beginS);
    const eKey = endS === null ? null : keyFromString(endS);
    const src = this.shards[from]!;
    const dst = this.shards[to]!;
    this.moving = { id, begin: hex(beginS), end: endS === null ? null : hex(endS), from, to, phase: 'copying', startedMs: Date.now(), reason };
    this.counters.movesInProgress++;
    let rows = 0;
    let bytes = 0;
    // 1: durable before the target holds any row of the range (recovery deletes them on rollback)
    this.persist();
    this.failpoints.hitCount('move.after-start');
    try {
      // 2: everything the source applies from now on reaches the target in the source's order,
      // and so does every chunk; the target keeps what came last (the newest state)
      // rows the target may still hold from an earlier stay of the range would come back to
      // life; and range tombstones it still has there would later delete what it receives
      for (let waited = 0; ; waited += 50) {
        const clean = await dst.request({ t: 'dropRange', begin: bKey, end: eKey });
        if ('error' in clean) throw TxnError.fromWire(clean.error);
        if (!('busy' in clean && clean.busy)) break;
        if (waited > 60_000) throw new Error(`worker ${to} still holds range tombstones over the range`);
        await sleep(50);
      }
      src.onFeed = (r) => {
        if (r.feed.moveId !== id) return;
        const n = r.feed.ops.kinds.length;
        if (n === 0) return;
        rows += n;
        bytes += r.feed.ops.bytes.data.length;
        dst.post({ t: 'ingest', ops: r.feed.ops });
      };
      src.post({ t: 'feed', moveId: id, begin: bKey, end: eKey });
      let cursor: Uint8Array | null = bKey;
      let chunks = 0;
      while (cursor) {
        if (this.closed) throw new Error('server shutting down');
        const r: ShardReply = await src.request({ t: 'chunk', moveId: id, begin: cursor, end: eKey, limit: CHUNK_ROWS, maxBytes: CHUNK_BYTES });
        if ('error' in r) throw TxnError.fromWire(r.error);
        if (!('feed' in r)) throw new Error(`shard ${from}: unexpected reply to chunk`);
        cursor = r.next ?? null;
        if (r.busy) {
          // batches from before the feed began are still being written: their rows are not all readable yet
          await sleep(20);
          continue;
        }
        if (++chunks === 1) {
          // the target wrote the first chunk (so a crash here leaves rows there that recovery must remove)
          await dst.request({ t: 'ingest', ops: NO_OPS });
          this.failpoints.hitCount('move.after-copy');
        }
      }
      // the ingests are in the target's queue; make sure they were written before switching
      const sync = await dst.request({ t: 'ingest', ops: NO_OPS });
      if ('error' in sync) throw TxnError.fromWire(sync.error);
    } catch (err) {
      // before the switch nothing is lost by giving up: the source still owns the range
      src.post({ t: 'feed', moveId: 0, begin: new Uint8Array(0), end: null });
      src.onFeed = null;
      await dst.request({ t: 'dropRange', begin: bKey, end: eKey });
      this.moving = null;
      this.persist();
      this.counters.movesInProgress--;
      this.counters.movesFailed++;
      const e: DistributionEvent = { kind: 'move', begin: hex(beginS), end: endS === null ? null : hex(endS), from, to, reason, ...(detail ? { detail } : {}), at: new Date().toISOString(), ms: Math.round(performance.now() - t), outcome: 'failed', error: (err as Error).message };
      this.record(e);
      throw err;
    }
    // 3: the switch, in one turn of the event loop: every commit version assigned before
    // vm was planned with the old map (and sent already), every one after with the new
    const vm = this.oracle.assignCommitVersion();
    this.current = this.current.withOwner(i, to, vm);
    this.moving = { ...this.moving, phase: 'switched', switchVersion: vm };
    this.persist();
    dst.post({ t: 'moveIn', begin: bKey, end: eKey, switchVersion: vm });
    this.sendMaps();
    this.onSwitch?.(from, bKey, eKey);
    this.failpoints.hitCount('move.after-switch');
    try {
      // every commit below vm applied (the source's feed of them forwarded ahead of what follows)
      while (!this.oracle.allFinishedBelow(vm)) await this.oracle.waitFor(vm - 1, 20);
    } finally {
      src.post({ t: 'feed', moveId: 0, begin: new Uint8Array(0), end: null });
    }
    // 4: release the target's barrier; its batch carries the marker (fsync'd)
    const released = dst.request({ t: 'decide', commitVersion: vm, commit: true, sync: true, decision: { key: markerKey(id), value: encodeVersion(vm) } });
    // reads at vm and later may start now: they reach the target behind the ingests
    this.oracle.finish(vm);
    const r = await released;
    src.onFeed = null;
    if ('error' in r) {
      // the target could not write: its state is unknown; recovery finishes the move at the next start
      throw new TxnError('FAILED', `move ${id}: target worker ${to} failed to write its barrier: ${r.error.message}`);
    }
    this.failpoints.hitCount('move.after-marker');
    this.moving = null;
    this.persist((b) => b._del(markerKey(id)));
    this.counters.movesInProgress--;
    this.counters.moves++;
    this.counters.rowsMoved += rows;
    this.counters.bytesMoved += bytes;
    const e: DistributionEvent = {
      kind: 'move',
      begin: hex(beginS),
      end: endS === null ? null : hex(endS),
      from,
      to,
      reason,
      ...(detail ? { detail } : {}),
      at: new Date().toISOString(),
      ms: Math.round(performance.now() - t),
      rows,
      bytes,
      outcome: 'done',
    };
    this.record(e);
    return e;
  }

  /** 5: previous owners delete rows no read can need any more (the window passed the switch). */
  private dropping = false;
  async dropPrevious(): Promise<void> {
    if (this.dropping || this.closed) return;
    this.dropping = true;
    try {
      await this.serialized(async () => {
        const horizon = this.oldestReadable();
        for (let i = 0; i < this.current.ranges.length; i++) {
          const r = this.current.ranges[i]!;
          if (!r.prev || r.prev.until >= horizon) continue;
          const old = this.shards[r.prev.owner]!;
          // reads below the horizon are TOO_OLD there from now on, before the rows go
          old.post({ t: 'horizon', horizon });
          const reply = await old.request({ t: 'dropRange', begin: keyFromString(r.begin), end: r.end === null ? null : keyFromString(r.end) });
          if ('error' in reply || ('busy' in reply && reply.busy)) continue;
          this.failpoints.hitCount('move.after-drop');
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

