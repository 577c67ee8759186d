// Pinned snapshots for backups that outlive the MVCC window. Main thread.
//
// A client (txkv backup) asks for a snapshot: the server takes a read version V and
// pins it (Coordinator.pin), so the window stops sliding past V and the shards keep
// every change since; the client then reads at V, page by page, for as long as it
// takes, and every read is consistent at V. The price is memory in the shards (before-
// images, log entries and keys of every write since V), so a pin is bounded twice:
//  - a lease: the client renews it (every few seconds); one not renewed for LEASE_MS is
//    dropped, so a killed backup does not hold history forever (and a rerun with
//    --resume within the lease continues at the same V);
//  - a budget: when the shards hold more than limits.maxSnapshotHistoryBytes of history,
//    or a shard's window more than MAX_WINDOW_KEYS keys, every pin is dropped and the
//    backup is told why (410 Gone) rather than letting the server run out of memory.
//    Bytes, not commits: a commit of ten new keys costs ten times one of one key (a
//    budget of 2,000,000 commits let w10-style inserts hold ~6 GB, and past 2^24 keys a
//    shard's window would fail: V8's Map holds no more).
import { TxnError } from '../errors.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { HttpError } from './http-error.js';

export const LEASE_MS = 30_000;
/** Default budget of history held for snapshots, bytes (limits.maxSnapshotHistoryBytes). */
export const MAX_HISTORY_BYTES = 1024 * 1024 * 1024;
/** Keys one shard's window may hold for snapshots: half of V8's Map limit (2^24 entries). */
export const MAX_WINDOW_KEYS = 8_000_000;
const CHECK_MS = 1000;

interface Pin {
  id: string;
  pinId: number;
  readVersion: number;
  createdAt: number;
  renewedAt: number;
}

export interface SnapshotInfo {
  id: string;
  readVersion: string;
  leaseMs: number;
  /** The budget of history (bytes, all shards) past which every snapshot is dropped. */
  maxHistoryBytes: number;
}

export class Snapshots {
  private readonly pins = new Map<string, Pin>();
  /** Why a snapshot went away (expired lease, budget), for the client's next call. */
  private readonly gone = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private next = 1;

  constructor(
    private readonly c: Coordinator,
    private readonly budget = MAX_HISTORY_BYTES,
    private readonly leaseMs = LEASE_MS,
  ) {}

  async create(): Promise<SnapshotInfo> {
    const readVersion = this.c.front ? await this.c.front.readVersion() : this.c.reads.readVersion();
    const pinId = this.c.pin(readVersion);
    const id = String(this.next++);
    const now = Date.now();
    this.pins.set(id, { id, pinId, readVersion, createdAt: now, renewedAt: now });
    this.watch();
    return this.info(this.pins.get(id)!);
  }

  renew(id: string): SnapshotInfo {
    const p = this.pins.get(id);
    if (!p) throw this.missing(id);
    p.renewedAt = Date.now();
    return this.info(p);
  }

  release(id: string): void {
    const p = this.pins.get(id);
    if (!p) throw this.missing(id);
    this.drop(p, 'released');
  }

  list(): SnapshotInfo[] {
    return [...this.pins.values()].map((p) => this.info(p));
  }

  private info(p: Pin): SnapshotInfo {
    return { id: p.id, readVersion: String(p.readVersion), leaseMs: this.leaseMs, maxHistoryBytes: this.budget };
  }

  private missing(id: string): TxnError {
    const why = this.gone.get(id);
    return why
      ? new HttpError('TOO_OLD', `snapshot ${id} is gone: ${why}`, 410, 'GONE')
      : new HttpError('INVALID_ARGUMENT', `no snapshot ${JSON.stringify(id)} (the server may have restarted: snapshots live in memory)`, 404, 'NOT_FOUND');
  }

  private drop(p: Pin, why: string): void {
    this.c.unpin(p.pinId);
    this.pins.delete(p.id);
    this.gone.set(p.id, why);
    if (this.gone.size > 1000) this.gone.delete(this.gone.keys().next().value!);
    if (this.pins.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** While pins exist: drop those whose lease ran out, and all of them when the shards hold more history than the budget. */
  private watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const p of [...this.pins.values()]) {
        if (now - p.renewedAt > this.leaseMs) this.drop(p, `its lease ran out (not renewed for ${this.leaseMs / 1000} s)`);
      }
      if (this.pins.size === 0) return;
      this.c.shardStats().then(
        (stats) => {
          const held = stats.reduce((n, s) => n + s.windowBytes, 0);
          const most = stats.reduce((m, s) => (s.windowKeys > m.windowKeys ? s : m), stats[0]!);
          let why: string;
          if (held > this.budget) why = `the shards held ${held} bytes of history for it, over limits.maxSnapshotHistoryBytes (${this.budget})`;
          else if (most !== undefined && most.windowKeys > MAX_WINDOW_KEYS) why = `shard ${most.shardId} held ${most.windowKeys} keys of history for it, over ${MAX_WINDOW_KEYS}`;
          else return;
          for (const p of [...this.pins.values()]) this.drop(p, `${why}; back up smaller ranges or at a quieter time`);
        },
        () => {},
      );
    }, CHECK_MS);
    this.timer.unref();
  }
}

const byCoordinator = new WeakMap<object, Snapshots>();

/** The snapshot manager of a server (one per coordinator, made on first use with `maxHistoryBytes`). */
export function snapshotsOf(c: Coordinator, maxHistoryBytes = MAX_HISTORY_BYTES): Snapshots {
  let s = byCoordinator.get(c);
  if (!s) {
    s = new Snapshots(c, maxHistoryBytes);
    byCoordinator.set(c, s);
  }
  return s;
}
