// txkv's public entry: connect (the client SDK), startServer (the same server as
// `txkv serve`, in-process) and TxnError. Nothing more.
export { connect, type ConnectOptions, type Database, type TransactOptions } from './client/database.js';
export { connectFromConfigFile } from './client/config-file.js';
export type { AtomicOp, KeySelector, KeyValue, RangeOptions, RangeResult, ReadTransaction, Transaction } from './client/transaction.js';
export { TxnError, CODES, type TxnErrorCode } from './errors.js';
export type { Watch, ChangeFeedVersion, SubscribeOptions } from './client/live.js';
export { startServer, type RunningServer } from './server/start-server.js';
export type { ServerConfig, PartialServerConfig } from './config/server-config.js';
