// hot path: a client transaction. Writes are buffered (write-buffer.ts) and sent
// with commit() in one request; reads go to the server at the transaction's read
// version and are merged with the buffer (read-your-writes). What the transaction
// read is remembered here, as read-conflict ranges sent with the commit.
import { TxnError } from '../errors.js';
import { compareKeys, describeArg, keyAfter, keyString, printable, toBytes, type Bytes } from '../keys/bytes.js';
import {
  MAX_KEY_BYTES,
  MAX_TRANSACTION_BYTES,
  checkKeySize,
  checkValueSize,
  checkVersionstampOffset,
  checkWritableKey,
  checkWritableRange,
  readConflictBytes,
} from '../keys/limits.js';
import { checkSelector, conflictRangeOf, isEmptyRange, selectorsToRange, DEFAULT_RANGE_LIMIT, type KeyRange } from '../keys/ranges.js';
import type { KeyRangeMsg, ReplyBody } from '../protocol/codec.js';
import type { Connection } from './connection.js';
import type { ConnectionPool } from './pool.js';
import { UNREADABLE, WriteBuffer, applySteps } from './write-buffer.js';
import { WatchImpl, type Watch } from './live.js';
import { MAX_VERSION } from '../keys/versions.js';
import { ATOMIC_OPS, atomicTypeOf, type AtomicOp } from '../keys/atomic.js';

export type { AtomicOp };

export interface KeySelector {
  key: Bytes;
  inclusive: boolean;
}
export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
}
export interface RangeResult {
  kvs: KeyValue[];
  hasMore: boolean;
}
export interface RangeOptions {
  limit?: number;
  reverse?: boolean;
}

/** The read side of a transaction (spec: ReadTransaction). */
export interface ReadTransaction {
  setReadVersion(version: bigint): void;
  getReadVersion(): Promise<bigint>;
  snapshotGet(key: Bytes): Promise<Uint8Array | null>;
  get(key: Bytes): Promise<Uint8Array | null>;
  snapshotGetRange(begin: KeySelector, end: KeySelector, opts?: RangeOptions): Promise<RangeResult>;
  getRange(begin: KeySelector, end: KeySelector, opts?: RangeOptions): Promise<RangeResult>;
  cancel(): void;
  reset(): void;
}

/** A read-write transaction (spec: Transaction). */
export interface Transaction extends ReadTransaction {
  addReadConflictKey(key: Bytes): void;
  addReadConflictRange(begin: Bytes, end: Bytes): void;
  set(key: Bytes, value: Bytes): void;
  clear(key: Bytes): void;
  clearRange(begin: Bytes, end: Bytes): void;
  setVersionstampedKey(key: Bytes, offset: number, value: Bytes): void;
  setVersionstampedValue(key: Bytes, value: Bytes, offset: number): void;
  /**
   * Applies `op` with operand `param` to the key's value at commit, with FoundationDB's
   * semantics (see keys/atomic.ts). Adds no read conflict. A later get() in this
   * transaction returns the value with the operation applied. Errors: INVALID_ARGUMENT
   * (unknown op, system key), KEY_TOO_LARGE, VALUE_TOO_LARGE (param).
   */
  atomicOp(key: Bytes, param: Bytes, op: AtomicOp): void;
  /** atomicOp(key, param, 'add'): little-endian add; e.g. param = 8-byte little-endian 1 to count. */
  add(key: Bytes, param: Bytes): void;
  /**
   * A watch of `key`, armed when this transaction commits: it resolves once the key's
   * value differs from the one this transaction saw (its own write of the key, else
   * the value at its read version). It rejects with the commit's error if the commit
   * fails, CANCELED after cancel() (of the watch or the transaction), reset() or once the
   * transaction is garbage collected uncommitted, and with the
   * connection's error (NETWORK_ERROR) when the connection drops. Usual loop: read the
   * key, watch it, commit, await the watch, repeat.
   */
  watch(key: Bytes): Watch;
  commit(): Promise<void>;
  getCommittedVersion(): bigint;
  getVersionstamp(): Promise<Uint8Array>;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  promise.catch(() => {}); // a stamp nobody asked for must not be an unhandled rejection
  return { promise, resolve, reject };
}

/** Watches armed together (each may read its key first): well under a connection's in-flight limit. */
const WATCH_ARM_CHUNK = 4000;

/**
 * Watches of a transaction dropped uncommitted: nobody can commit it any more, so they can
 * never be armed; they reject CANCELED (FoundationDB: a watch of a transaction destroyed
 * before it committed fails transaction_cancelled) instead of staying pending for ever.
 * Sound because the registry holds only the transaction's list of unarmed watches, which
 * does not reach the transaction; a commit in flight holds the transaction, and a
 * successful one empties the list first. When the collector runs is up to the engine:
 * cancel() or reset() say it at once.
 */
const droppedTransactions =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<{ key: Uint8Array; watch: WatchImpl }[]>((list) => {
        for (const { watch } of list.splice(0)) watch.fail(new TxnError('CANCELED', 'the transaction was dropped (garbage collected) before it committed; its watches were never armed'));
      })
    : null;

export class TxnImpl implements Transaction {
  private conn: Promise<Connection> | null = null;
  private connReady: Connection | null = null;
  private readVersion: Promise<bigint> | null = null;
  /** setReadVersion was called (it may be, once, before anything is read). */
  private readVersionSet = false;
  /** The transaction read something or asked getReadVersion: its read version is in use. */
  private readStarted = false;
  private writes = new WriteBuffer();
  private readConflicts: KeyRangeMsg[] = [];
  /** Watches waiting for the commit (armed by armWatches). One array for the transaction's life: droppedTransactions holds it. */
  private readonly watches: { key: Uint8Array; watch: WatchImpl }[] = [];
  private watchesRegistered = false;
  private canceled = false;
  private committing = false;
  private committedVersion = -1n;
  private stamp = deferred<Uint8Array>();
  private startedAt = Date.now();
  /** The deadline of this incarnation's pending calls (reset() starts a new one; the old one keeps its calls). */
  private deadline: Deadline | null = null;

  constructor(
    private readonly pool: ConnectionPool,
    private readonly timeoutMs: number,
    private readonly readOnly: boolean,
  ) {}

  /** Every call starts here: canceled and timed-out transactions refuse all work. */
  private check(): void {
    if (this.canceled) throw new TxnError('CANCELED', 'transaction was canceled');
    if (this.timeoutMs > 0 && Date.now() - this.startedAt > this.timeoutMs) {
      throw new TxnError('TIMEOUT', `transaction is older than its timeout of ${this.timeoutMs} ms`);
    }
  }

  /**
   * Reads, and setting or asking the read version, once commit() was called: INVALID_ARGUMENT
   * until reset(), as FoundationDB's used_during_commit. They were answered at the old read
   * version (a get after a successful commit could miss a write committed meanwhile, with no
   * error), and setReadVersion after commit was taken silently.
   */
  private checkReadable(): void {
    this.check();
    if (this.committing) throw new TxnError('INVALID_ARGUMENT', 'transaction is committing or committed: it cannot read or change its read version; reset() it (or start a new one) to read again');
  }

  private checkWritable(): void {
    this.check();
    if (this.readOnly) throw new TxnError('INVALID_ARGUMENT', 'a read-only transaction cannot write');
    if (this.committing) throw new TxnError('INVALID_ARGUMENT', 'transaction is committing or committed; reset() it to reuse it');
  }

  /**
   * The transaction's connection, chosen at its first call. A read (get, range, read
   * version) whose connection drops while it is in flight is asked once more over another
   * connection of the pool (another node of a cluster), as FoundationDB retries a read on
   * another storage server: at its read version it is idempotent, and a node killed with
   * reads in flight failed them NETWORK_ERROR, which transact() does not retry. A commit is
   * never asked again (MAYBE_COMMITTED).
   */
  private call(body: Parameters<Connection['request']>[0], isCommit = false): Promise<ReplyBody> {
    if (isCommit) {
      const c = this.connReady;
      return this.withinDeadline(c ? c.request(body, true) : this.connection().then((x) => x.request(body, true)), true);
    }
    let used: Connection | null = null;
    const sendOn = (c: Connection): Promise<ReplyBody> => {
      used = c;
      return c.request(body, false);
    };
    const first = this.connReady ? sendOn(this.connReady) : this.connection().then(sendOn);
    return this.withinDeadline(
      first.catch((err: unknown) => {
        const dropped = used as Connection | null;
        if (!(err instanceof TxnError) || err.code !== 'NETWORK_ERROR' || !dropped || dropped.alive) throw err;
        if (this.connReady === dropped) {
          this.conn = null;
          this.connReady = null;
        }
        return this.connection().then((c) => c.request(body, false));
      }),
      false,
    );
  }

  private connection(): Promise<Connection> {
    if (this.connReady) return Promise.resolve(this.connReady);
    return (this.conn ??= this.pool.get().then((c) => (this.connReady = c)));
  }

  /**
   * A pending call fails at the transaction's deadline, not only a call started after
   * it (as FoundationDB's timeout fails every pending operation): TIMEOUT, or for a
   * commit in flight MAYBE_COMMITTED (the server may still apply it). One timer per
   * transaction serves all its pending calls (armed while any is pending), not one per
   * call: an r10 transaction made 11 timers, an m90 one 11.
   */
  private withinDeadline(sent: Promise<ReplyBody>, isCommit: boolean): Promise<ReplyBody> {
    if (this.timeoutMs <= 0) return sent;
    const d = (this.deadline ??= new Deadline(this.startedAt + this.timeoutMs, this.timeoutMs));
    return new Promise<ReplyBody>((resolve, reject) => {
      const w: Waiter = { reject, isCommit };
      d.add(w);
      sent.then(
        (r) => {
          d.settle(w);
          resolve(r);
        },
        (e: unknown) => {
          d.settle(w);
          reject(e);
        },
      );
    });
  }

  // ---------------------------------------------------------------- versions

  /**
   * Reads at `version` (a positive bigint). As FoundationDB (read_version_already_set):
   * only once, and only before the transaction read anything or asked getReadVersion,
   * else INVALID_ARGUMENT: a later version would make its reads mix two snapshots.
   */
  setReadVersion(version: bigint): void {
    this.checkReadable();
    if (typeof version !== 'bigint') throw new TxnError('INVALID_ARGUMENT', `setReadVersion needs a bigint version, got ${describeArg(version)}`);
    if (version <= 0n) throw new TxnError('INVALID_ARGUMENT', `read version must be positive, got ${version}`);
    // versions are int64 on the wire: a larger one would wrap (2^64 became 0, then TOO_OLD)
    if (version > MAX_VERSION) throw new TxnError('INVALID_ARGUMENT', `read version ${version} is out of range (at most 2^63-1)`);
    if (this.readVersionSet) throw new TxnError('INVALID_ARGUMENT', 'the read version is already set: setReadVersion may be called once per transaction');
    if (this.readStarted) {
      throw new TxnError('INVALID_ARGUMENT', 'setReadVersion after the transaction read or asked getReadVersion: its reads would mix two snapshots');
    }
    this.readVersionSet = true;
    this.readVersion = Promise.resolve(version);
  }

  getReadVersion(): Promise<bigint> {
    try {
      this.checkReadable();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.readVersionOf();
  }

  /** The read version, asked once (getReadVersion without the caller's checks: reads in flight, commit, watches). */
  private readVersionOf(): Promise<bigint> {
    this.readStarted = true;
    if (!this.readVersion) {
      const p = this.call({ type: 'grv' }).then((r) => (r as Extract<ReplyBody, { type: 'grv' }>).readVersion);
      this.readVersion = p;
      p.catch(() => {
        if (this.readVersion === p) this.readVersion = null; // let a later call try again
      });
    }
    return this.readVersion;
  }

  // ---------------------------------------------------------------- reads

  async snapshotGet(key: Bytes): Promise<Uint8Array | null> {
    return this.getImpl(key, true);
  }

  async get(key: Bytes): Promise<Uint8Array | null> {
    return this.getImpl(key, false);
  }

  private async getImpl(key: Bytes, snapshot: boolean): Promise<Uint8Array | null> {
    this.checkReadable();
    const k = toBytes(key);
    checkKeySize(k);
    this.readStarted = true;
    const own = this.writes.lookup(k);
    if (own.kind === 'unreadable') throw unreadable(k);
    if (!snapshot && !this.readOnly) this.readConflicts.push({ begin: k, end: keyAfter(k) });
    if (own.kind === 'value') return own.value;
    if (own.kind === 'atomic') {
      const readVersion = await this.readVersionOf();
      const r = await this.call({ type: 'get', readVersion, key: k });
      return applySteps((r as Extract<ReplyBody, { type: 'get' }>).value, own.ops);
    }
    const readVersion = await this.readVersionOf();
    const r = await this.call({ type: 'get', readVersion, key: k });
    return (r as Extract<ReplyBody, { type: 'get' }>).value;
  }

  snapshotGetRange(begin: KeySelector, end: KeySelector, opts?: RangeOptions): Promise<RangeResult> {
    return this.rangeImpl(begin, end, opts, true);
  }

  getRange(begin: KeySelector, end: KeySelector, opts?: RangeOptions): Promise<RangeResult> {
    return this.rangeImpl(begin, end, opts, false);
  }

  private async rangeImpl(beginSel: KeySelector, endSel: KeySelector, opts: RangeOptions | undefined, snapshot: boolean): Promise<RangeResult> {
    this.checkReadable();
    checkSelector(beginSel, 'begin');
    checkSelector(endSel, 'end');
    if (opts !== undefined && (opts === null || typeof opts !== 'object')) {
      throw new TxnError('INVALID_ARGUMENT', `range options must be an object { limit?, reverse? }, got ${describeArg(opts)}`);
    }
    const limitOpt = opts?.limit ?? 0;
    // a whole number: 0.5 was floored to 0 and read as the default page of 1,000 rows, or,
    // with writes of this transaction in the range, as no rows at all with hasMore true
    if (typeof limitOpt !== 'number' || !Number.isInteger(limitOpt)) {
      throw new TxnError('INVALID_ARGUMENT', `limit must be a whole number (<= 0: the default page of ${DEFAULT_RANGE_LIMIT} rows), got ${describeArg(limitOpt)}`);
    }
    if (opts?.reverse !== undefined && typeof opts.reverse !== 'boolean') {
      throw new TxnError('INVALID_ARGUMENT', `reverse must be a boolean, got ${describeArg(opts.reverse)}`);
    }
    const limit = limitOpt > 0 ? Math.min(limitOpt, 0x7fffffff) : DEFAULT_RANGE_LIMIT;
    const reverse = opts?.reverse === true;
    const beginKey = toBytes(beginSel.key, 'begin selector key');
    const endKey = toBytes(endSel.key, 'end selector key');
    // the limit applies to the key as given: {k, inclusive: false} on a legal 10,000-byte k is legal,
    // though the range it stands for begins at k + 0x00
    checkKeySize(beginKey, 'begin key');
    checkKeySize(endKey, 'end key');
    this.readStarted = true;
    const range = selectorsToRange({ key: beginKey, inclusive: beginSel.inclusive }, { key: endKey, inclusive: endSel.inclusive });
    if (isEmptyRange(range)) return { kvs: [], hasMore: false };
    // the conflicts of the transaction that asked: a reset() meanwhile begins another one,
    // which read nothing (its commit failed CONFLICT on this range)
    const conflicts = this.readConflicts;
    const { rows, hasMore } = await this.readRange(range, limit, reverse);
    for (const [k, v] of rows) if (v === UNREADABLE) throw unreadable(k);
    if (!snapshot && !this.readOnly) conflicts.push(conflictRangeOf(range, rows, hasMore, reverse));
    return { kvs: rows.map(([key, value]) => ({ key, value })), hasMore };
  }

  /**
   * Server rows merged with the write buffer. Spans the transaction cleared are not
   * asked for (skipCleared), so buffered clears cost no round trips; more pages are
   * fetched only while buffered point writes hid rows.
   */
  private async readRange(range: KeyRange, limit: number, reverse: boolean): Promise<{ rows: [Uint8Array, Uint8Array][]; hasMore: boolean }> {
    const readVersion = await this.readVersionOf();
    const page = (b: Uint8Array, e: Uint8Array, n: number): Promise<Extract<ReplyBody, { type: 'range' }>> => {
      const [beginKey, beginInclusive] = wireBegin(b);
      const [endKey, endInclusive] = wireEnd(e);
      return this.call({ type: 'range', readVersion, beginKey, beginInclusive, endKey, endInclusive, limit: n, reverse }) as Promise<Extract<ReplyBody, { type: 'range' }>>;
    };
    if (!this.writes.touches(range.begin, range.end)) {
      // nothing buffered here: the server's page is the answer
      const r = await page(range.begin, range.end, limit);
      const rows: [Uint8Array, Uint8Array][] = [];
      for (let i = 0; i + 1 < r.kvs.length; i += 2) rows.push([r.kvs[i]!, r.kvs[i + 1]!]);
      return { rows, hasMore: r.hasMore };
    }
    const server: Uint8Array[] = [];
    let [b, e] = this.writes.skipCleared(range.begin, range.end);
    let complete = compareKeys(b, e) >= 0;
    for (;;) {
      if (!complete) {
        // limit + (rows buffered point writes may hide) + 1, so one page usually settles hasMore exactly
        // int32 on the wire: past it the page size wrapped negative (the default page)
        const r = await page(b, e, Math.min(limit + this.writes.hidingOpsIn(b, e) + 1, 0x7fffffff));
        for (const x of r.kvs) server.push(x);
        if (r.hasMore) {
          if (r.kvs.length === 0) throw new TxnError('FAILED', 'server reported more rows but sent none');
          const lastKey = r.kvs[r.kvs.length - 2]!;
          if (reverse) e = lastKey;
          else b = keyAfter(lastKey);
          [b, e] = this.writes.skipCleared(b, e);
        } else complete = true;
      }
      const merged = this.writes.merge(server, range.begin, range.end, reverse, complete);
      if (merged.length > limit) return { rows: merged.slice(0, limit), hasMore: true };
      if (complete) return { rows: merged, hasMore: false };
      if (compareKeys(b, e) >= 0) complete = true; // the rest is cleared in this transaction
    }
  }

  // ---------------------------------------------------------------- conflicts and writes

  addReadConflictKey(key: Bytes): void {
    this.checkWritable();
    const k = toBytes(key);
    checkKeySize(k);
    this.readConflicts.push({ begin: k, end: keyAfter(k) });
  }

  /** [begin, end); begin > end fails INVALID_ARGUMENT (FoundationDB: inverted_range), begin == end adds nothing. */
  addReadConflictRange(begin: Bytes, end: Bytes): void {
    this.checkWritable();
    const b = toBytes(begin, 'begin');
    const e = toBytes(end, 'end');
    checkKeySize(b, 'begin key');
    checkKeySize(e, 'end key');
    const c = compareKeys(b, e);
    if (c > 0) throw inverted('addReadConflictRange', b, e);
    if (c < 0) this.readConflicts.push({ begin: b, end: e });
  }

  set(key: Bytes, value: Bytes): void {
    this.checkWritable();
    const k = toBytes(key);
    const v = toBytes(value, 'value');
    checkKeySize(k);
    checkValueSize(v);
    checkWritableKey(k);
    this.writes.set(k, v);
  }

  clear(key: Bytes): void {
    this.checkWritable();
    const k = toBytes(key);
    checkKeySize(k);
    checkWritableKey(k);
    this.writes.clear(k);
  }

  /** [begin, end); begin > end fails INVALID_ARGUMENT (FoundationDB: inverted_range), begin == end clears nothing. */
  clearRange(begin: Bytes, end: Bytes): void {
    this.checkWritable();
    const b = toBytes(begin, 'begin');
    const e = toBytes(end, 'end');
    checkKeySize(b, 'begin key');
    checkKeySize(e, 'end key');
    const c = compareKeys(b, e);
    if (c > 0) throw inverted('clearRange', b, e);
    if (c === 0) return;
    checkWritableRange(b, e);
    this.writes.clearRange(b, e);
  }

  setVersionstampedKey(key: Bytes, offset: number, value: Bytes): void {
    this.checkWritable();
    const k = toBytes(key);
    const v = toBytes(value, 'value');
    checkKeySize(k);
    checkValueSize(v);
    checkVersionstampOffset(offset, k.length, 'key');
    checkWritableKey(k);
    this.writes.setVersionstampedKey(k, offset, v);
  }

  setVersionstampedValue(key: Bytes, value: Bytes, offset: number): void {
    this.checkWritable();
    const k = toBytes(key);
    const v = toBytes(value, 'value');
    checkKeySize(k);
    checkValueSize(v);
    checkVersionstampOffset(offset, v.length, 'value');
    checkWritableKey(k, true);
    this.writes.setVersionstampedValue(k, v, offset);
  }

  atomicOp(key: Bytes, param: Bytes, op: AtomicOp): void {
    this.checkWritable();
    const type = typeof op === 'string' ? atomicTypeOf(op) : undefined;
    if (type === undefined) throw new TxnError('INVALID_ARGUMENT', `unknown atomic operation ${JSON.stringify(op)}; one of ${ATOMIC_OPS.join(', ')}`);
    const k = toBytes(key);
    const p = toBytes(param, 'atomic operation param');
    checkKeySize(k);
    checkValueSize(p, 'atomic operation param');
    checkWritableKey(k);
    this.writes.atomic(k, type, p);
  }

  add(key: Bytes, param: Bytes): void {
    this.atomicOp(key, param, 'add');
  }

  watch(key: Bytes): Watch {
    this.check();
    // a read-only transaction has no commit (spec: ReadTransaction) to arm the watch: it waited for ever
    if (this.readOnly) throw new TxnError('INVALID_ARGUMENT', 'a read-only transaction cannot watch (it has no commit to arm the watch): use db.watch(key), or watch in a read-write transaction and commit it');
    if (this.committing) throw new TxnError('INVALID_ARGUMENT', 'watch() after commit(): watch in the transaction before committing it');
    const k = toBytes(key);
    checkKeySize(k);
    const w = new WatchImpl();
    if (!this.watchesRegistered && droppedTransactions) {
      droppedTransactions.register(this, this.watches);
      this.watchesRegistered = true;
    }
    this.watches.push({ key: k, watch: w });
    return w;
  }

  /**
   * After a successful commit: each watch learns the value it compares against, then
   * goes to the server. In chunks, so that thousands of watches stay within the
   * connection's in-flight request limit.
   */
  private armWatches(): void {
    const list = this.watches.splice(0);
    // one read per watched key: a hundred watches of one 100 KB value were a hundred reads
    // of it in one frame, past the reply budget (RESOURCE_CONSTRAINED for the watches)
    const reads = new Map<string, Promise<Uint8Array | null>>();
    const arm = async ({ key, watch }: { key: Uint8Array; watch: WatchImpl }): Promise<void> => {
      try {
        const own = this.writes.lookup(key);
        let value: Uint8Array | null;
        if (own.kind === 'value') value = own.value;
        else {
          // written by an atomic or versionstamped operation: the value at the commit; else at the read version
          const readVersion = own.kind === 'none' ? await this.readVersionOf() : this.committedVersion;
          try {
            const k = keyString(key);
            let read = reads.get(k);
            if (!read) {
              read = this.call({ type: 'get', readVersion, key }).then((r) => (r as Extract<ReplyBody, { type: 'get' }>).value);
              reads.set(k, read);
            }
            value = await read;
          } catch (e) {
            // the value seen is no longer known: wake the watcher (a spurious wake-up,
            // which the usual re-read-then-watch loop absorbs) rather than miss a change
            if (e instanceof TxnError && e.code === 'TOO_OLD') return watch.wake();
            throw e;
          }
        }
        watch.arm(this.connReady ?? (await this.pool.get()), key, value);
      } catch (e) {
        watch.fail(e);
      }
    };
    void (async () => {
      for (let i = 0; i < list.length; i += WATCH_ARM_CHUNK) await Promise.all(list.slice(i, i + WATCH_ARM_CHUNK).map(arm));
    })();
  }

  private failWatches(err: unknown): void {
    for (const { watch } of this.watches.splice(0)) watch.fail(err);
  }

  // ---------------------------------------------------------------- commit

  async commit(): Promise<void> {
    this.check();
    if (this.committing) throw new TxnError('INVALID_ARGUMENT', 'commit() was already called; reset() the transaction to reuse it');
    this.committing = true;
    const mutations = this.writes.mutations();
    if (mutations.length === 0) {
      // nothing written: nothing to check or apply (FoundationDB does the same)
      this.committedVersion = -1n;
      this.stamp.reject(new TxnError('INVALID_ARGUMENT', 'the transaction wrote nothing, so it has no versionstamp'));
      if (this.watches.length > 0) this.armWatches();
      return;
    }
    // reset() during the commit starts a new transaction (a new stamp): the commit's outcome
    // is not that one's. Before, the fresh transaction took the old commit's version and
    // versionstamp, and armed watches made after the reset.
    const stamp = this.stamp;
    const readConflicts = this.readConflicts;
    try {
      // read conflicts count toward the limit as on the server (commit-plan.ts); checked here
      // because many long conflict keys make a commit frame past the server's maxFrameBytes,
      // which closes the connection: the commit failed MAYBE_COMMITTED, not TRANSACTION_TOO_LARGE
      checkCommitSize(this.writes.size, readConflicts);
      // a transaction that read nothing needs no read version: its commit cannot conflict
      const readVersion = readConflicts.length > 0 ? await this.readVersionOf() : this.readVersion ? await this.readVersion : 0n;
      const r = (await this.call({ type: 'commit', readVersion, readConflicts, mutations }, true)) as Extract<ReplyBody, { type: 'commit' }>;
      stamp.resolve(r.versionstamp);
      if (stamp !== this.stamp) return;
      this.committedVersion = r.commitVersion;
    } catch (err) {
      stamp.reject(err);
      if (stamp === this.stamp) this.failWatches(err);
      throw err;
    }
    if (this.watches.length > 0) this.armWatches();
  }

  getCommittedVersion(): bigint {
    return this.committedVersion;
  }

  getVersionstamp(): Promise<Uint8Array> {
    if (this.canceled) return Promise.reject(new TxnError('CANCELED', 'transaction was canceled'));
    return this.stamp.promise;
  }

  // ---------------------------------------------------------------- lifecycle

  cancel(): void {
    if (this.canceled) return;
    this.canceled = true;
    if (this.committedVersion === -1n) this.stamp.reject(new TxnError('CANCELED', 'transaction was canceled'));
    this.failWatches(new TxnError('CANCELED', 'transaction was canceled before its watches were armed'));
  }

  reset(): void {
    this.failWatches(new TxnError('CANCELED', 'transaction was reset before its watches were armed'));
    // a getVersionstamp() of the transaction before the reset settles: with its commit's
    // outcome when commit() was called (commit() holds that stamp), else CANCELED (before,
    // it waited for ever)
    if (!this.committing) this.stamp.reject(new TxnError('CANCELED', 'transaction was reset before it committed, so it has no versionstamp'));
    this.conn = null;
    this.connReady = null;
    this.readVersion = null;
    this.readVersionSet = false;
    this.readStarted = false;
    this.writes = new WriteBuffer();
    this.readConflicts = [];
    this.canceled = false;
    this.committing = false;
    this.committedVersion = -1n;
    this.stamp = deferred<Uint8Array>();
    this.startedAt = Date.now();
    this.deadline = null;
  }
}

/**
 * The longest setTimeout delay (2^31-1 ms, 24.8 days). A longer one fires after 1 ms
 * (Node: TimeoutOverflowWarning), so a transactionTimeoutMs of 1e20 or 30 days failed every
 * call TIMEOUT at once; such a deadline is reached in steps of at most this.
 */
const MAX_TIMER_MS = 0x7fffffff;
const timerDelay = (at: number): number => Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now()));

interface Waiter {
  reject: (e: unknown) => void;
  isCommit: boolean;
}

/** The calls of one transaction pending on the server, failed together at its deadline by one timer. */
class Deadline {
  private readonly waiting = new Set<Waiter>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly at: number,
    private readonly timeoutMs: number,
  ) {}

  add(w: Waiter): void {
    this.waiting.add(w);
    this.timer ??= setTimeout(this.fire, timerDelay(this.at));
  }

  settle(w: Waiter): void {
    this.waiting.delete(w);
    if (this.waiting.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private readonly fire = (): void => {
    // a timer is at most MAX_TIMER_MS: one that far short of the deadline waits again
    if (Date.now() < this.at) {
      this.timer = setTimeout(this.fire, timerDelay(this.at));
      return;
    }
    this.timer = null;
    const ws = [...this.waiting];
    this.waiting.clear();
    for (const w of ws) {
      w.reject(
        w.isCommit
          ? new TxnError('MAYBE_COMMITTED', `no answer to the commit within the transaction's timeout of ${this.timeoutMs} ms: it may or may not have been applied`)
          : new TxnError('TIMEOUT', `no answer within the transaction's timeout of ${this.timeoutMs} ms`),
      );
    }
  };
}

function checkCommitSize(writeBytes: number, readConflicts: KeyRangeMsg[]): void {
  let bytes = writeBytes;
  for (const r of readConflicts) bytes += readConflictBytes(r.begin.length, r.end.length);
  if (bytes > MAX_TRANSACTION_BYTES) {
    throw new TxnError(
      'TRANSACTION_TOO_LARGE',
      `transaction is ${bytes} bytes with its ${readConflicts.length} read-conflict ranges (${bytes - writeBytes} bytes); limit ${MAX_TRANSACTION_BYTES}`,
    );
  }
}

function unreadable(k: Uint8Array): TxnError {
  return new TxnError(
    'INVALID_ARGUMENT',
    `accessed unreadable: key ${printable(k)} has a pending versionstamped value in this transaction; its value is known only after commit`,
  );
}

function inverted(call: string, b: Uint8Array, e: Uint8Array): TxnError {
  return new TxnError('INVALID_ARGUMENT', `${call}: begin ${printable(b)} is after end ${printable(e)} (inverted range)`);
}

/*
 * Range boundaries on the wire. The server checks selector keys against the key
 * limit as sent, so a boundary "k + 0x00" past the limit (from a selector on a legal
 * 10,000-byte key, or from paging after one) is sent as the selector it stands for.
 */
function wireBegin(k: Uint8Array): [Uint8Array, boolean] {
  return k.length > MAX_KEY_BYTES && k[k.length - 1] === 0 ? [k.subarray(0, k.length - 1), false] : [k, true];
}

function wireEnd(k: Uint8Array): [Uint8Array, boolean] {
  return k.length > MAX_KEY_BYTES && k[k.length - 1] === 0 ? [k.subarray(0, k.length - 1), true] : [k, false];
}
