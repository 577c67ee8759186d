// A forked generator process: receives one WorkerRequest, opens its own adapter, runs its
// share of the client loops, sends a tick every second and the raw result at the end.
// Never prints the report itself; the parent (generator.ts runLoad) merges and reports.

import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { createAdapter } from './adapters/index.js';
import { runClients, type WorkerMessage, type WorkerRequest } from './generator.js';
import { workloadByName } from './workloads/index.js';

function send(m: WorkerMessage): void {
  process.send?.(m);
}

function sendAndExit(m: WorkerMessage, code: number): void {
  if (process.send) process.send(m, () => process.exit(code));
  else process.exit(code);
}

process.once('message', (req: WorkerRequest) => {
  void (async () => {
    const workload = workloadByName(req.workload);
    const adapter = await createAdapter(req.spec);
    try {
      await adapter.open({ ordered: workload.ordered, ...(workload.rangeGroupBytes !== undefined ? { rangeGroupBytes: workload.rangeGroupBytes } : {}) });
      return await runClients(adapter, { ...req, workload }, (live, elapsedMs) =>
        send({ type: 'tick', txns: live.txns, ops: live.ops, conflicts: live.conflicts, errors: live.errors, hist: encodeIntoCompressedBase64(live.hist), elapsedMs }),
      );
    } finally {
      await Promise.race([adapter.close(), new Promise((r) => setTimeout(r, 5000))]).catch(() => undefined);
    }
  })().then(
    (raw) => sendAndExit({ type: 'done', raw }, 0),
    (err: unknown) => sendAndExit({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 1),
  );
});
