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

/** Which front door a request came through; the metrics carry it as the `protocol` label. */
export type Protocol = 'binary' | 'http';

export class RequestMetrics {
  readonly getLatency = new LatencyHistogram();
  readonly rangeLatency = new LatencyHistogram();
  readonly commitLatency = new LatencyHistogram();
  /**
   * Transactions started: read versions handed out (one per transaction that reads;
   * the SDK asks once per transaction) plus write-only transactions, which take no
   * read version and are counted at their commit.
   */
  transactionsStarted = 0;
  /** Key and value bytes received in requests and sent in replies (payload, not frame, bytes). */
  bytesIn = 0;
  bytesOut = 0;
  /** Requests being processed right now. */
  inflight = 0;
  /** Error replies by code. */
  readonly errors: Record<string, number> = Object.create(null) as Record<string, number>;
  /** HTTP only: responses by "METHOD route status" (route is the pattern, e.g. /v1/kv/:key). */
  readonly responses = new Map<string, number>();

  constructor(
    /** Commits slower than this (ms) are logged; 0 = off. */
    readonly slowTransactionMs: number,
    private readonly logger: SlowLogger,
    readonly protocol: Protocol = 'binary',
  ) {}

  begin(): number {
    this.inflight++;
    return performance.now();
  }

  observeGet(startedMs: number, key: Uint8Array, value: Uint8Array | null): void {
    this.getLatency.since(startedMs);
    this.bytesIn += key.length;
    if (value !== null) this.bytesOut += value.length;
  }

  getDone(startedMs: number, key: Uint8Array, value: Uint8Array | null): void {
    this.inflight--;
    this.observeGet(startedMs, key, value);
  }

  observeRange(startedMs: number, begin: Uint8Array, end: Uint8Array, kvs: readonly Uint8Array[]): void {
    this.rangeLatency.since(startedMs);
    this.bytesIn += begin.length + end.length;
    let n = 0;
    for (let i = 0; i < kvs.length; i++) n += kvs[i]!.length;
    this.bytesOut += n;
  }

  rangeDone(startedMs: number, begin: Uint8Array, end: Uint8Array, kvs: readonly Uint8Array[]): void {
    this.inflight--;
    this.observeRange(startedMs, begin, end, kvs);
  }

  commitDone(startedMs: number, readVersion: bigint, mutations: readonly MutationLike[], commitVersion: number | null, code: string): void {
    const ms = this.commitLatency.since(startedMs);
    let bytes = 0;
    for (let i = 0; i < mutations.length; i++) bytes += mutations[i]!.key.length + mutations[i]!.param.length;
    this.bytesIn += bytes;
    if (this.slowTransactionMs > 0 && ms >= this.slowTransactionMs) this.logSlow(ms, readVersion, mutations, bytes, commitVersion, code);
  }

  countError(code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  /** An error reply (any request type; commits also go through commitDone). */
  failed(code: string): void {
    this.inflight--;
    this.countError(code);
  }

  /** A request answered without an error and without a *Done call of its own (commits also call commitDone). */
  end(): void {
    this.inflight--;
  }

  /** A GetReadVersion request answered: one transaction started. */
  transactionStarted(): void {
    this.inflight--;
    this.transactionsStarted++;
  }

  /** A transaction that took no read version here (a write-only commit, an HTTP request). */
  countTransaction(): void {
    this.transactionsStarted++;
  }

  /** HTTP: one response. */
  response(method: string, route: string, status: number): void {
    const k = `${method} ${route} ${status}`;
    this.responses.set(k, (this.responses.get(k) ?? 0) + 1);
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

const byOwner = new WeakMap<object, Partial<Record<Protocol, RequestMetrics>>>();

/** Makes `metrics` the counters of every request of its protocol dispatched to `owner` (the server's coordinator). */
export function attachRequestMetrics(owner: object, metrics: RequestMetrics): void {
  const m = byOwner.get(owner) ?? {};
  m[metrics.protocol] = metrics;
  byOwner.set(owner, m);
}

export function requestMetricsOf(owner: object, protocol: Protocol = 'binary'): RequestMetrics | undefined {
  return byOwner.get(owner)?.[protocol];
}
