// A bare uWS WebSocket echo server on loopback (binary messages, no txkv code), in its own
// process so that the echo rate is the server's, not shared with the client. Sends { port }.

import { createRequire } from 'node:module';

interface UwsSocket {
  send(message: ArrayBuffer, isBinary: boolean): number;
}
interface UwsApp {
  ws(pattern: string, behavior: { maxPayloadLength?: number; message: (ws: UwsSocket, message: ArrayBuffer, isBinary: boolean) => void }): UwsApp;
  listen(host: string, port: number, cb: (token: unknown) => void): UwsApp;
}
const require = createRequire(import.meta.url);
const uWS = require('@trufflesuite/uws-js-unofficial') as { App(): UwsApp; us_socket_local_port(token: unknown): number };

uWS
  .App()
  .ws('/*', { maxPayloadLength: 1 << 20, message: (ws, message, isBinary) => void ws.send(message, isBinary) })
  .listen('127.0.0.1', 0, (token) => {
    if (!token) {
      console.error('uws echo: listen failed');
      process.exit(1);
    }
    process.send?.({ port: uWS.us_socket_local_port(token) });
  });
process.on('message', (m) => {
  if (m === 'close') process.exit(0);
});
