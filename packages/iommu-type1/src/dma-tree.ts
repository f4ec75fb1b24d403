/**
 * The vfio_dma tree (inventory §4 "vfio_dma tree"): non-overlapping IOVA intervals ordered by start. A treap
 * (randomized balanced binary search tree) keeps every lookup, insert and remove at O(log n) expected, so the cost
 * of a MAP/UNMAP does not grow with the number of mappings a container already holds.
 */

/** Anything with an IOVA interval `[iova, iova + size)`. */
export interface IovaInterval {
  readonly iova: bigint;
  readonly size: bigint;
}

interface Node<T> {
  item: T;
  key: bigint;
  prio: number;
  left: Node<T> | undefined;
  right: Node<T> | undefined;
}

/**
 * An ordered set of non-overlapping intervals keyed by `iova`. Items must not change `iova` while inside; `size`
 * may grow (the kernel inserts a vfio_dma with size 0 and grows it as chunks are pinned) as long as the interval
 * keeps clear of its neighbours.
 */
export class DmaTree<T extends IovaInterval> {
  #root: Node<T> | undefined;
  #count = 0;
  /** Per-tree PRNG state (xorshift32) for node priorities: no module-level state. */
  #seed = 0x9e3779b9;

  /** Number of intervals. */
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

  /** Splits into keys `< key` and keys `>= key`. */
  #split(node: Node<T> | undefined, key: bigint): [Node<T> | undefined, Node<T> | undefined] {
    if (!node) return [undefined, undefined];
    if (node.key < key) {
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

  /** Inserts `item` (the caller has checked it overlaps nothing). */
  insert(item: T): void {
    const node: Node<T> = { item, key: item.iova, prio: this.#random(), left: undefined, right: undefined };
    const [l, r] = this.#split(this.#root, item.iova);
    this.#root = this.#merge(this.#merge(l, node), r);
    this.#count++;
  }

  /** Removes the interval that starts at `item.iova`; returns whether it was present. */
  remove(item: T): boolean {
    let parent: Node<T> | undefined;
    let node = this.#root;
    while (node && node.key !== item.iova) {
      parent = node;
      node = item.iova < node.key ? node.left : node.right;
    }
    if (!node) return false;
    const merged = this.#merge(node.left, node.right);
    if (!parent) this.#root = merged;
    else if (parent.left === node) parent.left = merged;
    else parent.right = merged;
    this.#count--;
    return true;
  }

  /**
   * Any interval overlapping `[start, start + size)`, with the kernel's vfio_find_dma comparison: with `size` 0
   * it finds an interval that contains `start` past its first byte.
   */
  findOverlap(start: bigint, size: bigint): T | undefined {
    let node = this.#root;
    const end = start + size;
    while (node) {
      const it = node.item;
      if (end <= it.iova) node = node.left;
      else if (start >= it.iova + it.size) node = node.right;
      else return it;
    }
    return undefined;
  }

  /**
   * The lowest interval that ends after `start`, or `undefined` when there is none or (for `size` > 0) it starts
   * at or past `start + size` (vfio_find_dma_first_node).
   */
  firstFrom(start: bigint, size: bigint): T | undefined {
    let node = this.#root;
    let res: T | undefined;
    while (node) {
      const it = node.item;
      if (start < it.iova + it.size) {
        res = it;
        if (start >= it.iova) break;
        node = node.left;
      } else {
        node = node.right;
      }
    }
    if (res && size > 0n && res.iova >= start + size) return undefined;
    return res;
  }

  /** The interval following `item` in IOVA order. */
  next(item: T): T | undefined {
    let node = this.#root;
    let res: T | undefined;
    while (node) {
      if (node.key > item.iova) {
        res = node.item;
        node = node.left;
      } else {
        node = node.right;
      }
    }
    return res;
  }

  /** The interval preceding `item` in IOVA order. */
  prev(item: T): T | undefined {
    let node = this.#root;
    let res: T | undefined;
    while (node) {
      if (node.key < item.iova) {
        res = node.item;
        node = node.right;
      } else {
        node = node.left;
      }
    }
    return res;
  }

  /** The lowest interval. */
  first(): T | undefined {
    let node = this.#root;
    if (!node) return undefined;
    while (node.left) node = node.left;
    return node.item;
  }

  /** All intervals in IOVA order (do not modify the tree while iterating; collect first). */
  *[Symbol.iterator](): IterableIterator<T> {
    const stack: Node<T>[] = [];
    let node = this.#root;
    while (node || stack.length > 0) {
      while (node) {
        stack.push(node);
        node = node.left;
      }
      const top = stack.pop()!;
      yield top.item;
      node = top.right;
    }
  }

  /** A snapshot array in IOVA order. */
  toArray(): T[] {
    return [...this];
  }
}
