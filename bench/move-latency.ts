// How long a move of a tiny range takes (docs/distribution.md, "Move, step by step"):
// an in-process server (4 workers, the balancer off), N small ranges of a few rows
// each, moved one after another by the operator route; prints each move's duration
// (the event's ms) and the median/p90/max. Writers keep committing to other keys.
//   npm run build && node dist/bench/move-latency.js [--moves 20] [--rows 10] [--durability fsync]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { connect, startServer } from '../src/index.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64url');

async function main(): Promise<void> {
  const moves = Number(arg('moves', '20'));
  const rows = Number(arg('rows', '10'));
  const durability = arg('durability', 'fsync') as 'fsync';
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-move-'));
  const server = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: 4, durability, distribution: { enabled: false } }, { logger: pino({ level: 'warn' }) });
  const http = server.url.replace('ws://', 'http://');
  const db = await connect({ endpoints: [server.url] });
  const post = async (p: string): Promise<Record<string, unknown>> => {
    const res = await fetch(http + p, { method: 'POST' });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  try {
    // ranges m/000 .. m/<moves>, each with `rows` rows; all begin on one worker
    for (let i = 0; i < moves; i++) {
      const tx = db.createTransaction();
      for (let j = 0; j < rows; j++) tx.set(`m/${String(i).padStart(3, '0')}/${j}`, 'v'.repeat(100));
      await tx.commit();
    }
    for (let i = 0; i <= moves; i++) await post(`/v1/shard/split?key=${b64(`m/${String(i).padStart(3, '0')}`)}`);
    // background writers on other keys (a move waits for commits in flight)
    let stop = false;
    // --writers N: N loops; --hot: each transaction reads and writes a row of a moving range and one elsewhere (2PC)
    const nWriters = Number(arg('writers', '2'));
    const hot = process.argv.includes('--hot');
    const writers = Array.from({ length: nWriters }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          await db.transact(async (tx) => {
            if (hot) {
              const k = `m/${String((i + w) % moves).padStart(3, '0')}/${i % rows}`;
              await tx.get(k);
              tx.set(k, 'v'.repeat(100));
            }
            tx.set(`w/${w}/${i % 50}`, 'x');
          });
        } catch {
          // a conflict budget exhausted: go on
        }
      }
    });
    const ms: number[] = [];
    const wall: number[] = [];
    const map = (await (await fetch(http + '/v1/shard/map')).json()) as { map: { ranges: { begin: string; owner: number }[] } };
    for (let i = 0; i < moves; i++) {
      const k = `m/${String(i).padStart(3, '0')}`;
      const hex = Buffer.from(k, 'latin1').toString('hex');
      const owner = map.map.ranges.find((r) => r.begin === hex)!.owner;
      const t = performance.now();
      const r = (await post(`/v1/shard/move?begin=${b64(k)}&to=${(owner + 1 + (i % 3)) % 4}`)) as { move?: { ms: number } };
      wall.push(performance.now() - t);
      if (r.move) ms.push(r.move.ms);
    }
    stop = true;
    await Promise.all(writers);
    const q = (a: number[], p: number): number => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;
    const fmt = (a: number[]): string => `median ${q(a, 0.5).toFixed(0)} ms, p90 ${q(a, 0.9).toFixed(0)} ms, max ${Math.max(...a).toFixed(0)} ms`;
    console.log(JSON.stringify({ moves, rows, durability, eventMs: ms, wallMs: wall.map((x) => Math.round(x)) }));
    console.log(`move event: ${ms.length ? fmt(ms) : 'n/a'}; route wall: ${fmt(wall)}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    await db.close();
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

void main();
