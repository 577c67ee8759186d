// The request ids a connection has in flight on the server (socket.ts, gateway-worker.ts),
// so a second request under an id still in flight is refused instead of getting a second
// reply under it (docs/protocol.md: ids are unique among a connection's requests in flight).

/** A random odd multiplier per process: the client chooses the ids, so it must not be able to choose colliding ones. */
const MULTIPLIER = (Math.floor(Math.random() * 0x80000000) * 2 + 1) | 0;

/**
 * A set of request ids (1..2^32-1; 0 is reserved and never stored): open addressing with
 * linear probing over one Uint32Array, slots by multiply-shift hashing with MULTIPLIER,
 * backward-shift deletion; grows to keep at most half of its slots used, never shrinks.
 *
 * Not a Set: every request adds an id and its reply deletes it, the churn that chains a
 * Map's or Set's rehashed tables and keeps them alive through scavenges (see
 * client/id-table.ts). Not the client's IdTable either: that one places ids by their low
 * bits, fine for the ids it makes itself, but a client choosing ids equal in their low
 * bits (multiples of 65,536) would make every lookup walk every id in flight.
 */
export class InflightIds {
  private ids = new Uint32Array(64);
  /** 32 - log2(slots): the top bits of the product pick the slot. */
  private shift = 26;
  private mask = 63;
  size = 0;

  private home(id: number): number {
    return Math.imul(id, MULTIPLIER) >>> this.shift;
  }

  has(id: number): boolean {
    const ids = this.ids;
    for (let i = this.home(id); ; i = (i + 1) & this.mask) {
      const k = ids[i]!;
      if (k === id) return true;
      if (k === 0) return false;
    }
  }

  /** Adds `id` (1..2^32-1); false when it is already in the set (nothing changes). */
  add(id: number): boolean {
    if ((this.size + 1) * 2 > this.ids.length) this.grow();
    const ids = this.ids;
    let i = this.home(id);
    for (; ids[i] !== 0; i = (i + 1) & this.mask) if (ids[i] === id) return false;
    ids[i] = id;
    this.size++;
    return true;
  }

  delete(id: number): void {
    const ids = this.ids;
    const mask = this.mask;
    let i = this.home(id);
    for (; ids[i] !== id; i = (i + 1) & mask) if (ids[i] === 0) return;
    // backward-shift deletion: move up each later entry of the run that may sit in the hole
    for (let j = (i + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = this.home(ids[j]!);
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      ids[i] = ids[j]!;
      i = j;
    }
    ids[i] = 0;
    this.size--;
  }

  private grow(): void {
    const old = this.ids;
    this.ids = new Uint32Array(old.length * 2);
    this.mask = this.ids.length - 1;
    this.shift--;
    this.size = 0;
    for (let i = 0; i < old.length; i++) if (old[i] !== 0) this.add(old[i]!);
  }
}

/** The PROTOCOL_ERROR message (under request id 0) for a request whose id is already in flight on its connection. */
export function duplicateIdMessage(requestId: number, type: string): string {
  return `request id ${requestId} is already in flight on this connection: this ${type} request was not run (requests in flight need distinct ids)`;
}

/** Requests that are answered (so hold their id until then); subscribeAck and cancel have no reply of their own. */
export function holdsId(type: string): boolean {
  return type !== 'subscribeAck' && type !== 'cancel';
}
