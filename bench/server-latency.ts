// Server-side commit latency of a txkv server over a window, next to the client's: the
// gateway's histogram (`txkv_commit_latency_seconds{protocol="binary"}` on /metrics, request
// in to reply out) read at both ends of the window and subtracted, and the main thread's
// event-loop lag over the same window (/v1/metrics.json, one point a second). The client's
// latency adds the generator's own queueing and the network stack; the difference between
// the two says how much of a tail is the server's. Works against older builds too (it reads
// the bucket bounds from the text), so an A/B run reports both builds alike.

/** Cumulative bucket counts by upper bound (seconds; Infinity = +Inf). */
export interface CommitBuckets {
  at: number;
  bounds: number[];
  cumulative: number[];
}

export interface ServerLatency {
  commits: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Share of the window's commits answered within 5 ms (a bucket bound, so exact). */
  within5Ms: number | null;
  /** The main thread's event-loop lag: the largest per-second p99 and max of the window (ms; monitorEventLoopDelay, 10 ms resolution included). */
  loopLagP99Ms: number | null;
  loopLagMaxMs: number | null;
}

/** Parses the binary-protocol commit histogram out of /metrics text. */
export function parseCommitBuckets(text: string, at = Date.now()): CommitBuckets | null {
  const re = /^txkv_commit_latency_seconds_bucket\{([^}]*)\} (\S+)$/gm;
  const rows: [number, number][] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const labels = m[1]!;
    if (!labels.includes('protocol="binary"')) continue;
    const le = /le="([^"]+)"/.exec(labels)?.[1];
    if (le === undefined) continue;
    rows.push([le === '+Inf' ? Infinity : Number(le), Number(m[2])]);
  }
  if (rows.length === 0) return null;
  rows.sort((a, b) => a[0] - b[0]);
  return { at, bounds: rows.map((r) => r[0]), cumulative: rows.map((r) => r[1]) };
}

/** The q-quantile (ms) of the observations between two readings, linear inside a bucket (as Prometheus' histogram_quantile). */
export function windowQuantileMs(a: CommitBuckets, b: CommitBuckets, q: number): number | null {
  const counts = b.cumulative.map((c, i) => c - (i > 0 ? b.cumulative[i - 1]! : 0) - (a.cumulative[i]! - (i > 0 ? a.cumulative[i - 1]! : 0)));
  const total = counts.reduce((x, y) => x + y, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && seen + c >= rank) {
      const lo = i === 0 ? 0 : b.bounds[i - 1]!;
      const hi = Number.isFinite(b.bounds[i]!) ? b.bounds[i]! : lo;
      return Math.round((lo + (hi - lo) * ((rank - seen) / c)) * 1e6) / 1e3;
    }
    seen += c;
  }
  return null;
}

export async function readCommitBuckets(httpBase: string): Promise<CommitBuckets | null> {
  try {
    const res = await fetch(httpBase + '/metrics');
    return parseCommitBuckets(await res.text());
  } catch {
    return null;
  }
}

/** The window's figures from two readings (and /v1/metrics.json for the event-loop lag). */
export async function serverLatency(httpBase: string, a: CommitBuckets, b: CommitBuckets): Promise<ServerLatency> {
  const total = (x: CommitBuckets): number => x.cumulative[x.cumulative.length - 1]!;
  const i5 = b.bounds.findIndex((x) => Math.abs(x - 0.005) < 1e-9);
  const commits = total(b) - total(a);
  let loopLagP99Ms: number | null = null;
  let loopLagMaxMs: number | null = null;
  try {
    const series = (await (await fetch(httpBase + '/v1/metrics.json')).json()) as { points: { t: number; eventLoopLagP99Ms: number | null; eventLoopLagMaxMs: number | null }[] };
    for (const p of series.points) {
      // a point covers the second before p.t: only those wholly inside the window
      if (p.t - 1000 < a.at || p.t > b.at + 500) continue;
      if (p.eventLoopLagP99Ms !== null) loopLagP99Ms = Math.max(loopLagP99Ms ?? 0, p.eventLoopLagP99Ms);
      if (p.eventLoopLagMaxMs !== null) loopLagMaxMs = Math.max(loopLagMaxMs ?? 0, p.eventLoopLagMaxMs);
    }
  } catch {
    // an older build without the series: no lag figures
  }
  return {
    commits,
    p50Ms: windowQuantileMs(a, b, 0.5),
    p99Ms: windowQuantileMs(a, b, 0.99),
    within5Ms: i5 >= 0 && commits > 0 ? Math.round(((b.cumulative[i5]! - a.cumulative[i5]!) / commits) * 10000) / 10000 : null,
    loopLagP99Ms,
    loopLagMaxMs,
  };
}
