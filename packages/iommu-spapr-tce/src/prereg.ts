/**
 * Pre-registered memory of one address space (Linux arch/powerpc/mm/book3s64/iommu_api.c, mm->context
 * iommu_group_mem_list): regions of user memory pinned and accounted once, then mapped into TCEs by v2 containers
 * without further pinning. Regions are per mm, shared by every container of that mm, and reference counted
 * (`used`); `mapped` counts TCEs pointing into a region plus one while it may still be mapped.
 */
import { PAGE_SHIFT, PAGE_SIZE_N } from '@vfio-ts/platform';
import type { AddressSpace, PinnedRun, Task } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';

/** One pre-registered region (struct mm_iommu_table_group_mem_t). */
export class PreregRegion {
  /** References: each container holding it, plus transient lookups. */
  used = 1;
  /** TCEs mapping into the region, plus one while mappings are allowed (0 once it is being released). */
  mapped = 1;

  constructor(
    readonly ua: bigint,
    readonly entries: number,
    /** Largest TCE page shift the region can back (natural alignment and backing page size). */
    readonly pageShift: number,
    private readonly runs: readonly PinnedRun[],
  ) {}

  get end(): bigint {
    return this.ua + (BigInt(this.entries) << BigInt(PAGE_SHIFT));
  }

  /** mm_iommu_ua_to_hpa: the host physical address of `ua` for a TCE of `pageShift`; EFAULT when it cannot be. */
  uaToHpa(ua: bigint, pageShift: number): bigint {
    const entry = (ua - this.ua) >> BigInt(PAGE_SHIFT);
    if (ua < this.ua || entry >= BigInt(this.entries)) throw new SysError('EFAULT', 'address outside the region');
    if (pageShift > this.pageShift) throw new SysError('EFAULT', 'TCE page larger than the region can back');
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.runs[mid]!;
      const rEnd = r.vaddr + (BigInt(r.npages) << BigInt(PAGE_SHIFT));
      if (ua < r.vaddr) hi = mid - 1;
      else if (ua >= rEnd) lo = mid + 1;
      else return ((r.pfn + ((ua - r.vaddr) >> BigInt(PAGE_SHIFT))) << BigInt(PAGE_SHIFT)) | (ua & (PAGE_SIZE_N - 1n));
    }
    throw new SysError('EFAULT', 'address not pinned');
  }

  /** Drops the pins (mm_iommu_unpin). */
  unpin(mm: AddressSpace): void {
    for (const r of this.runs) mm.unpin(r.pfn, r.npages);
  }

  /** mm_iommu_mapped_inc: ENXIO once the region is being released. */
  mappedInc(): void {
    if (this.mapped === 0) throw new SysError('ENXIO', 'region is being unregistered');
    this.mapped++;
  }

  /** mm_iommu_mapped_dec: never below the "may be mapped" reference. */
  mappedDec(): void {
    if (this.mapped > 1) this.mapped--;
  }
}

/** The RLIMIT_MEMLOCK to enforce for `task` (account_locked_vm): none with CAP_IPC_LOCK. */
export function memlockLimitOf(task: Task): bigint | null {
  return task.capable('CAP_IPC_LOCK') ? null : task.memlockLimit;
}

const ffs = (v: bigint): number => {
  if (v === 0n) return 64;
  let n = 0;
  while ((v & 1n) === 0n) {
    v >>= 1n;
    n++;
  }
  return n;
};

/** The pre-registered regions of one mm, sorted by address (they never overlap). */
export class MmIommuContext {
  private readonly regions: PreregRegion[] = [];

  constructor(readonly mm: AddressSpace) {}

  /** Regions, lowest address first. */
  list(): readonly PreregRegion[] {
    return this.regions;
  }

  /** mm_iommu_get: the region registered exactly at `ua` with `entries` pages, taking a reference. */
  get(ua: bigint, entries: number): PreregRegion | undefined {
    const r = this.regions.find((m) => m.ua === ua && m.entries === entries);
    if (r) r.used++;
    return r;
  }

  /** mm_iommu_lookup: the region holding all of `[ua, ua+size)`. */
  lookup(ua: bigint, size: bigint): PreregRegion | undefined {
    let lo = 0;
    let hi = this.regions.length - 1;
    let floor: PreregRegion | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.regions[mid]!;
      if (r.ua <= ua) {
        floor = r;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return floor && ua + size <= floor.end ? floor : undefined;
  }

  /**
   * mm_iommu_new: accounts `entries` pages against the task's RLIMIT_MEMLOCK (ENOMEM), pins them writable (EFAULT),
   * refuses an overlap with another region (EINVAL). All or nothing.
   */
  create(ua: bigint, entries: number, task: Task): PreregRegion {
    this.mm.memlock.adjust(entries, memlockLimitOf(task));
    let runs: PinnedRun[] = [];
    try {
      // pin_user_pages(FOLL_WRITE | FOLL_LONGTERM): EFAULT for unmapped, read-only or device memory.
      runs = this.mm.pin(ua, entries, { write: true });
      const end = ua + (BigInt(entries) << BigInt(PAGE_SHIFT));
      if (this.regions.some((m) => m.ua < end && ua < m.end)) {
        throw new SysError('EINVAL', 'region overlaps pre-registered memory');
      }
      const region = new PreregRegion(ua, entries, this.pageShiftOf(ua, entries), runs);
      const at = this.regions.findIndex((m) => m.ua > ua);
      this.regions.splice(at < 0 ? this.regions.length : at, 0, region);
      return region;
    } catch (e) {
      for (const r of runs) this.mm.unpin(r.pfn, r.npages);
      this.mm.memlock.adjust(-entries);
      throw e;
    }
  }

  /**
   * The largest TCE page the region can back: its natural alignment (ua and size), limited by the size of every
   * backing page (hugepages allow TCEs above 4 KiB).
   */
  private pageShiftOf(ua: bigint, entries: number): number {
    let shift = ffs(ua | (BigInt(entries) << BigInt(PAGE_SHIFT)));
    const end = ua + (BigInt(entries) << BigInt(PAGE_SHIFT));
    let a = ua;
    while (a < end && shift > PAGE_SHIFT) {
      const ps = this.mm.lookup(a)?.pageSize ?? PAGE_SIZE_N;
      shift = Math.min(shift, ffs(ps));
      a = a - (a % ps) + ps;
    }
    return shift;
  }

  /**
   * mm_iommu_put: drops a reference; the last one releases the region (unpin, unaccount) unless TCEs still map into
   * it, which is EBUSY (the reference is kept).
   */
  put(region: PreregRegion): void {
    if (region.used === 0) throw new SysError('ENOENT', 'region already released');
    region.used--;
    if (region.used > 0) return;
    if (region.mapped !== 1) {
      region.used++;
      throw new SysError('EBUSY', 'pre-registered memory is still mapped');
    }
    region.mapped = 0;
    const i = this.regions.indexOf(region);
    if (i >= 0) this.regions.splice(i, 1);
    region.unpin(this.mm);
    this.mm.memlock.adjust(-region.entries);
  }
}
