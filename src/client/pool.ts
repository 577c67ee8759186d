// A small pool of connections over the cluster endpoints. Each slot reconnects on
// demand with exponential backoff after its socket drops; transactions pick slots
// round-robin, so one slow or broken connection does not hold up the others.
import { TxnError } from '../errors.js';
import { Connection, type TlsOptions } from './connection.js';
import { backoffMs } from './retry.js';

interface Slot {
  conn: Connection | null;
  connecting: Promise<Connection> | null;
  failures: number;
  notBefore: number;
  endpoint: number;
}

export class ConnectionPool {
  private readonly slots: Slot[];
  private next = 0;
  private closed = false;
  /** The database the first handshake named, and where: every endpoint must name the same. */
  private database: { id: string; url: string } | null = null;

  constructor(
    private readonly endpoints: string[],
    private readonly token: string | undefined,
    size: number,
    private readonly connectTimeoutMs: number,
    private readonly tls: TlsOptions = {},
  ) {
    if (endpoints.length === 0) throw new TxnError('INVALID_ARGUMENT', 'connect() needs at least one endpoint');
    this.slots = Array.from({ length: Math.max(1, size) }, (_, i) => ({ conn: null, connecting: null, failures: 0, notBefore: 0, endpoint: i % endpoints.length }));
  }

  /** Opens every slot; succeeds when at least one connects. */
  async start(): Promise<void> {
    const results = await Promise.allSettled(this.slots.map((s) => this.connectAny(s)));
    // endpoints of different databases are an error even when some connected
    const mixed = results.find((r) => r.status === 'rejected' && r.reason instanceof TxnError && r.reason.code === 'INVALID_ARGUMENT');
    if (mixed) {
      this.close();
      throw (mixed as PromiseRejectedResult).reason;
    }
    const ok = results.some((r) => r.status === 'fulfilled');
    if (!ok) {
      const first = results[0] as PromiseRejectedResult;
      throw first.reason instanceof TxnError ? first.reason : new TxnError('NETWORK_ERROR', String(first.reason));
    }
  }

  /**
   * Connects the slot to its endpoint or, when that fails, to each other endpoint in turn
   * at once (no backoff between them; the backoff after the last failure stays). With one
   * slot (connectionPoolSize 1, as the CLI uses) a node that was down failed connect()
   * and every call while the other nodes answered.
   */
  private async connectAny(slot: Slot, tried = 0): Promise<Connection> {
    let first: unknown = null;
    for (let i = tried; i < this.endpoints.length; i++) {
      try {
        return await this.connect(slot, i > 0);
      } catch (err) {
        // endpoints of different databases, or a closed handle: no other endpoint helps
        if (this.closed || (err instanceof TxnError && err.code === 'INVALID_ARGUMENT')) throw err;
        first ??= err;
      }
    }
    throw first;
  }

  private connect(slot: Slot, now = false): Promise<Connection> {
    if (slot.connecting) return slot.connecting;
    const wait = now ? 0 : Math.max(0, slot.notBefore - Date.now());
    const url = this.endpoints[slot.endpoint]!;
    slot.connecting = (async () => {
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.closed) throw new TxnError('NETWORK_ERROR', 'the database handle is closed');
      try {
        const c = await Connection.open(url, this.token, this.connectTimeoutMs, this.tls);
        if (c.databaseId !== '') {
          this.database ??= { id: c.databaseId, url };
          if (c.databaseId !== this.database.id) {
            c.close();
            throw new TxnError(
              'INVALID_ARGUMENT',
              `endpoints of different databases: ${this.database.url} serves database ${this.database.id} but ${url} serves database ${c.databaseId}; ` +
                'list only the endpoints of one database (one server or one cluster)',
            );
          }
        }
        slot.conn = c;
        slot.failures = 0;
        return c;
      } catch (err) {
        slot.failures++;
        slot.notBefore = Date.now() + 50 + backoffMs(slot.failures, Math.random, 50, 2000);
        slot.endpoint = (slot.endpoint + 1) % this.endpoints.length; // try the next endpoint next time
        throw err;
      } finally {
        slot.connecting = null;
      }
    })();
    return slot.connecting;
  }

  /** A live connection: the next slot in turn, reconnecting it if needed; any live slot if that fails. */
  async get(): Promise<Connection> {
    if (this.closed) throw new TxnError('NETWORK_ERROR', 'the database handle is closed');
    const slot = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    if (slot.conn?.alive) return slot.conn;
    try {
      return await this.connect(slot);
    } catch (err) {
      const other = this.slots.find((s) => s.conn?.alive);
      if (other) return other.conn!;
      if (this.closed || (err instanceof TxnError && err.code === 'INVALID_ARGUMENT')) throw err;
      // no live slot: the other endpoints, before failing the call (the first error is the one reported)
      return this.connectAny(slot, 1).catch(() => Promise.reject(err));
    }
  }

  close(): void {
    this.closed = true;
    for (const s of this.slots) s.conn?.close();
  }
}
