// The gateway sends a connection's replies at the end of the turn that produced them, not
// in the event loop's check phase (setImmediate) behind everything else the loop has ready.
// A real server in this process (RocksDB, shard workers, uWS) whose main thread is kept
// busy by a 40 ms job queued with setImmediate on every loop iteration (as a loaded main
// thread is: other sockets, other ports); the client is a raw WebSocket on a worker thread,
// so its clock and loop are not the server's. A reply that waits for the check phase always
// waits for one whole job (round trip >= 40 ms); one sent at the end of its turn leaves
// before the job, so a request that arrives in the middle of a job is answered when that
// job ends.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRequests } from '../../src/protocol/codec.js';
import { startTestServer, type TestServer } from '../support/server.js';

const JOB_MS = 40;
const REQUESTS = 20;

// CommonJS on the worker: hello, then one read-version request at a time after a random
// pause (so requests land anywhere inside a job), each round trip timed on the worker.
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.wsPath);
const ws = new WebSocket(workerData.url, { perMessageDeflate: false });
const rtts = [];
let sentAt = 0;
let i = 0;
const next = () => setTimeout(() => { sentAt = performance.now(); ws.send(workerData.frames[i]); }, Math.random() * workerData.jobMs);
ws.on('open', () => ws.send(workerData.hello));
ws.on('message', () => {
  if (sentAt > 0) rtts.push(performance.now() - sentAt);
  if (rtts.length === workerData.frames.length) { parentPort.postMessage(rtts); ws.close(); return; }
  i = rtts.length;
  next();
});
ws.on('error', (e) => parentPort.postMessage(String(e)));
`;

describe('gateway reply flush', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ shards: 1 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a reply leaves at the end of its turn, not behind the check phase', async () => {
    const hello = encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 'reply-flush' } }]);
    const frames = Array.from({ length: REQUESTS }, (_, k) => encodeRequests([{ requestId: k + 2, body: { type: 'grv' } }]));
    const wsPath = createRequire(import.meta.url).resolve('ws');
    // every loop iteration of the server's thread: one JOB_MS job in its check phase
    const busy = setInterval(() => {
      setImmediate(() => {
        const end = performance.now() + JOB_MS;
        while (performance.now() < end);
      });
    }, 1);
    let rtts: number[];
    try {
      const w = new Worker(CLIENT, { eval: true, workerData: { url: s.server.url, hello, frames, wsPath, jobMs: JOB_MS } });
      const got = await new Promise<unknown>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        setTimeout(() => reject(new Error('no answer from the client worker in 20 s')), 20_000).unref();
      });
      await w.terminate();
      if (!Array.isArray(got)) throw new Error(`client worker failed: ${String(got)}`);
      rtts = got as number[];
    } finally {
      clearInterval(busy);
    }
    expect(rtts).toHaveLength(REQUESTS);
    // sent in the check phase, every reply waits for a whole job queued before it
    const early = rtts.filter((ms) => ms < JOB_MS - 5).length;
    expect(early, `round trips (ms): ${rtts.map((x) => x.toFixed(1)).join(' ')}`).toBeGreaterThanOrEqual(REQUESTS / 4);
  }, 30_000);
});
