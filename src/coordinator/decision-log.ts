// Durable decision records of cross-shard commits. Pure encoding; the primary shard
// writes the record (default column, fsync'd) atomically with its own part, so the
// record exists if and only if the commit is decided. It holds every *other* write
// shard's part, so recovery can finish applying a decided commit after a crash.
import { isAtomicType } from '../keys/atomic.js';
import { MutationKind, decodeVersion, writeVersion, type ShardMutation } from '../shard/interface.js';

const PREFIX = new TextEncoder().encode('decision/');
const FORMAT = 1;

export interface DecisionPart {
  shardId: number;
  mutations: ShardMutation[];
}

export interface Decision {
  commitVersion: number;
  parts: DecisionPart[];
}

/** decision/<8-byte big-endian version>: records sort by version. */
export function decisionKey(commitVersion: number): Uint8Array {
  const k = new Uint8Array(PREFIX.length + 8);
  k.set(PREFIX);
  writeVersion(k, PREFIX.length, commitVersion);
  return k;
}

export const DECISION_RANGE = { begin: PREFIX, end: new TextEncoder().encode('decision0') };

export function encodeDecision(d: Decision): Uint8Array {
  let size = 1 + 8 + 4;
  for (const p of d.parts) {
    size += 8;
    for (const m of p.mutations) size += 1 + 4 + m.key.length + 4 + m.param.length;
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let o = 0;
  out[o++] = FORMAT;
  writeVersion(out, o, d.commitVersion);
  o += 8;
  dv.setUint32(o, d.parts.length);
  o += 4;
  for (const p of d.parts) {
    dv.setUint32(o, p.shardId);
    dv.setUint32(o + 4, p.mutations.length);
    o += 8;
    for (const m of p.mutations) {
      out[o++] = m.kind;
      dv.setUint32(o, m.key.length);
      out.set(m.key, o + 4);
      o += 4 + m.key.length;
      dv.setUint32(o, m.param.length);
      out.set(m.param, o + 4);
      o += 4 + m.param.length;
    }
  }
  return out;
}

export function decodeDecision(b: Uint8Array): Decision {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const need = (n: number): void => {
    if (o + n > b.length) throw new Error(`decision record truncated at byte ${o} (needs ${n} more of ${b.length})`);
  };
  need(13);
  if (b[o++] !== FORMAT) throw new Error(`decision record format ${b[0]} is not ${FORMAT}`);
  const commitVersion = decodeVersion(b.subarray(o, o + 8));
  o += 8;
  const nParts = dv.getUint32(o);
  o += 4;
  const parts: DecisionPart[] = [];
  for (let i = 0; i < nParts; i++) {
    need(8);
    const shardId = dv.getUint32(o);
    const n = dv.getUint32(o + 4);
    o += 8;
    const mutations: ShardMutation[] = [];
    for (let j = 0; j < n; j++) {
      need(5);
      const kind = b[o++]!;
      if (kind !== MutationKind.Set && kind !== MutationKind.Clear && kind !== MutationKind.ClearRange && !isAtomicType(kind)) throw new Error(`decision record: bad mutation kind ${kind}`);
      const kl = dv.getUint32(o);
      need(4 + kl);
      const key = b.slice(o + 4, o + 4 + kl);
      o += 4 + kl;
      need(4);
      const pl = dv.getUint32(o);
      need(4 + pl);
      const param = b.slice(o + 4, o + 4 + pl);
      o += 4 + pl;
      mutations.push({ kind, key, param });
    }
    parts.push({ shardId, mutations });
  }
  return { commitVersion, parts };
}
