// The client SDK alone (browser-safe): `txkv/client`.
export { connect, type ConnectOptions, type Database, type TransactOptions } from './database.js';
export type { AtomicOp, KeySelector, KeyValue, RangeOptions, RangeResult, ReadTransaction, Transaction } from './transaction.js';
export { shouldRetry } from './retry.js';
export type { Watch, ChangeFeedVersion, SubscribeOptions } from './live.js';
export { TxnError, CODES, type TxnErrorCode } from '../errors.js';
