// How many client connections this process can afford (issue 17 item 3). Every
// connection costs a file descriptor, and so does every RocksDB file (WAL, SSTs,
// MANIFEST, LOG), worker thread plumbing and Node itself. If clients take the last
// descriptor, RocksDB cannot open its next log file and the shard fails; and the
// accept loop spins on EMFILE. So connections are capped below the descriptor limit,
// keeping a reserve for storage and the process (Redis keeps 32; RocksDB needs more).
import fs from 'node:fs';

/** The process's open-files limit (soft; Node raises it to the hard limit at start), or null if unknown. */
export function descriptorLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m || m[1] === 'unlimited') return null;
  return Number(m[1]);
}

export interface ConnectionLimit {
  maxConnections: number;
  descriptorLimit: number | null;
  /** Descriptors kept for RocksDB and the process. */
  reserve: number;
}

/** The open-files limit txkv asks for in its messages (the server refuses below 144: the 128 reserve and 16 clients). */
export const RECOMMENDED_OPEN_FILES = 256;

/**
 * The connection limit in force: the configured one, lowered to what the descriptor
 * limit leaves after a reserve of a quarter of it (at least 128, at most 4096).
 * A limit too low to leave room for any client is an error.
 */
export function connectionLimit(configured: number, fdLimit: number | null): ConnectionLimit {
  if (fdLimit === null) return { maxConnections: configured, descriptorLimit: null, reserve: 0 };
  const reserve = Math.min(4096, Math.max(128, Math.floor(fdLimit / 4)));
  const room = fdLimit - reserve;
  if (room < 16) {
    throw new Error(
      `the open-files limit is ${fdLimit}: too low for txkv (it keeps ${reserve} descriptors for RocksDB and itself, and needs room for clients); ` +
        `raise it (ulimit -n, LimitNOFILE= in systemd) to at least ${RECOMMENDED_OPEN_FILES}`,
    );
  }
  return { maxConnections: Math.min(configured, room), descriptorLimit: fdLimit, reserve };
}
