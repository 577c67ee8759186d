// hot path: per-request counters the gateway's dispatch updates (plain fields and
// fixed arrays, no allocation per request) and the SlowTransaction log line. Main
// thread. One instance per server, found by the coordinator it serves, so several
// servers in one process (tests, embedding) keep separate numbers.
import { printable } from '../keys/bytes.js';
import { LatencyHistogram } from './latency-histogram.js';

/** At most this many SlowTransaction lines per second; the next line says how many were left out. */
export const SLOW_LINES_PER_SEC = 10;

export interface SlowLogger {
  warn(obj: object, msg: string): void;
}

export interface MutationLike {
  key: Uint8Array;
  param: Uint8Array;
}

export class RequestMetrics {
  readonly getLatency = new LatencyHistogram();
  readonly rangeLatency = new LatencyHistogram();
  readonly commitLatency = new LatencyHistogram();
  /** GetReadVersion requests: one per transaction that reads (the SDK asks once per transaction). */
  transactionsStarted = 0;
  /** Key and value bytes received in requests and sent in replies (payload, not frame, bytes). */
  bytesIn = 0;
  bytesOut = 0;
  /** Requests being processed right now. */
  inflight = 0;
  /** Error replies by code. */
  readonly errors: Record<string, number> = Object.create(null) as Record<string, number>;

  constructor(
    /** Commits slower than this (ms) are logged; 0 = off. */
    readonly slowTransactionMs: number,
    private readonly logger: SlowLogger,
  ) {}

  begin(): number {
    this.inflight++;
    return performance.now();
  }

  getDone(startedMs: number, key: Uint8Array, value: Uint8Array | null): void {
    this.inflight--;
    this.getLatency.since(startedMs);
    this.bytesIn += key.length;
    if (value !== null) this.bytesOut += value.length;
  }

  rangeDone(startedMs: number, begin: Uint8Array, end: Uint8Array, kvs: readonly Uint8Array[]): void {
    this.inflight--;
    this.rangeLatency.since(startedMs);
    this.bytesIn += begin.length + end.length;
    let n = 0;
    for (let i = 0; i < kvs.length; i++) n += kvs[i]!.length;
    this.bytesOut += n;
  }

  commitDone(startedMs: number, readVersion: bigint, mutations: readonly MutationLike[], commitVersion: number | null, code: string): void {
    const ms = this.commitLatency.since(startedMs);
    let bytes = 0;
    for (let i = 0; i < mutations.length; i++) bytes += mutations[i]!.key.length + mutations[i]!.param.length;
    this.bytesIn += bytes;
    if (this.slowTransactionMs > 0 && ms >= this.slowTransactionMs) this.logSlow(ms, readVersion, mutations, bytes, commitVersion, code);
  }

  /** An error reply (any request type; commits also go through commitDone). */
  failed(code: string): void {
    this.inflight--;
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  /** A request answered without an error and without a *Done call of its own (commits also call commitDone). */
  end(): void {
    this.inflight--;
  }

  transactionStarted(): void {
    this.inflight--;
    this.transactionsStarted++;
  }

  /** SlowTransaction lines are capped per second (an overloaded server would otherwise log every commit). */
  private slowWindowStart = 0;
  private slowInWindow = 0;
  private slowSuppressed = 0;

  private logSlow(ms: number, readVersion: bigint, mutations: readonly MutationLike[], bytes: number, commitVersion: number | null, code: string): void {
    const now = performance.now();
    if (now - this.slowWindowStart >= 1000) {
      this.slowWindowStart = now;
      this.slowInWindow = 0;
    }
    if (++this.slowInWindow > SLOW_LINES_PER_SEC) {
      this.slowSuppressed++;
      return;
    }
    const suppressed = this.slowSuppressed;
    this.slowSuppressed = 0;
    const rv = Number(readVersion);
    const first = mutations[0];
    this.logger.warn(
      {
        event: 'SlowTransaction',
        commitMs: Math.round(ms * 10) / 10,
        outcome: code,
        readVersion: rv,
        commitVersion,
        // versions are microsecond timestamps: the distance is the transaction's age at commit
        ageMs: rv > 0 && commitVersion !== null ? Math.round((commitVersion - rv) / 1000) : undefined,
        mutations: mutations.length,
        bytes,
        firstKey: first ? printable(first.key) : undefined,
        // slow commits not logged since the previous line (over SLOW_LINES_PER_SEC)
        suppressed: suppressed > 0 ? suppressed : undefined,
      },
      `commit took ${ms.toFixed(1)} ms (slowTransactionMs ${this.slowTransactionMs})`,
    );
  }
}

const byOwner = new WeakMap<object, RequestMetrics>();

/** Makes `metrics` the counters of every request dispatched to `owner` (the server's coordinator). */
export function attachRequestMetrics(owner: object, metrics: RequestMetrics): void {
  byOwner.set(owner, metrics);
}

export function requestMetricsOf(owner: object): RequestMetrics | undefined {
  return byOwner.get(owner);
}
