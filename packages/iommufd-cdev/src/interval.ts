/**
 * An ordered set of non-overlapping, inclusive IOVA intervals (the kernel's `area_itree`, inventory §7): a treap
 * keyed by `start`, so finding the first interval that touches a range, inserting and removing are O(log n)
 * expected however many areas an IOAS holds. Each node also knows the largest free gap inside its subtree, so
 * IOVA allocation skips every run of areas with no hole big enough instead of walking them one by one.
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
  /** Lowest start in the subtree. */
  minStart: bigint;
  /** Highest last in the subtree. */
  maxLast: bigint;
  /** Largest number of free addresses between two consecutive intervals of the subtree (-1 when none). */
  maxGap: bigint;
}

/** Recomputes a node's subtree aggregates from its children. */
function pull<T extends Interval>(n: Node<T>): Node<T> {
  const { left, right, item } = n;
  n.minStart = left ? left.minStart : item.start;
  n.maxLast = right ? right.maxLast : item.last;
  let g = -1n;
  if (left) {
    if (left.maxGap > g) g = left.maxGap;
    const d = item.start - left.maxLast - 1n;
    if (d > g) g = d;
  }
  if (right) {
    if (right.maxGap > g) g = right.maxGap;
    const d = right.minStart - item.last - 1n;
    if (d > g) g = d;
  }
  n.maxGap = g;
  return n;
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
      return [pull(node), r];
    }
    const [l, r] = this.#split(node.left, key);
    node.left = r;
    return [l, pull(node)];
  }

  #merge(a: Node<T> | undefined, b: Node<T> | undefined): Node<T> | undefined {
    if (!a) return b;
    if (!b) return a;
    if (a.prio > b.prio) {
      a.right = this.#merge(a.right, b);
      return pull(a);
    }
    b.left = this.#merge(a, b.left);
    return pull(b);
  }

  /** Inserts an interval; the caller guarantees it overlaps none already inside. */
  insert(item: T): void {
    const node: Node<T> = { item, prio: this.#random(), left: undefined, right: undefined, minStart: item.start, maxLast: item.last, maxGap: -1n };
    const [l, r] = this.#split(this.#root, item.start);
    this.#root = this.#merge(this.#merge(l, node), r);
    this.#count++;
  }

  /** Removes the interval (by identity); returns false when it was not inside. */
  remove(item: T): boolean {
    // Starts are unique: split out exactly the node starting at item.start, then join the rest.
    const [l, rest] = this.#split(this.#root, item.start);
    const [mid, r] = this.#split(rest, item.start + 1n);
    if (!mid || mid.item !== item) {
      this.#root = this.#merge(this.#merge(l, mid), r);
      return false;
    }
    this.#root = this.#merge(l, r);
    this.#count--;
    return true;
  }

  /**
   * The free ranges between intervals (and before the first / after the last, within [0, `end`]) holding at
   * least `minSize` addresses, in address order. Subtrees without such a gap are skipped.
   */
  *gaps(minSize: bigint, end: bigint): Generator<Interval> {
    const root = this.#root;
    if (!root) {
      if (end + 1n >= minSize) yield { start: 0n, last: end };
      return;
    }
    if (root.minStart >= minSize) yield { start: 0n, last: root.minStart - 1n };
    yield* this.#gaps(root, minSize);
    if (root.maxLast < end && end - root.maxLast >= minSize) yield { start: root.maxLast + 1n, last: end };
  }

  *#gaps(n: Node<T> | undefined, minSize: bigint): Generator<Interval> {
    if (!n || n.maxGap < minSize) return;
    yield* this.#gaps(n.left, minSize);
    if (n.left && n.item.start - n.left.maxLast - 1n >= minSize) yield { start: n.left.maxLast + 1n, last: n.item.start - 1n };
    if (n.right && n.right.minStart - n.item.last - 1n >= minSize) yield { start: n.item.last + 1n, last: n.right.minStart - 1n };
    yield* this.#gaps(n.right, minSize);
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
