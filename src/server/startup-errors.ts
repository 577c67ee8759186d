// Start-up failures in words an operator can act on (issue 15 items 1, 2, 4; issue
// 17 item 6). RocksDB reports every open failure as "Database is not open" with the
// real reason in err.cause; uWS reports a failed listen as `false` with no reason at
// all. These helpers find the reason (the errno of a plain bind, the holder of the
// LOCK file, the file system's state) and say what to do about it.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A start-up failure whose message is complete: print it as it is, once. */
export class StartupError extends Error {
  override name = 'StartupError';
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** The sentence for a bind that failed with `code` (EADDRINUSE, EACCES, ...). */
function listenReason(host: string, port: number, code: string | undefined, detail: string): string {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return `${where} is already in use (another txkv server or another program listens there; stop it or choose another --port)`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied: cannot listen on ${where} (ports below 1024 need privileges; choose another --port)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: the address ${host} does not belong to this machine (choose another --host)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${where}: the host name ${host} does not resolve (choose another --host)`;
    default:
      return `cannot listen on ${where}: ${detail}`;
  }
}

/**
 * Binds host:port with a plain, exclusive socket and closes it again: refuses at once
 * (before the database is opened) a port another process listens on, and says why.
 * uWS cannot tell why a listen failed; the kernel's errno can.
 */
export async function probePort(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (err) => reject(new StartupError(listenReason(host, port, errnoOf(err), (err as Error).message))));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
  });
}

/** Why the real listen failed (a probe bind now names the errno), for uWS's bare `false`. */
export async function listenFailure(host: string, port: number): Promise<StartupError> {
  try {
    await probePort(host, port);
  } catch (err) {
    if (err instanceof StartupError) return err;
  }
  return new StartupError(listenReason(host, port, undefined, 'the port was taken while the server started, or the address is unusable'));
}

/** The pid holding a POSIX lock on `file`, from /proc/locks (Linux), or null. */
export function lockHolder(file: string): number | null {
  let st: fs.Stats;
  let locks: string;
  try {
    st = fs.statSync(file);
    locks = fs.readFileSync('/proc/locks', 'utf8');
  } catch {
    return null;
  }
  // /proc/locks names the file as MAJOR:MINOR:INODE, the device numbers in hex
  const dev = st.dev;
  const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  for (const line of locks.split('\n')) {
    const f = line.trim().split(/\s+/);
    // "1: POSIX  ADVISORY  WRITE 25963 fe:00:2147885 0 EOF"
    if (f[5] === id && Number(f[4]) > 0) return Number(f[4]);
  }
  return null;
}

/** The pid a running server wrote beside its database, or null. */
function pidFileHolder(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, PID_FILE), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Written beside the database once it is open (and removed at a clean stop): names the server holding it. */
export const PID_FILE = 'txkv.pid';

function freeSpace(dir: string): string {
  try {
    const s = fs.statfsSync(dir);
    return `${((s.bavail * s.bsize) / 2 ** 20).toFixed(1)} MiB free of ${((s.blocks * s.bsize) / 2 ** 20).toFixed(1)} MiB`;
  } catch {
    return 'free space unknown';
  }
}

/** The sentence for a file-system errno met on the data directory, or null if it is not one of those. */
function fileSystemReason(shown: string, dataDir: string, code: string | undefined, detail: string): string | null {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied: data directory ${shown} is not writable by this user (uid ${process.getuid?.() ?? '?'}): ${detail}; fix its owner or mode, or choose another --data-dir`;
    case 'EROFS':
      return `read-only file system: data directory ${shown} is on a read-only mount (${detail}); remount it read-write or choose another --data-dir`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `no space left on device: the file system of data directory ${shown} is full (${freeSpace(dataDir)}); free space or choose another --data-dir`;
    default:
      return null;
  }
}

/**
 * mkdir -p, one level at a time. Node's own (mkdirSync recursive, Node 20) loops for ever
 * when mkdir fails ENOENT under a parent that exists, as in /proc and /sys:
 * `txkv serve --data-dir /proc/x` hung at start, printing nothing, at 100 % CPU.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err; // made meanwhile, or a dangling symlink (the next level says ENOENT)
    }
  }
}

/**
 * Makes sure the data directory exists and this process may write in it, before
 * RocksDB is asked to open it (its own errors for these cases are less direct).
 */
export function checkDataDir(dataDir: string, shown: string): void {
  try {
    makeDirs(dataDir);
    fs.accessSync(dataDir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    const reason = fileSystemReason(shown, dataDir, errnoOf(err), (err as Error).message);
    throw reason ? new StartupError(reason, { cause: err }) : err;
  }
}

// RocksDB's IO errors carry the OS message, not the errno
const ROCKS_REASONS: [RegExp, string][] = [
  [/No space left on device|Disk quota exceeded/i, 'ENOSPC'],
  [/Read-only file system/i, 'EROFS'],
  [/Permission denied|Operation not permitted/i, 'EACCES'],
];

/** Turns a failure to open the database (RocksDB's or the layout file's) into a StartupError that says why. */
export function explainOpenError(err: unknown, dataDir: string, shown: string): Error {
  if (err instanceof StartupError) return err;
  const e = err as Error & { cause?: Error & { code?: string } };
  const detail = e.cause?.message ?? e.message;
  if (e.cause?.code === 'LEVEL_LOCKED' || /While lock file|lock hold by current process/i.test(detail)) {
    const pid = lockHolder(path.join(dataDir, 'rocksdb', 'LOCK')) ?? pidFileHolder(dataDir);
    return new StartupError(
      `data directory ${shown} is in use by another txkv process${pid ? ` (pid ${pid})` : ''}; stop it or choose another --data-dir`,
      { cause: err },
    );
  }
  const errno = errnoOf(err);
  // a Node errno (EACCES, ...) or the OS message inside RocksDB's (code LEVEL_*)
  const code = (errno && /^E[A-Z]+$/.test(errno) ? errno : undefined) ?? ROCKS_REASONS.find(([re]) => re.test(detail))?.[1];
  const reason = fileSystemReason(shown, dataDir, code, detail);
  if (reason) return new StartupError(reason, { cause: err });
  return new StartupError(`cannot open the database in data directory ${shown}: ${detail}`, { cause: err });
}
