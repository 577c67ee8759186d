// bench/w1-timeline.ts: perf sched's wake-up lines become per-commit chains of hand-overs,
// and each segment is measured between consecutive hand-overs of one chain.
import { describe, expect, it } from 'vitest';
import { parseWakes, segments } from '../../bench/w1-timeline.js';

// client 100, main 200, shard 300 (thread of process 200), log writer 400; times in seconds
const line = (t: number, cpu: number, from: string, to: string): string =>
  `   ${t.toFixed(6)} [000${cpu}]  ${from}                                                awakened: ${to}`;

function commit(t0: number): string[] {
  return [
    line(t0, 0, 'node[100]', 'node[200]'),
    line(t0 + 0.00005, 0, 'node[200]', 'node[300/200]'),
    line(t0 + 0.00015, 1, 'node[300/200]', 'node[400/200]'),
    line(t0 + 0.0004, 1, 'node[400/200]', 'kworker/1:2H-kb[22558]'),
    line(t0 + 0.0005, 1, 'node[400/200]', 'node[200]'),
    line(t0 + 0.00056, 0, 'node[200]', 'node[100]'),
  ];
}

describe('w1-timeline', () => {
  it('parses wake-ups (tids, kworker) and skips other lines', () => {
    const w = parseWakes(['Samples do not have callchains.', '   60063.309302 [0001]  node[28673/28638]   0.897   0.010   0.055', ...commit(1)].join('\n'));
    expect(w.map((x) => [x.from, x.to])).toEqual([
      ['100', '200'],
      ['200', '300'],
      ['300', '400'],
      ['400', 'kworker'],
      ['400', '200'],
      ['200', '100'],
    ]);
    expect(w[1]!.t - w[0]!.t).toBeCloseTo(50, 3);
  });

  it('cuts whole chains into segments and drops a chain missing a stage', () => {
    const lines = [...commit(1), ...commit(1.001), ...commit(1.002).filter((l) => !l.includes('kworker')), ...commit(1.003), ...commit(1.004)];
    const s = (...x: string[]): Set<string> => new Set(x);
    const r = segments(parseWakes(lines.join('\n')), [
      { name: 'c', from: s('100'), to: s('200') },
      { name: 'm', from: s('200'), to: s('300') },
      { name: 's', from: s('300'), to: s('400') },
      { name: 'io', from: s('400'), to: s('kworker') },
      { name: 'l', from: s('400'), to: s('200') },
      { name: 'r', from: s('200'), to: s('100') },
    ]);
    // chains start at 1.000, 1.001 and 1.003 (1.002 lacks its I/O; 1.004 has no next start)
    expect(r.cycles).toBe(3);
    expect(r.rows.map((x) => Math.round(x.p50))).toEqual([50, 100, 250, 100, 60, 440]);
    expect(Math.round(r.cycleP50)).toBe(1000);
  });
});
