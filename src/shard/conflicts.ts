// Read-conflict check of one shard. Pure: no RocksDB, no thread, no clock.
// A transaction (read version r, commit version c) conflicts on this shard when a
// key or range it read was written by a commit with version in (r, c): either one
// already applied (in the version window) or one queued ahead of it (prepared or
// decided but not yet applied; all of those have versions < c because the
// coordinator sends commits to a shard in version order). Counting prepared
// commits that may still abort is conservative: a false conflict is retried, a
// missed one would break serializability.
import type { RangeSet } from '../keys/ranges.js';
import type { VersionWindow } from './mvcc.js';

export interface PendingWrites {
  /** Point writes (set/clear) as latin-1 key strings. */
  keys: readonly string[];
  /** Cleared ranges [begin, end). */
  ranges: readonly (readonly [string, string])[];
}

export type ConflictOutcome = null | 'CONFLICT' | 'TOO_OLD';

export function pendingConflicts(reads: RangeSet, pending: PendingWrites): boolean {
  for (const k of pending.keys) if (reads.containsKey(k)) return true;
  for (const [b, e] of pending.ranges) if (reads.intersects(b, e)) return true;
  return false;
}

export function checkConflicts(
  readVersion: number,
  reads: RangeSet,
  window: VersionWindow,
  queued: Iterable<PendingWrites>,
): ConflictOutcome {
  if (reads.size === 0) return null;
  if (readVersion < window.horizon) return 'TOO_OLD';
  if (window.conflictsWith(readVersion, reads)) return 'CONFLICT';
  for (const p of queued) if (pendingConflicts(reads, p)) return 'CONFLICT';
  return null;
}
