/**
 * Node options the server process is started with (bin/txkv.js's first line, `npm start`,
 * the Dockerfile's ENTRYPOINT and the benchmark's server fork carry the same; they must be
 * given at start: V8's thread pool is made before any JavaScript runs).
 *
 * `--v8-pool-size=1`: Node's default pool is 4 threads per process, which V8 uses for
 * concurrent marking, parallel scavenges and compaction of every isolate (the main thread,
 * each shard, the log writer). On a small machine (2 vCPUs here) the server's own threads
 * already fill the cores at half of peak; four GC helpers that wake together then queue
 * in front of the commit path, and a pause that waits for a descheduled helper grows.
 * With one helper, w10 at 4,900 commits/s (half of peak), 13 alternating pairs: median p99 of
 * the commit latency 16.7 against 19.1 ms on the server, 17.0 against 23.8 ms at the client
 * (lower in 11 and 12 of the 13 pairs), the server threads' run-queue wait 85-94 % against
 * 97-108 % of a core, the same CPU per commit (bench/README.md "p99 at half of peak: one GC
 * helper thread"). On a machine with many more cores than the server has busy
 * threads, a larger pool shortens GC pauses: start it there as `node --v8-pool-size=4 bin/txkv.js serve`
 * (the command line wins over NODE_OPTIONS, so NODE_OPTIONS cannot raise it).
 *
 * `--heap-growing-percent=300`: after a mark-compact a heap may grow to 4x what survived before
 * the next (V8 chose ~1.5x for the main thread: ~18 MB live, a mark-compact every ~2 s at half
 * of peak, each a 2.5-7.7 ms pause of the thread every commit passes twice, plus ~20 ms of
 * marking on the helper). Main then marks once in ~9 s instead of 4-5 times; its heap peaks at
 * 66-76 MB instead of 36-44 (server RSS +24-33 MB); the shards' cycles did not change (their
 * heaps already reach ~3x). w10 at 4,900 commits/s, 8 alternating pairs: median p99 11.7
 * against 16.5 ms on the server (lower in 6 of 8), 14.2 against 18.5 ms at the client, the same
 * CPU per commit (bench/README.md, same section).
 *
 * `--no-allocation-site-pretenuring`: V8 allocates objects of an allocation site (an object or
 * array literal) straight into the old generation once most of them outlived a scavenge, and
 * whatever young object such an old one points to then outlives every scavenge too, until a
 * mark-compact. A shard makes one small object and two views per mutation when it builds a
 * group commit (Shard.beginApply); a scavenge during a large batch (at peak) finds them all
 * alive, their site is pretenured, and from then on the shard promoted every mutation's object,
 * views and key string: 0.23-0.28 MB per scavenge, ~1.4 KB per commit, a mark-compact every 2 s,
 * on one shard of two or both (which one depended on when a scavenge hit a large batch). With
 * the flag: 0.05-0.07 MB per scavenge on both shards, 1 mark-compact in 9 s instead of 4-5, shard
 * scavenge p50 0.4-0.6 ms instead of ~1.0, shard GC 1.3-1.7 % of the thread instead of 3-3.6
 * (tail-probe w10 at 4,500 tx/s with --trace-gc-nvp, bench/gc-summary.js; V8's sampling heap
 * profile of promoted objects per thread: bench/README.md "Shard GC: pretenuring"). The flag
 * is process-wide; the main thread promotes ~0.01 MB per scavenge either way.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1', '--heap-growing-percent=300', '--no-allocation-site-pretenuring'];
