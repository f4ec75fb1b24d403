/**
 * An ordered set of non-overlapping, inclusive IOVA intervals (the kernel's `area_itree`, inventory §7): a treap
 * keyed by `start`, so finding the first interval that touches a range, inserting and removing are O(log n)
 * expected however many areas an IOAS holds.
 */

/** Anything with an inclusive interval `[start, last]`. */
export interface Interval {
  readonly start: bigint;
  readonly last: bigint;
}

interface Node<T> {
  item: T;
  prio: number;
  left: Node<T> | undefined;
  right: Node<T> | undefined;
}

/** Non-overlapping intervals ordered by start. Items must not change their bounds while inside. */
export class IntervalTree<T extends Interval> {
  #root: Node<T> | undefined;
  #count = 0;
  /** xorshift32 state for node priorities (per tree: no module-level state). */
  #seed = 0x2545f491;

  /** Number of intervals held. */
  get size(): number {
    return this.#count;
  }

  #random(): number {
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed;
  }

  /** Splits into starts `< key` and starts `>= key`. */
  #split(node: Node<T> | undefined, key: bigint): [Node<T> | undefined, Node<T> | undefined] {
    if (!node) return [undefined, undefined];
    if (node.item.start < key) {
      const [l, r] = this.#split(node.right, key);
      node.right = l;
      return [node, r];
    }
    const [l, r] = this.#split(node.left, key);
    node.left = r;
    return [l, node];
  }

  #merge(a: Node<T> | undefined, b: Node<T> | undefined): Node<T> | undefined {
    if (!a) return b;
    if (!b) return a;
    if (a.prio > b.prio) {
      a.right = this.#merge(a.right, b);
      return a;
    }
    b.left = this.#merge(a, b.left);
    return b;
  }

  /** Inserts an interval; the caller guarantees it overlaps none already inside. */
  insert(item: T): void {
    const node: Node<T> = { item, prio: this.#random(), left: undefined, right: undefined };
    const [l, r] = this.#split(this.#root, item.start);
    this.#root = this.#merge(this.#merge(l, node), r);
    this.#count++;
  }

  /** Removes the interval (by identity); returns false when it was not inside. */
  remove(item: T): boolean {
    let parent: Node<T> | undefined;
    let node = this.#root;
    while (node && node.item !== item) {
      parent = node;
      node = item.start < node.item.start ? node.left : node.right;
    }
    if (!node) return false;
    const joined = this.#merge(node.left, node.right);
    if (!parent) this.#root = joined;
    else if (parent.left === node) parent.left = joined;
    else parent.right = joined;
    this.#count--;
    return true;
  }

  /** The interval with the largest start `<= at`, if any. */
  floor(at: bigint): T | undefined {
    let node = this.#root;
    let best: T | undefined;
    while (node) {
      if (node.item.start <= at) {
        best = node.item;
        node = node.right;
      } else node = node.left;
    }
    return best;
  }

  /** The interval with the smallest start `>= at` (or `> at` when `strict`), if any. */
  ceil(at: bigint, strict = false): T | undefined {
    let node = this.#root;
    let best: T | undefined;
    while (node) {
      if (strict ? node.item.start > at : node.item.start >= at) {
        best = node.item;
        node = node.left;
      } else node = node.right;
    }
    return best;
  }

  /** The lowest interval intersecting `[start, last]` (interval_tree_iter_first). */
  first(start: bigint, last: bigint): T | undefined {
    const f = this.floor(start);
    if (f && f.last >= start) return f;
    const c = this.ceil(start, true);
    return c && c.start <= last ? c : undefined;
  }

  /** The interval after `item` that still intersects `[.., last]` (interval_tree_iter_next). */
  next(item: T, last: bigint): T | undefined {
    const c = this.ceil(item.start, true);
    return c && c.start <= last ? c : undefined;
  }

  /** Every interval intersecting `[start, last]`, in order. */
  *overlapping(start: bigint, last: bigint): Generator<T> {
    for (let it = this.first(start, last); it; it = this.next(it, last)) yield it;
  }

  /** All intervals in order. */
  toArray(): T[] {
    const out: T[] = [];
    const walk = (n: Node<T> | undefined): void => {
      if (!n) return;
      walk(n.left);
      out.push(n.item);
      walk(n.right);
    };
    walk(this.#root);
    return out;
  }
}

/** The gaps of `[lo, hi]` not covered by the (possibly overlapping) sorted-by-start `used` intervals. */
export function holes(used: Iterable<Interval>, lo: bigint, hi: bigint): Interval[] {
  const out: Interval[] = [];
  let cursor = lo;
  let done = false;
  for (const u of used) {
    if (u.last < cursor) continue;
    if (u.start > hi) break;
    if (u.start > cursor) out.push({ start: cursor, last: u.start - 1n });
    if (u.last >= hi) {
      done = true;
      break;
    }
    cursor = u.last + 1n;
  }
  if (!done && cursor <= hi) out.push({ start: cursor, last: hi });
  return out;
}
