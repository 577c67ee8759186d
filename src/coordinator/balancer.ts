// The balancer: automatic data distribution. Main thread. `decide()` is a pure function
// of the map, the measurements and the settings that returns the next action (split,
// move or merge), or null; `Balancer` measures (shards' per-range load, the census'
// per-range sizes), calls decide() and carries its actions out one at a time through
// Distribution (split/move/merge, the same code as the operator routes). The algorithm
// step by step: docs/distribution.md, "Automatic distribution".
import type { Logger } from 'pino';
import type { DistributionConfig } from '../config/server-config.js';
import { keyFromString } from '../keys/bytes.js';
import type { RangeLoadReport } from '../shard/range-load.js';
import type { Distribution } from './distribution.js';
import type { ShardHandle } from './shard-handle.js';
import type { ShardMap } from './shard-map.js';

export type { DistributionConfig };

/** What the balancer knows of one range of the map. */
export interface RangeMeasure {
  /** Reads + writes per second (smoothed); null = not measured yet. */
  opsPerSec: number | null;
  /** Load quantiles (shard/range-load.ts): split points that cut the load into equal parts. */
  quantiles: readonly string[];
  /** Key+value bytes (the census); null = not counted yet. */
  bytes: number | null;
  /** A key that halves the bytes (the census), or null. */
  middle: string | null;
  /** When the range last moved (ms), or null. */
  movedAt: number | null;
  /** When the range last appeared (split, merge) or moved (ms), or null (as old as the balancer). */
  changedAt: number | null;
}

/**
 * `cause`: why, as a short label (split: 'size' or 'load'; move: 'load', 'size' or 'cold'
 * (bringing a cold small range next to its neighbour's worker to merge them); merge: 'cold'),
 * recorded as the event's reason 'balancer: <cause>'; `reason`: the figures behind it.
 */
export type BalancerAction =
  /** Add boundaries at `keys` (inside the range beginning at `begin`). */
  | { kind: 'split'; cause: 'size' | 'load'; begin: string; keys: string[]; reason: string }
  /** Move the range beginning at `begin` from worker `from` to worker `to`. */
  | { kind: 'move'; cause: 'load' | 'size' | 'cold'; begin: string; from: number; to: number; reason: string }
  /** Remove the boundary at `key` (the two ranges meeting there are on one worker). */
  | { kind: 'merge'; cause: 'cold'; key: string; reason: string };

/** No more load splits past this many ranges (a guard against a runaway). */
export const MAX_RANGES = 4096;
/** Most parts one load split cuts a range into (the shards report 15 load quantiles). */
const MAX_PARTS = 16;

const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;
const mib = (x: number): string => `${(x / (1024 * 1024)).toFixed(x < 10 * 1024 * 1024 ? 2 : 0)} MiB`;

/** Split a hot range into parts of at most the split share each; keys picked from its load quantiles. */
function splitKeys(q: readonly string[], share: number, threshold: number): string[] {
  if (q.length === 0) return [];
  const parts = Math.min(MAX_PARTS, q.length + 1, Math.max(2, Math.ceil(share / threshold)));
  const out: string[] = [];
  for (let j = 1; j < parts; j++) {
    const i = Math.min(q.length - 1, Math.max(0, Math.round((j * (q.length + 1)) / parts) - 1));
    if (out[out.length - 1] !== q[i]) out.push(q[i]!);
  }
  return out;
}

/**
 * The next action for `map` given `measures` (one per range of the map, same order), or
 * null when nothing needs doing. In order of priority:
 *  1. a range above splitBytes is split at its middle (by size);
 *  2. a range above the split share of the load (at most half a worker's fair share,
 *     0.5 / workers), on a worker above the band, is split at its load quantiles into
 *     parts of at most that share;
 *  3. if a worker is outside the band, the range of the hottest worker whose load best
 *     evens it with the coldest one moves there, if that lowers the pair's maximum by a
 *     margin (a tenth of the band);
 *  4. if no load action is due and the workers' bytes differ by at least balanceMinBytes
 *     with one outside mean × (1 ± sizeBand), the range of the biggest worker whose bytes
 *     best even it with the smallest one moves there, if that lowers the pair's maximum by
 *     a margin and takes neither worker's load out of the load band (nor further out); if
 *     every range there is too big for the gap, the biggest is split at its middle;
 *  5. two cold, small neighbours on one worker merge;
 *  6. two cold, small neighbours on different workers, one of them an island (no
 *     neighbour on its own worker, which owns other ranges): it moves to the other's worker
 *     (they merge in a later round), if that keeps the receiver's bytes within the band.
 * Steps 2 and 3 are skipped when opts.loadActions is false (the Balancer passes false
 * until the same skew has lasted SUSTAIN_ROUNDS rounds: a passing burst is not acted on).
 * Ranges with a previous owner (a recent move's old reads) neither move nor merge; a
 * range moved within the cooldown does not move again; merges (and moves to merge) need
 * both sides older than the cooldown. Load actions need minOpsPerSec in total; splits and
 * moves need 2+ workers. Size actions need every range counted (bytes not null).
 */
export function decide(map: ShardMap, measures: readonly RangeMeasure[], config: DistributionConfig, now: number, opts: { loadActions?: boolean } = {}): BalancerAction | null {
  const ranges = map.ranges;
  const n = map.workers;
  // 1. size
  for (let i = 0; i < ranges.length; i++) {
    const m = measures[i]!;
    const r = ranges[i]!;
    if (m.bytes !== null && m.bytes > config.splitBytes && m.middle !== null && m.middle > r.begin && (r.end === null || m.middle < r.end) && ranges.length < MAX_RANGES) {
      return { kind: 'split', cause: 'size', begin: r.begin, keys: [m.middle], reason: `size ${m.bytes} bytes > splitBytes ${config.splitBytes}` };
    }
  }
  const load = measures.map((m) => m.opsPerSec ?? 0);
  const total = load.reduce((a, b) => a + b, 0);
  const perWorker = new Array<number>(n).fill(0);
  for (let i = 0; i < ranges.length; i++) perWorker[ranges[i]!.owner]! += load[i]!;
  const mean = total / n;
  const high = mean * (1 + config.loadBand);
  const low = mean * (1 - config.loadBand);
  // loadActions false: the skew has not lasted (Balancer: SUSTAIN_ROUNDS), steps 2 and 3 wait
  if (n > 1 && total >= config.minOpsPerSec && opts.loadActions !== false) {
    // 2. load split: only where it helps, on a worker above the band
    const threshold = Math.min(config.splitLoadShare, 0.5 / n);
    let hottest = -1;
    for (let i = 0; i < ranges.length; i++) {
      if (perWorker[ranges[i]!.owner]! <= high || load[i]! / total <= threshold) continue;
      if (hottest < 0 || load[i]! > load[hottest]!) hottest = i;
    }
    if (hottest >= 0 && ranges.length < MAX_RANGES) {
      const r = ranges[hottest]!;
      const share = load[hottest]! / total;
      const keys = splitKeys(measures[hottest]!.quantiles, share, threshold);
      if (keys.length > 0) {
        return {
          kind: 'split',
          cause: 'load',
          begin: r.begin,
          keys,
          reason: `load ${pct(share)} of ${Math.round(total)} ops/s > ${pct(threshold)}, worker ${r.owner} at ${pct(perWorker[r.owner]! / total)} (band ${pct(high / total)})`,
        };
      }
    }
    // 3. move: hottest worker to coldest
    let hot = 0;
    let cold = 0;
    for (let w = 1; w < n; w++) {
      if (perWorker[w]! > perWorker[hot]!) hot = w;
      if (perWorker[w]! < perWorker[cold]!) cold = w;
    }
    if (hot !== cold && (perWorker[hot]! > high || perWorker[cold]! < low)) {
      const gap = perWorker[hot]! - perWorker[cold]!;
      const margin = (config.loadBand * mean) / 10;
      let best = -1;
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!;
        const m = measures[i]!;
        if (r.owner !== hot || r.prev || m.opsPerSec === null || load[i]! <= 0) continue;
        if (m.movedAt !== null && now - m.movedAt < config.cooldownMs) continue;
        // the pair's maximum after the move must drop by the margin
        if (Math.max(perWorker[hot]! - load[i]!, perWorker[cold]! + load[i]!) > perWorker[hot]! - margin) continue;
        if (best < 0 || Math.abs(load[i]! - gap / 2) < Math.abs(load[best]! - gap / 2)) best = i;
      }
      if (best >= 0) {
        return {
          kind: 'move',
          cause: 'load',
          begin: ranges[best]!.begin,
          from: hot,
          to: cold,
          reason: `worker ${hot} at ${pct(perWorker[hot]! / total)}, worker ${cold} at ${pct(perWorker[cold]! / total)} of ${Math.round(total)} ops/s (band ${pct(low / total)}..${pct(high / total)}); range at ${pct(load[best]! / total)}`,
        };
      }
    }
  }
  // 4. move by size (the load is within its band, or too low to act on)
  const counted = n > 1 && measures.every((m) => m.bytes !== null);
  const bytes = new Array<number>(n).fill(0);
  if (counted) for (let i = 0; i < ranges.length; i++) bytes[ranges[i]!.owner]! += measures[i]!.bytes!;
  const meanBytes = bytes.reduce((a, b) => a + b, 0) / n;
  const loadAware = n > 1 && total >= config.minOpsPerSec;
  /** Whether moving range i from worker a to b keeps both workers' load in the band (or no further out than now). */
  const loadKept = (i: number, a: number, b: number): boolean =>
    !loadAware || (perWorker[b]! + load[i]! <= Math.max(high, perWorker[b]!) && perWorker[a]! - load[i]! >= Math.min(low, perWorker[a]!));
  if (counted) {
    let big = 0;
    let small = 0;
    for (let w = 1; w < n; w++) {
      if (bytes[w]! > bytes[big]!) big = w;
      if (bytes[w]! < bytes[small]!) small = w;
    }
    const gap = bytes[big]! - bytes[small]!;
    if (big !== small && gap >= config.balanceMinBytes && (bytes[big]! > meanBytes * (1 + config.sizeBand) || bytes[small]! < meanBytes * (1 - config.sizeBand))) {
      const margin = (config.sizeBand * meanBytes) / 10;
      let best = -1;
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!;
        const m = measures[i]!;
        if (r.owner !== big || r.prev || m.bytes! <= 0) continue;
        if (m.movedAt !== null && now - m.movedAt < config.cooldownMs) continue;
        if (Math.max(bytes[big]! - m.bytes!, bytes[small]! + m.bytes!) > bytes[big]! - margin) continue;
        if (!loadKept(i, big, small)) continue;
        if (best < 0 || Math.abs(m.bytes! - gap / 2) < Math.abs(measures[best]!.bytes! - gap / 2)) best = i;
      }
      if (best >= 0) {
        return {
          kind: 'move',
          cause: 'size',
          begin: ranges[best]!.begin,
          from: big,
          to: small,
          reason: `worker ${big} holds ${mib(bytes[big]!)}, worker ${small} ${mib(bytes[small]!)} (mean ${mib(meanBytes)}, band ${pct(config.sizeBand)}); range of ${mib(measures[best]!.bytes!)}`,
        };
      }
      // no range fits the gap (they are too big): halve the biggest range of the biggest
      // worker that can move; its halves stay above mergeBytes (they never merge back)
      let cut = -1;
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!;
        const m = measures[i]!;
        if (r.owner !== big || r.prev || m.middle === null || m.middle <= r.begin || (r.end !== null && m.middle >= r.end)) continue;
        if (m.bytes! < 2 * config.mergeBytes || m.bytes! <= gap / 2 || !loadKept(i, big, small)) continue;
        if (cut < 0 || m.bytes! > measures[cut]!.bytes!) cut = i;
      }
      if (cut >= 0 && ranges.length < MAX_RANGES) {
        return {
          kind: 'split',
          cause: 'size',
          begin: ranges[cut]!.begin,
          keys: [measures[cut]!.middle!],
          reason: `worker ${big} holds ${mib(bytes[big]!)}, worker ${small} ${mib(bytes[small]!)} (mean ${mib(meanBytes)}, band ${pct(config.sizeBand)}); no range fits the gap: halving one of ${mib(measures[cut]!.bytes!)}`,
        };
      }
    }
  }
  // 5. merge cold small neighbours on one worker; 6. or bring them onto one worker
  const floor = Math.max(total, config.minOpsPerSec);
  const settled = (m: RangeMeasure): boolean => m.changedAt === null || now - m.changedAt >= config.cooldownMs;
  const rangesOf = new Array<number>(n).fill(0);
  for (const r of ranges) rangesOf[r.owner]!++;
  /** Range i has no neighbour on its own worker (it can only merge after a move). */
  const island = (i: number): boolean => ranges[i - 1]?.owner !== ranges[i]!.owner && ranges[i + 1]?.owner !== ranges[i]!.owner;
  let bringTogether: BalancerAction | null = null;
  for (let i = 1; i < ranges.length; i++) {
    const a = ranges[i - 1]!;
    const b = ranges[i]!;
    const ma = measures[i - 1]!;
    const mb = measures[i]!;
    if (a.prev || b.prev || !settled(ma) || !settled(mb)) continue;
    if (ma.bytes === null || mb.bytes === null || ma.opsPerSec === null || mb.opsPerSec === null) continue;
    if (ma.bytes + mb.bytes >= config.mergeBytes) continue;
    if (ma.opsPerSec + mb.opsPerSec >= config.mergeLoadShare * floor) continue;
    const figures = `${ma.bytes + mb.bytes} bytes, ${(ma.opsPerSec + mb.opsPerSec).toFixed(1)} ops/s together`;
    if (a.owner === b.owner) return { kind: 'merge', cause: 'cold', key: b.begin, reason: `cold and small: ${figures} on worker ${b.owner}` };
    if (bringTogether || !counted) continue;
    // an island moves to its neighbour's worker, if its own worker keeps another range (a
    // server's initial one-range-per-worker layout stays) and the receiver stays in the size band
    for (const [i0, to] of [
      [i - 1, b.owner],
      [i, a.owner],
    ] as const) {
      const from = ranges[i0]!.owner;
      if (bringTogether || !island(i0) || rangesOf[from]! <= 1) continue;
      if (bytes[to]! + measures[i0]!.bytes! > Math.max(meanBytes * (1 + config.sizeBand), meanBytes + config.balanceMinBytes)) continue;
      if (!loadKept(i0, from, to)) continue;
      bringTogether = { kind: 'move', cause: 'cold', begin: ranges[i0]!.begin, from, to, reason: `cold and small neighbours on workers ${a.owner} and ${b.owner}: ${figures}; moved together to merge` };
    }
  }
  return bringTogether;
}

/** Where the balancer gets its sizes (metrics/census.ts, structural). */
export interface SizeSource {
  ranges(): { begin: string; end: string | null; bytes: number; keys: number; middle: string | null }[];
}

/** One range's state kept between rounds. */
interface Tracked {
  opsPerSec: number | null;
  readsPerSec: number;
  writesPerSec: number;
  quantiles: string[];
  movedAt: number | null;
  changedAt: number | null;
  /** False while opsPerSec is an estimate (a split's part, a merge): the first report replaces it. */
  measured: boolean;
}

const rangeId = (begin: string, end: string | null): string => `${begin}\u0000${end ?? ''}`;
/** Smoothing time constant of the load rates (ms): a rate follows a change within a few seconds. */
const SMOOTH_MS = 2000;
/** Actions carried out in one round at most (then the balancer measures again). */
const ACTIONS_PER_ROUND = 32;
/**
 * Load splits and moves wait until the same worker has been above the band (or, with none
 * above, the same one below it) in this many consecutive rounds (checkIntervalMs apart: 3 s
 * by default). Why: a move holds its range's commits behind the target's barrier and its
 * copy competes for the shard threads (p99 commit latency at half of peak: 62-71 ms with
 * the balancer on against 27 ms off, issue 12), so it must pay off. A bulk load in key order
 * is hot on one worker for a second or two, then on the next: acting on it split the map at
 * the load's passing quantiles (7 splits while bench/compare preloaded 100,000 rows onto 2
 * workers of already even ranges), and the fragments, uneven under the uniform load that
 * followed, were then moved back and forth at the band's edge (moves at 62/38 %, 64/36 %,
 * 60/40 %) into the measured runs. A sustained skew is acted on as before, a few seconds later.
 */
export const SUSTAIN_ROUNDS = 3;

/**
 * Which skew the smoothed rates show: 'hot:<w>' when worker w (the hottest) is above the
 * band, else 'cold:<w>' when w (the coldest) is below it, else null (within the band, or too
 * little load to act on, or one worker).
 */
export function loadSkew(map: ShardMap, opsPerSec: readonly (number | null)[], config: DistributionConfig): string | null {
  const n = map.workers;
  if (n < 2) return null;
  const perWorker = new Array<number>(n).fill(0);
  let total = 0;
  for (let i = 0; i < map.ranges.length; i++) {
    const x = opsPerSec[i] ?? 0;
    perWorker[map.ranges[i]!.owner]! += x;
    total += x;
  }
  if (total < config.minOpsPerSec) return null;
  const mean = total / n;
  let hot = 0;
  let cold = 0;
  for (let w = 1; w < n; w++) {
    if (perWorker[w]! > perWorker[hot]!) hot = w;
    if (perWorker[w]! < perWorker[cold]!) cold = w;
  }
  if (perWorker[hot]! > mean * (1 + config.loadBand)) return `hot:${hot}`;
  if (perWorker[cold]! < mean * (1 - config.loadBand)) return `cold:${cold}`;
  return null;
}

export interface BalancerStatus {
  enabled: boolean;
  settings: DistributionConfig;
  /** Why it does not run (cluster mode), or null. */
  disabled: string | null;
  rounds: number;
  actions: number;
  /** The last action, or the last failure. */
  last: { at: string; action: BalancerAction; outcome: 'done' | 'failed'; error?: string } | null;
  /** Per range of the map (keys hex): its owner, load and size as measured. */
  ranges: { begin: string; end: string | null; owner: number; readsPerSec: number | null; writesPerSec: number | null; bytes: number | null; keys: number | null }[];
  /** Per worker: reads+writes per second, and its share of the total. */
  workers: { worker: number; opsPerSec: number; share: number }[];
}

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/**
 * The loop: every checkIntervalMs, ask every shard for its per-range load (LoadRequest),
 * smooth it, join the census' sizes, and carry out decide()'s actions one after another
 * until it returns null or a split was made (its parts are measured in the next round
 * before any of them moves; a move keeps the range's load).
 */
export class Balancer {
  private readonly tracked = new Map<string, Tracked>();
  /**
   * Bytes of ranges the census has not counted yet, estimated from their parents: a size
   * split's halves (cut at the bytes' middle), a merge's sum. Without it a split would hold
   * every size action back until the census' next pass over the whole keyspace.
   */
  private readonly estimated = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private rounds = 0;
  private actions = 0;
  /**
   * Reads + writes per second of each range in the last round alone (the shards' counts,
   * not smoothed; by rangeId). A skew counts towards SUSTAIN_ROUNDS only while these show it
   * too: the smoothed rates remember a burst for several rounds after it ended (bench/compare's
   * preload of 100,000 rows in ~1 s, then w1's ~1,400 ops/s: 61 % on one worker for 3 rounds
   * from the preload alone, and 2-4 load splits at its quantiles, or none, by the preload's phase
   * against the rounds), and a split's parts start from their first count while their
   * neighbours still carry the burst.
   */
  private lastOps = new Map<string, number>();
  /** The skew (loadSkew) of the last rounds and how many rounds in a row it has lasted. */
  private skew: string | null = null;
  private skewRounds = 0;
  private last: BalancerStatus['last'] = null;

  constructor(
    private readonly distribution: Distribution,
    private readonly shards: readonly ShardHandle[],
    private readonly sizes: SizeSource,
    readonly config: DistributionConfig,
    private readonly logger: Logger,
  ) {}

  /** Why ranges may not change on this server (cluster mode), or null. */
  private get disabled(): string | null {
    return this.distribution.disabled;
  }

  /** Starts measuring every checkIntervalMs (also when disabled: status shows each range's load), and acting when enabled. */
  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round().finally(() => {
        this.running = null;
        this.schedule();
      });
    }, this.config.checkIntervalMs);
    this.timer.unref();
  }

  /** Measures the load of every range (all shards), folding it into the smoothed rates. */
  private async measure(): Promise<void> {
    const map = this.distribution.map;
    const replies = await Promise.all(this.shards.map((s) => s.request({ t: 'load' })));
    const reports = new Map<string, RangeLoadReport>();
    this.lastOps = new Map();
    for (const r of replies) {
      if (!('load' in r)) continue;
      for (const x of r.load.ranges) reports.set(rangeId(x.begin, x.end), x);
    }
    const current = new Set<string>();
    for (const range of map.ranges) {
      const id = rangeId(range.begin, range.end);
      current.add(id);
      const rep = reports.get(id);
      // a range seen for the first time (at start, or made by hand) rests for the cooldown before a merge
      const t = this.tracked.get(id) ?? { opsPerSec: null, readsPerSec: 0, writesPerSec: 0, quantiles: [], movedAt: null, changedAt: Date.now(), measured: false };
      this.tracked.set(id, t);
      if (!rep || rep.ms <= 0) continue;
      const reads = (rep.reads * 1000) / rep.ms;
      const writes = (rep.writes * 1000) / rep.ms;
      this.lastOps.set(id, reads + writes);
      const a = 1 - Math.exp(-rep.ms / SMOOTH_MS);
      if (t.opsPerSec === null || !t.measured) {
        t.measured = true;
        t.readsPerSec = reads;
        t.writesPerSec = writes;
        t.opsPerSec = reads + writes;
      } else {
        t.readsPerSec += a * (reads - t.readsPerSec);
        t.writesPerSec += a * (writes - t.writesPerSec);
        t.opsPerSec += a * (reads + writes - t.opsPerSec);
      }
      if (rep.quantiles.length > 0) t.quantiles = rep.quantiles;
    }
    for (const id of [...this.tracked.keys()]) if (!current.has(id)) this.tracked.delete(id);
    for (const id of [...this.estimated.keys()]) if (!current.has(id)) this.estimated.delete(id);
  }

  /** A range's bytes: the census' count, else an estimate, else null. */
  private bytesOf(id: string, sizes: Map<string, { bytes: number }>): number | null {
    return sizes.get(id)?.bytes ?? this.estimated.get(id) ?? null;
  }

  private sizeTable(): Map<string, ReturnType<SizeSource['ranges']>[number]> {
    return new Map(this.sizes.ranges().map((s) => [rangeId(s.begin, s.end), s]));
  }

  private measures(map: ShardMap): RangeMeasure[] {
    const sizes = this.sizeTable();
    return map.ranges.map((r) => {
      const id = rangeId(r.begin, r.end);
      const t = this.tracked.get(id);
      return { opsPerSec: t?.opsPerSec ?? null, quantiles: t?.quantiles ?? [], bytes: this.bytesOf(id, sizes), middle: sizes.get(id)?.middle ?? null, movedAt: t?.movedAt ?? null, changedAt: t?.changedAt ?? null };
    });
  }

  /** One round: measure, then act until decide() has nothing more to do. */
  async round(): Promise<void> {
    this.rounds++;
    try {
      await this.measure();
    } catch {
      return; // shutting down
    }
    const measured = this.distribution.map;
    const smoothed = loadSkew(measured, this.measures(measured).map((m) => m.opsPerSec), this.config);
    // the same skew in this round's own counts (a burst that has ended is only in the smoothed rates)
    const counted = loadSkew(measured, measured.ranges.map((r) => this.lastOps.get(rangeId(r.begin, r.end)) ?? 0), this.config);
    const skew = smoothed === counted ? smoothed : null;
    if (skew !== this.skew) {
      this.skew = skew;
      this.skewRounds = 0;
    }
    if (skew !== null) this.skewRounds++;
    if (!this.config.enabled || this.disabled) return;
    const loadActions = this.skewRounds >= SUSTAIN_ROUNDS;
    for (let k = 0; k < ACTIONS_PER_ROUND && !this.stopped; k++) {
      const map = this.distribution.map;
      const action = decide(map, this.measures(map), this.config, Date.now(), { loadActions });
      if (!action) return;
      try {
        await this.execute(map, action);
        this.actions++;
        this.last = { at: new Date().toISOString(), action, outcome: 'done' };
        this.logger.info({ event: 'BalancerAction', ...action }, `balancer: ${describe(action)}`);
        // a split's parts are measured before they move: its quantiles may come from a
        // burst (a bulk load) that does not show where the load is now
        if (action.kind === 'split') return;
      } catch (err) {
        this.last = { at: new Date().toISOString(), action, outcome: 'failed', error: (err as Error).message };
        this.logger.warn({ event: 'BalancerActionFailed', ...action, err: (err as Error).message }, `balancer: ${describe(action)} failed: ${(err as Error).message}`);
        return; // measure again before the next try
      }
    }
  }

  private async execute(map: ShardMap, a: BalancerAction): Promise<void> {
    const now = Date.now();
    const reason = `balancer: ${a.cause}`;
    if (a.kind === 'split') {
      const i = map.rangeAt(a.begin);
      const r = map.ranges[i]!;
      const parent = this.tracked.get(rangeId(r.begin, r.end));
      const parentBytes = a.cause === 'size' ? this.bytesOf(rangeId(r.begin, r.end), this.sizeTable()) : null;
      const bounds = [r.begin, ...a.keys, r.end];
      for (const k of a.keys) await this.distribution.split(keyFromString(k), reason, a.reason);
      // until measured, the parts carry equal shares of the parent's load (they were cut at its quantiles)
      const parts = bounds.length - 1;
      for (let j = 0; j < parts; j++) {
        this.tracked.set(rangeId(bounds[j]!, bounds[j + 1] ?? null), {
          opsPerSec: parent?.opsPerSec != null ? parent.opsPerSec / parts : null,
          readsPerSec: (parent?.readsPerSec ?? 0) / parts,
          writesPerSec: (parent?.writesPerSec ?? 0) / parts,
          quantiles: [],
          // a part is a new range: the cooldown of a moved parent does not hold it back
          movedAt: null,
          changedAt: now,
          measured: false,
        });
        if (parentBytes !== null) this.estimated.set(rangeId(bounds[j]!, bounds[j + 1] ?? null), parentBytes / parts);
      }
    } else if (a.kind === 'move') {
      await this.distribution.move(keyFromString(a.begin), a.to, reason, a.reason);
      const i = this.distribution.map.rangeAt(a.begin);
      const r = this.distribution.map.ranges[i];
      const t = r && this.tracked.get(rangeId(r.begin, r.end));
      if (t) {
        t.movedAt = now;
        t.changedAt = now;
      }
    } else {
      const i = map.rangeAt(a.key);
      const left = map.ranges[i - 1]!;
      const right = map.ranges[i]!;
      const tl = this.tracked.get(rangeId(left.begin, left.end));
      const tr = this.tracked.get(rangeId(right.begin, right.end));
      const sizes = this.sizeTable();
      const lb = this.bytesOf(rangeId(left.begin, left.end), sizes);
      const rb = this.bytesOf(rangeId(right.begin, right.end), sizes);
      await this.distribution.merge(keyFromString(a.key), reason, a.reason);
      if (lb !== null && rb !== null) this.estimated.set(rangeId(left.begin, right.end), lb + rb);
      this.tracked.set(rangeId(left.begin, right.end), {
        opsPerSec: (tl?.opsPerSec ?? 0) + (tr?.opsPerSec ?? 0),
        readsPerSec: (tl?.readsPerSec ?? 0) + (tr?.readsPerSec ?? 0),
        writesPerSec: (tl?.writesPerSec ?? 0) + (tr?.writesPerSec ?? 0),
        quantiles: [],
        movedAt: null,
        changedAt: now,
        measured: false,
      });
    }
  }

  status(): BalancerStatus {
    const map = this.distribution.map;
    const sizes = new Map(this.sizes.ranges().map((s) => [rangeId(s.begin, s.end), s]));
    const perWorker = new Array<number>(map.workers).fill(0);
    const ranges = map.ranges.map((r) => {
      const t = this.tracked.get(rangeId(r.begin, r.end));
      const s = sizes.get(rangeId(r.begin, r.end));
      perWorker[r.owner]! += t?.opsPerSec ?? 0;
      const round = (x: number | undefined): number | null => (x === undefined || t?.opsPerSec == null ? null : Math.round(x * 10) / 10);
      return { begin: hex(r.begin), end: r.end === null ? null : hex(r.end), owner: r.owner, readsPerSec: round(t?.readsPerSec), writesPerSec: round(t?.writesPerSec), bytes: s?.bytes ?? null, keys: s?.keys ?? null };
    });
    const total = perWorker.reduce((a, b) => a + b, 0);
    return {
      enabled: this.config.enabled && this.disabled === null,
      settings: this.config,
      disabled: this.disabled,
      rounds: this.rounds,
      actions: this.actions,
      last: this.last,
      ranges,
      workers: perWorker.map((ops, worker) => ({ worker, opsPerSec: Math.round(ops * 10) / 10, share: total > 0 ? Math.round((ops / total) * 1000) / 1000 : 0 })),
    };
  }
}

function describe(a: BalancerAction): string {
  const k = (s: string): string => JSON.stringify(s);
  if (a.kind === 'split') return `split ${k(a.begin)} at ${a.keys.map(k).join(', ')} (${a.reason})`;
  if (a.kind === 'move') return `move ${k(a.begin)} from worker ${a.from} to ${a.to} (${a.reason})`;
  return `merge at ${k(a.key)} (${a.reason})`;
}
