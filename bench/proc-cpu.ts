// CPU time of other processes (the servers compare.ts starts), from /proc/<pid>/stat: user +
// system time of every thread of the process, in microseconds. Linux only; a PID that is gone
// counts 0. Used for server CPU per operation across systems in one run.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Summed user + system CPU of `pids` so far, in µs (resolution: one clock tick, usually 10 ms). */
export function processCpuMicros(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the parenthesised command name; utime and stime are fields 14 and 15
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // the process is gone
    }
  }
  return (ticks * 1e6) / clockTicks();
}
