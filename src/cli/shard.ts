// `txkv shard split|merge|move|map`: an operator's hand on data distribution
// (docs/distribution.md), through the server's /v1/shard routes.
import { parseFlags, UsageError, wantsHelp } from './args.js';
import { formatBytes, parseBytesArg } from './bytes-arg.js';
import { answerJson, httpRequest } from '../client/http-request.js';
import { caOf, CLIENT_FLAGS, CLIENT_USAGE, clientTarget, httpBase } from './client-options.js';

export const USAGE = `usage: txkv shard <split KEY | merge KEY | move BEGIN WORKER | map> [--json] [client options]

  split KEY            add a range boundary at KEY (no data moves)
  merge KEY            remove the boundary at KEY (the ranges on both sides must be on one worker)
  move BEGIN WORKER    move the range that begins at BEGIN to worker WORKER, online
                       (split at BEGIN first to move part of a range)
  map                  every range with its worker, the move in progress and recent events
Given a cluster's nodes (--endpoint URL,URL,...), split, merge and move go to the leader
(the node whose /v1/status says so); map asks the first.
--json prints the server's answer as it is. Changes need a read-write token.

${CLIENT_USAGE}`;

interface MapJson {
  version: number;
  workers: number;
  ranges: { begin: string; end: string | null; owner: number; prev?: { owner: number; until: number } }[];
}

/**
 * The endpoint to send a change to: of a cluster's nodes, the leader (the only one that
 * splits, merges and moves ranges; a replica answers UNAVAILABLE "send the request to it"),
 * as the nodes' /v1/status say; the first endpoint when there is one, or none names a leader.
 */
async function leaderOf(endpoints: string[], token: string | undefined, ca: ReturnType<typeof caOf>): Promise<string> {
  if (endpoints.length < 2) return endpoints[0]!;
  for (const e of endpoints) {
    try {
      const res = await httpRequest(`${httpBase(e)}/v1/status`, { method: 'GET', token, ca, timeoutMs: 3000 });
      if (res.status !== 200) continue;
      const st = answerJson<{ cluster?: { role?: string; leader?: string | null; members?: { nodeId: string; url: string }[] } | null }>(res);
      if (st.cluster?.role === 'leader') return e;
      // a replica names the leader and its advertised URL
      const url = st.cluster?.members?.find((m) => m.nodeId === st.cluster?.leader)?.url;
      if (url) return url;
    } catch {
      /* this node is down: ask the next */
    }
  }
  return endpoints[0]!;
}

export async function shard(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  const [op, ...args] = p.positionals;
  const t = clientTarget(p);
  const b64 = (s: string, what: string): string => Buffer.from(parseBytesArg(s, t.hex, what)).toString('base64url');
  let path: string;
  let method = 'POST';
  if ((op === 'split' || op === 'merge') && args.length === 1) path = `/v1/shard/${op}?key=${b64(args[0]!, 'key')}`;
  else if (op === 'move' && args.length === 2) {
    if (!/^\d+$/.test(args[1]!)) throw new UsageError(`WORKER must be a worker number, got ${JSON.stringify(args[1])}`, USAGE);
    path = `/v1/shard/move?begin=${b64(args[0]!, 'begin')}&to=${args[1]}`;
  } else if (op === 'map' && args.length === 0) {
    path = '/v1/shard/map';
    method = 'GET';
  } else throw new UsageError('txkv shard needs split KEY, merge KEY, move BEGIN WORKER or map', USAGE);
  const url = `${httpBase(op === 'map' ? t.endpoint : await leaderOf(t.endpoints, t.token, caOf(t)))}${path}`;
  let res;
  try {
    res = await httpRequest(url, { method, token: t.token, ca: caOf(t) });
  } catch (err) {
    process.stderr.write(`txkv shard ${op}: NETWORK_ERROR: ${(err as Error).message}\n`);
    return 1;
  }
  const body = answerJson<{ map?: MapJson; error?: { code: string; message: string }; move?: unknown; history?: unknown[] }>(res);
  if (res.status < 200 || res.status > 299) {
    process.stderr.write(`txkv shard ${op}: ${body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`}\n`);
    return 1;
  }
  if (p.flags.json) {
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
    return 0;
  }
  const key = (h: string | null): string => (h === null ? 'end' : h === '' ? '""' : formatBytes(Buffer.from(h, 'hex'), t.hex));
  const m = body.map!;
  process.stdout.write(`map version ${m.version}, ${m.workers} workers\n`);
  for (const r of m.ranges) {
    process.stdout.write(`  [${key(r.begin)}, ${key(r.end)})  worker ${r.owner}${r.prev ? `  (worker ${r.prev.owner} serves reads below version ${r.prev.until})` : ''}\n`);
  }
  if (body.move) process.stdout.write(`move: ${JSON.stringify(body.move)}\n`);
  if (body.history && body.history.length > 0) {
    process.stdout.write('recent:\n');
    for (const e of body.history.slice(-10)) process.stdout.write(`  ${JSON.stringify(e)}\n`);
  }
  return 0;
}
