/**
 * The IO address space (Linux `iommufd_ioas` → `io_pagetable`, inventory §7): areas in an ordered interval tree,
 * allowed and reserved ranges, the attached hardware domains that every area is mirrored into, and the IOVA
 * alignment they impose. Rules follow drivers/iommu/iommufd/io_pagetable.c (Linux 6.12).
 */
import type { IommuDomain } from '@vfio-ts/platform';
import { IOMMU_READ, IOMMU_WRITE, PAGE_SIZE_N } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { IntervalTree, holes } from './interval.js';
import type { Interval } from './interval.js';
import type { IoPages } from './pages.js';

/** ULONG_MAX on LP64. */
export const U64_MAX = (1n << 64n) - 1n;

/** The highest IOVA span end the allocator and IOAS_MAP accept (ULONG_MAX - PAGE_SIZE), computed once. */
export const U64_MAX_LESS_PAGE = U64_MAX - PAGE_SIZE_N;
const U64_HALF = U64_MAX / 2n;

/** One mapping of an IOAS: `[start, last]` → bytes `startByte..` of `pages`. */
export interface Area extends Interval {
  readonly pages: IoPages;
  /** Byte offset of `start` inside `pages` (from `pages.base`). */
  readonly startByte: bigint;
  /** IOMMU_READ / IOMMU_WRITE / IOMMU_CACHE bits. */
  readonly prot: number;
  /** Pins held on this area's pages by accesses (emulated devices). */
  accessPins: number;
  /** First page index of the area inside `pages` (fixed at creation: every pin/unpin/fill uses it). */
  readonly firstIndex: number;
  /** Last page index of the area inside `pages`. */
  readonly lastIndex: number;
}

/** A new area (every area has this one shape, so the hot paths that read areas stay monomorphic). */
function newArea(start: bigint, last: bigint, pages: IoPages, startByte: bigint, prot: number): Area {
  return {
    start,
    last,
    pages,
    startByte,
    prot,
    accessPins: 0,
    firstIndex: Number(startByte / PAGE_SIZE_N),
    lastIndex: Number((startByte + (last - start)) / PAGE_SIZE_N),
  };
}

/** A reserved IOVA range and who reserved it (a device, a domain's aperture). */
interface Reserved extends Interval {
  readonly owner: object;
}

/** A slice of pages to become one area (the kernel's iopt_pages_list element). */
export interface PagesSlice {
  readonly pages: IoPages;
  readonly startByte: bigint;
  readonly length: bigint;
}

/** Something that must drop its pins before an area goes away (an access's unmap callback, §7 ACCESS). */
export interface UnmapNotifier {
  notifyUnmap(iova: bigint, length: bigint): void;
}

function pow2Ceil(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

function lowestBit(n: bigint): bigint {
  return n & -n;
}

function alignUp(v: bigint, a: bigint): bigint {
  return ((v + a - 1n) / a) * a;
}

/** Where `length` bytes fit in `[start, last]` at `align` keeping the sub-page `pageOffset`, if they do. */
function fitIn(start: bigint, last: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint | undefined {
  if (last - start < length - 1n) return undefined;
  const s = alignUp(start, align) | pageOffset;
  if (s > last || last - s < length - 1n) return undefined;
  return s;
}

/** First page index of an area inside its pages object. */
export function areaFirstIndex(a: Area): number {
  return a.firstIndex;
}

/** The io_pagetable of an IOAS. */
export class IoPagetable {
  readonly areas = new IntervalTree<Area>();
  /** Allowed ranges (non-overlapping), sorted by start; empty = everything allowed. */
  #allowed: Interval[] = [];
  /** Reserved ranges (may overlap), sorted by start. */
  #reserved: Reserved[] = [];
  readonly domains: IommuDomain[] = [];
  /** Accesses attached (their unmap callbacks run before a pinned area is unmapped). */
  readonly accesses = new Set<UnmapNotifier & { readonly iovaAlignment: bigint }>();
  /** IOMMU_OPTION_HUGE_PAGES = 0 (disable_large_pages). */
  #disableLargePages = false;
  /** Minimum IOVA alignment (1 for a software table, the domains' smallest page otherwise). */
  iovaAlignment = 1n;

  get largePagesDisabled(): boolean {
    return this.#disableLargePages;
  }

  /** Allowed ranges, in order. */
  get allowed(): readonly Interval[] {
    return this.#allowed;
  }

  /** Reserved ranges, in order (may overlap). */
  get reserved(): readonly Interval[] {
    return this.#reserved;
  }

  #reservedFirst(start: bigint, last: bigint): Reserved | undefined {
    // Sorted by start: nothing from the first range starting past `last` on can intersect.
    for (const r of this.#reserved) {
      if (r.start > last) return undefined;
      if (r.last >= start) return r;
    }
    return undefined;
  }

  #allowedFirst(start: bigint, last: bigint): Interval | undefined {
    for (const r of this.#allowed) {
      if (r.start > last) return undefined;
      if (r.last >= start) return r;
    }
    return undefined;
  }

  /** Holes of the reserved ranges over the whole space: what IOAS_IOVA_RANGES reports. */
  usableRanges(): Interval[] {
    return holes(this.#reserved, 0n, U64_MAX);
  }

  /* ------------------------------------------------------------------ IOVA allocation and checks */

  /**
   * iopt_alloc_iova: the lowest hole (inside the allowed ranges, or [PAGE_SIZE, ULONG_MAX - PAGE_SIZE] when none)
   * that avoids reserved ranges and areas, aligned to the largest power of two the length and user address
   * share, keeping the user address's sub-page offset. EOVERFLOW for absurd lengths, EINVAL below the table's
   * alignment, ENOSPC when no hole fits.
   */
  allocIova(uptr: bigint, length: bigint): bigint {
    const pageOffset = uptr % PAGE_SIZE_N;
    if (length === 0n || length >= U64_HALF) throw new SysError('EOVERFLOW', 'length too large to align');
    let align = pow2Ceil(length);
    if (uptr !== 0n) {
      const ua = lowestBit(uptr);
      if (ua < align) align = ua;
    }
    if (align < this.iovaAlignment) throw new SysError('EINVAL', 'user address below the IOVA alignment');
    const lo = PAGE_SIZE_N;
    const hi = U64_MAX_LESS_PAGE;
    if (this.#allowed.length === 0) {
      const s = this.#allocIn(lo, hi, length, align, pageOffset);
      if (s !== undefined) return s;
    } else {
      for (const a of this.#allowed) {
        if (a.last < lo || a.start > hi) continue;
        const s = this.#allocIn(a.start < lo ? lo : a.start, a.last > hi ? hi : a.last, length, align, pageOffset);
        if (s !== undefined) return s;
      }
    }
    throw new SysError('ENOSPC', 'no free IOVA range fits');
  }

  /** The lowest fitting IOVA of the span `[lo, hi]`, if any. */
  #allocIn(lo: bigint, hi: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint | undefined {
    if (fitIn(lo, hi, length, align, pageOffset) === undefined) return undefined;
    for (const hole of this.#holesOfUsed(lo, hi, length)) {
      const s = fitIn(hole.start, hole.last, length, align, pageOffset);
      if (s !== undefined) return s;
    }
    return undefined;
  }

  /**
   * Holes of reserved ∪ areas inside `[lo, hi]` with at least `minSize` addresses, in order (the kernel's double
   * span walk, with the area tree skipping runs of areas that have no such gap).
   */
  *#holesOfUsed(lo: bigint, hi: bigint, minSize: bigint): Generator<Interval> {
    const res = this.#reserved;
    for (const gap of this.areas.gaps(minSize, U64_MAX)) {
      if (gap.last < lo) continue;
      if (gap.start > hi) return;
      // Clip to the span, then cut out the reserved ranges (few: apertures, MSI windows, test reservations).
      let cursor = gap.start < lo ? lo : gap.start;
      const last = gap.last > hi ? hi : gap.last;
      for (const r of res) {
        if (r.last < cursor) continue;
        if (r.start > last) break;
        if (r.start > cursor && r.start - cursor >= minSize) yield { start: cursor, last: r.start - 1n };
        if (r.last >= last) {
          cursor = last + 1n;
          break;
        }
        cursor = r.last + 1n;
      }
      if (cursor <= last && last - cursor + 1n >= minSize) yield { start: cursor, last };
    }
  }

  /** iopt_check_iova for a FIXED_IOVA map: alignment (EINVAL), overflow, reserved (EINVAL), taken (EEXIST). */
  checkIova(iova: bigint, length: bigint): void {
    if (iova % this.iovaAlignment !== 0n) throw new SysError('EINVAL', 'iova not aligned to the IOAS alignment');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new SysError('EOVERFLOW', 'iova + length overflows');
    if (this.#reservedFirst(iova, last)) throw new SysError('EINVAL', 'iova range is reserved');
    if (this.areas.first(iova, last)) throw new SysError('EEXIST', 'iova range already mapped');
  }

  /* ------------------------------------------------------------------ map / unmap */

  /**
   * iopt_map_pages: places the slices back to back at `iova` (or at an allocated IOVA when `iova` is undefined),
   * then fills every attached domain. All or nothing. Returns the IOVA used.
   */
  mapPages(slices: readonly PagesSlice[], length: bigint, iova: bigint | undefined, prot: number): bigint {
    if (length === 0n || length % this.iovaAlignment !== 0n) throw new SysError('EINVAL', 'length not aligned to the IOAS alignment');
    const first = slices[0];
    if (!first) throw new SysError('EINVAL', 'nothing to map');
    let at: bigint;
    if (iova === undefined) at = this.allocIova(first.pages.base + first.startByte, length);
    else {
      this.checkIova(iova, length);
      at = iova;
    }
    if (slices.length === 1) {
      // IOAS_MAP (and most COPYs): one area, no lists to build.
      const a = this.#newAreaFor(first, at, prot);
      this.#fillArea(a);
      this.areas.insert(a);
      return at;
    }
    // iopt_insert_area checks, for every slice, before anything is inserted.
    const areas: Area[] = [];
    let cursor = at;
    for (const s of slices) {
      const a = this.#newAreaFor(s, cursor, prot);
      areas.push(a);
      cursor = a.last + 1n;
    }
    let filled = 0;
    try {
      for (; filled < areas.length; filled++) this.#fillArea(areas[filled]!);
    } catch (e) {
      for (let i = 0; i < filled; i++) this.#unfillArea(areas[i]!);
      throw e;
    }
    for (const a of areas) this.areas.insert(a);
    return at;
  }

  /** iopt_insert_area's checks for one slice placed at `at`: EPERM, EINVAL (page offset), EOVERFLOW. */
  #newAreaFor(s: PagesSlice, at: bigint, prot: number): Area {
    if ((prot & IOMMU_WRITE) !== 0 && !s.pages.writable) throw new SysError('EPERM', 'pages are not writable');
    if ((s.startByte % PAGE_SIZE_N) % this.iovaAlignment !== 0n) throw new SysError('EINVAL', 'page offset not aligned');
    const last = at + s.length - 1n;
    if (last > U64_MAX) throw new SysError('EOVERFLOW', 'area overflows');
    return newArea(at, last, s.pages, s.startByte, prot);
  }

  /** Areas fully inside `[start, last]`; ENOENT when one only partly is (no splitting), or when none is. */
  #containedAreas(start: bigint, last: bigint): Area[] {
    const out: Area[] = [];
    const tree = this.areas;
    for (let a = tree.first(start, last); a; a = tree.next(a, last)) {
      if (a.start < start || a.last > last) throw new SysError('ENOENT', 'range splits a mapped area');
      out.push(a);
    }
    return out;
  }

  /**
   * iopt_unmap_iova_range: removes the whole areas inside `[start, last]` and returns the bytes unmapped. A
   * range that would split an area is ENOENT — checked for every area before any is removed, so a refused unmap
   * changes nothing. Accesses holding pins are told to unpin first.
   */
  unmapRange(start: bigint, last: bigint): bigint {
    const victims = this.#containedAreas(start, last);
    if (victims.length === 0) throw new SysError('ENOENT', 'nothing mapped in the range');
    let total = 0n;
    for (const a of victims) {
      const length = a.last - a.start + 1n;
      if (a.accessPins > 0) {
        for (const acc of this.accesses) acc.notifyUnmap(a.start, length);
        if (a.accessPins > 0) throw new SysError('EDEADLK', 'an access kept its pins after the unmap notification');
      }
      this.#unfillArea(a, length);
      this.areas.remove(a);
      total += length;
    }
    return total;
  }

  /** iopt_unmap_all: everything; an empty table is not an error. */
  unmapAll(): bigint {
    if (this.areas.size === 0) return 0n;
    return this.unmapRange(0n, U64_MAX);
  }

  /**
   * iopt_get_pages: the slices behind `[iova, iova+length)`, which must be covered by contiguous areas
   * (ENOENT otherwise).
   */
  getPages(iova: bigint, length: bigint): PagesSlice[] {
    if (length === 0n) throw new SysError('EINVAL', 'zero length');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new SysError('EOVERFLOW', 'iova + length overflows');
    const out: PagesSlice[] = [];
    let cur = iova;
    let area = this.areas.first(iova, iova);
    while (area && area.start <= cur) {
      const end = area.last < last ? area.last : last;
      out.push({ pages: area.pages, startByte: area.startByte + (cur - area.start), length: end - cur + 1n });
      if (end === last) return out;
      cur = end + 1n;
      area = this.areas.first(cur, cur);
    }
    throw new SysError('ENOENT', 'range is not fully mapped by contiguous areas');
  }

  /**
   * iopt_cut_iova (VFIO type1 v1 compat, inventory §1.9.4): splits the areas containing each IOVA so that the
   * IOVA becomes an area's last byte. Only without large pages (EINVAL otherwise when domains hold the area), at
   * an aligned boundary (EINVAL), and never under an access's pins (EINVAL).
   */
  cut(iovas: readonly bigint[]): void {
    for (const iova of iovas) {
      const a = this.areas.first(iova, iova);
      if (!a || iova === a.start || iova === a.last) continue;
      const newStart = iova + 1n;
      const byte = a.startByte + (newStart - a.start);
      if (newStart % this.iovaAlignment !== 0n || byte % this.iovaAlignment !== 0n) throw new SysError('EINVAL', 'cut not aligned');
      if (a.accessPins > 0) throw new SysError('EINVAL', 'an access pins the area');
      if (this.domains.length > 0 && !this.#disableLargePages) throw new SysError('EINVAL', 'area may use large IOPTEs');
      const lhs = newArea(a.start, iova, a.pages, a.startByte, a.prot);
      const rhs = newArea(newStart, a.last, a.pages, byte, a.prot);
      // With domains the alignment is at least PAGE_SIZE, so the halves' page ranges never share a page and the
      // pins the area held are exactly the pins the halves hold.
      this.areas.remove(a);
      this.areas.insert(lhs);
      this.areas.insert(rhs);
    }
  }

  /* ------------------------------------------------------------------ domains */

  /** Maps one area into one domain from its pinned pages (contiguous runs; page by page without huge pages). */
  #mapIntoDomain(a: Area, d: IommuDomain): void {
    const first = a.firstIndex;
    const runs = a.pages.runs(first, a.lastIndex);
    const prot = a.prot;
    let mappedTo = a.start;
    try {
      for (const r of runs) {
        const iova = r.index === first ? a.start : a.start + BigInt(r.index - first) * PAGE_SIZE_N;
        const size = BigInt(r.npages) * PAGE_SIZE_N;
        const pa = r.pfn * PAGE_SIZE_N;
        if (this.#disableLargePages && r.npages > 1) {
          for (let k = 0n; k < size; k += PAGE_SIZE_N) d.map(iova + k, pa + k, PAGE_SIZE_N, prot);
        } else d.map(iova, pa, size, prot);
        mappedTo = iova + size;
      }
    } catch (e) {
      if (mappedTo > a.start) d.unmap(a.start, mappedTo - a.start);
      throw e;
    }
  }

  /** Pins an area's pages and mirrors it into every domain (iopt_area_fill_domains); all or nothing. */
  #fillArea(a: Area): void {
    const domains = this.domains;
    if (domains.length === 0) return;
    a.pages.pin(a.firstIndex, a.lastIndex);
    let done = 0;
    try {
      for (; done < domains.length; done++) this.#mapIntoDomain(a, domains[done]!);
    } catch (e) {
      const length = a.last - a.start + 1n;
      for (let i = 0; i < done; i++) domains[i]!.unmap(a.start, length);
      a.pages.unpin(a.firstIndex, a.lastIndex);
      throw e;
    }
  }

  #unfillArea(a: Area, length = a.last - a.start + 1n): void {
    if (this.domains.length === 0) return;
    for (const d of this.domains) d.unmap(a.start, length);
    a.pages.unpin(a.firstIndex, a.lastIndex);
  }

  #checkAlignment(align: bigint): void {
    for (const a of this.areas.toArray()) {
      if (a.start % align !== 0n || (a.last - a.start + 1n) % align !== 0n || (a.startByte % PAGE_SIZE_N) % align !== 0n) {
        throw new SysError('EADDRINUSE', 'an existing area does not fit the new alignment');
      }
    }
    for (const acc of this.accesses) if (acc.iovaAlignment > align) throw new SysError('EADDRINUSE', 'an access needs a larger alignment');
  }

  /** iopt_calculate_iova_alignment: recompute from domains, accesses and the huge-pages option. */
  #recalcAlignment(): void {
    let align = this.#disableLargePages ? PAGE_SIZE_N : 1n;
    for (const d of this.domains) {
      const min = lowestBit(d.pgsizeBitmap);
      if (min > align) align = min;
    }
    for (const acc of this.accesses) if (acc.iovaAlignment > align) align = acc.iovaAlignment;
    if (align > this.iovaAlignment) this.#checkAlignment(align);
    this.iovaAlignment = align;
  }

  /**
   * iopt_table_add_domain: the domain's aperture becomes reserved, alignment may grow (EADDRINUSE if an area
   * does not fit), and every area is pinned and mapped into it. All or nothing.
   */
  addDomain(d: IommuDomain): void {
    if (this.domains.includes(d)) throw new SysError('EEXIST', 'domain already in the IOAS');
    const min = lowestBit(d.pgsizeBitmap);
    const align = min > this.iovaAlignment ? min : this.iovaAlignment;
    if (align > PAGE_SIZE_N) throw new SysError('EINVAL', 'domain cannot map PAGE_SIZE');
    if (align !== this.iovaAlignment) this.#checkAlignment(align);
    const reserved: Interval[] = [];
    if (d.aperture.start !== 0n) reserved.push({ start: 0n, last: d.aperture.start - 1n });
    if (d.aperture.end !== U64_MAX) reserved.push({ start: d.aperture.end + 1n, last: U64_MAX });
    for (const r of reserved) this.reserve(r.start, r.last, d);
    const first = this.domains.length === 0;
    const done: Area[] = [];
    try {
      for (const a of this.areas.toArray()) {
        if (first) a.pages.pin(a.firstIndex, a.lastIndex);
        try {
          this.#mapIntoDomain(a, d);
        } catch (e) {
          if (first) a.pages.unpin(a.firstIndex, a.lastIndex);
          throw e;
        }
        done.push(a);
      }
    } catch (e) {
      for (const a of done) {
        d.unmap(a.start, a.last - a.start + 1n);
        if (first) a.pages.unpin(a.firstIndex, a.lastIndex);
      }
      this.removeReserved(d);
      throw e;
    }
    this.iovaAlignment = align;
    this.domains.push(d);
  }

  /** iopt_table_remove_domain: unmaps every area from it, unpins when it was the last, drops its reservations. */
  removeDomain(d: IommuDomain): void {
    const i = this.domains.indexOf(d);
    if (i < 0) return;
    this.domains.splice(i, 1);
    const last = this.domains.length === 0;
    for (const a of this.areas.toArray()) {
      d.unmap(a.start, a.last - a.start + 1n);
      if (last) a.pages.unpin(a.firstIndex, a.lastIndex);
    }
    this.removeReserved(d);
    this.#recalcAlignment();
  }

  /* ------------------------------------------------------------------ allowed / reserved / options */

  /** EADDRINUSE when reserving `[start, last]` would intersect an area or an allowed range. */
  checkReservable(start: bigint, last: bigint): void {
    if (this.areas.first(start, last) || this.#allowedFirst(start, last)) {
      throw new SysError('EADDRINUSE', 'reserved range intersects a mapping or an allowed range');
    }
  }

  /** iopt_reserve_iova: EADDRINUSE when an area or an allowed range intersects. */
  reserve(start: bigint, last: bigint, owner: object): void {
    this.checkReservable(start, last);
    this.#reserved.push({ start, last, owner });
    this.#reserved.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** Drops every reservation of `owner`. */
  removeReserved(owner: object): void {
    this.#reserved = this.#reserved.filter((r) => r.owner !== owner);
  }

  /** iopt_set_allow_iova: replaces the allowed list; EADDRINUSE (and no change) if one intersects a reservation. */
  setAllowed(ranges: readonly Interval[]): void {
    for (const r of ranges) {
      if (this.#reservedFirst(r.start, r.last)) throw new SysError('EADDRINUSE', 'allowed range intersects a reserved range');
    }
    this.#allowed = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** IOMMU_OPTION_HUGE_PAGES = 0: refused (EINVAL) once domains hold mappings; EADDRINUSE on a misaligned area. */
  disableLargePages(): void {
    if (this.#disableLargePages) return;
    if (this.domains.length > 0 && this.areas.size > 0) throw new SysError('EINVAL', 'domains already hold mappings');
    this.#disableLargePages = true;
    try {
      this.#recalcAlignment();
    } catch (e) {
      this.#disableLargePages = false;
      throw e;
    }
  }

  /** IOMMU_OPTION_HUGE_PAGES = 1. */
  enableLargePages(): void {
    this.#disableLargePages = false;
    this.#recalcAlignment();
  }

  /** An access joins (iopt_add_access): its alignment may grow the table's (EADDRINUSE). */
  addAccess(acc: UnmapNotifier & { readonly iovaAlignment: bigint }): void {
    this.accesses.add(acc);
    try {
      this.#recalcAlignment();
    } catch (e) {
      this.accesses.delete(acc);
      throw e;
    }
  }

  removeAccess(acc: UnmapNotifier & { readonly iovaAlignment: bigint }): void {
    this.accesses.delete(acc);
    this.#recalcAlignment();
  }

  /** Bytes mapped by all areas. */
  mappedBytes(): bigint {
    let n = 0n;
    for (const a of this.areas.toArray()) n += a.last - a.start + 1n;
    return n;
  }
}

/** IOMMU prot bits for IOAS_MAP/COPY flags (conv_iommu_prot); IOMMU_CACHE is implied by bind-time checks. */
export function protFromFlags(writeable: boolean, readable: boolean, cache: number): number {
  return cache | (writeable ? IOMMU_WRITE : 0) | (readable ? IOMMU_READ : 0);
}
