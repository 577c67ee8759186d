// A txkv server in its own process, for bench/compare.ts: the server then gets a core of its
// own instead of sharing the generator's event loop. Started with fork(); receives
// { dataDir, shards }, answers { url }, and closes the server gracefully on 'close'.
// With `root`, the server is another txkv build (a checkout with its own dist/, e.g. an older
// commit for a before/after run: compare.js --txkv-root DIR); its startServer takes the same options.

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Start {
  dataDir: string;
  shards: number;
  splitPoints?: string[];
  durability?: 'fsync' | 'buffered';
  /** Repository root of another txkv build to run instead of this one. */
  root?: string;
  /** The [distribution] settings (automatic splits and moves); absent: the server's defaults. */
  distribution?: { enabled?: boolean };
  /** gatewayThreads setting (compare.js --gateway-threads); absent: the default. */
  gatewayThreads?: number;
}

process.once('message', (m: Start) => {
  void (async () => {
    const { startServer } = (m.root
      ? await import(pathToFileURL(join(m.root, 'dist/src/index.js')).href)
      : await import('../src/index.js')) as typeof import('../src/index.js');
    const server = await startServer({
      port: 0,
      host: '127.0.0.1',
      dataDir: m.dataDir,
      shards: m.shards,
      ...(m.splitPoints ? { splitPoints: m.splitPoints } : {}),
      logLevel: 'error',
      ...(m.durability ? { durability: m.durability } : {}),
      ...(m.distribution ? { distribution: m.distribution } : {}),
      ...(m.gatewayThreads ? { gatewayThreads: m.gatewayThreads } : {}),
    });
    process.send?.({ url: server.url });
    // TAIL_HEAP_PROFILE=F: V8's sampling heap profile of this (the main) thread, from the
    // 'heap-start' message (tail-probe.js sends it as its paced window begins) to 'close',
    // written to F (.heapprofile: DevTools, or bench/heap-summary.js); every sampled object
    // counts, also those a scavenge or mark-compact collected (allocation, not retention)
    const heapFile = process.env.TAIL_HEAP_PROFILE;
    const session = heapFile ? new Session() : null;
    session?.connect();
    process.on('message', (msg: unknown) => {
      if (msg === 'heap-start' && session) {
        void session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      }
      if (msg === 'close') {
        void (async () => {
          if (session && heapFile) {
            const { profile } = await session.post('HeapProfiler.stopSampling');
            writeFileSync(heapFile, JSON.stringify(profile));
          }
        })().then(() => server.close()).then(
          () => process.exit(0),
          (err: unknown) => {
            console.error('txkv server close failed:', err);
            process.exit(1);
          },
        );
      }
    });
  })().catch((err: unknown) => {
    console.error('txkv server failed to start:', err);
    process.exit(1);
  });
});
