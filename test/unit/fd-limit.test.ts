// The connection limit derived from the open-files limit (issue 17 item 3).
import { describe, expect, it } from 'vitest';
import { connectionLimit, descriptorLimit } from '../../src/server/fd-limit.js';

describe('connection limit from the descriptor limit', () => {
  it('reads the soft open-files limit from /proc/self/limits text', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            256                  1024                 files\n';
    expect(descriptorLimit(text)).toBe(256);
    expect(descriptorLimit('Max open files            unlimited            unlimited            files\n')).toBeNull();
  });
  it('keeps a reserve of a quarter (128..4096) for storage and the process', () => {
    expect(connectionLimit(10_000, 256)).toEqual({ maxConnections: 128, descriptorLimit: 256, reserve: 128 });
    expect(connectionLimit(10_000, 1024)).toEqual({ maxConnections: 768, descriptorLimit: 1024, reserve: 256 });
    expect(connectionLimit(10_000, 1_048_576).maxConnections).toBe(10_000);
    expect(connectionLimit(500, null).maxConnections).toBe(500);
  });
  it('refuses a limit that leaves no room for clients, saying how to raise it', () => {
    expect(() => connectionLimit(10_000, 64)).toThrow(/open-files limit is 64.*ulimit -n/);
  });
});
