// Frees ArrayBuffers at once instead of at their isolate's next collection. V8 collects an
// isolate's dead ArrayBuffers only after ~64 MB of them (its external memory limit), and
// the malloc arena that held them keeps their space after: under slow readers of 1 MB range
// pages, dead rows and pages took a server's RSS ~100 MB or more past its reply budget
// (test/load/slow-readers.test.ts). A buffer transferred to a port whose other end is gone
// is detached and its memory freed during the postMessage (the message is serialized and
// dropped): measured 50 MB freed by one call, Node 20.
import { MessageChannel } from 'node:worker_threads';

const sink = new MessageChannel().port1;
sink.close();

/** Large buffers only: smaller ones cost more to free this way than they hold. */
export const FREE_MIN_BYTES = 64 * 1024;

/**
 * Frees the buffers of `views` (each one once) that are FREE_MIN_BYTES or more. Every view
 * of a freed buffer reads as empty afterwards: the caller must own them outright (no other
 * holder, e.g. a cache or a pending reply, may still use any view of them).
 */
export function freeBuffers(views: readonly Uint8Array[]): void {
  let list: ArrayBuffer[] | null = null;
  for (const v of views) {
    const b = v.buffer as ArrayBuffer;
    if (b.byteLength < FREE_MIN_BYTES || b instanceof SharedArrayBuffer) continue;
    if (list === null) list = [b];
    else if (!list.includes(b)) list.push(b);
  }
  if (list) sink.postMessage(null, list);
}
