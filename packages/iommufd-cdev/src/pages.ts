/**
 * `iopt_pages` (inventory §7): the user memory behind one IOAS_MAP, shared by every area that COPY derives from
 * it. Pages are pinned once per page index however many areas (and accesses) use them, and each 0→1 pin is
 * accounted per the context's RLIMIT_MODE (per-user by default, per-process `locked_vm`, or not at all for a
 * CAP_IPC_LOCK caller) — Linux drivers/iommu/iommufd/pages.c.
 */
import type { AddressSpace, Task } from '@vfio-ts/platform';
import { PAGE_SIZE_N } from '@vfio-ts/platform';

/** How pinned pages are charged (Linux enum iopt_pages_account_mode). */
export type AccountMode = 'none' | 'user' | 'mm';

/** Per-user locked-memory counters (Linux user_struct.locked_vm), shared by every iommufd of one host. */
export interface UserLockedVm {
  /** Pages charged to `uid`. */
  get(uid: number): number;
  /** Adds (or, negative, removes) pages; ENOMEM and no change when adding past `limitPages`. */
  adjust(uid: number, delta: number, limitPages?: number): void;
}

/** A run of pinned page indexes that is physically contiguous, with the number of users holding it. */
interface Segment {
  first: number;
  last: number;
  pfn: bigint;
  users: number;
}

/** A physically contiguous piece of a pinned index range. */
export interface PageRun {
  /** First page index (relative to the pages object). */
  readonly index: number;
  readonly pfn: bigint;
  readonly npages: number;
}

/** The pinnable user memory behind a mapping. */
export class IoPages {
  /** Page-aligned start of the user range. */
  readonly base: bigint;
  readonly npages: number;
  /** Sorted, non-overlapping pinned segments. */
  readonly #segs: Segment[] = [];
  #pinned = 0;

  constructor(
    readonly mm: AddressSpace,
    readonly task: Task,
    /** The user address the map asked for (may be unaligned). */
    readonly uptr: bigint,
    readonly length: bigint,
    readonly writable: boolean,
    public accountMode: AccountMode,
    readonly userLocked: UserLockedVm,
  ) {
    this.base = uptr - (uptr % PAGE_SIZE_N);
    this.npages = Number((uptr - this.base + length + PAGE_SIZE_N - 1n) / PAGE_SIZE_N);
  }

  /** Number of distinct pages currently pinned. */
  get pinnedPages(): number {
    return this.#pinned;
  }

  /** Index of the first segment whose `last >= index`. */
  #lowerBound(index: number): number {
    let lo = 0;
    let hi = this.#segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#segs[mid]!.last < index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Splits the segment containing `index` so that a segment starts exactly at `index`. */
  #splitAt(index: number): void {
    const i = this.#lowerBound(index);
    const s = this.#segs[i];
    if (!s || s.first >= index) return;
    const right: Segment = { first: index, last: s.last, pfn: s.pfn + BigInt(index - s.first), users: s.users };
    s.last = index - 1;
    this.#segs.splice(i + 1, 0, right);
  }

  /**
   * Takes one user on every page index in `[first, last]`, pinning (and accounting) the ones nobody held yet.
   * All or nothing: EFAULT (unpinnable memory) or ENOMEM (RLIMIT_MEMLOCK) leave everything as it was.
   */
  pin(first: number, last: number): void {
    if (this.#segs.length === 0) {
      this.#pinFresh(first, last);
      return;
    }
    // 1. Pin the gaps (not yet pinned indexes) first, so a failure changes nothing.
    const gaps: { first: number; last: number }[] = [];
    let cursor = first;
    for (let i = this.#lowerBound(first); i < this.#segs.length && this.#segs[i]!.first <= last; i++) {
      const s = this.#segs[i]!;
      if (s.first > cursor) gaps.push({ first: cursor, last: s.first - 1 });
      cursor = s.last + 1;
    }
    if (cursor <= last) gaps.push({ first: cursor, last });
    const fresh: Segment[] = [];
    let added = 0;
    try {
      for (const g of gaps) {
        const n = g.last - g.first + 1;
        const runs = this.mm.pin(this.base + BigInt(g.first) * PAGE_SIZE_N, n, { write: this.writable });
        for (const r of runs) {
          const idx = Number((r.vaddr - this.base) / PAGE_SIZE_N);
          fresh.push({ first: idx, last: idx + r.npages - 1, pfn: r.pfn, users: 0 });
        }
        added += n;
      }
      this.#charge(added);
    } catch (e) {
      for (const s of fresh) this.mm.unpin(s.pfn, s.last - s.first + 1);
      throw e;
    }
    // 2. Insert the fresh segments, split at the range ends, then count one more user everywhere.
    if (fresh.length > 0) this.#insertFresh(first, last, fresh);
    this.#pinned += added;
    this.#splitAt(first);
    this.#splitAt(last + 1);
    for (let i = this.#lowerBound(first); i < this.#segs.length && this.#segs[i]!.first <= last; i++) this.#segs[i]!.users++;
  }

  /**
   * Merges `fresh` (sorted, all inside `[first, last]`, clear of every segment) into the segment list. Only the
   * stretch of segments touching `[first, last]` is merged; the rest only slides to make room, so pinning a few
   * pages costs the same however many segments the object holds elsewhere.
   */
  #insertFresh(first: number, last: number, fresh: readonly Segment[]): void {
    const segs = this.#segs;
    const from = this.#lowerBound(first);
    let to = from;
    while (to < segs.length && segs[to]!.first <= last) to++;
    const merged: Segment[] = [];
    let i = from;
    let j = 0;
    while (i < to || j < fresh.length) {
      const a = i < to ? segs[i] : undefined;
      const b = fresh[j];
      if (b === undefined || (a !== undefined && a.first < b.first)) {
        merged.push(a!);
        i++;
      } else {
        merged.push(b);
        j++;
      }
    }
    // Make room after the stretch (push keeps the array packed), slide the tail, then write the merged stretch.
    const grow = merged.length - (to - from);
    const oldLength = segs.length;
    for (let k = 0; k < grow; k++) segs.push(merged[0]!);
    segs.copyWithin(to + grow, to, oldLength);
    for (let k = 0; k < merged.length; k++) segs[from + k] = merged[k]!;
  }

  /**
   * The common case of a pages object nobody pinned yet (every IOAS_MAP makes a new one): pin the range as one
   * batch and record its runs with one user each — what the general path ends with, minus its gap and merge
   * bookkeeping. All or nothing like {@link pin}.
   */
  #pinFresh(first: number, last: number): void {
    const n = last - first + 1;
    const runs = this.mm.pin(first === 0 ? this.base : this.base + BigInt(first) * PAGE_SIZE_N, n, { write: this.writable });
    try {
      this.#charge(n);
    } catch (e) {
      for (const r of runs) this.mm.unpin(r.pfn, r.npages);
      throw e;
    }
    let idx = first;
    for (const r of runs) {
      // The platform returns runs in address order covering the range, so indexes follow from the page counts.
      this.#segs.push({ first: idx, last: idx + r.npages - 1, pfn: r.pfn, users: 1 });
      idx += r.npages;
    }
    this.#pinned += n;
  }

  /** Drops one user from every index in `[first, last]`; pages nobody holds anymore are unpinned and uncharged. */
  unpin(first: number, last: number): void {
    const segs = this.#segs;
    this.#splitAt(first);
    this.#splitAt(last + 1);
    let freed = 0;
    const from = this.#lowerBound(first);
    // Compact in place: surviving segments slide down over the freed ones, then one splice trims the rest.
    let keep = from;
    let i = from;
    for (; i < segs.length && segs[i]!.first <= last; i++) {
      const s = segs[i]!;
      s.users--;
      if (s.users <= 0) {
        const n = s.last - s.first + 1;
        this.mm.unpin(s.pfn, n);
        freed += n;
      } else segs[keep++] = s;
    }
    if (keep < i) segs.splice(keep, i - keep);
    this.#pinned -= freed;
    this.#uncharge(freed);
    if (segs.length > 1) this.#coalesce(first, last);
  }

  /** Merges neighbours around a range that are contiguous in both index and pfn and have equal users. */
  #coalesce(first: number, last: number): void {
    let i = Math.max(0, this.#lowerBound(first) - 1);
    while (i + 1 < this.#segs.length && this.#segs[i]!.first <= last + 1) {
      const a = this.#segs[i]!;
      const b = this.#segs[i + 1]!;
      if (a.last + 1 === b.first && a.pfn + BigInt(a.last - a.first + 1) === b.pfn && a.users === b.users) {
        a.last = b.last;
        this.#segs.splice(i + 1, 1);
      } else i++;
    }
  }

  /** The physically contiguous runs behind `[first, last]`, which must be pinned. */
  runs(first: number, last: number): PageRun[] {
    const out: PageRun[] = [];
    for (let i = this.#lowerBound(first); i < this.#segs.length && this.#segs[i]!.first <= last; i++) {
      const s = this.#segs[i]!;
      const a = Math.max(first, s.first);
      const b = Math.min(last, s.last);
      const pfn = s.pfn + BigInt(a - s.first);
      const prev = out[out.length - 1];
      if (prev && prev.index + prev.npages === a && prev.pfn + BigInt(prev.npages) === pfn) {
        out[out.length - 1] = { index: prev.index, pfn: prev.pfn, npages: prev.npages + (b - a + 1) };
      } else out.push({ index: a, pfn, npages: b - a + 1 });
    }
    return out;
  }

  /** The pfn of pinned page `index`, if pinned. */
  pfnOf(index: number): bigint | undefined {
    const s = this.#segs[this.#lowerBound(index)];
    return s && s.first <= index ? s.pfn + BigInt(index - s.first) : undefined;
  }

  #charge(pages: number): void {
    if (pages === 0) return;
    const limit = this.task.memlockLimit;
    switch (this.accountMode) {
      case 'none':
        return;
      case 'user':
        // incr_user_locked_vm: the caller's RLIMIT_MEMLOCK against the user's total.
        this.userLocked.adjust(this.task.uid, pages, limit === null ? undefined : Number(limit / PAGE_SIZE_N));
        return;
      case 'mm':
        // update_mm_locked_vm: mm->locked_vm, as VFIO type1 charges it.
        this.mm.memlock.adjust(pages, limit);
        return;
    }
  }

  #uncharge(pages: number): void {
    if (pages === 0) return;
    if (this.accountMode === 'user') this.userLocked.adjust(this.task.uid, -pages);
    else if (this.accountMode === 'mm') this.mm.memlock.adjust(-pages);
  }
}
