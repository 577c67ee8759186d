// A shard's batch to the log writer (src/shard/log-wire.ts): one transferred buffer that
// comes out as it went in (ops in order, empty parts, odd lengths, the one-phase commits
// the log writer answers itself).
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { unpackBytes } from '../../../src/shard/interface.js';
import { decodeLogWrite, encodeLogWrite } from '../../../src/shard/log-wire.js';
import { OpKind, WriteOps } from '../../../src/shard/storage.js';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Through a real MessagePort, the buffer transferred as the shard sends it. */
function overPort(buf: ArrayBuffer): Promise<ArrayBuffer> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port2.once('message', (x: ArrayBuffer) => {
      port1.close();
      port2.close();
      resolve(x);
    });
    port1.postMessage(buf, [buf]);
  });
}

describe('log writer wire codec', () => {
  it('round-trips a batch of every op kind with the direct reply ids, through a port', async () => {
    const ops = new WriteOps();
    ops.put(b('k1'), b('value one'));
    ops.del(b('k22'));
    ops.putMeta(b('\xffwm/3'), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    ops.deleteRange(b('a'), b('b\x00'));
    ops.delMeta(b('\xffdecision/9'));
    ops.put(b(''), new Uint8Array(0));
    const sentAt = performance.timeOrigin + performance.now();
    const buf = encodeLogWrite(0x7ffffffe, ops, true, sentAt, [1, 2 ** 40, 77]);
    const req = decodeLogWrite(await overPort(buf));
    expect(req.id).toBe(0x7ffffffe);
    expect(req.sync).toBe(true);
    expect(req.sentAt).toBe(sentAt);
    expect(req.direct).toEqual([1, 2 ** 40, 77]);
    expect(Array.from(req.ops.kinds)).toEqual([OpKind.Put, OpKind.Del, OpKind.PutMeta, OpKind.DeleteRange, OpKind.DelMeta, OpKind.Put]);
    expect(unpackBytes(req.ops.bytes).map((p) => Buffer.from(p!).toString('latin1'))).toEqual(ops.parts.map((p) => Buffer.from(p).toString('latin1')));
  });

  it('a batch the shard answers itself has no direct ids; sizes that are not multiples of 8 keep every section aligned', () => {
    for (let n = 1; n <= 9; n++) {
      const ops = new WriteOps();
      for (let i = 0; i < n; i++) ops.put(b('k'.repeat(i + 1)), b('v'.repeat(3 * i)));
      const req = decodeLogWrite(encodeLogWrite(n, ops, false, 5));
      expect(req.direct).toBeUndefined();
      expect(req.sync).toBe(false);
      expect(req.id).toBe(n);
      expect(req.ops.kinds.length).toBe(n);
      expect(unpackBytes(req.ops.bytes).map((p) => p!.length)).toEqual(ops.parts.map((p) => p.length));
    }
  });
});
