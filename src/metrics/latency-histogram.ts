// hot path (observe): a fixed-bucket latency histogram, observed by the gateway on
// every request. Main thread. observe() allocates nothing (prom-client's Histogram
// allocates a closure and a label object per call); the exposition text and the
// percentiles are computed off the hot path, when /metrics or the sampler asks.

/** Upper bounds in seconds, 50 µs .. 10 s, roughly 2.5x apart. */
export const LATENCY_BOUNDS_SEC: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class LatencyHistogram {
  /** counts[i]: observations <= bounds[i] and > bounds[i-1]; the last slot is +Inf. */
  readonly counts = new Float64Array(LATENCY_BOUNDS_SEC.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    const b = LATENCY_BOUNDS_SEC;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  /** Observes the time since `startedMs` (a performance.now() reading). */
  since(startedMs: number): number {
    const ms = performance.now() - startedMs;
    this.observe(ms / 1000);
    return ms;
  }

  copy(): Float64Array {
    return this.counts.slice();
  }
}

/**
 * The q-quantile (0..1) in seconds of a non-cumulative bucket count array (e.g. the
 * difference of two copies), interpolating linearly inside the bucket, as
 * Prometheus' histogram_quantile does. NaN when there are no observations.
 */
export function quantile(counts: ArrayLike<number>, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return NaN;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (seen + c >= rank && c > 0) {
      const lo = i === 0 ? 0 : LATENCY_BOUNDS_SEC[i - 1]!;
      const hi = i < LATENCY_BOUNDS_SEC.length ? LATENCY_BOUNDS_SEC[i]! : lo; // +Inf bucket: report its lower bound
      return lo + (hi - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return LATENCY_BOUNDS_SEC[LATENCY_BOUNDS_SEC.length - 1]!;
}

function labelText(labels: Record<string, string>, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

/** Prometheus text exposition of histograms sharing one name (one series per label set). */
export function histogramText(name: string, help: string, series: [Record<string, string>, LatencyHistogram][]): string {
  let out = `# HELP ${name} ${help}\n# TYPE ${name} histogram\n`;
  for (const [labels, h] of series) {
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BOUNDS_SEC.length; i++) {
      cumulative += h.counts[i]!;
      out += `${name}_bucket${labelText(labels, ['le', String(LATENCY_BOUNDS_SEC[i])])} ${cumulative}\n`;
    }
    out += `${name}_bucket${labelText(labels, ['le', '+Inf'])} ${h.count}\n`;
    out += `${name}_sum${labelText(labels)} ${h.sum}\n`;
    out += `${name}_count${labelText(labels)} ${h.count}\n`;
  }
  return out;
}
