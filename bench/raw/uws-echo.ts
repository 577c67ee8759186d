// Raw limit of the network layer: round trips per second of small binary messages between
// the `ws` client (this process) and a uWS echo server (a forked process) over loopback.
// `connections` sockets with `window` messages in flight each.

import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export interface EchoResult {
  connections: number;
  window: number;
  messageBytes: number;
  roundTripsPerSec: number;
}

export async function measureUwsEcho(o: { connections: number; window: number; seconds: number; messageBytes?: number }): Promise<EchoResult> {
  const messageBytes = o.messageBytes ?? 64;
  const server = fork(fileURLToPath(new URL('./uws-echo-server.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((res, rej) => {
      server.once('message', (m: { port: number }) => res(m.port));
      server.once('exit', (code) => rej(new Error(`uws echo server exited (${code})`)));
    });
    const payload = Buffer.alloc(messageBytes, 7);
    let count = 0;
    let running = true;
    const sockets = await Promise.all(
      Array.from(
        { length: o.connections },
        () =>
          new Promise<WebSocket>((res, rej) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
            ws.binaryType = 'nodebuffer';
            ws.once('open', () => res(ws));
            ws.once('error', rej);
          }),
      ),
    );
    const t0 = performance.now();
    for (const ws of sockets) {
      ws.on('message', () => {
        count++;
        if (running) ws.send(payload);
      });
      for (let i = 0; i < o.window; i++) ws.send(payload);
    }
    await new Promise((r) => setTimeout(r, o.seconds * 1000));
    running = false;
    const ms = performance.now() - t0;
    for (const ws of sockets) ws.terminate();
    return { connections: o.connections, window: o.window, messageBytes, roundTripsPerSec: Math.round((count / ms) * 1000) };
  } finally {
    server.kill();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  measureUwsEcho({ connections: Number(process.argv[2] ?? 4), window: Number(process.argv[3] ?? 64), seconds: Number(process.argv[4] ?? 3) }).then(
    (r) => {
      if (process.send) process.send(r);
      else process.stdout.write(JSON.stringify(r) + '\n');
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
