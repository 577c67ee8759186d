// Crash recovery. Main thread, at start-up, before any shard worker runs (so it may
// write the shard columns directly). It finishes every decided cross-shard commit:
// for each decision record, the parts of shards whose applied-version watermark is
// below the record's version are applied, in version order. Before that it deletes the
// rows of every range tombstone (shard/apply.ts): after a restart no reader needs them. A commit that was only
// prepared left nothing on disk and so is rolled back by doing nothing.
// See docs/durability.md.
import type { RocksLevel } from '@nxtedition/rocksdb';
import { compareKeys, keyString } from '../keys/bytes.js';
import { MARK_RANGE, TOMBSTONE_RANGE, decodeTombstone, markRange, markedKey, netEffect, parseTombstoneKey, pointValue, tombstoneApplyOps } from '../shard/apply.js';
import { MutationKind, appliedKey, columnName, decodeVersion, encodeVersion } from '../shard/interface.js';
import { WriteOps, writeShardOps } from '../shard/storage.js';
import { DECISION_RANGE, decodeDecision } from './decision-log.js';

export interface RecoveryReport {
  /** Highest version found on disk (watermarks and decision records). */
  lastCommittedVersion: number;
  /** Applied-version watermark of each shard after recovery. */
  appliedVersions: number[];
  decisionRecords: number;
  /** Shard parts of decided commits that had not been applied and were applied now. */
  partsReplayed: number;
  /** Range tombstones whose rows were deleted now (DeleteRange, one each). */
  tombstonesApplied: number;
  ms: number;
}

/** Every row of [begin, end) of the default column (metadata), in key order. */
function metaRows(db: RocksLevel, begin: Uint8Array, end: Uint8Array): { key: Buffer; value: Buffer }[] {
  const it = db.iterator({ gte: begin, lt: end, keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const out: { key: Buffer; value: Buffer }[] = [];
  try {
    for (;;) {
      const rows = it._nextvSync(1000).rows;
      if (rows.length === 0) break;
      for (let i = 0; i < rows.length; i += 2) out.push({ key: rows[i]!, value: rows[i + 1]! });
    }
  } finally {
    // close(), not _closeSync(): only close() unregisters the iterator from the database
    void it.close();
  }
  return out;
}

/**
 * `at`: a step to run between the decision records below `at.version` and the others
 * (the copy of a move a crash interrupted, distribution.ts), given the shards' watermarks.
 */
export function recover(db: RocksLevel, shardCount: number, at?: { version: number; run: (watermarks: number[]) => void }): RecoveryReport {
  const started = performance.now();
  const watermarks: number[] = [];
  const raw = db._getManySync(Array.from({ length: shardCount }, (_, i) => appliedKey(i)));
  for (let i = 0; i < shardCount; i++) watermarks.push(raw[i] ? decodeVersion(raw[i]!) : 0);

  // 1. Range tombstones of applied commits: nobody reads below the restart, so every one
  //    is applied now: one DeleteRange each, the keys written since put back (from the
  //    record when the crash came mid-deletion, else from their marks). No per-key walk.
  const tombstones = metaRows(db, TOMBSTONE_RANGE.begin, TOMBSTONE_RANGE.end);
  for (const t of tombstones) {
    const { shardId, version } = parseTombstoneKey(t.key);
    if (shardId >= shardCount) throw new Error(`tombstone record of shard ${shardId}, but there are ${shardCount}`);
    const rec = decodeTombstone(t.value);
    const ops = new WriteOps();
    if (rec.survivors) {
      ops.deleteRange(rec.begin, rec.end);
      for (const sv of rec.survivors) ops.put(sv.key, sv.value);
      ops.delMeta(t.key);
    } else {
      const mr = markRange(shardId, rec.begin, rec.end);
      const keys = metaRows(db, mr.begin, mr.end)
        .filter((m) => decodeVersion(m.value) >= version)
        .map((m) => markedKey(m.key));
      const column = db.columns[columnName(shardId)]!;
      const values = keys.length > 0 ? db._getManySync(keys, { column }) : [];
      const survivors: { key: Uint8Array; value: Uint8Array }[] = [];
      for (let i = 0; i < keys.length; i++) if (values[i]) survivors.push({ key: keys[i]!, value: values[i]! });
      tombstoneApplyOps(ops, t.key, rec.begin, rec.end, survivors, []);
    }
    writeShardOps(db, shardId, ops, false);
  }
  // no tombstone is live any more: no mark is needed
  const marks = metaRows(db, MARK_RANGE.begin, MARK_RANGE.end);
  if (marks.length > 0) {
    const ops = new WriteOps();
    for (const m of marks) ops.delMeta(m.key);
    writeShardOps(db, 0, ops, false);
  }

  // 2. Decided cross-shard commits whose parts some shard had not applied.
  const records = metaRows(db, DECISION_RANGE.begin, DECISION_RANGE.end);
  let last = Math.max(0, ...watermarks);
  let partsReplayed = 0;
  let atDone = !at;
  for (const rec of records) {
    const d = decodeDecision(rec.value);
    if (!atDone && d.commitVersion >= at!.version) {
      atDone = true;
      at!.run(watermarks);
    }
    last = Math.max(last, d.commitVersion);
    for (const part of d.parts) {
      if (part.shardId >= shardCount) throw new Error(`decision ${d.commitVersion} names shard ${part.shardId}, but there are ${shardCount}`);
      if (d.commitVersion <= watermarks[part.shardId]!) continue;
      // records are replayed in version order, and each shard's watermark says how far it
      // got, so this part is the newest write of its shard: its range clears need no
      // tombstone (no reader, no later write to keep) and go at once
      const column = db.columns[columnName(part.shardId)]!;
      const effect = netEffect(part.mutations, compareKeys);
      const ops = new WriteOps();
      for (const [b, e] of effect.ranges) ops.deleteRange(b, e);
      // values this part gave keys so far, for atomic operations (applied against the value
      // at this version, exactly once: nothing after it is applied, the watermark says so)
      const written = new Map<string, Uint8Array | null>();
      const cleared = (k: Uint8Array): boolean => effect.ranges.some(([b, e]) => compareKeys(k, b) >= 0 && compareKeys(k, e) < 0);
      for (const m of effect.points) {
        const ks = keyString(m.key);
        const value = pointValue(m, () => (written.has(ks) ? written.get(ks)! : cleared(m.key) ? null : (db._getManySync([m.key], { column })[0] ?? null)));
        written.set(ks, value);
        if (value !== null) ops.put(m.key, value);
        else ops.del(m.key);
      }
      ops.putMeta(appliedKey(part.shardId), encodeVersion(d.commitVersion));
      writeShardOps(db, part.shardId, ops, false);
      watermarks[part.shardId] = d.commitVersion;
      partsReplayed++;
    }
  }
  if (!atDone) at!.run(watermarks);
  const done = new WriteOps();
  for (const rec of records) done.delMeta(rec.key);
  // one fsync covers every write above
  writeShardOps(db, 0, done, true);
  return {
    lastCommittedVersion: last,
    appliedVersions: watermarks,
    decisionRecords: records.length,
    partsReplayed,
    tombstonesApplied: tombstones.length,
    ms: Math.round(performance.now() - started),
  };
}
