// Failpoints: named places where a test can make the server crash (SIGKILL itself),
// to prove crash atomicity of two-phase commit and of moves (a few delay instead, to
// force an interleaving). Off by default. They are enabled only
// at start-up from the TXKV_FAILPOINTS environment variable (read by the CLI/server
// start, never from the wire): "name=arg,name=arg", where arg selects the shard id
// for shard failpoints and is a countdown ("fire on the Nth hit") for the coordinator.

import { writeSync } from 'node:fs';

/** Every failpoint; the fault suite loops over this list so one without a test shows. */
export const FAILPOINT_NAMES = [
  'shard.after-prepare', // a shard (arg = shard id) prepared a cross-shard commit and replied
  'coordinator.after-decision', // the decision record is durable, no other shard applied yet
  'shard.after-apply', // a shard (arg = shard id) applied its part of a cross-shard commit
  'shard.retire-mid-run', // a shard (arg = shard id) deleted the rows of a run of tombstones, the keys written since not yet put back (shard/retire.ts)
  // moves (coordinator/distribution.ts; arg = countdown over every move)
  'move.after-start', // the move is persisted as 'copying', nothing copied yet
  'move.after-copy', // the first chunk of the range was copied to the target
  'move.after-switch', // the switch to the target is persisted; the target's barrier not yet released
  'move.after-marker', // the target wrote its barrier and marker; the map still names the move
  'move.after-drop', // the old owner deleted its rows; the map still names it as previous owner
  // moves in cluster mode, on the leader (arg = countdown); replicas never hit them
  'cluster-move.after-copy', // the start is in the log and the first chunk copied on the leader; no switch logged
  'cluster-move.after-switch', // the log acknowledged the switch; the leader's target barrier not yet released
  // moves in cluster mode, on a node following the log (arg = countdown)
  'cluster-move.replica-after-switch', // this node switched at a logged switch; its catch-up not done
  // a delay, not a crash (arg = ms): on a node following the log, each chunk of a move's
  // copy and the start of each move's catch-up wait this long
  'cluster-move.replica-slow',
] as const;

export type FailpointName = (typeof FAILPOINT_NAMES)[number];

export function parseFailpoints(spec: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!spec) return out;
  for (const part of spec.split(',')) {
    const [name, arg = ''] = part.split('=');
    if (!name) continue;
    if (!(FAILPOINT_NAMES as readonly string[]).includes(name)) {
      throw new Error(`unknown failpoint ${JSON.stringify(name)}; known: ${FAILPOINT_NAMES.join(', ')}`);
    }
    out[name] = arg;
  }
  return out;
}

/** Crashes the whole process, as a power cut would, when the failpoint is armed for `arg`. */
export class Failpoints {
  private readonly counts = new Map<string, number>();
  constructor(private readonly armed: Record<string, string>) {}


  /** Shard failpoints: fire when armed with this shard's id. */
  hitShard(name: FailpointName, shardId: number): void {
    if (this.armed[name] === String(shardId)) crash(name);
  }

  /** Whether shard failpoint `name` is armed for this shard (a path that would skip it then takes the one that hits it). */
  armedFor(name: FailpointName, shardId: number): boolean {
    return this.armed[name] === String(shardId);
  }

  /** Delay failpoints: how many ms to wait here (0 when not armed). */
  delayMs(name: FailpointName): number {
    const arg = this.armed[name];
    return arg === undefined ? 0 : Math.max(0, Number(arg) || 0);
  }

  /** Countdown failpoints: fire on the Nth hit (default the first). */
  hitCount(name: FailpointName): void {
    const arg = this.armed[name];
    if (arg === undefined) return;
    const n = (this.counts.get(name) ?? 0) + 1;
    this.counts.set(name, n);
    if (n >= (Number(arg) || 1)) crash(name);
  }
}

function crash(name: string): never {
  crashProcess(`failpoint ${name} fired: killing the process`);
}

/**
 * Ends the whole process at once, from any thread (process.exit in a worker thread
 * would end only that thread). Used where continuing could corrupt data: recovery
 * on the next start is the safe way on.
 */
export function crashProcess(reason: string): never {
  // A full disk is the one cause an operator meets in normal life; RocksDB's text of it is
  // buried in a stack trace. Say it first, with what to do and that nothing acknowledged is lost.
  const full = /No space left on device|Disk quota exceeded/i.test(reason)
    ? 'no space left on device: the data directory\'s file system is full, so the server stops ' +
      '(every acknowledged commit is on disk; recovery runs at the next start): free space, then start it again. '
    : '';
  // a synchronous write: the process dies right after, and a worker's process.stderr is asynchronous
  writeSync(2, `txkv: ${full}${reason}\n`);
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is delivered asynchronously; do not let this thread go on meanwhile
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
}
