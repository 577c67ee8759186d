// The RocksDB options txkv chooses (src/server/open-database.ts) reach RocksDB: read
// back from the OPTIONS file RocksDB writes on open, which records what it runs with,
// not what was asked for. The binding's defaults (ZSTD WAL, ZSTD with a dictionary,
// 64 MB memtables, an 8 MB cache) must not be what a txkv database gets.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type RocksDbConfig } from '../../src/config/server-config.js';
import { openDatabase } from '../../src/server/open-database.js';
import { toBytes } from '../../src/keys/bytes.js';
import { tempDir } from '../support/server.js';

/** The newest OPTIONS file of a RocksDB directory, as section -> key -> value. */
function optionsFile(rocksDir: string): Map<string, Map<string, string>> {
  const files = fs.readdirSync(rocksDir).filter((f) => /^OPTIONS-\d+$/.test(f));
  files.sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));
  const text = fs.readFileSync(path.join(rocksDir, files[files.length - 1]!), 'utf8');
  const out = new Map<string, Map<string, string>>();
  let section = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) out.set(line, (section = new Map()));
    else if (line.includes('=') && !line.startsWith('#')) section.set(line.slice(0, line.indexOf('=')).trim(), line.slice(line.indexOf('=') + 1).trim());
  }
  return out;
}

describe('RocksDB options', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function open(rocksdb?: RocksDbConfig): Promise<Map<string, Map<string, string>>> {
    dir = tempDir('txkv-rocks-options');
    const { db } = await openDatabase(dir, { shards: 2, splitPoints: [toBytes('m')], explicitSplitPoints: true }, rocksdb ? { rocksdb } : {});
    await db.close();
    return optionsFile(path.join(dir, 'rocksdb'));
  }

  it('the defaults: plain WAL, 32 MiB memtable budget per shard (16 MiB for the metadata column), no dictionary, the block cache split over the shards, ribbon filters and hash index', async () => {
    const o = await open();
    expect(o.get('[DBOptions]')!.get('wal_compression')).toBe('kNoCompression');
    for (const cf of ['s0', 's1']) {
      const c = o.get(`[CFOptions "${cf}"]`)!;
      expect(c.get('write_buffer_size'), cf).toBe(String(DEFAULT_CONFIG.rocksdb.memtableBytes / 4));
      expect(c.get('max_write_buffer_number'), cf).toBe('6');
      expect(c.get('compression_per_level'), cf).toBe('kNoCompression:kNoCompression:kZSTD:kZSTD:kZSTD:kZSTD:kZSTD');
      expect(c.get('compression_opts'), cf).toMatch(/max_dict_bytes=0;/);
      const t = o.get(`[TableOptions/BlockBasedTable "${cf}"]`)!;
      expect(t.get('filter_policy'), cf).toMatch(/ribbon/i);
      expect(t.get('data_block_index_type'), cf).toBe('kDataBlockBinaryAndHash');
      expect(t.get('no_block_cache'), cf).toBe('false');
    }
    expect(DEFAULT_CONFIG.rocksdb.memtableBytes).toBe(32 * 1024 * 1024);
    expect(o.get('[CFOptions "default"]')!.get('write_buffer_size')).toBe(String((16 * 1024 * 1024) / 4));
  });

  it('the settings reach RocksDB', async () => {
    const o = await open({ ...DEFAULT_CONFIG.rocksdb, blockCacheBytes: 0, memtableBytes: 8 * 1024 * 1024, walCompression: true });
    expect(o.get('[DBOptions]')!.get('wal_compression')).toBe('kZSTD');
    expect(o.get('[CFOptions "s1"]')!.get('write_buffer_size')).toBe(String(2 * 1024 * 1024));
    // the metadata column follows a budget below its 16 MiB cap
    expect(o.get('[CFOptions "default"]')!.get('write_buffer_size')).toBe(String(2 * 1024 * 1024));
    expect(o.get('[TableOptions/BlockBasedTable "s1"]')!.get('no_block_cache')).toBe('true');
  });
});
