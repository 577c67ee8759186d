// The HTTP API as an OpenAPI 3.1 document, served at GET /v1/openapi.json. It says
// what docs/http-api.md says; test/ops/http-docs.test.ts checks that every route of
// the table in http.ts is described here and in the document, and runs the
// document's curl examples.
const b64url = { type: 'string', pattern: '^[A-Za-z0-9_-]*$', description: 'bytes as canonical base64url (RFC 4648 §5, no padding)' };
const version = { type: 'string', pattern: '^[0-9]+$', description: 'a version (microseconds since the epoch, a 64-bit unsigned integer) as a decimal string' };

const errorResponse = (description: string): object => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

const COMMON_ERRORS = {
  '400': errorResponse('INVALID_ARGUMENT: a key that is not canonical base64url, an unknown query parameter or field, a bad value'),
  '401': errorResponse('UNAUTHORIZED: the server requires a token (Authorization: Bearer <token>) and none or a wrong one was given'),
  '429': errorResponse('THROTTLED: the server sheds load; retry later'),
  '503': errorResponse('RESOURCE_CONSTRAINED or UNAVAILABLE: retry later'),
};
const WRITE_ERRORS = {
  '403': errorResponse('UNAUTHORIZED with a read-only token, or READ_ONLY: the server is read-only'),
  '409': errorResponse('CONFLICT (a key read was written since the read version), TOO_OLD (the read version left the MVCC window), FUTURE_VERSION'),
  '413': errorResponse('KEY_TOO_LARGE (key over 10,000 bytes), VALUE_TOO_LARGE (value over 100,000 bytes), TRANSACTION_TOO_LARGE (over 10,000,000 bytes)'),
};

const keyParam = { name: 'key', in: 'path', required: true, schema: b64url, description: 'the key, canonical base64url (e.g. "greeting" is Z3JlZXRpbmc)' };
const kvResponse = {
  type: 'object',
  properties: { key: b64url, keyText: { type: 'string', description: 'the key as text, non-printable bytes as \\xNN' }, value: { oneOf: [b64url, { type: 'null' }] } },
  required: ['key', 'keyText', 'value'],
};
const commitResponse = {
  type: 'object',
  properties: { key: b64url, keyText: { type: 'string' }, commitVersion: version },
  required: ['key', 'keyText', 'commitVersion'],
};
const json = (schema: object): object => ({ 'application/json': { schema } });
const snapshot = {
  type: 'object',
  properties: { id: { type: 'string' }, readVersion: version, leaseMs: { type: 'integer' }, maxHistoryBytes: { type: 'integer' } },
  required: ['id', 'readVersion', 'leaseMs', 'maxHistoryBytes'],
};
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'txkv HTTP API',
    version: '1',
    description:
      'The HTTP API of txkv, on the same port as the WebSocket protocol. Keys and values are canonical base64url. ' +
      'Versions are decimal strings. Errors are {"error": {"code", "message"}}. See docs/http-api.md.',
  },
  servers: [{ url: 'http://127.0.0.1:7070' }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'auth.tokens (read-write) or auth.readOnlyTokens; only when the server has tokens' } },
    schemas: {
      Error: {
        type: 'object',
        properties: {
          error: {
            type: 'object',
            properties: {
              code: { type: 'string', description: "a txkv error code (errors.ts), or NOT_FOUND / METHOD_NOT_ALLOWED for an unknown path or method" },
              message: { type: 'string' },
            },
            required: ['code', 'message'],
          },
        },
        required: ['error'],
      },
      KeyValue: { type: 'object', properties: { key: b64url, value: b64url }, required: ['key', 'value'] },
      RangeResult: {
        type: 'object',
        properties: { kvs: { type: 'array', items: { $ref: '#/components/schemas/KeyValue' } }, hasMore: { type: 'boolean', description: 'true when rows past the last one exist (the limit or the 1 MiB page cut it)' } },
        required: ['kvs', 'hasMore'],
      },
    },
  },
  security: [{}, { bearer: [] }],
  paths: {
    '/v1/kv/{key}': {
      get: {
        summary: 'Read one key at the latest version',
        parameters: [keyParam],
        responses: { '200': { description: 'the value', content: json(kvResponse) }, '404': { description: 'no such key: value is null', content: json(kvResponse) }, '413': WRITE_ERRORS['413'], ...COMMON_ERRORS },
      },
      put: {
        summary: 'Write one key (one transaction)',
        parameters: [keyParam],
        requestBody: { required: true, description: 'the value: the raw request body bytes (not base64)', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        responses: { '200': { description: 'committed', content: json(commitResponse) }, ...WRITE_ERRORS, ...COMMON_ERRORS },
      },
      delete: {
        summary: 'Clear one key (one transaction); clearing an absent key succeeds',
        parameters: [keyParam],
        responses: { '200': { description: 'committed', content: json(commitResponse) }, ...WRITE_ERRORS, ...COMMON_ERRORS },
      },
    },
    '/v1/range': {
      get: {
        summary: 'Read the rows of [begin, end) at the latest version, in key order',
        parameters: [
          { name: 'begin', in: 'query', schema: b64url, description: 'first key (inclusive); default: the empty key' },
          { name: 'end', in: 'query', schema: b64url, description: 'end key (exclusive); default: \\xff, the end of the user keyspace; empty: 400 (a range ending at the empty key holds nothing)' },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'most rows; 0 or absent = 1,000 (the page size of the SDK and the CLI)' },
          { name: 'reverse', in: 'query', schema: { type: 'string', enum: ['true', 'false'] }, description: 'from the end down' },
        ],
        responses: { '200': { description: 'rows', content: json({ $ref: '#/components/schemas/RangeResult' }) }, '413': WRITE_ERRORS['413'], ...COMMON_ERRORS },
      },
    },
    '/v1/txn': {
      post: {
        summary: 'Reads and writes committed atomically (optimistic: reads guard the commit against conflicts)',
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            properties: {
              readVersion: { ...version, description: 'read at this version (default: a fresh one)' },
              reads: {
                type: 'array',
                maxItems: 1000,
                description: 'at most 1,000 (more: 413 TRANSACTION_TOO_LARGE); the range reads share about 1 MiB of rows',
                items: {
                  oneOf: [
                    { type: 'object', additionalProperties: false, required: ['key'], properties: { key: b64url, snapshot: { type: 'boolean' } } },
                    {
                      type: 'object',
                      additionalProperties: false,
                      properties: { begin: b64url, end: b64url, limit: { type: 'integer', minimum: 0 }, reverse: { type: 'boolean' }, snapshot: { type: 'boolean' } },
                    },
                  ],
                },
              },
              writes: {
                type: 'array',
                items: {
                  oneOf: [
                    { type: 'object', additionalProperties: false, required: ['op', 'key', 'value'], properties: { op: { const: 'set' }, key: b64url, value: b64url } },
                    { type: 'object', additionalProperties: false, required: ['op', 'key'], properties: { op: { const: 'clear' }, key: b64url } },
                    { type: 'object', additionalProperties: false, required: ['op', 'begin', 'end'], properties: { op: { const: 'clearRange' }, begin: b64url, end: b64url } },
                  ],
                },
              },
            },
          }),
        },
        responses: {
          '200': {
            description: 'committed (commitVersion "-1" when nothing was written)',
            content: json({
              type: 'object',
              properties: {
                readVersion: version,
                results: { type: 'array', items: { oneOf: [{ type: 'object', properties: { key: b64url, value: { oneOf: [b64url, { type: 'null' }] } } }, { $ref: '#/components/schemas/RangeResult' }] } },
                commitVersion: { type: 'string', pattern: '^(-1|[0-9]+)$' },
              },
              required: ['readVersion', 'results', 'commitVersion'],
            }),
          },
          ...WRITE_ERRORS,
          ...COMMON_ERRORS,
        },
      },
    },
    '/v1/snapshots': {
      post: {
        summary: 'Pin a read version (a long consistent read, e.g. a backup); renew within leaseMs; dropped past the memory budget',
        responses: { '200': { description: 'the snapshot', content: json(snapshot) }, ...COMMON_ERRORS },
      },
      get: { summary: 'Snapshots held now', responses: { '200': { description: 'list', content: json({ type: 'object', properties: { snapshots: { type: 'array', items: snapshot } } }) } } },
    },
    '/v1/snapshots/{id}/renew': {
      post: {
        summary: 'Renew a snapshot lease',
        parameters: [idParam],
        responses: { '200': { description: 'renewed', content: json(snapshot) }, '404': errorResponse('NOT_FOUND: no such snapshot'), '410': errorResponse('GONE: released, or dropped (lease ran out, memory budget)') },
      },
    },
    '/v1/snapshots/{id}': {
      delete: {
        summary: 'Release a snapshot',
        parameters: [idParam],
        responses: { '200': { description: 'released', content: json({ type: 'object', properties: { id: { type: 'string' }, released: { type: 'boolean' } } }) }, '410': errorResponse('GONE') },
      },
    },
    '/v1/status': {
      get: {
        summary: 'Server status: versions (decimal strings), shards, rates, latency, storage, recovery (needs a token with auth.protectStatus)',
        responses: { '200': { description: 'status', content: json({ type: 'object' }) }, '401': COMMON_ERRORS['401'] },
      },
    },
    '/v1/metrics.json': {
      get: { summary: 'The last five minutes, one point per second (rates, latency percentiles), for the dashboard', responses: { '200': { description: 'series', content: json({ type: 'object' }) } } },
    },
    '/metrics': {
      get: { summary: 'Prometheus text exposition', responses: { '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } } },
    },
    '/v1/openapi.json': {
      get: { summary: 'This document', security: [{}], responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } },
    },
    '/': {
      get: { summary: 'The dashboard (HTML); /dashboard/uPlot.iife.min.js and /dashboard/uPlot.min.css are its files', security: [{}], responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } },
    },
  },
};
