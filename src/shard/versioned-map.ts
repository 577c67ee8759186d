// Sorted maps from keys to versions with the maximum version of every subtree kept in
// its root, so "what is the newest version written anywhere in [b, e)?" costs
// O(log n) whatever the number of keys in the range, and "which keys of [b, e) were
// written after v?" costs O(log n) per key found (subtrees whose max is <= v are
// skipped whole). The idea is FoundationDB's resolver skip list with a max version per
// level; this is a treap (a binary search tree balanced by random priorities), which
// gives the same bounds in expectation with less code. Pure: no RocksDB, no thread.
//
// Keys are latin-1 key strings (keys/bytes.ts keyString), compared with < as bytes are.

interface Node {
  key: string;
  ver: number;
  /** Max of ver over this subtree. */
  max: number;
  pri: number;
  l: Node | null;
  r: Node | null;
  /** Parent (null at the root): an update found by hash walks up instead of descending by key. */
  p: Node | null;
  /** What the owner attached to the key (upsert); undefined for keys set by set(). */
  data: unknown;
}

/** Recomputes t.max from its children, and points the children back at t. */
function pull(t: Node): Node {
  let m = t.ver;
  const l = t.l;
  const r = t.r;
  if (l) {
    l.p = t;
    if (l.max > m) m = l.max;
  }
  if (r) {
    r.p = t;
    if (r.max > m) m = r.max;
  }
  t.max = m;
  return t;
}

// split's two results (no array per call: split runs once per level of the tree)
let splitLeft: Node | null = null;
let splitRight: Node | null = null;

/** Splits t into splitLeft (keys < key) and splitRight (keys >= key); their roots' parents are stale. */
function split(t: Node | null, key: string): void {
  if (!t) {
    splitLeft = null;
    splitRight = null;
    return;
  }
  if (t.key < key) {
    split(t.r, key);
    t.r = splitLeft;
    splitLeft = pull(t);
  } else {
    split(t.l, key);
    t.l = splitRight;
    splitRight = pull(t);
  }
}

/** Inserts a node whose key is not in t; the result's parent is the caller's to set. */
function insert(t: Node | null, n: Node): Node {
  if (!t) return n;
  if (n.pri > t.pri) {
    split(t, n.key);
    n.l = splitLeft;
    n.r = splitRight;
    return pull(n);
  }
  if (n.key < t.key) (t.l = insert(t.l, n)).p = t;
  else (t.r = insert(t.r, n)).p = t;
  if (n.max > t.max) t.max = n.max;
  return t;
}

/** Every key of a is below every key of b; the result's parent is the caller's to set. */
function merge(a: Node | null, b: Node | null): Node | null {
  if (!a) return b;
  if (!b) return a;
  if (a.pri > b.pri) {
    a.r = merge(a.r, b);
    return pull(a);
  }
  b.l = merge(a, b.l);
  return pull(b);
}

/** Max version of keys >= b in t. */
function maxFrom(t: Node | null, b: string): number {
  let m = 0;
  while (t) {
    if (t.key >= b) {
      if (t.ver > m) m = t.ver;
      if (t.r && t.r.max > m) m = t.r.max;
      t = t.l;
    } else t = t.r;
  }
  return m;
}

/** Max version of keys < e in t. */
function maxBelow(t: Node | null, e: string): number {
  let m = 0;
  while (t) {
    if (t.key < e) {
      if (t.ver > m) m = t.ver;
      if (t.l && t.l.max > m) m = t.l.max;
      t = t.r;
    } else t = t.l;
  }
  return m;
}

/**
 * Keys are found by hash (`index`), not by descending the tree: the shard's window sets
 * the version of a key it already holds on almost every write (w10: every key of the
 * shard is in a 5 s window), and a descent by key cost ~20 string comparisons and cache
 * misses per write (the largest item of a shard's profile under w10). With the node in
 * hand, a new version walks up the parents only while their max is older (versions
 * arrive in increasing order, so it stops where another key of the same commit passed),
 * and a removal merges the node's children in its place and fixes the maxima above.
 * Inserting a new key still descends (O(log n) comparisons).
 */
export class VersionedMap<T = undefined> {
  private root: Node | null = null;
  private readonly index = new Map<string, Node>();

  get size(): number {
    return this.index.size;
  }

  get(key: string): number | undefined {
    return this.index.get(key)?.ver;
  }

  /** Sets key's version (inserting the key if absent). */
  set(key: string, ver: number): void {
    const node = this.index.get(key);
    if (node) this.update(node, ver);
    else this.insertNew(key, ver, undefined);
  }

  /**
   * set(), returning the data attached to the key; a new key gets make(key) attached.
   * One hash lookup for both (the window keeps each key's history here instead of in a
   * map of its own). A key inserted by set() has no data (undefined).
   */
  upsert(key: string, ver: number, make: (key: string) => T): T {
    const node = this.index.get(key);
    if (node) {
      this.update(node, ver);
      return node.data as T;
    }
    const data = make(key);
    this.insertNew(key, ver, data);
    return data;
  }

  /** The data attached to key (upsert), or undefined when the key is absent or has none. */
  data(key: string): T | undefined {
    return this.index.get(key)?.data as T | undefined;
  }

  /**
   * set() for a caller that knows whether the key is present. Kept for callers; the
   * lookup is by hash either way, so `present` only skips nothing now.
   */
  setKnown(key: string, ver: number, present: boolean): void {
    void present;
    this.set(key, ver);
  }

  private insertNew(key: string, ver: number, data: unknown): void {
    const n: Node = { key, ver, max: ver, pri: Math.random(), l: null, r: null, p: null, data };
    this.index.set(key, n);
    this.root = insert(this.root, n);
    this.root.p = null;
  }

  private update(x: Node, ver: number): void {
    x.ver = ver;
    if (ver >= x.max) {
      // the newest version anywhere below x: ancestors take it until one already has it
      x.max = ver;
      let t = x.p;
      while (t !== null && t.max < ver) {
        t.max = ver;
        t = t.p;
      }
      return;
    }
    // an older version (not the window's order; RangeVersions, tests): recompute upward
    // until a max does not change
    let t: Node | null = x;
    while (t !== null) {
      const old = t.max;
      pull(t);
      if (t.max === old) return;
      t = t.p;
    }
  }

  delete(key: string): boolean {
    const node = this.index.get(key);
    if (!node) return false;
    this.unlink(node);
    return true;
  }

  /** delete() of a key the caller knows is present. */
  deletePresent(key: string): void {
    const node = this.index.get(key);
    if (node) this.unlink(node);
  }

  /** Removes x: its children, merged, take its place; the maxima above are fixed. */
  private unlink(x: Node): void {
    this.index.delete(x.key);
    const sub = merge(x.l, x.r);
    const p = x.p;
    x.l = x.r = x.p = null;
    if (p === null) {
      this.root = sub;
      if (sub) sub.p = null;
      return;
    }
    if (p.l === x) p.l = sub;
    else p.r = sub;
    if (sub) sub.p = p;
    let t: Node | null = p;
    while (t !== null) {
      const old = t.max;
      pull(t);
      if (t.max === old) return;
      t = t.p;
    }
  }

  /** Removes every key in [b, e). */
  deleteRange(b: string, e: string): void {
    if (b >= e) return;
    split(this.root, b);
    const a = splitLeft;
    split(splitRight, e);
    const mid = splitLeft;
    const c = splitRight;
    // the removed keys leave the index (O(keys removed), as counting them did)
    const stack: Node[] = mid ? [mid] : [];
    while (stack.length > 0) {
      const t = stack.pop()!;
      this.index.delete(t.key);
      if (t.l) stack.push(t.l);
      if (t.r) stack.push(t.r);
    }
    this.root = merge(a, c);
    if (this.root) this.root.p = null;
  }

  /** Newest version of any key in [b, e); 0 when there is none. */
  maxIn(b: string, e: string): number {
    let t = this.root;
    // descend to the node that splits the range, then each side is a one-sided query
    while (t) {
      if (t.key < b) t = t.r;
      else if (t.key >= e) t = t.l;
      else {
        let m = t.ver;
        const left = maxFrom(t.l, b);
        if (left > m) m = left;
        const right = maxBelow(t.r, e);
        if (right > m) m = right;
        return m;
      }
    }
    return 0;
  }

  /** The greatest key <= key, or null. */
  floor(key: string): { key: string; ver: number } | null {
    let t = this.root;
    let best: Node | null = null;
    while (t) {
      if (t.key <= key) {
        best = t;
        t = t.r;
      } else t = t.l;
    }
    return best ? { key: best.key, ver: best.ver } : null;
  }

  /** The greatest key < key, or null. */
  below(key: string): { key: string; ver: number } | null {
    let t = this.root;
    let best: Node | null = null;
    while (t) {
      if (t.key < key) {
        best = t;
        t = t.r;
      } else t = t.l;
    }
    return best ? { key: best.key, ver: best.ver } : null;
  }

  /** The smallest key > key, or null. */
  after(key: string): { key: string; ver: number } | null {
    let t = this.root;
    let best: Node | null = null;
    while (t) {
      if (t.key > key) {
        best = t;
        t = t.l;
      } else t = t.r;
    }
    return best ? { key: best.key, ver: best.ver } : null;
  }

  /** Keys of [b, e) whose version is > v, in key order (or reverse); skips subtrees whose max is <= v. */
  *above(v: number, b: string, e: string, reverse = false): Generator<[string, number]> {
    if (b >= e) return;
    // explicit stack: in-order walk that never enters a subtree without a newer version
    const stack: Node[] = [];
    const first = reverse ? 'r' : 'l';
    const second = reverse ? 'l' : 'r';
    const inRangeBound = (t: Node): boolean => t.key >= b && t.key < e;
    const pushSide = (t: Node | null): void => {
      while (t && t.max > v) {
        // prune by key: subtrees wholly outside [b, e) are skipped
        if (!reverse ? t.key < b : t.key >= e) {
          t = t[second];
          continue;
        }
        stack.push(t);
        t = t[first];
      }
    };
    pushSide(this.root);
    while (stack.length > 0) {
      const t = stack.pop()!;
      if (!reverse ? t.key >= e : t.key < b) return;
      if (t.ver > v && inRangeBound(t)) yield [t.key, t.ver];
      pushSide(t[second]);
    }
  }
}

/**
 * Versions of range writes as a step function over the keyspace: a boundary key k with
 * version v means every key of [k, next boundary) was last range-written at v (0: by
 * none in the window). Writes arrive in version order, so a new range write is newer
 * than everything it covers and simply replaces the steps inside it.
 */
export class RangeVersions {
  private readonly m = new VersionedMap();

  /** Number of boundaries held. */
  get size(): number {
    return this.m.size;
  }

  /** Version of the newest range write covering key; 0 when none. */
  valueAt(key: string): number {
    const f = this.m.floor(key);
    return f ? f.ver : 0;
  }

  /** [b, e) was written at ver, which is newer than every version held. */
  assign(b: string, e: string, ver: number): void {
    if (b >= e) return;
    const endHasBoundary = this.m.get(e) !== undefined;
    const endValue = this.valueAt(e);
    this.m.deleteRange(b, e);
    this.m.set(b, ver);
    if (!endHasBoundary) this.m.set(e, endValue);
  }

  /** Newest range write overlapping [b, e); 0 when none. */
  maxOverlap(b: string, e: string): number {
    if (b >= e) return 0;
    const at = this.valueAt(b);
    const inside = this.m.maxIn(b, e);
    return at > inside ? at : inside;
  }

  /** The steps of [b, e) as [begin, end, version] in key order (or reverse). */
  steps(b: string, e: string, reverse = false): [string, string, number][] {
    const out: [string, string, number][] = [];
    let cur = b;
    let ver = this.valueAt(b);
    for (const [k, v] of this.m.above(-1, b + '\0', e)) {
      if (k > cur) out.push([cur, k, ver]);
      cur = k;
      ver = v;
    }
    if (cur < e) out.push([cur, e, ver]);
    return reverse ? out.reverse() : out;
  }

  /** Forgets the range write at `ver` over [b, e) (its steps become 0), merging equal neighbours. */
  forget(b: string, e: string, ver: number): void {
    const start = this.m.floor(b)?.key ?? b;
    const stop = this.m.after(e)?.key ?? e;
    const keys: [string, number][] = [...this.m.above(-1, start, stop + '\0')];
    // a boundary whose step equals the one before it goes, the first one too (before the
    // first boundary of all, steps are 0): kept, the first boundary of every forgotten
    // range stayed while any other range write was live, one per range clear forever
    // under clears at ever higher keys (a queue), and reads walked every one of them
    let prev = this.m.below(start)?.ver ?? 0;
    for (const [k, v] of keys) {
      const nv = v === ver ? 0 : v;
      if (nv === prev) this.m.delete(k);
      else {
        if (nv !== v) this.m.set(k, nv);
        prev = nv;
      }
    }
    // nothing left: drop the zero steps too
    if (this.m.maxIn('', ABOVE_ALL_KEYS) === 0) this.m.deleteRange('', ABOVE_ALL_KEYS);
  }
}

/** Key strings are latin-1 (chars <= 0xff): this sorts after every key. */
export const ABOVE_ALL_KEYS = '\u0100';
