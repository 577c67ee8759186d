// Worker side of bench/hops.ts: answers piscina tasks, and echoes batches on a port.
import type { MessagePort } from 'node:worker_threads';

export default function echo(task: { port?: MessagePort; n?: number }): number | string {
  if (task.port) {
    const port = task.port;
    port.on('message', (batch: unknown[]) => port.postMessage(batch));
    return 'attached';
  }
  return task.n ?? 0;
}
