// CPU time of other processes (the servers compare.ts starts), from /proc/<pid>/stat: user +
// system time of every thread of the process, in microseconds. Linux only; a PID that is gone
// counts 0. Used for server CPU per operation across systems in one run.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/**
 * Time the threads of `pids` have spent runnable but waiting for a CPU (the run queue), in ns
 * so far: /proc/<pid>/task/<tid>/schedstat, second field. `mainNs` is the main threads' (tid =
 * pid), `allNs` every thread's. On a machine with more runnable threads than cores this is
 * where a request waits although no thread of the server is busy with it. Linux only (0 else).
 */
export function runQueueWaitNs(pids: number[]): { mainNs: number; allNs: number } {
  let mainNs = 0;
  let allNs = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone, or not Linux
    }
    for (const tid of tids) {
      try {
        const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
        if (!Number.isFinite(ns)) continue;
        allNs += ns;
        if (Number(tid) === pid) mainNs += ns;
      } catch {
        // the thread ended
      }
    }
  }
  return { mainNs, allNs };
}

/** This thread's run-queue wait so far (ns; /proc/thread-self/schedstat), or null off Linux. */
export function threadRunQueueWaitNs(): number | null {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(ns) ? ns : null;
  } catch {
    return null;
  }
}
