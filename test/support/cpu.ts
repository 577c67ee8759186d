// CPU time of the calling thread, for tests that bound the cost of a synchronous step.
// Wall time on a shared 2-core machine (CI runs ~88 files two at a time, with servers and
// RocksDB background threads of their own) includes time the thread waited for a core or
// for the disk; CPU time of the thread itself does not, and it is what an O(keys) step
// on that thread costs.
import { readFileSync } from 'node:fs';

const parked = new Int32Array(new SharedArrayBuffer(4));

/**
 * Nanoseconds of CPU the calling thread has used (first field of
 * /proc/thread-self/schedstat), as milliseconds; null where the file is missing (not
 * Linux, or a kernel without scheduler statistics): callers fall back to wall time.
 */
export function threadCpuMs(): number | null {
  try {
    // The kernel brings a running thread's figure up to date only at a scheduler tick
    // (4 ms at HZ=250) or when the thread leaves the CPU; reading it while running can be
    // a tick stale (measured: a 2 ms loop read as 4.2 ms). Sleeping 1 ms first takes the
    // thread off the CPU, so the figure is current when read.
    Atomics.wait(parked, 0, 0, 1);
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

/** Runs `f` and returns its result with the wall time and, where known, the calling thread's CPU time (ms). */
export function timed<T>(f: () => T): { value: T; wallMs: number; cpuMs: number | null } {
  const c0 = threadCpuMs();
  const t0 = performance.now();
  const value = f();
  const wallMs = performance.now() - t0;
  const c1 = threadCpuMs();
  return { value, wallMs, cpuMs: c0 === null || c1 === null ? null : c1 - c0 };
}
