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
}

const maxOf = (t: Node | null): number => (t ? t.max : 0);

function pull(t: Node): Node {
  let m = t.ver;
  if (t.l && t.l.max > m) m = t.l.max;
  if (t.r && t.r.max > m) m = t.r.max;
  t.max = m;
  return t;
}

// split's two results (no array per call: split runs once per level of the tree)
let splitLeft: Node | null = null;
let splitRight: Node | null = null;

/** Splits t into splitLeft (keys < key) and splitRight (keys >= key). */
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

/** Inserts a node whose key is not in t. */
function insert(t: Node | null, n: Node): Node {
  if (!t) return n;
  if (n.pri > t.pri) {
    split(t, n.key);
    n.l = splitLeft;
    n.r = splitRight;
    return pull(n);
  }
  if (n.key < t.key) t.l = insert(t.l, n);
  else t.r = insert(t.r, n);
  if (n.max > t.max) t.max = n.max;
  return t;
}

/** Removes key from t (present or not). */
function remove(t: Node | null, key: string): Node | null {
  if (!t) return null;
  if (key === t.key) return merge(t.l, t.r);
  if (key < t.key) t.l = remove(t.l, key);
  else t.r = remove(t.r, key);
  return pull(t);
}

/** Every key of a is below every key of b. */
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

function count(t: Node | null): number {
  return t ? 1 + count(t.l) + count(t.r) : 0;
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

export class VersionedMap {
  private root: Node | null = null;
  private n = 0;

  get size(): number {
    return this.n;
  }

  get(key: string): number | undefined {
    let t = this.root;
    while (t) {
      if (key === t.key) return t.ver;
      t = key < t.key ? t.l : t.r;
    }
    return undefined;
  }

  /** Sets key's version (inserting the key if absent). */
  set(key: string, ver: number): void {
    if (this.update(this.root, key, ver)) return;
    this.insertNew(key, ver);
  }

  /**
   * set() for a caller that knows whether the key is present (one descent instead of a
   * failed update and an insert): `present` must be right.
   */
  setKnown(key: string, ver: number, present: boolean): void {
    if (present) this.update(this.root, key, ver);
    else this.insertNew(key, ver);
  }

  private insertNew(key: string, ver: number): void {
    this.root = insert(this.root, { key, ver, max: ver, pri: Math.random(), l: null, r: null });
    this.n++;
  }

  private update(t: Node | null, key: string, ver: number): boolean {
    if (!t) return false;
    if (key === t.key) {
      t.ver = ver;
      pull(t);
      return true;
    }
    const found = this.update(key < t.key ? t.l : t.r, key, ver);
    if (found) pull(t);
    return found;
  }

  delete(key: string): boolean {
    if (this.get(key) === undefined) return false;
    this.deletePresent(key);
    return true;
  }

  /** delete() of a key the caller knows is present (one descent). */
  deletePresent(key: string): void {
    this.root = remove(this.root, key);
    this.n--;
  }

  /** Removes every key in [b, e). */
  deleteRange(b: string, e: string): void {
    if (b >= e) return;
    split(this.root, b);
    const a = splitLeft;
    split(splitRight, e);
    const mid = splitLeft;
    const c = splitRight;
    if (mid) this.n -= count(mid);
    this.root = merge(a, c);
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
    // the first boundary is kept (what precedes it is not looked at); later ones merge
    let prev = -1;
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
