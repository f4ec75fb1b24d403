/**
 * A TCE table (Linux struct iommu_table on PowerNV IODA2, arch/powerpc/platforms/powernv/pci-ioda-tce.c): one DMA
 * window of `size` entries of `2^pageShift` bytes starting at bus address `offset << pageShift`. Each entry (a TCE)
 * holds a host physical address plus the TCE_PCI_READ/WRITE permission bits. Indirect levels are allocated on
 * demand, as pnv_tce() does; the entries themselves live in a sparse chunked store so that a 1 TiB window costs
 * memory only for the pages really mapped (DESIGN "cost follows the work").
 */
import type { IommuTable } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';

/** TCE permission bit: the device may read the page (asm/tce.h TCE_PCI_READ). */
export const TCE_PCI_READ = 1;
/** TCE permission bit: the device may write the page (asm/tce.h TCE_PCI_WRITE). */
export const TCE_PCI_WRITE = 2;

/** Linux enum dma_data_direction as a TCE encodes it. */
export type TceDirection = 'none' | 'to-device' | 'from-device' | 'bidirectional';

/** TCE permission bits for a direction (iommu_direction_to_tce_perm; a writable TCE is also readable). */
export function tcePermOf(direction: TceDirection): number {
  switch (direction) {
    case 'none':
      return 0;
    case 'to-device':
      return TCE_PCI_READ;
    case 'from-device':
    case 'bidirectional':
      return TCE_PCI_READ | TCE_PCI_WRITE;
  }
}

/** The direction encoded by TCE permission bits (iommu_tce_direction). */
export function tceDirectionOf(perm: number): TceDirection {
  const r = (perm & TCE_PCI_READ) !== 0;
  const w = (perm & TCE_PCI_WRITE) !== 0;
  if (r && w) return 'bidirectional';
  if (r) return 'to-device';
  if (w) return 'from-device';
  return 'none';
}

const CHUNK_SHIFT = 12;
const CHUNK = 1 << CHUNK_SHIFT;

/**
 * A sparse array of non-negative integers below 2^53 indexed by entry number: 4096-entry chunks allocated when first
 * written and dropped when emptied. Zero means "no entry".
 */
export class SparseEntryArray {
  private readonly chunks = new Map<number, { values: Float64Array; used: number }>();
  private count = 0;

  /** Number of non-zero entries. */
  get size(): number {
    return this.count;
  }

  get(index: number): number {
    const c = this.chunks.get(Math.floor(index / CHUNK));
    return c ? c.values[index % CHUNK]! : 0;
  }

  /** Stores `value` (0 clears) and returns the previous value. */
  set(index: number, value: number): number {
    const key = Math.floor(index / CHUNK);
    let c = this.chunks.get(key);
    if (!c) {
      if (value === 0) return 0;
      c = { values: new Float64Array(CHUNK), used: 0 };
      this.chunks.set(key, c);
    }
    const i = index % CHUNK;
    const old = c.values[i]!;
    c.values[i] = value;
    if (old === 0 && value !== 0) {
      c.used++;
      this.count++;
    } else if (old !== 0 && value === 0) {
      c.used--;
      this.count--;
      if (c.used === 0) this.chunks.delete(key);
    }
    return old;
  }

  /** Indices of non-zero entries in `[first, end)`, ascending; cost follows the chunks present, not the range. */
  usedIn(first: number, end: number): number[] {
    const out: number[] = [];
    if (end <= first || this.count === 0) return out;
    const k0 = Math.floor(first / CHUNK);
    const k1 = Math.floor((end - 1) / CHUNK);
    let keys: number[];
    if (k1 - k0 + 1 <= this.chunks.size) {
      keys = [];
      for (let k = k0; k <= k1; k++) if (this.chunks.has(k)) keys.push(k);
    } else {
      keys = [...this.chunks.keys()].filter((k) => k >= k0 && k <= k1).sort((a, b) => a - b);
    }
    for (const k of keys) {
      const c = this.chunks.get(k)!;
      const base = k * CHUNK;
      const lo = Math.max(first, base) - base;
      const hi = Math.min(end, base + CHUNK) - base;
      for (let i = lo; i < hi; i++) if (c.values[i] !== 0) out.push(base + i);
    }
    return out;
  }

  clearAll(): void {
    this.chunks.clear();
    this.count = 0;
  }
}

/** What a TCE entry holds. */
export interface TceEntry {
  /** Host physical address of the TCE page (aligned to the table's page size). */
  readonly hpa: bigint;
  readonly direction: TceDirection;
}

/** Geometry of a table as pnv_pci_ioda2_table_alloc_pages computes it. */
export interface TceTableGeometry {
  readonly pageShift: number;
  /** Bus address of the window's first byte. */
  readonly busOffset: bigint;
  readonly windowSize: bigint;
  readonly levels: number;
}

/** Largest number of table levels a PowerNV PHB walks (POWERNV_IOMMU_MAX_LEVELS). */
export const POWERNV_IOMMU_MAX_LEVELS = 5;

const ilog2 = (v: bigint): number => v.toString(2).length - 1;
const isPow2 = (v: bigint): boolean => v > 0n && (v & (v - 1n)) === 0n;

/**
 * Bytes of TCE memory a window needs (pnv_pci_ioda2_get_table_size): the hardware table plus its userspace copy,
 * every level rounded to the direct-table size; 0 for a geometry the PHB refuses (no or too many levels, a window
 * that is not a power of two or smaller than one TCE page).
 */
export function tceTableSize(pageShift: number, windowSize: bigint, levels: number): bigint {
  if (!Number.isInteger(levels) || levels < 1 || levels > POWERNV_IOMMU_MAX_LEVELS) return 0n;
  if (!Number.isInteger(pageShift) || pageShift < 12 || pageShift > 63) return 0n;
  if (!isPow2(windowSize) || windowSize < 1n << BigInt(pageShift)) return 0n;
  const entriesShift = ilog2(windowSize) - pageShift;
  let tceTableSize = 1n << BigInt(Math.max(12, entriesShift + 3));
  const levelEntriesShift = Math.ceil(entriesShift / levels);
  const direct = 1n << BigInt(Math.max(levelEntriesShift + 3, 12));
  let bytes = 0n;
  for (let l = levels; l > 0; l--) {
    bytes += ((tceTableSize + direct - 1n) / direct) * direct;
    tceTableSize = (tceTableSize / direct) << 3n;
    if (tceTableSize < direct) tceTableSize = direct;
  }
  return bytes + bytes; // one for the hardware table, one for the userspace copy
}

/** Counters of one table, for tests and `describe`. */
export interface TceTableStats {
  /** Entries currently holding a TCE. */
  readonly entries: number;
  /** Indirect-level blocks allocated on demand so far (levels > 1 only). */
  readonly indirectBlocks: number;
}

/** One TCE table. Created by a table group's `createTable`; programmed into groups with `setWindow`. */
export class TceTable implements IommuTable {
  /** Page shift of a TCE page (12 = 4 KiB, 16 = 64 KiB, 21 = 2 MiB, 24 = 16 MiB, 30 = 1 GiB...). */
  readonly pageShift: number;
  /** First entry number (bus offset >> pageShift), Linux it_offset. */
  readonly offset: number;
  /** Entries in the window, Linux it_size. */
  readonly size: number;
  readonly levels: number;
  /** Entries per level block (it_level_size). */
  readonly levelSize: number;
  /** Bytes the table occupies, hardware table plus userspace copy (it_allocated_size). */
  readonly allocatedSize: bigint;
  private readonly hw = new SparseEntryArray();
  private readonly ua = new SparseEntryArray();
  /** Allocated indirect blocks per indirect level (keys: entry index >> (levelShift * level)). */
  private readonly indirect: Set<number>[];
  private freed = false;

  constructor(geometry: TceTableGeometry) {
    const { pageShift, busOffset, windowSize, levels } = geometry;
    const bytes = tceTableSize(pageShift, windowSize, levels);
    if (bytes === 0n) throw sysError('EINVAL', 'unsupported TCE table geometry');
    const entriesShift = ilog2(windowSize) - pageShift;
    const levelShift = Math.max(Math.ceil(entriesShift / levels) + 3, 12);
    // pnv_pci_ioda2_table_alloc_pages: the levels must not address 2^55 bytes or more.
    if ((levelShift - 3) * levels + pageShift >= 55) throw sysError('EINVAL', 'TCE table addresses too much');
    if (busOffset % (1n << BigInt(pageShift)) !== 0n) throw sysError('EINVAL', 'bus offset not page aligned');
    this.pageShift = pageShift;
    this.offset = Number(busOffset >> BigInt(pageShift));
    this.size = Number(windowSize >> BigInt(pageShift));
    this.levels = levels;
    this.levelSize = 2 ** (levelShift - 3);
    this.allocatedSize = bytes;
    this.indirect = Array.from({ length: levels - 1 }, () => new Set<number>());
  }

  /** Bus address of the window's first byte. */
  get busStart(): bigint {
    return BigInt(this.offset) << BigInt(this.pageShift);
  }

  /** Bytes the window spans. */
  get windowSize(): bigint {
    return BigInt(this.size) << BigInt(this.pageShift);
  }

  /** Bytes of one TCE page. */
  get pageSize(): bigint {
    return 1n << BigInt(this.pageShift);
  }

  get stats(): TceTableStats {
    return { entries: this.hw.size, indirectBlocks: this.indirect.reduce((n, s) => n + s.size, 0) };
  }

  get isFreed(): boolean {
    return this.freed;
  }

  /** True when the entry number lies inside the window. */
  contains(index: number): boolean {
    return index >= this.offset && index < this.offset + this.size;
  }

  private check(index: number): number {
    if (this.freed) throw sysError('ENODEV', 'TCE table was freed');
    if (!Number.isInteger(index) || !this.contains(index)) throw sysError('EINVAL', `TCE index ${index} outside the window`);
    return index - this.offset;
  }

  /**
   * Exchanges the TCE at `index` (pnv_tce_xchg): writes `hpa` with the permission of `direction` ('none' clears)
   * and returns what was there. Writing a TCE allocates the missing indirect levels, as the hardware walk needs.
   */
  exchange(index: number, hpa: bigint, direction: TceDirection): TceEntry {
    const idx = this.check(index);
    if (direction !== 'none' && (hpa < 0n || hpa % this.pageSize !== 0n)) {
      throw sysError('EINVAL', 'TCE address not aligned to the TCE page size');
    }
    const perm = tcePermOf(direction);
    if (perm !== 0) this.allocLevels(idx);
    const old = this.hw.set(idx, perm === 0 ? 0 : Number(hpa) + perm);
    return decode(old);
  }

  private allocLevels(idx: number): void {
    const shift = Math.log2(this.levelSize);
    for (let l = 0; l < this.indirect.length; l++) this.indirect[l]!.add(Math.floor(idx / 2 ** (shift * (l + 1))));
  }

  /** The TCE at `index` (pnv_tce_get), or `undefined` when clear. */
  get(index: number): TceEntry | undefined {
    const v = this.hw.get(this.check(index));
    return v === 0 ? undefined : decode(v);
  }

  /** Entry numbers holding a TCE within `[first, first+count)`, ascending (skips unallocated levels). */
  usedEntries(first: number, count: number): number[] {
    const lo = Math.max(first, this.offset) - this.offset;
    const hi = Math.min(first + count, this.offset + this.size) - this.offset;
    return this.hw.usedIn(lo, hi).map((i) => i + this.offset);
  }

  /** The userspace view of an entry (it_userspace: the user address a v2 container mapped there), 0n if none. */
  getUserspaceEntry(index: number): bigint {
    return BigInt(this.ua.get(this.check(index)));
  }

  setUserspaceEntry(index: number, ua: bigint): void {
    this.ua.set(this.check(index), Number(ua));
  }

  /** Frees the table's memory (it_ops->free); entries are dropped without any unpinning. */
  free(): void {
    this.freed = true;
    this.hw.clearAll();
    this.ua.clearAll();
    for (const s of this.indirect) s.clear();
  }
}

function decode(v: number): TceEntry {
  if (v === 0) return { hpa: 0n, direction: 'none' };
  const perm = v % 4;
  return { hpa: BigInt(v - perm), direction: tceDirectionOf(perm) };
}
