// The shape of a benchmark workload: how it preloads its keyspace and what transaction each
// client runs next. Pure apart from the BenchTxn calls; every random choice comes from ctx.rng.

import type { BenchTxn, KV, TxnShape } from '../adapter.js';
import type { Rng } from '../rng.js';

export interface WorkloadParams {
  /** Size of the preloaded keyspace (rows; for `meta`, files). */
  rows: number;
  /** Seed of the preload (the same for every system of a run). */
  seed: number;
}

export interface ClientContext extends WorkloadParams {
  /** Globally unique client number (across generator processes). */
  clientId: number;
  rng: Rng;
  /** Check every value read (checksums, order, invariants); costs generator CPU. */
  verify: boolean;
}

/** One transaction to run: chosen once, attempted until it commits or fails for good. */
export interface TxnPlan {
  /** Operation name, for per-operation latency (`meta`); the workload name otherwise. */
  op: string;
  shape: TxnShape;
  /** One attempt; returns how many operations (keys read or written, metadata ops) it did. */
  run(tx: BenchTxn): Promise<number>;
  /** Set by run(): what the operation found (e.g. `exists`, `enoent`), counted in the report. */
  outcome?: string;
}

export interface WorkloadClient {
  next(): TxnPlan;
}

export interface Workload {
  readonly name: string;
  readonly description: string;
  /** What `ops` counts in this workload (for the report's unit). */
  readonly opUnit: string;
  /** Clients when the run does not say (w1: 1; the others: 100). */
  readonly defaultClients: number;
  /** Reads key ranges (Redis then maintains an ordered index). */
  readonly ordered: boolean;
  /** Range reads stay within keys sharing this many leading bytes (see OpenOptions). */
  readonly rangeGroupBytes?: number;
  /** Workloads with the same keyspace share one preload. */
  readonly keyspace: 'flat' | 'meta';
  preload(params: WorkloadParams): Iterable<KV>;
  client(ctx: ClientContext): WorkloadClient;
}
