// The txkv key/value dump format ("txkv-kvdump", version 1): how a FoundationDB
// keyspace (or any ordered key/value store) is handed to `txkv import`. Documented in
// integrations/3fs/migrate/README.md; integrations/3fs/migrate/fdb_dump.py writes it with
// FoundationDB's own Python client. All integers are big-endian.
//
//   magic    8 bytes   "TXKVDUMP"
//   version  u32       1
//   hlen     u32       length of the header
//   header   hlen      UTF-8 JSON: {source, readVersion (decimal string), begin, end (base64:
//                      the dumped range [begin, end)), createdAt, ...}
//   records  repeated  klen u32 (< 0xFFFFFFFF), vlen u32, key (klen bytes), value (vlen bytes);
//                      keys strictly ascending (bytewise)
//   end      u32       0xFFFFFFFF
//   count    u64       number of records
//   sha256   32 bytes  SHA-256 over every record exactly as stored (klen|vlen|key|value), in order
//
// The checksum covers the records' encoding, so the same SHA-256 can be computed over the
// rows read back from txkv (recordChecksum) and compared with the dump's.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';

export const DUMP_MAGIC = 'TXKVDUMP';
export const DUMP_VERSION = 1;
const END_MARK = 0xffffffff;
const MAX_KEY = 10_000;
const MAX_VALUE = 100_000;

export interface DumpHeader {
  source: string;
  readVersion: string;
  /** base64 */
  begin: string;
  /** base64 */
  end: string;
  createdAt?: string;
  [extra: string]: unknown;
}

export interface DumpRecord {
  key: Uint8Array;
  value: Uint8Array;
}

export interface DumpTrailer {
  count: number;
  sha256: string;
}

/** A malformed, truncated or corrupted dump; nothing about it is written. */
export class DumpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DumpError';
  }
}

/** The encoding of one record, as hashed (for rows read back from txkv). */
export function updateRecordHash(hash: Hash, key: Uint8Array, value: Uint8Array): void {
  const lens = Buffer.allocUnsafe(8);
  lens.writeUInt32BE(key.length, 0);
  lens.writeUInt32BE(value.length, 4);
  hash.update(lens);
  hash.update(key);
  hash.update(value);
}

/** Writes a dump (tests, tools). Synchronous, buffered; finish() writes the trailer. */
export class DumpWriter {
  private readonly fd: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  private readonly hash = createHash('sha256');
  private count = 0;
  private last: Uint8Array | null = null;

  constructor(path: string, header: DumpHeader) {
    this.fd = fs.openSync(path, 'w');
    const h = Buffer.from(JSON.stringify(header), 'utf8');
    const pre = Buffer.alloc(16);
    pre.write(DUMP_MAGIC, 0, 'latin1');
    pre.writeUInt32BE(DUMP_VERSION, 8);
    pre.writeUInt32BE(h.length, 12);
    this.put(pre);
    this.put(h);
  }

  add(key: Uint8Array, value: Uint8Array): void {
    if (this.last && Buffer.compare(this.last, key) >= 0) throw new DumpError('DumpWriter.add: keys must be strictly ascending');
    this.last = key;
    const lens = Buffer.allocUnsafe(8);
    lens.writeUInt32BE(key.length, 0);
    lens.writeUInt32BE(value.length, 4);
    const start = this.used;
    this.put(lens);
    this.put(key);
    this.put(value);
    // Hash what was just buffered in one piece when it did not straddle a flush.
    if (this.used - start === 8 + key.length + value.length) this.hash.update(this.buf.subarray(start, this.used));
    else updateRecordHash(this.hash, key, value);
    this.count++;
  }

  finish(): DumpTrailer {
    const tail = Buffer.alloc(12);
    tail.writeUInt32BE(END_MARK, 0);
    tail.writeBigUInt64BE(BigInt(this.count), 4);
    const sha = this.hash.digest();
    this.put(tail);
    this.put(sha);
    this.flush();
    fs.closeSync(this.fd);
    return { count: this.count, sha256: sha.toString('hex') };
  }

  private put(b: Uint8Array): void {
    if (this.used + b.length > this.buf.length) {
      this.flush();
      if (b.length > this.buf.length) {
        fs.writeSync(this.fd, b);
        return;
      }
    }
    this.buf.set(b, this.used);
    this.used += b.length;
  }

  private flush(): void {
    let off = 0;
    while (off < this.used) off += fs.writeSync(this.fd, this.buf, off, this.used - off);
    this.used = 0;
  }
}

/**
 * Reads a dump: header(), then batches of records in file order (each batch is what one
 * read chunk held), then trailer() — which throws DumpError unless the count and SHA-256
 * computed while reading equal the trailer's. Checks magic, version, lengths, ascending keys.
 */
export class DumpReader {
  private header_: DumpHeader | null = null;
  private trailer_: DumpTrailer | null = null;
  private readonly hash = createHash('sha256');
  private count = 0;
  private last: Uint8Array | null = null;

  constructor(readonly path: string) {}

  get header(): DumpHeader {
    if (!this.header_) throw new DumpError('DumpReader: header not read yet');
    return this.header_;
  }

  /** The verified trailer (after batches() completed). */
  get trailer(): DumpTrailer {
    if (!this.trailer_) throw new DumpError('DumpReader: trailer not read yet');
    return this.trailer_;
  }

  /** Reads only the header (and file size). */
  static readHeader(path: string): DumpHeader {
    const fd = fs.openSync(path, 'r');
    try {
      const pre = Buffer.alloc(16);
      const n = fs.readSync(fd, pre, 0, 16, 0);
      const hlen = DumpReader.checkPreamble(path, pre.subarray(0, n));
      const h = Buffer.alloc(hlen);
      if (fs.readSync(fd, h, 0, hlen, 16) !== hlen) throw new DumpError(`${path}: truncated header`);
      return DumpReader.parseHeader(path, h);
    } finally {
      fs.closeSync(fd);
    }
  }

  private static checkPreamble(path: string, pre: Buffer): number {
    if (pre.length < 16 || pre.subarray(0, 8).toString('latin1') !== DUMP_MAGIC) {
      throw new DumpError(`${path} is not a txkv-kvdump file (no "${DUMP_MAGIC}" magic)`);
    }
    const version = pre.readUInt32BE(8);
    if (version !== DUMP_VERSION) throw new DumpError(`${path}: dump format version ${version}, this txkv reads ${DUMP_VERSION}`);
    const hlen = pre.readUInt32BE(12);
    if (hlen > 1 << 20) throw new DumpError(`${path}: header length ${hlen} is implausible`);
    return hlen;
  }

  private static parseHeader(path: string, h: Buffer): DumpHeader {
    let header: DumpHeader;
    try {
      header = JSON.parse(h.toString('utf8')) as DumpHeader;
    } catch {
      throw new DumpError(`${path}: the header is not JSON`);
    }
    if (typeof header !== 'object' || header === null || typeof header.begin !== 'string' || typeof header.end !== 'string') {
      throw new DumpError(`${path}: the header needs begin and end (base64)`);
    }
    return header;
  }

  async *batches(): AsyncGenerator<DumpRecord[]> {
    let pending: Buffer = Buffer.alloc(0);
    let stage: 'pre' | 'header' | 'records' | 'trailer' | 'done' = 'pre';
    let hlen = 0;
    let recordNo = 0;
    const stream = fs.createReadStream(this.path, { highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let pos = 0;
      if (stage === 'pre' && buf.length - pos >= 16) {
        hlen = DumpReader.checkPreamble(this.path, buf.subarray(0, 16));
        pos = 16;
        stage = 'header';
      }
      if (stage === 'header' && buf.length - pos >= hlen) {
        this.header_ = DumpReader.parseHeader(this.path, buf.subarray(pos, pos + hlen));
        pos += hlen;
        stage = 'records';
      }
      const out: DumpRecord[] = [];
      if (stage === 'records') {
        const start = pos;
        while (buf.length - pos >= 4) {
          const klen = buf.readUInt32BE(pos);
          if (klen === END_MARK) {
            stage = 'trailer';
            break;
          }
          if (buf.length - pos < 8) break;
          const vlen = buf.readUInt32BE(pos + 4);
          recordNo++;
          if (klen > MAX_KEY || vlen > MAX_VALUE) {
            throw new DumpError(`${this.path}: record ${recordNo}: key ${klen} bytes / value ${vlen} bytes exceed txkv's limits (${MAX_KEY} / ${MAX_VALUE}) or the file is corrupt`);
          }
          if (buf.length - pos < 8 + klen + vlen) {
            recordNo--;
            break;
          }
          const key = buf.subarray(pos + 8, pos + 8 + klen);
          if (this.last && Buffer.compare(this.last, key) >= 0) throw new DumpError(`${this.path}: record ${recordNo}: keys are not strictly ascending`);
          this.last = key;
          out.push({ key, value: buf.subarray(pos + 8 + klen, pos + 8 + klen + vlen) });
          pos += 8 + klen + vlen;
        }
        this.hash.update(buf.subarray(start, pos));
        this.count += out.length;
      }
      if (stage === 'trailer' && buf.length - pos >= 44) {
        const count = Number(buf.readBigUInt64BE(pos + 4));
        const sha = buf.subarray(pos + 12, pos + 44).toString('hex');
        pos += 44;
        stage = 'done';
        const mine = this.hash.digest('hex');
        if (count !== this.count) throw new DumpError(`${this.path}: the trailer says ${count} records, the file holds ${this.count}`);
        if (sha !== mine) throw new DumpError(`${this.path}: SHA-256 mismatch (trailer ${sha}, records ${mine}): the dump is corrupt`);
        this.trailer_ = { count, sha256: sha };
      }
      if (stage === 'done' && buf.length > pos) throw new DumpError(`${this.path}: ${buf.length - pos} bytes after the trailer`);
      // Copy the remainder: it must not pin (or alias) the whole chunk.
      pending = Buffer.from(buf.subarray(pos));
      if (out.length) yield out;
    }
    if (stage === 'pre' && !Buffer.from(DUMP_MAGIC, 'latin1').subarray(0, pending.length).equals(pending.subarray(0, 8))) {
      throw new DumpError(`${this.path} is not a txkv-kvdump file (no "${DUMP_MAGIC}" magic)`);
    }
    if (stage !== 'done') {
      throw new DumpError(`${this.path} is truncated (${stage === 'records' || stage === 'trailer' ? `after ${this.count} records, no complete trailer` : 'no complete header'}): refusing it`);
    }
  }
}
