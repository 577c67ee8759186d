// Retirement of the range tombstones the MVCC window no longer needs (mvcc.ts prune): their
// rows are deleted (RocksDB DeleteRange), the keys written since put back, the row cache
// and the window told. Shard thread, in slices of about `budgetMs` each, one per turn of
// the event loop (Shard.beginApply runs one; worker.ts schedules another turn while work
// remains), because done at once this held the shard thread for seconds: after a commit
// of 20,000 range clears the deletion took ~1 s of CPU (20,000 survivor look-ups, 40,000
// RocksDB writes, 20,000 forgets) in one synchronous step, 3.5 s of wall time at load 8,
// and every read and commit of the shard waited (issue 12; test/engine/tombstone-retire.test.ts).
//
// A round takes the tombstones due when it starts (the window's oldest live ones, in version
// order) through these phases, each sliced:
//  0. sync: the window's sorted map of written keys is brought up to date, so that finding
//     the keys a tombstone keeps costs O(log n) (the first look-up otherwise scanned the log
//     of every write since, ~20,000 entries here, and caught up at once).
//  1. rows: per run of up to RUN_TOMBSTONES tombstones of one version, one write of their
//     records, rewritten with the survivors' current values (apply.ts TombstoneRecord), one
//     DeleteRange per group of them (deleteRun), and one write putting the survivors back and
//     deleting the records. A crash between writes leaves records that recovery finishes one
//     by one (each DeleteRange followed by its own survivors); tombstones of one version have
//     the same survivors wherever they overlap, so that order needs none across the run. Runs of
//     different versions are written in version order: a key a tombstone keeps may be one
//     a newer tombstone deletes.
//     The window still holds every tombstone of the round, so a read sees the same rows
//     before and after a run: the rows deleted are rows the tombstones hide from every read
//     the window still serves (its horizon is past them), the survivors are rows written
//     since, which the window knows.
//  2. cache: rows the DeleteRanges removed leave the row cache (one pass over it).
//  3. forget: the window's step function forgets the round's tombstones. Only now: a step
//     forgotten hides nothing any more, so its rows must be gone from RocksDB and the cache;
//     and the tombstones of one commit share a version, so forgetting one may forget steps
//     of a neighbour (RangeVersions.forget merges equal steps).
//  4. marks: the survivors' marks (apply.ts) go where no live tombstone covers the key any
//     more (a mark says "keep this key" to the recovery of a tombstone; one still live may
//     need it, and a later write re-marks the key whenever one covers it).
//  5. writes: the window forgets the writes it kept only for the round's tombstones (a
//     window's worth of writes when they were live for seconds), and drops the tombstones.
// Meanwhile new due tombstones wait for the next round (they are newer: version order holds).
import type { Failpoints } from '../failpoints/failpoints.js';
import { keyFromString, keyString } from '../keys/bytes.js';
import { RangeSet } from '../keys/ranges.js';
import { encodeTombstone, markKey, tombstoneKey } from './apply.js';
import type { Tombstone, VersionWindow } from './mvcc.js';
import type { RowCache } from './row-cache.js';
import { WriteOps, type RangeScan, type ShardStorage } from './storage.js';
import { threadCpuMs } from './thread-cpu.js';

/** Wall time one slice may take, ms (checked between steps, so a slice overruns by at most one step). */
export const RETIRE_SLICE_MS = 2;
/** Tombstones of one version deleted by one run (two RocksDB writes, and a DeleteRange per group of them). */
export const RUN_TOMBSTONES = 32;
/** Rows between two ranges of a run that are put back rather than keep the ranges apart (deleteRun). */
export const GAP_ROWS = 16;
/** Cached rows looked at, marks deleted, or tombstones forgotten between two clock checks. */
const STEP = 256;

type Phase = 'sync' | 'rows' | 'cache' | 'forget' | 'marks' | 'writes';

/** Tombstones of a run deleted by one DeleteRange over [begin, end), with the rows between them put back. */
interface Group {
  tombstones: Tombstone[];
  begin: string;
  end: string;
  between: [Uint8Array, Uint8Array][];
}

interface Round {
  tombstones: Tombstone[];
  phase: Phase;
  /** Next tombstone (rows, forget) or survivor (marks) to handle. */
  next: number;
  /** Keys put back by the rows phase (their marks may go in the marks phase). */
  survivors: string[];
  /** The round's ranges, for the cache pass (built when it starts). */
  ranges: RangeSet | null;
  cache: Iterator<string> | null;
}

export interface RetireCounters {
  /** Tombstones whose retirement finished, and the DeleteRanges that deleted their rows. */
  tombstonesRetired: number;
  deleteRanges: number;
  retireSlices: number;
  /** CPU time of the slices in total and of the largest (ms; 0 where the platform does not say). */
  retireCpuMs: number;
  retireCpuMaxMs: number;
}

export class TombstoneRetirement {
  private round: Round | null = null;
  /** Due tombstones, in version order, waiting for the next round. */
  private readonly due: Tombstone[] = [];
  readonly counters: RetireCounters = { tombstonesRetired: 0, deleteRanges: 0, retireSlices: 0, retireCpuMs: 0, retireCpuMaxMs: 0 };

  constructor(
    private readonly storage: ShardStorage,
    private readonly rows: RowCache,
    private readonly shardId: number,
    private readonly budgetMs = RETIRE_SLICE_MS,
    private readonly failpoints: Failpoints | null = null,
  ) {}

  /** Tombstones the window handed out (prune), in version order. */
  add(tombstones: readonly Tombstone[]): void {
    for (const t of tombstones) this.due.push(t);
  }

  /** Whether any work remains (a round under way or tombstones waiting). */
  get pending(): boolean {
    return this.round !== null || this.due.length > 0;
  }

  /** Tombstones waiting or being retired. */
  get size(): number {
    return this.due.length + (this.round?.tombstones.length ?? 0);
  }

  /** The window was replaced (cluster re-seed): what it held is gone, and so is this work. */
  reset(): void {
    this.round = null;
    this.due.length = 0;
  }

  /**
   * One slice: about budgetMs of work (at least one step), on `window`. Only while no batch
   * of this shard is being written (Shard.beginApply): survivors are read, and written back,
   * as RocksDB holds them now. Returns whether work remains.
   */
  slice(window: VersionWindow): boolean {
    if (this.round === null) {
      if (this.due.length === 0) return false;
      this.round = { tombstones: this.due.splice(0), phase: 'sync', next: 0, survivors: [], ranges: null, cache: null };
    }
    const cpu0 = threadCpuMs();
    const deadline = performance.now() + this.budgetMs;
    const r = this.round;
    do {
      if (!this.step(r, window)) break;
    } while (performance.now() < deadline);
    const cpu1 = threadCpuMs();
    const c = this.counters;
    c.retireSlices++;
    if (cpu0 !== null && cpu1 !== null) {
      c.retireCpuMs += cpu1 - cpu0;
      if (cpu1 - cpu0 > c.retireCpuMaxMs) c.retireCpuMaxMs = cpu1 - cpu0;
    }
    return this.pending;
  }

  /** One bounded step of the round; false when the round is over. */
  private step(r: Round, window: VersionWindow): boolean {
    const ts = r.tombstones;
    switch (r.phase) {
      case 'sync':
        if (window.catchUpSome(STEP * 8)) r.phase = 'rows';
        return true;
      case 'rows':
        if (r.next < ts.length) {
          this.deleteRun(r, window);
          return true;
        }
        r.phase = 'cache';
        r.next = 0;
        return true;
      case 'cache':
        if (this.clearCache(r)) r.phase = 'forget';
        return true;
      case 'forget': {
        const end = Math.min(ts.length, r.next + STEP);
        for (let i = r.next; i < end; i++) window.forgetTombstone(ts[i]!);
        r.next = end;
        if (end === ts.length) {
          r.phase = 'marks';
          r.next = 0;
        }
        return true;
      }
      case 'marks': {
        const end = Math.min(r.survivors.length, r.next + STEP);
        const ops = new WriteOps();
        for (let i = r.next; i < end; i++) {
          const k = r.survivors[i]!;
          if (!window.covered(k)) ops.delMeta(markKey(this.shardId, keyFromString(k)));
        }
        if (ops.length > 0) this.storage.write(ops, false);
        r.next = end;
        if (end === r.survivors.length) r.phase = 'writes';
        return true;
      }
      case 'writes':
        if (!window.forgetWritesBefore(ts.length, STEP * 8)) return true;
        window.retireOldest(ts);
        this.counters.tombstonesRetired += ts.length;
        this.round = null;
        return false;
    }
  }

  /**
   * Deletes the rows of the next run of tombstones of one version (phase 1). The run's
   * ranges are taken in key order and joined where at most GAP_ROWS rows lie between two
   * of them: one DeleteRange for the group, and those rows put back as they are. Each
   * DeleteRange is a range tombstone in RocksDB's memtable, and the first read after one
   * rebuilds the memtable's list of them, O(their number): 20,000 of them made each of
   * these runs' reads (and every read of the shard between runs) cost ~2 ms more, and the
   * retirement ~0.6 s of CPU more, until a flush.
   */
  private deleteRun(r: Round, window: VersionWindow): void {
    const ts = r.tombstones;
    const from = r.next;
    const version = ts[from]!.version;
    let to = from + 1;
    while (to < ts.length && to - from < RUN_TOMBSTONES && ts[to]!.version === version) to++;
    const run = ts.slice(from, to).sort((a, b) => (a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : 0));
    // the keys each tombstone keeps (written at its version or later), read once for the run
    const kept = new Map<Tombstone, string[]>();
    const values = new Map<string, Uint8Array | null>();
    let runEnd = run[0]!.end;
    for (const t of run) {
      const keys = window.survivors(t.begin, t.end, version);
      kept.set(t, keys);
      for (const k of keys) values.set(k, null);
      if (t.end > runEnd) runEnd = t.end;
    }
    if (values.size > 0) {
      const got = this.storage.getMany([...values.keys()].map(keyFromString));
      let j = 0;
      for (const k of values.keys()) values.set(k, got[j++] ?? null);
    }
    const groups: Group[] = [];
    let scan: RangeScan | null = null;
    try {
      for (const t of run) {
        const g = groups[groups.length - 1];
        if (g !== undefined) {
          if (t.begin <= g.end) {
            g.tombstones.push(t);
            if (t.end > g.end) g.end = t.end;
            continue;
          }
          // the rows between the group and this range (read before any write of the run)
          scan ??= this.storage.scan(keyFromString(run[0]!.begin), keyFromString(runEnd), false);
          scan.seek(keyFromString(g.end));
          // one row first: the gap is nearly always empty (more rows cost ~4 us each)
          const between: [Uint8Array, Uint8Array][] = [];
          for (let want = 1; between.length <= GAP_ROWS; want = GAP_ROWS + 1 - between.length) {
            const rows = scan.next(want);
            let i = 0;
            for (; i < rows.length; i += 2) {
              if (keyString(rows[i]!) >= t.begin) break;
              between.push([rows[i]!, rows[i + 1]!]);
            }
            if (i < rows.length || rows.length < 2 * want) break;
          }
          if (between.length <= GAP_ROWS) {
            for (const row of between) g.between.push(row);
            g.tombstones.push(t);
            g.end = t.end;
            continue;
          }
        }
        groups.push({ tombstones: [t], begin: t.begin, end: t.end, between: [] });
      }
    } finally {
      scan?.close();
    }
    // two writes (the failpoint between them): the records and the DeleteRanges, then the rows put back
    const ops = new WriteOps();
    const records: Uint8Array[] = [];
    for (const g of groups) {
      // the group's first record describes its whole DeleteRange with every row to put back
      // (the survivors of its tombstones and the rows between them); the others go in the
      // same write: from here on a crash is finished from that record alone
      const survivors: { key: Uint8Array; value: Uint8Array }[] = [];
      for (const t of g.tombstones) {
        for (const k of kept.get(t)!) {
          const v = values.get(k);
          if (v) survivors.push({ key: keyFromString(k), value: v });
        }
      }
      for (const [key, value] of g.between) survivors.push({ key, value });
      const first = tombstoneKey(this.shardId, version, g.tombstones[0]!.index);
      records.push(first);
      ops.putMeta(first, encodeTombstone({ begin: keyFromString(g.begin), end: keyFromString(g.end), survivors }));
      for (let i = 1; i < g.tombstones.length; i++) ops.delMeta(tombstoneKey(this.shardId, version, g.tombstones[i]!.index));
    }
    for (const g of groups) ops.deleteRange(keyFromString(g.begin), keyFromString(g.end));
    this.storage.write(ops, false);
    this.failpoints?.hitShard('shard.retire-mid-run', this.shardId);
    const back = new WriteOps();
    for (const [k, v] of values) {
      if (v === null) continue;
      back.put(keyFromString(k), v);
      r.survivors.push(k);
    }
    for (const g of groups) for (const [key, value] of g.between) back.put(key, value);
    for (const key of records) back.delMeta(key);
    this.storage.write(back, false);
    this.counters.deleteRanges += groups.length;
    r.next = to;
  }

  /** Phase 2, a step of it: true when the pass is over. */
  private clearCache(r: Round): boolean {
    if (!this.rows.enabled) return true;
    if (r.cache === null) {
      if (this.rows.size === 0) return true;
      r.ranges = RangeSet.from(r.tombstones.map((t) => [t.begin, t.end] as const));
      r.cache = this.rows.keys();
    }
    const ranges = r.ranges!;
    for (let i = 0; i < STEP * 4; i++) {
      const n = r.cache.next();
      if (n.done) {
        r.cache = null;
        r.ranges = null;
        return true;
      }
      // a row filled since its DeleteRange is right, and goes too (read again when needed)
      if (ranges.containsKey(n.value)) this.rows.forget(n.value);
    }
    return false;
  }
}
