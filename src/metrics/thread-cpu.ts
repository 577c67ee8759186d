// Per-thread CPU time from /proc (Linux): every thread of the server (main, gateway
// threads, shard workers) learns its own id once, and the main thread reads each
// thread's utime + stime. Elsewhere the ids are null and the figures absent.
import { readFileSync, readlinkSync } from 'node:fs';

/** The calling thread's id in /proc (/proc/thread-self -> <pid>/task/<tid>); null off Linux. */
export function threadId(): number | null {
  try {
    return Number(/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1] ?? NaN) || null;
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux build that matters). */
const TICKS_PER_SEC = 100;

/** CPU time (user + system, milliseconds) thread `tid` of this process has used; null if unknown. */
export function threadCpuMs(tid: number | null): number | null {
  if (tid === null) return null;
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // fields after the command (which may contain spaces) in parentheses; utime, stime are fields 14, 15
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_SEC;
  } catch {
    return null;
  }
}
