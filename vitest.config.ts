import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The slowest test files, slowest first (seconds: a full `vitest run --reporter=json` on
 * 2026-11-30 at load 10-23, so about twice CI's). They start first, so no minute-long file
 * is left to run alone at the end while the other worker idles: without a duration cache
 * (a fresh clone, as in CI) vitest starts the largest files first, and most of these are
 * small (torn-wal.test.ts, 4 KB, started last in that run and ran ~80 s alone). Files not
 * listed run after them, in vitest's own order.
 */
const SLOW_FIRST = [
  'test/cluster/distribution.test.ts', // 115 s on CI
  'test/fault/atomic-kill9.test.ts', // 122
  'test/fault/truncated-wal.test.ts', // 107
  'test/fault/failpoints.test.ts', // 101
  'test/fault/torn-wal.test.ts', // 97
  'test/ops/cli.test.ts', // 73
  'test/cluster/cluster.test.ts', // 62 (48 on CI)
  'test/fault/move-failpoints.test.ts', // 60
  'test/cluster/etcd-trouble.test.ts', // 57 (43 on CI)
  'test/fault/retire-kill9.test.ts', // 51
  'test/fault/soak.test.ts', // 46
  'test/cluster/misconfig.test.ts', // 45
  'test/integration/balancer.test.ts', // 45
  'test/engine/tombstone-retire.test.ts', // 44
  'test/ops/backup.test.ts', // 42
  'test/fault/reconnect.test.ts', // 42
  'test/fault/kill9.test.ts', // 41
  'test/fault/fd-limit.test.ts', // 40
];

class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const i = SLOW_FIRST.findIndex((p) => f.moduleId.endsWith(`/${p}`));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    // a stable sort: the files not listed keep vitest's order (failed first, then by cached duration or size)
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // integration and fault tests start real servers with worker threads; keep the
    // 2-core machine from being oversubscribed
    maxWorkers: 2,
    fileParallelism: true,
    sequence: { sequencer: SlowFirstSequencer },
  },
});
