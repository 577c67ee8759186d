// Crash recovery. Main thread, at start-up, before any shard worker runs (so it may
// write the shard columns directly). It finishes every decided cross-shard commit:
// for each decision record, the parts of shards whose applied-version watermark is
// below the record's version are applied, in version order. A commit that was only
// prepared left nothing on disk and so is rolled back by doing nothing.
// See docs/durability.md.
import type { RocksLevel } from '@nxtedition/rocksdb';
import { applyAtomic, isAtomicType } from '../keys/atomic.js';
import { MutationKind, appliedKey, columnName, decodeVersion, encodeVersion } from '../shard/interface.js';
import { DECISION_RANGE, decodeDecision } from './decision-log.js';

export interface RecoveryReport {
  /** Highest version found on disk (watermarks and decision records). */
  lastCommittedVersion: number;
  /** Applied-version watermark of each shard after recovery. */
  appliedVersions: number[];
  decisionRecords: number;
  /** Shard parts of decided commits that had not been applied and were applied now. */
  partsReplayed: number;
  ms: number;
}

export function recover(db: RocksLevel, shardCount: number): RecoveryReport {
  const started = performance.now();
  const watermarks: number[] = [];
  const raw = db._getManySync(Array.from({ length: shardCount }, (_, i) => appliedKey(i)));
  for (let i = 0; i < shardCount; i++) watermarks.push(raw[i] ? decodeVersion(raw[i]!) : 0);

  const it = db.iterator({ gte: DECISION_RANGE.begin, lt: DECISION_RANGE.end, keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const records: { key: Buffer; value: Buffer }[] = [];
  try {
    for (;;) {
      const rows = it._nextvSync(1000).rows;
      if (rows.length === 0) break;
      for (let i = 0; i < rows.length; i += 2) records.push({ key: rows[i]!, value: rows[i + 1]! });
    }
  } finally {
    // close(), not _closeSync(): only close() unregisters the iterator from the database
    void it.close();
  }

  let last = Math.max(0, ...watermarks);
  let partsReplayed = 0;
  let batch = db.batch();
  for (const rec of records) {
    const d = decodeDecision(rec.value);
    last = Math.max(last, d.commitVersion);
    for (const part of d.parts) {
      if (part.shardId >= shardCount) throw new Error(`decision ${d.commitVersion} names shard ${part.shardId}, but there are ${shardCount}`);
      if (d.commitVersion <= watermarks[part.shardId]!) continue;
      const column = db.columns[columnName(part.shardId)]!;
      // records are replayed in version order, and each shard's watermark says how far it got
      for (const m of part.mutations) {
        if (m.kind === MutationKind.Set) batch._put(m.key, m.param, { column });
        else if (m.kind === MutationKind.Clear) batch._del(m.key, { column });
        else if (isAtomicType(m.kind)) {
          // against the value at this version: everything before it (on disk or in this
          // batch) is applied, nothing after it is (the watermark check above), so the
          // operation runs exactly once
          batch._writeSync({ sync: false });
          batch = db.batch();
          const v = applyAtomic(m.kind, db._getManySync([m.key], { column })[0] ?? null, m.param);
          if (v === null) batch._del(m.key, { column });
          else batch._put(m.key, v, { column });
        } else {
          // apply what the batch has so far, so the range scan sees it
          batch._writeSync({ sync: false });
          // close() unregisters the batch from the database (see ShardBatch.close)
          void batch.close();
          batch = db.batch();
          const scan = db.iterator({ gte: m.key, lt: m.param, column, keyEncoding: 'buffer', valueEncoding: 'buffer', values: false });
          try {
            for (;;) {
              const rows = scan._nextvSync(1000).rows;
              if (rows.length === 0) break;
              for (let i = 0; i < rows.length; i += 2) batch._del(rows[i]!, { column });
            }
          } finally {
            void scan.close();
          }
        }
      }
      watermarks[part.shardId] = d.commitVersion;
      batch._put(appliedKey(part.shardId), encodeVersion(d.commitVersion));
      partsReplayed++;
    }
    batch._del(rec.key);
  }
  batch._writeSync({ sync: true });
  void batch.close();
  return {
    lastCommittedVersion: last,
    appliedVersions: watermarks,
    decisionRecords: records.length,
    partsReplayed,
    ms: Math.round(performance.now() - started),
  };
}
