// Commit latency while one etcd member is paused (SIGSTOP: its connections stay open and it
// answers nothing), on a 3-member etcd + 3-node txkv cluster on loopback (bench/cluster.ts).
// Writers commit distinct keys through the txkv leader without pause; the members named by
// --targets are paused in turn, `--pause-ms` each, with `--gap-ms` of recovery between. Per pause: p50/p99/max latency of the commits in flight
// during it, errors by code, the longest time without an acknowledgement, and whether the
// txkv leader changed. `--root DIR` runs the cluster of another build (its dist/bench/cluster.js
// and bin/txkv.js), e.g. /work/base-s8, for an A/B.
//
//   node dist/bench/etcd-pause.js [--root DIR] [--writers 4] [--pause-ms 4000] [--gap-ms 4000] [--rounds 1] [--ttl-ms 2000] [--targets head,f0,f1,leader]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect } from '../src/index.js';
import type { LoopbackCluster as LC } from './cluster.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Op {
  start: number;
  end: number;
  code: string | null;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<void> {
  const root = arg('root', '');
  const writers = Number(arg('writers', '4'));
  const pauseMs = Number(arg('pause-ms', '4000'));
  const gapMs = Number(arg('gap-ms', '4000'));
  const rounds = Number(arg('rounds', '1'));
  // head: the member first in the txkv leader's etcd order, an etcd follower; f0, f1: the
  // first or second etcd follower by index (first in order or not); leader: the etcd Raft leader
  const targets = arg('targets', 'head,leader').split(',');
  const mod = (await import(root ? pathToFileURL(path.join(root, 'dist/bench/cluster.js')).href : './cluster.js')) as { LoopbackCluster: typeof LC };
  const ttl = arg('ttl-ms', '');
  const c = new mod.LoopbackCluster(ttl ? { TXKV_CLUSTER_LEASE_TTL_MS: ttl } : {});
  const ops: Op[] = [];
  let stop = false;
  try {
    await c.startEtcd(3);
    await c.startNodes(3);
    const L = await c.leader();
    const db = await connect({ endpoints: c.urls, connectionPoolSize: 2 });
    const loops = Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const start = performance.now();
        let code: string | null = null;
        try {
          const tx = db.createTransaction();
          tx.set(`pause/${w}/${i}`, 'x'.repeat(100));
          await tx.commit();
        } catch (e) {
          code = (e as { code?: string }).code ?? String(e);
          await sleep(20);
        }
        ops.push({ start, end: performance.now(), code });
      }
    });
    await sleep(3000);
    const lines: string[] = [];
    const window = (a: number, b: number, label: string, term0: string | null, term1: string | null, order: unknown): void => {
      // every commit in flight during [a, b): those stuck at the pause's start too
      const inW = ops.filter((o) => o.end >= a && o.start < b);
      const ok = inW.filter((o) => o.code === null).map((o) => o.end - o.start);
      const errs: Record<string, number> = {};
      for (const o of inW) if (o.code) errs[o.code] = (errs[o.code] ?? 0) + 1;
      // longest time without an acknowledgement, from a to b
      const acks = ops.filter((o) => o.code === null && o.end >= a && o.end < b).map((o) => o.end).sort((x, y) => x - y);
      let gap = 0;
      let prev = a;
      for (const t of acks) {
        gap = Math.max(gap, t - prev);
        prev = t;
      }
      gap = Math.max(gap, b - prev);
      lines.push(
        `${label}: commits ${ok.length} (${((ok.length * 1000) / (b - a)).toFixed(0)}/s), p50 ${pct(ok, 50).toFixed(1)} ms, p99 ${pct(ok, 99).toFixed(1)} ms, max ${Math.max(...ok, 0).toFixed(0)} ms, ` +
          `longest ack gap ${gap.toFixed(0)} ms, errors ${JSON.stringify(errs)}, txkv term ${term0 === term1 ? 'kept' : `changed ${term0} -> ${term1}`}${order ? `, leader's etcd order at pause ${JSON.stringify(order)}` : ''}`,
      );
    };
    const term = async (): Promise<string | null> => {
      const l = await c.leader();
      return ((await c.status(l))?.cluster as { term?: string } | undefined)?.term ?? null;
    };
    const t0 = performance.now();
    await sleep(3000);
    window(t0, performance.now(), 'steady', null, null, null);
    const orderOf = async (l: number): Promise<number[] | null> =>
      ((await c.status(l))?.cluster as { etcd?: { order?: string[] } } | undefined)?.etcd?.order?.map((e) => c.etcd.findIndex((x) => x.clientUrl === e)) ?? null;
    for (let r = 0; r < rounds; r++) {
      for (const target of targets) {
        const l = await c.leader();
        let el = c.etcdLeader();
        let m: number;
        if (target === 'leader') m = el;
        else if (target === 'head') {
          // the member first in the txkv leader's order, made an etcd follower (the etcd
          // leadership moved away from it) so that its pause costs no etcd election
          let o = await orderOf(l);
          if (o === null) throw new Error('this build does not report its etcd order (status cluster.etcd.order): use --targets follower,leader');
          for (let k = 0; o![0] === el && k < 10; k++) {
            await c.moveEtcdLeader([0, 1, 2].find((i) => i !== o![0])!);
            await sleep(300);
            el = c.etcdLeader();
            o = await orderOf(l);
          }
          m = o![0]!;
          if (m === el) throw new Error('the leader\'s first etcd member stayed the etcd leader');
        } else m = [0, 1, 2].filter((i) => i !== el)[target === 'f1' ? 1 : 0]!;
        const role = m === el ? 'etcd leader' : 'etcd follower';
        const st = await c.status(l);
        const before = (st?.cluster as { term?: string } | undefined)?.term ?? null;
        const order = await orderOf(l);
        const logFrom = c.nodes.map((n) => n.logs.length);
        const a = performance.now();
        c.kill(c.etcd[m]!, 'SIGSTOP');
        await sleep(pauseMs);
        c.kill(c.etcd[m]!, 'SIGCONT');
        const b = performance.now();
        await sleep(gapMs);
        window(a, b, `round ${r} ${target}: pause e${m} (${role}; txkv leader n${l})`, before, await term(), order);
        window(b, performance.now(), `round ${r} after e${m}`, null, null, null);
        for (const [k, n] of c.nodes.entries())
          for (const x of n.logs.slice(logFrom[k])) if (/"event":"(SteppedDown|BecameLeader|LeaderDeposed|TakeoverFailed|LeaseConfirmed)"/.test(x)) lines.push(`  n${k} ${x.slice(0, 400)}`);
        const log = ((await c.status(await c.leader()))?.cluster as { log?: unknown } | undefined)?.log;
        lines.push(`  leader's log counters: ${JSON.stringify(log)}`);
      }
    }
    stop = true;
    await Promise.all(loops);
    await db.close();
    console.log(`etcd-pause: ${writers} writers, pause ${pauseMs} ms, root ${root || '(this build)'}, first txkv leader n${L}`);
    for (const s of lines) console.log(s);
  } finally {
    stop = true;
    await c.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
