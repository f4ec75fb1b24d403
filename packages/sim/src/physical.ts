/**
 * Sparse physical memory of a simulated machine: page data exists only for pages that were written, pin counts are
 * kept per page frame, and a deterministic allocator hands out scattered 4 KiB frames and physically contiguous
 * 2 MiB / 1 GiB blocks (DESIGN.md "cost follows the work": a 1 TiB guest costs nothing until touched).
 */
import type { MmioHandler, PhysicalMemory } from '@vfio-ts/platform';
import { PAGE_SIZE } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';

/** Pages per 2 MiB and 1 GiB block. */
export const PAGES_2M = 512;
export const PAGES_1G = 512 * 512;

/**
 * Where each kind of frame comes from (page frame numbers). The regions are far apart so a frame's kind follows
 * from its number; inside a region consecutive allocations leave a gap, so neighbours are never contiguous
 * (a 4K-backed range pins as single-page runs, consecutive hugepages as one run per hugepage).
 */
const REGION_4K = 2 ** 20; // pa 4 GiB .. 16 TiB
const REGION_2M = 2 ** 32; // pa 16 TiB .. 256 TiB
const REGION_1G = 2 ** 36; // pa 256 TiB .. 4 PiB
const REGION_MMIO = 2 ** 40; // pa 4 PiB: synthetic frames of device mappings (pa stays below 2^53)

/** A hugepage block's pin counts as sorted disjoint segments [start, end) → count (offsets within the block). */
interface HugeBlock {
  readonly base: number;
  readonly npages: number;
  /** Flattened triples: start, end, count. Empty = no pins. */
  segments: number[];
}

/** An MMIO window in the physical address space (a BAR), routed to its handler. */
interface MmioWindow {
  readonly base: number; // pfn
  readonly npages: number;
  readonly handler: MmioHandler;
}

/**
 * The machine's RAM. Implements {@link PhysicalMemory} plus the allocator the address spaces use. Frames are
 * numbers internally (safe up to 2^53 pages) and bigints at the contract boundary.
 */
export class SimPhysicalMemory implements PhysicalMemory {
  private readonly data = new Map<number, Uint8Array>();
  /**
   * Pin counts of 4K frames, indexed by allocation slot ((pfn - REGION_4K) / 2, see {@link alloc4k}), grown by
   * doubling. A typed array rather than a Map: pinning and unpinning the same frames over and over (every MAP/UNMAP
   * cycle) must not delete and re-insert hash keys, which V8 pays for in proportion to the table's size.
   */
  private pins4k = new Uint32Array(1024);
  /** Pins of frames that are not 4K slots (never handed out by {@link alloc4k}); rare, so a Map. */
  private readonly pinsOther = new Map<number, number>();
  private readonly blocks = new Map<number, HugeBlock>();
  /** Frames whose owner is gone but which are still pinned: freed by the last unpin. */
  private readonly orphans = new Set<number>();
  private readonly orphanBlocks = new Set<number>();
  private next4k = 0;
  private next2m = 0;
  private next1g = 0;
  private nextMmio = 0;
  private readonly free4k: number[] = [];
  private readonly free2m: number[] = [];
  private readonly free1g: number[] = [];
  private readonly mmio: MmioWindow[] = [];

  /** Base pages that hold data. */
  get residentPages(): number {
    return this.data.size;
  }

  private allocated = 0;

  /** Frames currently handed out (4K frames plus pages of hugepage blocks), for tests. */
  get allocatedPages(): number {
    return this.allocated;
  }

  // ---- allocator -------------------------------------------------------------------------------------------

  /** One 4 KiB frame; frames come from scattered addresses (every other frame). */
  alloc4k(): number {
    this.allocated++;
    const reused = this.free4k.pop();
    if (reused !== undefined) return reused;
    return REGION_4K + 2 * this.next4k++;
  }

  /** A physically contiguous hugepage block; returns its first frame (aligned to the block size). */
  allocHuge(npages: number): number {
    this.allocated += npages;
    let base: number;
    if (npages === PAGES_1G) {
      base = this.free1g.pop() ?? REGION_1G + 2 * PAGES_1G * this.next1g++;
    } else {
      base = this.free2m.pop() ?? REGION_2M + 2 * PAGES_2M * this.next2m++;
    }
    this.blocks.set(base, { base, npages, segments: [] });
    return base;
  }

  /** Releases a 4K frame: freed now when unpinned, else when the last pin goes. */
  release4k(pfn: number): void {
    if (this.pins4kOf(pfn) > 0) {
      this.orphans.add(pfn);
      return;
    }
    this.free4kNow(pfn);
  }

  /** Releases a hugepage block, deferred while any of its pages is pinned. */
  releaseHuge(base: number): void {
    const block = this.blocks.get(base);
    if (!block) return;
    if (block.segments.length > 0) {
      this.orphanBlocks.add(base);
      return;
    }
    this.freeHugeNow(block);
  }

  private free4kNow(pfn: number): void {
    this.data.delete(pfn);
    this.orphans.delete(pfn);
    this.free4k.push(pfn);
    this.allocated--;
  }

  private freeHugeNow(block: HugeBlock): void {
    this.dropData(block.base, block.npages);
    this.blocks.delete(block.base);
    this.orphanBlocks.delete(block.base);
    (block.npages === PAGES_1G ? this.free1g : this.free2m).push(block.base);
    this.allocated -= block.npages;
  }

  /** Forgets the data of `npages` frames from `base` (freed memory reads as zeros when reused). */
  private dropData(base: number, npages: number): void {
    if (this.data.size < npages) {
      for (const pfn of [...this.data.keys()]) if (pfn >= base && pfn < base + npages) this.data.delete(pfn);
    } else {
      for (let i = 0; i < npages; i++) this.data.delete(base + i);
    }
  }

  /** Reserves a synthetic physical range for a device mapping; loads and stores there reach `handler`. */
  allocMmio(npages: number, handler: MmioHandler): number {
    const base = REGION_MMIO + this.nextMmio;
    this.nextMmio += npages + 1;
    this.mmio.push({ base, npages, handler });
    return base;
  }

  /** Withdraws an MMIO range reserved by {@link allocMmio}. */
  freeMmio(base: number): void {
    const i = this.mmio.findIndex((w) => w.base === base);
    if (i >= 0) this.mmio.splice(i, 1);
  }

  private blockOf(pfn: number): HugeBlock | undefined {
    if (pfn >= REGION_1G && pfn < REGION_MMIO) {
      return this.blocks.get(pfn - ((pfn - REGION_1G) % PAGES_1G));
    }
    if (pfn >= REGION_2M && pfn < REGION_1G) {
      return this.blocks.get(pfn - ((pfn - REGION_2M) % PAGES_2M));
    }
    return undefined;
  }

  // ---- pins ------------------------------------------------------------------------------------------------

  /** Number of pins held on the frame. */
  pinCount(pfn: bigint): number {
    return this.pinCountN(Number(pfn));
  }

  pinCountN(pfn: number): number {
    const block = this.blockOf(pfn);
    if (!block) return this.pins4kOf(pfn);
    const off = pfn - block.base;
    const s = block.segments;
    for (let i = 0; i < s.length; i += 3) {
      if (off < s[i]!) return 0;
      if (off < s[i + 1]!) return s[i + 2]!;
    }
    return 0;
  }

  /**
   * Adds `delta` pins to `npages` frames from `pfn` (a run inside one 4K frame or one hugepage block, or a run of
   * 4K frames). Dropping to zero frees orphaned frames.
   */
  addPins(pfn: number, npages: number, delta: number): void {
    let p = pfn;
    let left = npages;
    while (left > 0) {
      const block = this.blockOf(p);
      if (block) {
        const off = p - block.base;
        const n = Math.min(left, block.npages - off);
        block.segments = addToSegments(block.segments, off, off + n, delta);
        if (block.segments.length === 0 && this.orphanBlocks.has(block.base)) this.freeHugeNow(block);
        p += n;
        left -= n;
      } else {
        const c = Math.max(0, this.pins4kOf(p) + delta); // an unpin of an unpinned page is ignored
        this.setPins4k(p, c);
        if (c === 0 && this.orphans.has(p)) this.free4kNow(p);
        p++;
        left--;
      }
    }
  }

  /** The 4K slot of a frame, or -1 when `alloc4k` never hands it out. */
  private slot4k(pfn: number): number {
    const d = pfn - REGION_4K;
    return d >= 0 && d % 2 === 0 && d / 2 < this.next4k ? d / 2 : -1;
  }

  private pins4kOf(pfn: number): number {
    const slot = this.slot4k(pfn);
    if (slot < 0) return this.pinsOther.get(pfn) ?? 0;
    return slot < this.pins4k.length ? this.pins4k[slot]! : 0;
  }

  private setPins4k(pfn: number, count: number): void {
    const slot = this.slot4k(pfn);
    if (slot < 0) {
      if (count > 0) this.pinsOther.set(pfn, count);
      else this.pinsOther.delete(pfn);
      return;
    }
    if (slot >= this.pins4k.length) {
      if (count === 0) return;
      let size = this.pins4k.length * 2;
      while (size <= slot) size *= 2;
      const grown = new Uint32Array(size);
      grown.set(this.pins4k);
      this.pins4k = grown;
    }
    this.pins4k[slot] = count;
  }

  // ---- data ------------------------------------------------------------------------------------------------

  /** Reads physical memory; untouched pages read as zeros and stay untouched; MMIO ranges reach their handler. */
  read(pa: bigint, length: number): Uint8Array {
    if (pa < 0n || !Number.isInteger(length) || length < 0) throw sysError('EINVAL', 'bad physical range');
    const out = new Uint8Array(length);
    const win = this.mmioAt(pa);
    if (win) {
      out.set(win.handler.read(pa - BigInt(win.base) * 4096n, length));
      return out;
    }
    let addr = Number(pa);
    let done = 0;
    while (done < length) {
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr % PAGE_SIZE;
      const n = Math.min(length - done, PAGE_SIZE - off);
      const page = this.data.get(pfn);
      if (page) out.set(page.subarray(off, off + n), done);
      done += n;
      addr += n;
    }
    return out;
  }

  /** Writes physical memory, touching (allocating data for) every page written. */
  write(pa: bigint, bytes: Uint8Array): void {
    if (pa < 0n) throw sysError('EINVAL', 'bad physical address');
    const win = this.mmioAt(pa);
    if (win) {
      win.handler.write(pa - BigInt(win.base) * 4096n, bytes);
      return;
    }
    let addr = Number(pa);
    let done = 0;
    while (done < bytes.length) {
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr % PAGE_SIZE;
      const n = Math.min(bytes.length - done, PAGE_SIZE - off);
      let page = this.data.get(pfn);
      if (!page) {
        page = new Uint8Array(PAGE_SIZE);
        this.data.set(pfn, page);
      }
      page.set(bytes.subarray(done, done + n), off);
      done += n;
      addr += n;
    }
  }

  /** Copies the data of `npages` frames (fork), touching only pages that hold data. */
  copyFrames(from: number, to: number, npages: number): void {
    if (this.data.size < npages) {
      for (const [pfn, page] of [...this.data]) {
        if (pfn >= from && pfn < from + npages) this.data.set(to + (pfn - from), page.slice());
      }
    } else {
      for (let i = 0; i < npages; i++) {
        const page = this.data.get(from + i);
        if (page) this.data.set(to + i, page.slice());
      }
    }
  }

  /** Whether the frame holds data. */
  isResident(pfn: number): boolean {
    return this.data.has(pfn);
  }

  private mmioAt(pa: bigint): MmioWindow | undefined {
    if (this.mmio.length === 0) return undefined;
    const pfn = Number(pa / 4096n);
    if (pfn < REGION_MMIO) return undefined;
    return this.mmio.find((w) => pfn >= w.base && pfn < w.base + w.npages);
  }
}

/**
 * Adds `delta` to the count of [start, end) in a flattened sorted segment list and returns the new list, merging
 * neighbours with equal counts and dropping zero-count segments. Cost O(segments), which stays small because
 * pins usually cover whole ranges.
 */
export function addToSegments(segments: readonly number[], start: number, end: number, delta: number): number[] {
  // Expand into boundary points, apply, then re-compress.
  const out: number[] = [];
  const push = (s: number, e: number, c: number): void => {
    if (s >= e || c <= 0) return; // an unpin of an unpinned page is ignored, never negative
    const n = out.length;
    if (n > 0 && out[n - 1] === c && out[n - 2] === s) {
      out[n - 2] = e;
      return;
    }
    out.push(s, e, c);
  };
  let cursor = start;
  let i = 0;
  for (; i < segments.length; i += 3) {
    const s = segments[i]!;
    const e = segments[i + 1]!;
    const c = segments[i + 2]!;
    if (e <= start || s >= end) {
      if (s >= end && cursor < end) {
        push(cursor, end, delta);
        cursor = end;
      }
      push(s, e, c);
      continue;
    }
    // Overlap: part before start, gap before s, overlap, part after end.
    if (s < start) push(s, start, c);
    if (cursor < s) push(cursor, s, delta);
    const os = Math.max(s, start);
    const oe = Math.min(e, end);
    push(os, oe, c + delta);
    cursor = oe;
    if (e > end) push(end, e, c);
  }
  if (cursor < end) push(cursor, end, delta);
  return out;
}
