// Golden wire vectors shared with the C++ client (format contract: test/vectors/README.md).
// The TypeScript side writes `<name>.bin` + `.json` from the catalog below and decodes the
// C++ side's `cpp_<name>.bin`; both must decode to what the sidecars say.
// TXKV_WRITE_VECTORS=1 npx vitest run test/unit/protocol/vectors.test.ts rewrites the TS vectors.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeReplies,
  decodeRequests,
  encodeReplies,
  encodeRequests,
  type Envelope,
  type ReplyBody,
  type RequestBody,
  type UnknownBody,
  type RefusedBody,
} from '../../../src/protocol/codec.js';

const DIR = path.resolve(__dirname, '../../vectors');
const RV = '1700000000123456';
const MUTATION_TYPES = [
  'Set',
  'Clear',
  'ClearRange',
  'SetVersionstampedKey',
  'SetVersionstampedValue',
  'Add',
  'BitAnd',
  'BitOr',
  'BitXor',
  'Max',
  'Min',
  'ByteMax',
  'ByteMin',
  'AppendIfFits',
  'CompareAndClear',
];
const ATOMIC_VECTOR: [string, string][] = [
  ['Add', '0100000000000000'],
  ['BitAnd', '0f'],
  ['BitOr', 'f0'],
  ['BitXor', 'ff'],
  ['Max', '02'],
  ['Min', '01'],
  ['ByteMax', '7a'],
  ['ByteMin', '61'],
  ['AppendIfFits', '2b'],
  ['CompareAndClear', '78'],
];
const REQUEST_TYPES = new Set(['HelloRequest', 'GetReadVersionRequest', 'GetRequest', 'GetRangeRequest', 'CommitRequest']);

type Json = Record<string, unknown>;
interface CanonEnvelope {
  request_id: number;
  body_type: string;
  body: Json;
}

const hex = (u: Uint8Array | null | undefined): string => (u ? Buffer.from(u).toString('hex') : '');
const unhex = (s: unknown): Uint8Array => new Uint8Array(Buffer.from(String(s), 'hex'));

/** The vectors of the README's table, in canonical JSON. */
const CATALOG: Record<string, CanonEnvelope[]> = {
  hello_request: [{ request_id: 1, body_type: 'HelloRequest', body: { protocol_version: 1, token: 'secret-token', client_name: 'vectors' } }],
  hello_reply: [{ request_id: 1, body_type: 'HelloReply', body: { protocol_version: 1, server_version: '0.1.0', read_only: false } }],
  hello_reply_read_only: [{ request_id: 1, body_type: 'HelloReply', body: { protocol_version: 1, server_version: '0.1.0', read_only: true } }],
  get_read_version_request: [{ request_id: 2, body_type: 'GetReadVersionRequest', body: {} }],
  get_read_version_reply: [{ request_id: 2, body_type: 'GetReadVersionReply', body: { read_version: RV } }],
  get_read_version_reply_big: [{ request_id: 4294967295, body_type: 'GetReadVersionReply', body: { read_version: '9007199254740993' } }],
  get_request: [{ request_id: 3, body_type: 'GetRequest', body: { read_version: RV, key: '0001ff6b' } }],
  get_reply_present: [{ request_id: 3, body_type: 'GetReply', body: { present: true, value: '76616c756500ff' } }],
  get_reply_absent: [{ request_id: 4, body_type: 'GetReply', body: { present: false, value: '' } }],
  get_reply_empty_value: [{ request_id: 5, body_type: 'GetReply', body: { present: true, value: '' } }],
  get_range_request: [
    {
      request_id: 6,
      body_type: 'GetRangeRequest',
      body: { read_version: RV, begin_key: '61', begin_inclusive: false, end_key: '7aff', end_inclusive: true, limit: 10, reverse: true },
    },
  ],
  get_range_request_defaults: [
    {
      request_id: 6,
      body_type: 'GetRangeRequest',
      body: { read_version: RV, begin_key: '61', begin_inclusive: true, end_key: '62', end_inclusive: false, limit: 0, reverse: false },
    },
  ],
  get_range_reply: [
    { request_id: 6, body_type: 'GetRangeReply', body: { kvs: [{ key: '61', value: '31' }, { key: '6200', value: '' }], has_more: true } },
  ],
  get_range_reply_empty: [{ request_id: 6, body_type: 'GetRangeReply', body: { kvs: [], has_more: false } }],
  commit_request: [
    {
      request_id: 7,
      body_type: 'CommitRequest',
      body: {
        read_version: RV,
        read_conflicts: [
          { begin: '6b31', end: '6b3100' },
          { begin: '61', end: '62' },
        ],
        mutations: [
          { type: 'ClearRange', key: '61', param: '62', offset: 0 },
          { type: 'Set', key: '6b', param: '76', offset: 0 },
          { type: 'Clear', key: '78', param: '', offset: 0 },
          { type: 'SetVersionstampedKey', key: '70' + '00'.repeat(10) + '71', param: '76616c', offset: 1 },
          { type: 'SetVersionstampedValue', key: 'ff2f6d6574616461746156657273696f6e', param: '00'.repeat(10), offset: 0 },
        ],
      },
    },
  ],
  commit_request_atomic: [
    {
      request_id: 7,
      body_type: 'CommitRequest',
      body: { read_version: RV, read_conflicts: [], mutations: ATOMIC_VECTOR.map(([type, param]) => ({ type, key: '63', param, offset: 0 })) },
    },
  ],
  commit_reply: [{ request_id: 7, body_type: 'CommitReply', body: { commit_version: '1700000000123457', versionstamp: '00060a4b9b3d16410000' } }],
  error_reply: [{ request_id: 8, body_type: 'ErrorReply', body: { code: 'CONFLICT', message: 'read set overwritten' } }],
  error_reply_unparsable_frame: [{ request_id: 0, body_type: 'ErrorReply', body: { code: 'PROTOCOL_ERROR', message: 'cannot parse frame' } }],
  batch_frame: [
    { request_id: 10, body_type: 'GetReadVersionRequest', body: {} },
    { request_id: 11, body_type: 'GetRequest', body: { read_version: RV, key: '6b' } },
    {
      request_id: 12,
      body_type: 'GetRangeRequest',
      body: { read_version: RV, begin_key: '61', begin_inclusive: true, end_key: '62', end_inclusive: false, limit: 0, reverse: false },
    },
  ],
  batch_replies: [
    { request_id: 12, body_type: 'GetRangeReply', body: { kvs: [{ key: '61', value: '31' }], has_more: false } },
    { request_id: 10, body_type: 'GetReadVersionReply', body: { read_version: RV } },
    { request_id: 11, body_type: 'ErrorReply', body: { code: 'TOO_OLD', message: 'read version too old' } },
  ],
  utf8_strings: [{ request_id: 1, body_type: 'HelloRequest', body: { protocol_version: 1, token: 'tést-✓', client_name: 'cli鍵' } }],
};

/** Canonical JSON -> the codec's message (for encoding). */
function toBody(e: CanonEnvelope): RequestBody | ReplyBody {
  const b = e.body;
  switch (e.body_type) {
    case 'HelloRequest':
      return { type: 'hello', protocolVersion: Number(b.protocol_version), token: String(b.token), clientName: String(b.client_name) };
    case 'HelloReply':
      return { type: 'hello', protocolVersion: Number(b.protocol_version), serverVersion: String(b.server_version), readOnly: Boolean(b.read_only), databaseId: String(b.database_id ?? ''), getMany: Boolean(b.get_many), nodeId: String(b.node_id ?? '') };
    case 'GetReadVersionRequest':
      return { type: 'grv' };
    case 'GetReadVersionReply':
      return { type: 'grv', readVersion: BigInt(String(b.read_version)) };
    case 'GetRequest':
      return { type: 'get', readVersion: BigInt(String(b.read_version)), key: unhex(b.key) };
    case 'GetReply':
      return { type: 'get', value: b.present ? unhex(b.value) : null };
    case 'GetRangeRequest':
      return {
        type: 'range',
        readVersion: BigInt(String(b.read_version)),
        beginKey: unhex(b.begin_key),
        beginInclusive: Boolean(b.begin_inclusive),
        endKey: unhex(b.end_key),
        endInclusive: Boolean(b.end_inclusive),
        limit: Number(b.limit),
        reverse: Boolean(b.reverse),
      };
    case 'GetRangeReply':
      return { type: 'range', kvs: (b.kvs as Json[]).flatMap((kv) => [unhex(kv.key), unhex(kv.value)]), hasMore: Boolean(b.has_more) };
    case 'CommitRequest':
      return {
        type: 'commit',
        readVersion: BigInt(String(b.read_version)),
        readConflicts: (b.read_conflicts as Json[]).map((r) => ({ begin: unhex(r.begin), end: unhex(r.end) })),
        mutations: (b.mutations as Json[]).map((m) => ({ type: MUTATION_TYPES.indexOf(String(m.type)), key: unhex(m.key), param: unhex(m.param), offset: Number(m.offset) })),
      };
    case 'CommitReply':
      return { type: 'commit', commitVersion: BigInt(String(b.commit_version)), versionstamp: unhex(b.versionstamp) };
    case 'ErrorReply':
      return { type: 'error', code: String(b.code), message: String(b.message) };
  }
  throw new Error(`unknown body_type ${e.body_type}`);
}

/** The codec's decoded message -> canonical JSON. */
function toCanon(env: Envelope<RequestBody | ReplyBody | UnknownBody | RefusedBody>, isRequest: boolean): CanonEnvelope {
  const b = env.body;
  const out = (body_type: string, body: Json): CanonEnvelope => ({ request_id: env.requestId, body_type, body });
  switch (b.type) {
    case 'hello':
      return 'token' in b
        ? out('HelloRequest', { protocol_version: b.protocolVersion, token: b.token, client_name: b.clientName })
        : out('HelloReply', { protocol_version: b.protocolVersion, server_version: b.serverVersion, read_only: b.readOnly });
    case 'grv':
      return 'readVersion' in b ? out('GetReadVersionReply', { read_version: String(b.readVersion) }) : out('GetReadVersionRequest', {});
    case 'get':
      return isRequest
        ? out('GetRequest', { read_version: String((b as { readVersion: bigint }).readVersion), key: hex((b as { key: Uint8Array }).key) })
        : out('GetReply', { present: (b as { value: Uint8Array | null }).value !== null, value: hex((b as { value: Uint8Array | null }).value) });
    case 'range':
      if ('beginKey' in b) {
        return out('GetRangeRequest', {
          read_version: String(b.readVersion),
          begin_key: hex(b.beginKey),
          begin_inclusive: b.beginInclusive,
          end_key: hex(b.endKey),
          end_inclusive: b.endInclusive,
          limit: b.limit,
          reverse: b.reverse,
        });
      } else {
        const kvs: Json[] = [];
        for (let i = 0; i + 1 < b.kvs.length; i += 2) kvs.push({ key: hex(b.kvs[i]), value: hex(b.kvs[i + 1]) });
        return out('GetRangeReply', { kvs, has_more: b.hasMore });
      }
    case 'commit':
      if ('mutations' in b) {
        return out('CommitRequest', {
          read_version: String(b.readVersion),
          read_conflicts: b.readConflicts.map((r) => ({ begin: hex(r.begin), end: hex(r.end) })),
          mutations: b.mutations.map((m) => ({ type: MUTATION_TYPES[m.type], key: hex(m.key), param: hex(m.param), offset: m.offset })),
        });
      }
      return out('CommitReply', { commit_version: String(b.commitVersion), versionstamp: hex(b.versionstamp) });
    case 'error':
      return out('ErrorReply', { code: b.code, message: b.message });
    case 'unknown':
      return out(`unknown(${b.bodyType})`, {});
    case 'refused':
      return out(`refused(${b.code})`, { message: b.message });
  }
  throw new Error(`no canonical form for body type ${(b as { type: string }).type}`);
}

const isRequestVector = (envs: CanonEnvelope[]): boolean => REQUEST_TYPES.has(envs[0]!.body_type);

function decodeCanon(bin: Uint8Array, isRequest: boolean): CanonEnvelope[] {
  return isRequest ? decodeRequests(bin).map((e) => toCanon(e, true)) : decodeReplies(bin).map((e) => toCanon(e, false));
}

describe('golden vectors: TypeScript side', () => {
  if (process.env.TXKV_WRITE_VECTORS === '1') {
    for (const [name, envs] of Object.entries(CATALOG)) {
      const frame = isRequestVector(envs)
        ? encodeRequests(envs.map((e) => ({ requestId: e.request_id, body: toBody(e) as RequestBody })))
        : encodeReplies(envs.map((e) => ({ requestId: e.request_id, body: toBody(e) as ReplyBody })));
      fs.writeFileSync(path.join(DIR, `${name}.bin`), frame);
      fs.writeFileSync(path.join(DIR, `${name}.json`), JSON.stringify({ name, description: 'written by the TypeScript codec', envelopes: envs }, null, 2) + '\n');
    }
  }

  it.each(Object.keys(CATALOG))('%s.bin (written by TypeScript) decodes to the catalog', (name) => {
    const envs = CATALOG[name]!;
    const bin = new Uint8Array(fs.readFileSync(path.join(DIR, `${name}.bin`)));
    expect(decodeCanon(bin, isRequestVector(envs))).toEqual(envs);
    const side = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.json`), 'utf8')) as { envelopes: CanonEnvelope[] };
    expect(side.envelopes).toEqual(envs);
  });

  it.each(Object.keys(CATALOG))('cpp_%s.bin (written by C++) decodes to its sidecar and the catalog', (name) => {
    const file = path.join(DIR, `cpp_${name}.bin`);
    const envs = CATALOG[name]!;
    const bin = new Uint8Array(fs.readFileSync(file));
    const side = JSON.parse(fs.readFileSync(path.join(DIR, `cpp_${name}.json`), 'utf8')) as { envelopes: CanonEnvelope[] };
    const decoded = decodeCanon(bin, isRequestVector(envs));
    expect(decoded).toEqual(side.envelopes);
    expect(decoded).toEqual(envs);
  });
});
