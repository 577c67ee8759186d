// Messages between the main thread and the gateway threads (gateway-threads.ts on the
// main thread, gateway-worker.ts on each gateway thread). Every direction sends one
// message per event-loop turn with everything of the turn in arrays.
import type { MessagePort } from 'node:worker_threads';
import type { LimitsConfig } from '../config/server-config.js';
import type { CommitInput } from '../coordinator/commit-plan.js';
import type { ShardMapJson } from '../coordinator/shard-map.js';
import type { WireError } from '../errors.js';
import type { RequestBody } from '../protocol/codec.js';

export interface GatewayWorkerInit {
  /** 0-based; also the low bits of the thread's shard request ids (shard/interface.ts GATEWAY_ID_SPAN). */
  thread: number;
  limits: LimitsConfig;
  /** The admission counters every thread shares (limits.ts). */
  admission: SharedArrayBuffer;
  /** One port per shard, for point and range reads. */
  shardPorts: MessagePort[];
  map: ShardMapJson;
  slowTransactionMs: number;
}

/** A frame of a connection that finished its Hello; its bytes are held in the admission budget (`held`) until its last request is answered. */
export interface FrameIn {
  conn: number;
  /** The connection's token: 'read' refuses commits that write. */
  access: 'read' | 'write';
  /** Bytes uWS could not send to this connection yet, when the frame arrived. */
  backpressure: number;
  buf: ArrayBuffer;
  held: number;
}

/** Main thread -> gateway thread. */
export interface ToGateway {
  frames?: FrameIn[];
  /** Connections closed since the last message. */
  closed?: number[];
  /**
   * [conn, bytes]: what uWS now holds unsent for these connections (it changed since the
   * last frame or update), so a frame's later rounds of point reads are granted against it.
   */
  unsent?: [number, number][];
  /** [conn, request id]: watches and feeds the main thread ended (their ids may be used again); before `frames`. */
  liveDone?: [number, number][];
  answers?: Answer[];
  /** The oracle's readable version when the answers were sent: reads at or below it need not ask. */
  readable?: number;
  /** A new shard map (the distribution published it). */
  map?: ShardMapJson;
  /** Shutting down: answer what is in flight (bounded), then say 'drained'. */
  drain?: boolean;
  /** Send the counters now (GET /v1/status, /metrics): answered with `reported`. */
  report?: boolean;
}

export type Call =
  | { id: number; k: 'grv' }
  | { id: number; k: 'commit'; input: CommitInput }
  /** A read at version `v` above the readable version this thread knows: is it readable (waiting up to `ms`)? */
  | { id: number; k: 'wait'; v: number; ms: number }
  /** The current shard map (a shard refused a read routed by an older one). */
  | { id: number; k: 'map' };

export interface Answer {
  id: number;
  error?: WireError;
  /** grv: the read version; wait: 1 readable, 0 not. */
  v?: number;
  /** commit */
  commit?: { commitVersion: number; versionstamp: Uint8Array };
  map?: ShardMapJson;
}

/** A reply frame for a connection; `bytes` of reply values are held in the budget until it is handed to uWS. */
export interface FrameOut {
  conn: number;
  buf: ArrayBuffer;
  bytes: number;
  /** Close the connection (1009) with this reason once the frame is sent: it sent a frame past a per-frame limit. */
  close?: string;
}

/** A watch, subscription, its acknowledgement or a cancel: connection-bound, served on the main thread (live-requests.ts). */
export interface LiveIn {
  conn: number;
  requestId: number;
  body: RequestBody;
}

/** Per-request counters since the previous report (request-metrics.ts fields). */
export interface MetricsDelta {
  get: { counts: number[]; sum: number; count: number };
  range: { counts: number[]; sum: number; count: number };
  commit: { counts: number[]; sum: number; count: number };
  transactionsStarted: number;
  bytesIn: number;
  bytesOut: number;
  inflight: number;
  errors: Record<string, number>;
}

/** Gateway thread -> main thread. */
export interface FromGateway {
  /** Sent once, at start: this thread's id in /proc. */
  tid?: number | null;
  frames?: FrameOut[];
  calls?: Call[];
  live?: LiveIn[];
  metrics?: MetricsDelta;
  /** Totals of this thread: frames decoded, requests served. */
  counts?: { frames: number; requests: number };
  log?: { obj: object; msg: string }[];
  drained?: boolean;
  /** The counters asked for by `report` are in this message. */
  reported?: boolean;
}
