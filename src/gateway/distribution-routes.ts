// Operator routes of data distribution (coordinator/distribution.ts, docs/distribution.md):
//   POST /v1/shard/split?key=        add a range boundary at key (no data moves)
//   POST /v1/shard/merge?key=        remove the boundary at key (both sides on one worker)
//   POST /v1/shard/move?begin=&to=   move the range beginning at begin to worker `to` (online)
//   GET  /v1/shard/map               the map, the move in progress, counters and recent events
// Keys are base64url (no padding), as everywhere in the HTTP API. Changes need a write token.
import { TxnError } from '../errors.js';
import { checkKeySize } from '../keys/limits.js';
import { decodeBase64url, type Route } from './http.js';

/** A boundary is a key: over the key limit it could never be written, and every map change and status would carry it. */
function boundary(query: URLSearchParams, name: string): Uint8Array {
  const key = decodeBase64url(query.get(name) ?? '', name);
  checkKeySize(key, name);
  return key;
}

export const DISTRIBUTION_ROUTES: Route[] = [
  {
    method: 'POST',
    path: '/v1/shard/split',
    query: ['key'],
    access: 'write',
    handler: async ({ c, query }) => {
      await c.distribution.split(boundary(query, 'key'));
      return { body: { map: c.distribution.map.toJSON() } };
    },
  },
  {
    method: 'POST',
    path: '/v1/shard/merge',
    query: ['key'],
    access: 'write',
    handler: async ({ c, query }) => {
      await c.distribution.merge(boundary(query, 'key'));
      return { body: { map: c.distribution.map.toJSON() } };
    },
  },
  {
    method: 'POST',
    path: '/v1/shard/move',
    query: ['begin', 'to'],
    access: 'write',
    handler: async ({ c, query }) => {
      const to = query.get('to') ?? '';
      if (!/^\d+$/.test(to)) throw new TxnError('INVALID_ARGUMENT', `to must be a worker number, got ${JSON.stringify(to)}`);
      const move = await c.distribution.move(boundary(query, 'begin'), Number(to));
      return { body: { move, map: c.distribution.map.toJSON() } };
    },
  },
  {
    method: 'GET',
    path: '/v1/shard/map',
    access: 'status',
    handler: async ({ c }) => {
      const d = c.distribution;
      return { body: { map: d.map.toJSON(), move: d.moveInProgress, counters: d.counters, history: d.history } };
    },
  },
];
