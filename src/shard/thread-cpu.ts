// The calling thread's CPU time, for costs that must be told apart from waiting for a core
// (on a loaded machine a slice's wall time is mostly time spent runnable, not running).
// Linux: /proc/thread-self/schedstat, whose first field is the thread's time on a CPU in
// nanoseconds (the kernel's scheduler accounting, not tick-sampled like /proc/.../stat).
// The file is opened once per thread (each worker thread has its own copy of this module:
// /proc/thread-self names the thread that opened it) and read again from offset 0.
import { closeSync, openSync, readSync } from 'node:fs';

let fd: number | null | undefined;
const buf = Buffer.alloc(96);

/** CPU time of the calling thread so far in ms (sub-microsecond resolution), or null where the platform does not say. */
export function threadCpuMs(): number | null {
  if (fd === undefined) {
    try {
      fd = openSync('/proc/thread-self/schedstat', 'r');
    } catch {
      fd = null;
    }
  }
  if (fd === null) return null;
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    let ns = 0;
    for (let i = 0; i < n; i++) {
      const c = buf[i]!;
      if (c < 48 || c > 57) break;
      ns = ns * 10 + (c - 48);
    }
    return ns / 1e6;
  } catch {
    closeSync(fd);
    fd = null;
    return null;
  }
}
