// Notices the data directory vanishing under a running server (issue 17 item 2).
// RocksDB keeps writing to the files it holds open after `rm -rf`, so commits would
// go on being acknowledged into deleted files and be lost at the next restart. As
// PostgreSQL re-checks its postmaster.pid, the server re-checks, every interval, that
// its pid file and the database's CURRENT file are still there and still its own;
// when not, the caller stops the server (it must not acknowledge another commit).
import fs from 'node:fs';
import path from 'node:path';
import { PID_FILE } from './startup-errors.js';

export interface DataDirWatch {
  stop(): void;
}

/** Identity of a file: device and inode (a directory deleted and re-created is a different one). */
function identity(file: string): string {
  const st = fs.statSync(file);
  return `${st.dev}:${st.ino}`;
}

/**
 * Checks `dataDir` every `intervalMs` (unref'd timer); calls `onLost(reason)` once,
 * with a sentence for the operator, when the directory, its pid file or the database
 * is gone or replaced.
 */
export function watchDataDir(dataDir: string, shown: string, onLost: (reason: string) => void, intervalMs = 1000): DataDirWatch {
  const pidFile = path.join(dataDir, PID_FILE);
  const current = path.join(dataDir, 'rocksdb', 'CURRENT');
  const start = { dir: identity(dataDir), pid: identity(pidFile) };
  const check = (): string | null => {
    try {
      if (identity(dataDir) !== start.dir) return `data directory ${shown} was replaced by another directory`;
      if (identity(pidFile) !== start.pid || fs.readFileSync(pidFile, 'utf8').trim() !== String(process.pid)) {
        return `the pid file ${path.join(shown, PID_FILE)} was replaced: another process took data directory ${shown}`;
      }
      fs.statSync(current);
      return null;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return `data directory ${shown} (or its database) was deleted while the server ran (${e.path ?? 'a file'} is gone)`;
      // EACCES, EIO...: the directory cannot be checked, so it cannot be trusted either
      return `data directory ${shown} cannot be checked: ${e.message}`;
    }
  };
  let fired = false;
  const timer = setInterval(() => {
    if (fired) return;
    const reason = check();
    if (reason) {
      fired = true;
      clearInterval(timer);
      onLost(reason);
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
