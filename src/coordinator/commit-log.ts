// The CommitLog seam: where the coordinator makes a decided commit durable. Main
// thread. Everything above it (oracle, conflicts, shards, MVCC) is one code path for
// both implementations:
//   LocalLog (single node, the default): the shards make their own batches durable
//     (fsync per group-commit batch) and a cross-shard commit's decision record goes
//     in the primary's batch (docs/durability.md). append() is never called.
//   a replicated log (cluster mode, src/cluster/etcd-log.ts): after every participant
//     prepared, the coordinator appends the commit's parts to the log and, once the log
//     acknowledged, lets the write shards apply without fsync and without a decision
//     record: the log entry is the decision (docs/cluster.md).
import type { ShardMutation } from '../shard/interface.js';

export interface LogPart {
  shardId: number;
  /** Final mutations of this shard (versionstamps substituted, clipped to the shard). */
  mutations: ShardMutation[];
}

export interface MoveEntry {
  id: number;
  begin: string;
  end: string | null;
  from: number;
  to: number;
  reason: string;
}

/** A map change as the replicated log carries it (cluster mode; applied by coordinator/distribution.ts). Keys in hex. */
export type DistEntry =
  | { kind: 'split'; key: string; reason: string }
  | { kind: 'merge'; key: string; reason: string }
  | ({ kind: 'moveStart' } & MoveEntry)
  /** Logged at the switch version vm: every node switches the range there once its copy is complete. */
  | ({ kind: 'moveSwitch' } & MoveEntry)
  | { kind: 'moveAbort'; id: number; reason: string }
  /** The previous owner of the range at `begin` deletes its rows (reads below `horizon` are TOO_OLD there). */
  | { kind: 'drop'; begin: string; owner: number; until: number; horizon: number };

/** One decided commit as the log carries it. */
export interface LogEntry {
  commitVersion: number;
  parts: LogPart[];
  /** A map change instead of a commit (split, merge, move start/switch/abort, drop; parts empty): coordinator/distribution.ts. */
  dist?: DistEntry;
}

export interface CommitLog {
  /** 'local': shards fsync their batches and write decision records; 'replicated': append() is the durability. */
  readonly kind: 'local' | 'replicated';
  /**
   * Whether this node may commit now (a cluster replica or a leader that stepped down may
   * not). Checked before a version is assigned; when false, a commit fails with UNAVAILABLE.
   */
  readonly writable: boolean;
  /**
   * A commit version was assigned. A replicated log keeps version order, so it will not
   * append anything above this version until it is appended or dropped. Call exactly once
   * per assigned version, then append() or drop() exactly once.
   */
  reserve(commitVersion: number): void;
  /**
   * Makes a decided commit durable. Resolves once the log acknowledged it (replicated:
   * on a majority's disk). Rejects with TxnError UNAVAILABLE when this node is no longer
   * allowed to write (the commit did not happen) or MAYBE_COMMITTED when the outcome is
   * unknown (the log may hold it).
   */
  append(entry: LogEntry): Promise<void>;
  /** The reserved version will not be appended (aborted, read-only, or failed before its decision). */
  drop(commitVersion: number): void;
}

/** Today's single-node behaviour: durability is the shards' own fsync'd batches. */
export class LocalLog implements CommitLog {
  readonly kind = 'local' as const;
  readonly writable = true;
  reserve(): void {}
  append(entry: LogEntry): Promise<void> {
    return Promise.reject(new Error(`LocalLog.append(${entry.commitVersion}): the local log makes commits durable in the shards' batches`));
  }
  drop(): void {}
}
