/**
 * An ordered set of non-overlapping, inclusive IOVA intervals (the kernel's `area_itree`, inventory §7): a treap
 * keyed by `start`, so finding the first interval that touches a range, inserting and removing are O(log n)
 * expected however many areas an IOAS holds. Each node also knows the largest free gap inside its subtree, so
 * IOVA allocation skips every run of areas with no hole big enough instead of walking them one by one.
 *
 * Insert and remove work in place (descend, then rotate by priority, with parent links) rather than by split and
 * merge: no temporary pairs, no recursion, and the subtree aggregates are refreshed only on the path that changed,
 * stopping as soon as a node's aggregates come out unchanged — IOAS_MAP/UNMAP of one area touches a handful of
 * nodes, not two root-to-leaf paths.
 */

/** Anything with an inclusive interval `[start, last]`. */
export interface Interval {
  readonly start: bigint;
  readonly last: bigint;
}

class Node<T extends Interval> {
  left: Node<T> | undefined = undefined;
  right: Node<T> | undefined = undefined;
  /** Lowest start in the subtree. */
  minStart: bigint;
  /** Highest last in the subtree. */
  maxLast: bigint;
  /**
   * Largest `next.start - prev.last` between two consecutive intervals of the subtree, 0 when it holds one only.
   * A distance `d` is a hole of `d - 1` addresses; keeping the distance saves a subtraction per update.
   */
  maxDist = 0n;
  constructor(
    readonly item: T,
    readonly prio: number,
    public parent: Node<T> | undefined,
  ) {
    this.minStart = item.start;
    this.maxLast = item.last;
  }
}

/** Recomputes a node's subtree aggregates from its children; returns whether any of them changed. */
function pull<T extends Interval>(n: Node<T>): boolean {
  const left = n.left;
  const right = n.right;
  const item = n.item;
  let minStart = item.start;
  let maxLast = item.last;
  let dist = 0n;
  if (left) {
    minStart = left.minStart;
    dist = left.maxDist;
    const d = item.start - left.maxLast;
    if (d > dist) dist = d;
  }
  if (right) {
    maxLast = right.maxLast;
    if (right.maxDist > dist) dist = right.maxDist;
    const d = right.minStart - item.last;
    if (d > dist) dist = d;
  }
  if (minStart === n.minStart && maxLast === n.maxLast && dist === n.maxDist) return false;
  n.minStart = minStart;
  n.maxLast = maxLast;
  n.maxDist = dist;
  return true;
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

  /** Lifts `x` above its parent (a single rotation), refreshing both nodes' aggregates. */
  #rotateUp(x: Node<T>): void {
    const p = x.parent!;
    const g = p.parent;
    if (p.left === x) {
      const b = x.right;
      p.left = b;
      if (b) b.parent = p;
      x.right = p;
    } else {
      const b = x.left;
      p.right = b;
      if (b) b.parent = p;
      x.left = p;
    }
    p.parent = x;
    x.parent = g;
    if (!g) this.#root = x;
    else if (g.left === p) g.left = x;
    else g.right = x;
    pull(p);
    pull(x);
  }

  /**
   * Refreshes aggregates from `n` up to the root. Aggregates depend only on the set of intervals below a node,
   * so once one comes out unchanged every ancestor's is still right.
   */
  #fixUp(n: Node<T> | undefined): void {
    while (n && pull(n)) n = n.parent;
  }

  /** Inserts an interval; the caller guarantees it overlaps none already inside. */
  insert(item: T): void {
    const key = item.start;
    const root = this.#root;
    if (!root) {
      this.#root = new Node(item, this.#random(), undefined);
      this.#count++;
      return;
    }
    let parent: Node<T> = root;
    for (;;) {
      const next: Node<T> | undefined = key < parent.item.start ? parent.left : parent.right;
      if (!next) break;
      parent = next;
    }
    const node = new Node(item, this.#random(), parent);
    if (key < parent.item.start) parent.left = node;
    else parent.right = node;
    while (node.parent && node.prio > node.parent.prio) this.#rotateUp(node);
    this.#fixUp(node.parent);
    this.#count++;
  }

  /** Removes the interval (by identity); returns false when it was not inside. */
  remove(item: T): boolean {
    // Starts are unique: the only candidate is the node starting at item.start.
    const key = item.start;
    let node = this.#root;
    while (node && node.item.start !== key) node = key < node.item.start ? node.left : node.right;
    if (!node || node.item !== item) return false;
    // Rotate it down below its higher-priority child until it has at most one child, then splice it out.
    while (node.left && node.right) this.#rotateUp(node.left.prio > node.right.prio ? node.left : node.right);
    const child = node.left ?? node.right;
    const parent = node.parent;
    if (child) child.parent = parent;
    if (!parent) this.#root = child;
    else if (parent.left === node) parent.left = child;
    else parent.right = child;
    node.parent = undefined;
    this.#fixUp(parent);
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
    // A hole of at least minSize addresses is a distance above minSize.
    if (!n || n.maxDist <= minSize) return;
    yield* this.#gaps(n.left, minSize);
    if (n.left && n.item.start - n.left.maxLast > minSize) yield { start: n.left.maxLast + 1n, last: n.item.start - 1n };
    if (n.right && n.right.minStart - n.item.last > minSize) yield { start: n.item.last + 1n, last: n.right.minStart - 1n };
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
    // One descent finds both candidates: the last node we step right from is the floor of `start`, the last one
    // we step left from is the smallest start above it.
    let node = this.#root;
    let floor: T | undefined;
    let above: T | undefined;
    while (node) {
      const it = node.item;
      if (it.start <= start) {
        floor = it;
        node = node.right;
      } else {
        above = it;
        node = node.left;
      }
    }
    if (floor && floor.last >= start) return floor;
    return above && above.start <= last ? above : undefined;
  }

  /** The interval after `item` that still intersects `[.., last]` (interval_tree_iter_next). */
  next(item: T, last: bigint): T | undefined {
    // Intervals do not overlap: whatever follows `item` starts past its last address.
    if (item.last >= last) return undefined;
    const c = this.ceil(item.start, true);
    return c && c.start <= last ? c : undefined;
  }

  /** Every interval intersecting `[start, last]`, in order. */
  *overlapping(start: bigint, last: bigint): Generator<T> {
    for (let it = this.first(start, last); it; it = this.next(it, last)) yield it;
  }

  /** All intervals in order. */
  toArray(): T[] {
    // In-order walk over the parent links: O(n) for the whole table, no stack, no per-step descent.
    const out: T[] = [];
    let n = this.#root;
    if (!n) return out;
    while (n.left) n = n.left;
    for (;;) {
      out.push(n.item);
      if (n.right) {
        n = n.right;
        while (n.left) n = n.left;
        continue;
      }
      let child: Node<T> = n;
      let up: Node<T> | undefined = n.parent;
      while (up && up.right === child) {
        child = up;
        up = up.parent;
      }
      if (!up) return out;
      n = up;
    }
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
