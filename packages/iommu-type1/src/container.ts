/**
 * The state of one type1 container (Linux struct vfio_iommu) and every operation on it, with decoded arguments.
 * `ioctl.ts` turns user structs into calls here; `plugin.ts` wires it to the core's backend contract.
 * Rules are from Linux 6.12 drivers/vfio/vfio_iommu_type1.c (inventory §1.7, §2.10, §4).
 */
import type { AddressSpace, IommuDomain, IommuGroup, PageLookup, Task } from '@vfio-ts/platform';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, PROT_READ, PROT_WRITE } from '@vfio-ts/platform';
import type { IommuBackendEnv, VfioDeviceRef, VfioGroupRef } from '@vfio-ts/core';
import {
  SysError,
  VFIO_DMA_MAP_FLAG_READ as MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR as MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE as MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL as UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP as UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR as UNMAP_FLAG_VADDR,
  isSysError,
} from '@vfio-ts/uapi';
import { DIRTY_BITMAP_PAGES_MAX, dirtyBitmapBytes, newBitmap, setBits, shiftedBytes } from './bitmap.js';
import { DmaTree } from './dma-tree.js';
import type { IovaRange } from './iova-list.js';
import { excludeReserved, excludingRegions, iovaRangeValid, resizeToAperture } from './iova-list.js';
import { boolParam, uintParam } from './params.js';

const PAGE = 4096n;
const PAGE_SHIFT_N = 12n;
const U64_MAX = (1n << 64n) - 1n;
/** PAGE_MASK as an unsigned long: every page size from 4 KiB up (the bitmap of a container without domains). */
export const PAGE_MASK_U64 = U64_MAX ^ (PAGE - 1n);
/** x86_64 TASK_SIZE_MAX: what access_ok() accepts as a user pointer range. */
const TASK_SIZE_MAX = (1n << 47n) - PAGE;
/** How many base pages one pin call covers; runs are still merged across chunks. */
const PIN_CHUNK_PAGES = 1 << 18;
/** vfio_dma_do_unmap gives up (the kernel BUG()s) when a device keeps its pins through this many notifications. */
const UNMAP_NOTIFY_RETRIES = 10;


/** Physically contiguous pinned pages of a mapping, `off` bytes from its IOVA. */
interface Run {
  readonly off: bigint;
  readonly pfn: bigint;
  readonly npages: number;
  /** Device (PFNMAP) memory: neither pinned nor accounted. */
  readonly reserved: boolean;
}

/** A page pinned through pin_pages (vfio_pfn): refcounted per IOVA page. */
interface ExternalPin {
  readonly pfn: bigint;
  refs: number;
}

/** One user mapping (struct vfio_dma). */
export interface Dma {
  readonly iova: bigint;
  size: bigint;
  vaddr: bigint;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: number;
  iommuMapped: boolean;
  /** CAP_IPC_LOCK of the owner at map time: no RLIMIT_MEMLOCK check. */
  lockCap: boolean;
  vaddrInvalid: boolean;
  task: Task;
  mm: AddressSpace;
  /** Pages pinned for the IOMMU domains, in IOVA order (empty unless `iommuMapped`). */
  runs: Run[];
  /** External pins by page index within the mapping. */
  readonly pins: Map<number, ExternalPin>;
  bitmap: Uint32Array | undefined;
  /** Whether `bitmap` may hold set bits (saves clearing a clean one). */
  bitmapTouched: boolean;
  /** Pages this mapping has accounted to `mm.memlock` (dma->locked_vm). */
  lockedPages: number;
}

interface GroupRec {
  readonly id: number;
  readonly iommuGroup: IommuGroup | undefined;
  pinnedPageDirtyScope: boolean;
}

interface DomainRec {
  readonly domain: IommuDomain;
  readonly groups: GroupRec[];
  readonly enforceCacheCoherency: boolean;
}

/** A decoded MAP_DMA request. */
export interface MapRequest {
  readonly flags: number;
  readonly vaddr: bigint;
  readonly iova: bigint;
  readonly size: bigint;
}

/** A decoded UNMAP_DMA request. */
export interface UnmapRequest {
  readonly flags: number;
  readonly iova: bigint;
  readonly size: bigint;
}

/** A decoded struct vfio_bitmap. */
export interface UserBitmap {
  readonly pgsize: bigint;
  readonly size: bigint;
  readonly data: bigint;
}

/** Counts of a container's state, for `describe()`. */
export type Type1Description = {
  readonly version: 'v1' | 'v2';
  readonly mappings: number;
  readonly lockedPages: number;
  readonly externalPins: number;
  readonly domains: number;
  readonly groups: number;
  readonly emulatedGroups: number;
  readonly dmaAvail: number;
  readonly pgsizeBitmap: bigint;
  readonly dirtyTracking: boolean;
  readonly vaddrInvalid: number;
  readonly iovaRanges: readonly IovaRange[];
};

function pages(bytes: bigint): number {
  return Number(bytes >> PAGE_SHIFT_N);
}

function lowestBit(x: bigint): bigint {
  return x & -x;
}

function log2(x: bigint): bigint {
  let n = 0n;
  while (x > 1n) {
    x >>= 1n;
    n++;
  }
  return n;
}

/** access_ok(): the pointer range lies below TASK_SIZE_MAX and does not wrap. */
function accessOk(addr: bigint, size: bigint): boolean {
  return addr + size <= TASK_SIZE_MAX;
}

/** Verifies a user bitmap size for `npages` pages (verify_bitmap_size). */
function verifyBitmapSize(npages: bigint, bitmapSize: bigint): void {
  if (npages === 0n || bitmapSize === 0n || bitmapSize > dirtyBitmapBytes(DIRTY_BITMAP_PAGES_MAX) || bitmapSize < dirtyBitmapBytes(npages)) {
    throw new SysError('EINVAL', `dirty bitmap of ${bitmapSize} bytes does not fit ${npages} pages`);
  }
}

/** Whether GUP would pin this (non-device) page: readable, and writable when the mapping is. */
function pinnable(l: PageLookup, write: boolean): boolean {
  return !l.device && (l.prot & PROT_READ) !== 0 && (!write || (l.prot & PROT_WRITE) !== 0);
}

/**
 * One type1 container. Every public method either completes or throws a `SysError` leaving the state as before
 * (mappings, pins, locked memory, domains), as §4 requires.
 */
export class Type1Container {
  readonly v2: boolean;
  readonly #env: IommuBackendEnv;
  readonly #dmas = new DmaTree<Dma>();
  #domains: DomainRec[] = [];
  #emulated: GroupRec[] = [];
  #iovaList: IovaRange[] = [];
  readonly #devices = new Set<VfioDeviceRef>();
  #dmaAvail: number;
  #vaddrInvalidCount = 0;
  #pgsizeBitmap = PAGE_MASK_U64;
  #numNonPinnedGroups = 0;
  #dirtyTracking = false;
  #ones: Uint8Array | undefined;

  /**
   * A container after SET_IOMMU: `v2` selects type1v2 semantics; `env` gives the module parameters
   * (`dma_entry_limit` is read once, here, as Linux sets dma_avail at open) and the kernel log.
   */
  constructor(v2: boolean, env: IommuBackendEnv) {
    this.v2 = v2;
    this.#env = env;
    this.#dmaAvail = uintParam(env.param('dma_entry_limit'), 65535);
  }

  /* ---------------------------------------------------------------------------------------------------------- */
  /* Read-only views                                                                                             */
  /* ---------------------------------------------------------------------------------------------------------- */

  /** The AND of every domain's page sizes, sub-page sizes folded into PAGE_SIZE (§4 "Page size bitmap"). */
  get pgsizeBitmap(): bigint {
    return this.#pgsizeBitmap;
  }

  /** Remaining mapping slots (DMA_AVAIL cap). */
  get dmaAvail(): number {
    return this.#dmaAvail;
  }

  /** The valid IOVA ranges (IOVA_RANGE cap); empty when only emulated groups are attached. */
  get iovaRanges(): readonly IovaRange[] {
    return this.#iovaList;
  }

  /** Whether an emulated (mdev) group is attached. */
  get hasEmulatedGroups(): boolean {
    return this.#emulated.length > 0;
  }

  /** Whether every domain enforces cache coherency (VFIO_DMA_CC_IOMMU; true with no domain, as Linux). */
  get allDomainsCoherent(): boolean {
    return this.#domains.every((d) => d.enforceCacheCoherency);
  }

  /** Mappings in IOVA order, as plain data (for tests and `vfio status`). */
  mappings(): { iova: bigint; size: bigint; vaddr: bigint; prot: number; iommuMapped: boolean; vaddrInvalid: boolean; lockedPages: number; externalPins: number }[] {
    return this.#dmas.toArray().map((d) => ({
      iova: d.iova,
      size: d.size,
      vaddr: d.vaddr,
      prot: d.prot,
      iommuMapped: d.iommuMapped,
      vaddrInvalid: d.vaddrInvalid,
      lockedPages: d.lockedPages,
      externalPins: d.pins.size,
    }));
  }

  /** Counts for `vfio status`: mappings, locked pages, domains, groups and the valid IOVA ranges. */
  describe(): Type1Description {
    let locked = 0;
    let ext = 0;
    for (const d of this.#dmas) {
      locked += d.lockedPages;
      ext += d.pins.size;
    }
    return {
      version: this.v2 ? 'v2' : 'v1',
      mappings: this.#dmas.size,
      lockedPages: locked,
      externalPins: ext,
      domains: this.#domains.length,
      groups: this.#domains.reduce((n, d) => n + d.groups.length, 0),
      emulatedGroups: this.#emulated.length,
      dmaAvail: this.#dmaAvail,
      pgsizeBitmap: this.#pgsizeBitmap,
      dirtyTracking: this.#dirtyTracking,
      vaddrInvalid: this.#vaddrInvalidCount,
      iovaRanges: this.#iovaList,
    };
  }

  #minPgsize(): bigint {
    return lowestBit(this.#pgsizeBitmap);
  }

  #limit(dma: Dma): bigint | null {
    return dma.lockCap ? null : dma.task.memlockLimit;
  }

  #warnMemlock(fn: string, task: Task): void {
    const limit = task.memlockLimit === null ? 'unlimited' : task.memlockLimit.toString();
    this.#env.log(`${fn}: RLIMIT_MEMLOCK (${limit}) exceeded`);
  }

  /* ---------------------------------------------------------------------------------------------------------- */
  /* Pinning and mapping (§4 "Pinning + batching", "Accounting", "Mapping to domains")                            */
  /* ---------------------------------------------------------------------------------------------------------- */

  /** External pins of `dma` on page indexes `[from, from + n)`. */
  #pinsIn(dma: Dma, from: number, n: number): number {
    if (dma.pins.size === 0) return 0;
    let c = 0;
    for (const idx of dma.pins.keys()) if (idx >= from && idx < from + n) c++;
    return c;
  }

  /**
   * Pins `npages` pages of `dma` from page index `first` and accounts them (pages already pinned externally are
   * already accounted; device pages are neither pinned nor accounted). All or nothing.
   */
  #pinChunk(dma: Dma, first: number, npages: number): Run[] {
    const write = (dma.prot & IOMMU_WRITE) !== 0;
    const mm = dma.mm;
    const runs: Run[] = [];
    const va = (i: number): bigint => dma.vaddr + BigInt(first + i) * PAGE;
    const unpinAll = (): void => {
      for (const r of runs) if (!r.reserved) mm.unpin(r.pfn, r.npages);
    };
    try {
      let i = 0;
      while (i < npages) {
        try {
          for (const r of mm.pin(va(i), npages - i, { write })) {
            runs.push({ off: r.vaddr - dma.vaddr, pfn: r.pfn, npages: r.npages, reserved: false });
          }
          break;
        } catch (e) {
          if (!isSysError(e, 'EFAULT')) throw e;
        }
        // Something in the range is not pinnable: find it, pin what precedes it, then see whether it is device
        // memory (VM_PFNMAP: mapped as reserved pfns) or a fault.
        let bad = i;
        let look: PageLookup | undefined;
        for (; bad < npages; bad++) {
          look = mm.lookup(va(bad));
          if (!look || !pinnable(look, write)) break;
        }
        if (bad > i) {
          for (const r of mm.pin(va(i), bad - i, { write })) {
            runs.push({ off: r.vaddr - dma.vaddr, pfn: r.pfn, npages: r.npages, reserved: false });
          }
        }
        if (bad >= npages || !look || !look.device || (write && (look.prot & PROT_WRITE) === 0)) {
          throw new SysError('EFAULT', `vaddr 0x${va(bad).toString(16)} cannot be pinned`);
        }
        let n = 1;
        while (bad + n < npages) {
          const l2 = mm.lookup(va(bad + n));
          if (!l2 || !l2.device || l2.pfn !== look.pfn + BigInt(n) || (write && (l2.prot & PROT_WRITE) === 0)) break;
          n++;
        }
        runs.push({ off: BigInt(first + bad) * PAGE, pfn: look.pfn, npages: n, reserved: true });
        i = bad + n;
      }
    } catch (e) {
      unpinAll();
      throw e;
    }
    let need = 0;
    for (const r of runs) if (!r.reserved) need += r.npages;
    need -= this.#pinsIn(dma, first, npages);
    if (need > 0) {
      try {
        mm.memlock.adjust(need, this.#limit(dma));
      } catch (e) {
        unpinAll();
        if (isSysError(e, 'ENOMEM')) this.#warnMemlock('vfio_pin_pages_remote', dma.task);
        throw e;
      }
      dma.lockedPages += need;
    }
    return runs;
  }

  /** Unpins runs and gives back their accounting (pages still pinned externally stay accounted). */
  #unpinRuns(dma: Dma, runs: readonly Run[], account: boolean): number {
    let unlocked = 0;
    for (const r of runs) {
      if (r.reserved) continue;
      dma.mm.unpin(r.pfn, r.npages);
      unlocked += r.npages - this.#pinsIn(dma, pages(r.off), r.npages);
    }
    if (account && unlocked > 0) {
      dma.mm.memlock.adjust(-unlocked);
      dma.lockedPages -= unlocked;
    }
    return unlocked;
  }

  /**
   * Pins pages `[0, npages)` of `dma` as physically contiguous runs (merged across chunks so one IOMMU map call
   * covers each run; with `disable_hugepages` the runs are still stored merged but mapped page by page).
   */
  #pinRange(dma: Dma, npages: number): Run[] {
    const out: Run[] = [];
    let done = 0;
    try {
      while (done < npages) {
        const n = Math.min(PIN_CHUNK_PAGES, npages - done);
        for (const r of this.#pinChunk(dma, done, n)) {
          const last = out[out.length - 1];
          if (last && last.reserved === r.reserved && last.pfn + BigInt(last.npages) === r.pfn && last.off + BigInt(last.npages) * PAGE === r.off) {
            out[out.length - 1] = { off: last.off, pfn: last.pfn, npages: last.npages + r.npages, reserved: last.reserved };
          } else {
            out.push(r);
          }
        }
        done += n;
      }
    } catch (e) {
      this.#unpinRuns(dma, out, true);
      throw e;
    }
    return out;
  }

  /** Maps one run into `domains` (one call per domain, or one per page with disable_hugepages); all or nothing. */
  #mapRun(dma: Dma, run: Run, domains: readonly IommuDomain[], pageByPage: boolean): void {
    const iova = dma.iova + run.off;
    const pa = run.pfn << PAGE_SHIFT_N;
    const prot = dma.prot | IOMMU_CACHE;
    if (!pageByPage || run.npages === 1) {
      const size = BigInt(run.npages) * PAGE;
      const done: IommuDomain[] = [];
      try {
        for (const d of domains) {
          d.map(iova, pa, size, prot);
          done.push(d);
        }
      } catch (e) {
        for (const d of done.reverse()) d.unmap(iova, size);
        throw e;
      }
      return;
    }
    let p = 0;
    try {
      for (; p < run.npages; p++) {
        this.#mapRun(dma, { off: run.off + BigInt(p) * PAGE, pfn: run.pfn + BigInt(p), npages: 1, reserved: run.reserved }, domains, false);
      }
    } catch (e) {
      if (p > 0) for (const d of domains) d.unmap(iova, BigInt(p) * PAGE);
      throw e;
    }
  }

  /** Maps runs in order; on failure unmaps what was mapped and rethrows (the caller unpins). */
  #mapRuns(dma: Dma, runs: readonly Run[], domains: readonly IommuDomain[]): void {
    const pageByPage = boolParam(this.#env.param('disable_hugepages'));
    let k = 0;
    try {
      for (; k < runs.length; k++) this.#mapRun(dma, runs[k]!, domains, pageByPage);
    } catch (e) {
      for (let j = 0; j < k; j++) {
        const r = runs[j]!;
        for (const d of domains) d.unmap(dma.iova + r.off, BigInt(r.npages) * PAGE);
      }
      throw e;
    }
  }

  /** vfio_pin_map_dma: pins the whole mapping and maps it into every domain. */
  #pinMap(dma: Dma, size: bigint): void {
    const runs = this.#pinRange(dma, pages(size));
    try {
      this.#mapRuns(dma, runs, this.#domains.map((d) => d.domain));
    } catch (e) {
      this.#unpinRuns(dma, runs, true);
      throw e;
    }
    dma.runs = runs;
    dma.size = size;
    dma.iommuMapped = true;
  }

  /** vfio_unmap_unpin: removes the mapping from every domain, unpins, and (optionally) gives back accounting. */
  #unmapUnpin(dma: Dma, account: boolean): number {
    if (!dma.iommuMapped || dma.size === 0n || this.#domains.length === 0) return 0;
    for (const d of this.#domains) d.domain.unmap(dma.iova, dma.size);
    const unlocked = this.#unpinRuns(dma, dma.runs, account);
    dma.runs = [];
    dma.iommuMapped = false;
    return unlocked;
  }

  /** vfio_remove_dma. */
  #removeDma(dma: Dma): void {
    this.#unmapUnpin(dma, true);
    this.#dmas.remove(dma);
    dma.bitmap = undefined;
    if (dma.vaddrInvalid) this.#vaddrInvalidCount--;
    this.#dmaAvail++;
  }

  /* ---------------------------------------------------------------------------------------------------------- */
  /* MAP_DMA (§1.7)                                                                                              */
  /* ---------------------------------------------------------------------------------------------------------- */

  /** VFIO_IOMMU_MAP_DMA after the argsz/flags checks. */
  map(req: MapRequest, task: Task): void {
    const setVaddr = (req.flags & MAP_FLAG_VADDR) !== 0;
    let prot = 0;
    if (req.flags & MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
    if (req.flags & MAP_FLAG_READ) prot |= IOMMU_READ;
    if ((prot !== 0 && setVaddr) || (prot === 0 && !setVaddr)) {
      throw new SysError('EINVAL', setVaddr ? 'VADDR cannot be combined with READ/WRITE' : 'neither READ nor WRITE requested');
    }
    const { iova, vaddr, size } = req;
    const mask = this.#minPgsize() - 1n;
    if (size === 0n || ((size | iova | vaddr) & mask) !== 0n) {
      throw new SysError('EINVAL', size === 0n ? 'size is 0' : `iova, vaddr and size must be multiples of ${mask + 1n}`);
    }
    // Linux 6.12 answers a wrapping range with EINVAL (the 2025 rework changed it to EOVERFLOW).
    if (iova + size - 1n > U64_MAX || vaddr + size - 1n > U64_MAX) {
      throw new SysError('EINVAL', 'iova or vaddr range wraps');
    }
    const found = this.#dmas.findOverlap(iova, size);
    if (setVaddr) {
      if (!found) throw new SysError('ENOENT', `no mapping at iova 0x${iova.toString(16)}`);
      if (!found.vaddrInvalid || found.iova !== iova || found.size !== size) {
        throw new SysError('EINVAL', 'VADDR update must name exactly one invalidated mapping');
      }
      this.#changeOwner(found, task);
      found.vaddr = vaddr;
      found.vaddrInvalid = false;
      this.#vaddrInvalidCount--;
      return;
    }
    if (found) throw new SysError('EEXIST', `iova range overlaps the mapping at 0x${found.iova.toString(16)}`);
    if (this.#dmaAvail === 0) throw new SysError('ENOSPC', 'dma_entry_limit reached');
    if (!iovaRangeValid(this.#iovaList, iova, iova + size - 1n)) {
      throw new SysError('EINVAL', `iova range 0x${iova.toString(16)}+0x${size.toString(16)} is outside the valid IOVA ranges`);
    }
    const dma: Dma = {
      iova,
      size: 0n,
      vaddr,
      prot,
      iommuMapped: false,
      lockCap: task.capable('CAP_IPC_LOCK'),
      vaddrInvalid: false,
      task,
      mm: task.mm,
      runs: [],
      pins: new Map(),
      bitmap: undefined,
      bitmapTouched: false,
      lockedPages: 0,
    };
    // Insert with size 0 and grow (as Linux): nothing else can overlap meanwhile.
    this.#dmas.insert(dma);
    this.#dmaAvail--;
    try {
      if (this.#domains.length === 0) dma.size = size;
      else this.#pinMap(dma, size);
      if (this.#dirtyTracking) this.#allocBitmap(dma);
    } catch (e) {
      this.#removeDma(dma);
      throw e;
    }
  }

  /** vfio_change_dma_owner: a VADDR update from another process moves the locked-memory accounting to it. */
  #changeOwner(dma: Dma, task: Task): void {
    if (task.mm === dma.mm) return;
    const lockCap = task.capable('CAP_IPC_LOCK');
    if (dma.lockedPages > 0) {
      try {
        task.mm.memlock.adjust(dma.lockedPages, lockCap ? null : task.memlockLimit);
      } catch (e) {
        if (isSysError(e, 'ENOMEM')) this.#warnMemlock('vfio_change_dma_owner', task);
        throw e;
      }
      dma.mm.memlock.adjust(-dma.lockedPages);
    }
    dma.task = task;
    dma.mm = task.mm;
    dma.lockCap = lockCap;
  }

  /* ---------------------------------------------------------------------------------------------------------- */
  /* UNMAP_DMA (§1.7, §4 "Unmap granularity")                                                                     */
  /* ---------------------------------------------------------------------------------------------------------- */

  /**
   * VFIO_IOMMU_UNMAP_DMA after the argsz/flags/bitmap-struct checks. Returns the bytes unmapped (or invalidated).
   * `user` is the caller's memory, where a dirty bitmap is written.
   */
  unmap(req: UnmapRequest, bitmap: UserBitmap | undefined, user: AddressSpace): bigint {
    const all = (req.flags & UNMAP_FLAG_ALL) !== 0;
    const invalidate = (req.flags & UNMAP_FLAG_VADDR) !== 0;
    const getDirty = (req.flags & UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
    if (invalidate && this.#emulated.length > 0) throw new SysError('EBUSY', 'cannot invalidate vaddr with emulated IOMMU groups');
    const pgsize = this.#minPgsize();
    const { iova } = req;
    let size = req.size;
    if ((iova & (pgsize - 1n)) !== 0n) throw new SysError('EINVAL', `iova not a multiple of ${pgsize}`);
    if (all) {
      if (iova !== 0n || size !== 0n) throw new SysError('EINVAL', 'UNMAP_ALL needs iova and size 0');
      size = U64_MAX;
    } else if (size === 0n || (size & (pgsize - 1n)) !== 0n || iova + size - 1n > U64_MAX) {
      throw new SysError('EINVAL', size === 0n ? 'size is 0' : 'size unaligned or range wraps');
    }
    if (getDirty && (!this.#dirtyTracking || !bitmap || bitmap.pgsize !== pgsize)) {
      throw new SysError('EINVAL', this.#dirtyTracking ? 'bitmap pgsize must be the minimum page size' : 'dirty tracking is not started');
    }
    const end = iova + size;
    if (this.v2 && !all) this.#checkNoBisect(iova, size);

    let unmapped = 0n;
    let last: Dma | undefined;
    let retries = 0;
    // Restarted from the first node after every dma_unmap notification (devices unpin, the tree may change).
    for (;;) {
      let restart = false;
      const first = this.#dmas.firstFrom(iova, size);
      let n = first;
      while (n) {
        if (n.iova >= end) break;
        if (!this.v2 && iova > n.iova) break;
        if (invalidate) {
          if (n.vaddrInvalid) {
            // Roll back the invalidations this call made, then fail.
            for (let m = first; m && m !== n; m = this.#dmas.next(m)) {
              m.vaddrInvalid = false;
              this.#vaddrInvalidCount--;
            }
            throw new SysError('EINVAL', `mapping at 0x${n.iova.toString(16)} already has an invalid vaddr`);
          }
          n.vaddrInvalid = true;
          this.#vaddrInvalidCount++;
          unmapped += n.size;
          n = this.#dmas.next(n);
          continue;
        }
        if (n.pins.size > 0) {
          if (last === n) {
            if (++retries > UNMAP_NOTIFY_RETRIES) {
              this.#env.log(`vfio_dma_do_unmap: BUG: device pins on iova 0x${n.iova.toString(16)} survive dma_unmap`);
              throw new SysError('EIO', 'a device kept its pins through dma_unmap');
            }
          } else {
            last = n;
            retries = 0;
          }
          this.#notifyDmaUnmap(n);
          restart = true;
          break;
        }
        if (getDirty && bitmap) this.#reportDirty(n, iova, bitmap.data, pgsize, user);
        unmapped += n.size;
        const next = this.#dmas.next(n);
        this.#removeDma(n);
        n = next;
      }
      if (!restart) break;
    }
    return unmapped;
  }

  /** v2: the range must not bisect a mapping at either end. */
  #checkNoBisect(iova: bigint, size: bigint): void {
    const head = this.#dmas.findOverlap(iova, 1n);
    if (head && head.iova !== iova) throw new SysError('EINVAL', `range start bisects the mapping at 0x${head.iova.toString(16)}`);
    const tail = this.#dmas.findOverlap(iova + size - 1n, 0n);
    if (tail && tail.iova + tail.size !== iova + size) {
      throw new SysError('EINVAL', `range end bisects the mapping at 0x${tail.iova.toString(16)}`);
    }
  }

  /** Asks every registered device to drop its pins in the mapping (§2.10 dma_unmap contract). */
  #notifyDmaUnmap(dma: Dma): void {
    for (const dev of [...this.#devices]) dev.dmaUnmap?.(dma.iova, dma.size);
  }

  /* ---------------------------------------------------------------------------------------------------------- */
  /* Dirty tracking (§4 "Dirty tracking")                                                                        */
  /* ---------------------------------------------------------------------------------------------------------- */

  /** A reusable all-ones buffer (1 MiB) for reporting fully dirty mappings. */
  #onesChunk(): Uint8Array {
    this.#ones ??= new Uint8Array(1 << 20).fill(0xff);
    return this.#ones;
  }

  #allocBitmap(dma: Dma): void {
    const npages = dma.size / this.#minPgsize();
    if (npages > DIRTY_BITMAP_PAGES_MAX) throw new SysError('EINVAL', 'mapping too large for a dirty bitmap');
    dma.bitmap = newBitmap(Number(npages));
    dma.bitmapTouched = false;
    this.#populateBitmap(dma);
  }

  /** Marks the externally pinned pages (they are always considered dirty). */
  #populateBitmap(dma: Dma): void {
    if (!dma.bitmap || dma.pins.size === 0) return;
    const shift = log2(this.#minPgsize()) - PAGE_SHIFT_N;
    for (const idx of dma.pins.keys()) setBits(dma.bitmap, idx >> Number(shift), 1);
    dma.bitmapTouched = true;
  }

  #markDirty(dma: Dma, offset: bigint, length: bigint): void {
    if (!this.#dirtyTracking || !dma.bitmap || length <= 0n) return;
    const shift = log2(this.#minPgsize());
    const from = offset >> shift;
    const to = (offset + length - 1n) >> shift;
    setBits(dma.bitmap, Number(from), Number(to - from + 1n));
    dma.bitmapTouched = true;
  }

  /** VFIO_IOMMU_DIRTY_PAGES START: idempotent. */
  dirtyStart(): void {
    if (this.#dirtyTracking) return;
    const done: Dma[] = [];
    try {
      for (const d of this.#dmas) {
        this.#allocBitmap(d);
        done.push(d);
      }
    } catch (e) {
      for (const d of done) d.bitmap = undefined;
      throw e;
    }
    this.#dirtyTracking = true;
  }

  /** VFIO_IOMMU_DIRTY_PAGES STOP: idempotent. */
  dirtyStop(): void {
    if (!this.#dirtyTracking) return;
    this.#dirtyTracking = false;
    for (const d of this.#dmas) d.bitmap = undefined;
  }

  /** Whether dirty tracking is on (VFIO_IOMMU_DIRTY_PAGES START until STOP). */
  get dirtyTracking(): boolean {
    return this.#dirtyTracking;
  }

  /**
   * VFIO_IOMMU_DIRTY_PAGES GET_BITMAP after the struct checks: `range` is vfio_iommu_type1_dirty_bitmap_get.
   */
  dirtyGetBitmap(iova: bigint, size: bigint, bitmap: UserBitmap, user: AddressSpace): void {
    if (iova + size > U64_MAX) throw new SysError('EINVAL', 'range wraps');
    if (!accessOk(bitmap.data, bitmap.size)) throw new SysError('EINVAL', 'bitmap pointer is not a user address');
    verifyBitmapSize(bitmap.pgsize === 0n ? 0n : size >> log2(lowestBit(bitmap.pgsize)), bitmap.size);
    const pgsize = this.#minPgsize();
    if (bitmap.pgsize !== pgsize) throw new SysError('EINVAL', `bitmap pgsize must be ${pgsize}`);
    if ((iova & (pgsize - 1n)) !== 0n) throw new SysError('EINVAL', 'iova unaligned');
    if (size === 0n || (size & (pgsize - 1n)) !== 0n) throw new SysError('EINVAL', 'size 0 or unaligned');
    if (!this.#dirtyTracking) throw new SysError('EINVAL', 'dirty tracking is not started');
    this.#checkNoBisect(iova, size);
    const end = iova + size;
    for (let n = this.#dmas.firstFrom(iova, size); n && n.iova < end; n = this.#dmas.next(n)) {
      if (n.iova < iova) continue;
      this.#reportDirty(n, iova, bitmap.data, pgsize, user);
    }
  }

  /**
   * update_user_bitmap: ORs the mapping's bits into the user bitmap at its position relative to `base`, then
   * resets the mapping's bitmap to its currently pinned pages. A mapping that an IOMMU-backed group can write
   * without pinning is reported fully dirty (§4 "pinned-page dirty scope").
   */
  #reportDirty(dma: Dma, base: bigint, data: bigint, pgsize: bigint, user: AddressSpace): void {
    const bm = dma.bitmap;
    if (!bm) return;
    const pgshift = log2(pgsize);
    const nbits = Number(dma.size >> pgshift);
    const bitOffset = (dma.iova - base) >> pgshift;
    const addr = data + (bitOffset / 64n) * 8n;
    const shift = Number(bitOffset % 64n);
    const full = this.#numNonPinnedGroups > 0 && dma.iommuMapped;
    const totalBits = nbits + shift;
    const nbytes = Number(dirtyBitmapBytes(BigInt(totalBits)));
    // The first word is shared with the previous mapping's bits: OR with what the user buffer holds.
    const orHead = (bytes: Uint8Array): void => {
      if (shift === 0) return;
      const left = user.read(addr, 8);
      for (let i = 0; i < 8; i++) bytes[i]! |= left[i]!;
    };
    if (full && nbytes > 16) {
      // Everything dirty: write the two edge words and stream all-ones in between, without materializing the
      // mapping's bitmap (the common case while a VFIO device does DMA without pinning).
      const head = new Uint32Array(2);
      setBits(head, shift, 64 - shift);
      const headBytes = new Uint8Array(head.buffer);
      orHead(headBytes);
      const tail = new Uint32Array(2);
      setBits(tail, 0, totalBits - (nbytes - 8) * 8);
      user.write(addr, headBytes);
      const ones = this.#onesChunk();
      for (let at = 8; at < nbytes - 8; at += ones.length) {
        user.write(addr + BigInt(at), ones.subarray(0, Math.min(ones.length, nbytes - 8 - at)));
      }
      user.write(addr + BigInt(nbytes - 8), new Uint8Array(tail.buffer));
    } else {
      let bytes: Uint8Array;
      if (full) {
        const words = new Uint32Array(nbytes / 4);
        setBits(words, shift, nbits);
        bytes = new Uint8Array(words.buffer);
      } else {
        bytes = shiftedBytes(bm, nbits, shift);
      }
      orHead(bytes);
      user.write(addr, bytes);
    }
    if (dma.bitmapTouched) {
      bm.fill(0);
      dma.bitmapTouched = false;
    }
    this.#populateBitmap(dma);
  }

  /** Validates an UNMAP bitmap struct (done before taking the lock in Linux, hence before the range checks). */
  static checkUnmapBitmap(req: UnmapRequest, bitmap: UserBitmap): void {
    if (!accessOk(bitmap.data, bitmap.size)) throw new SysError('EINVAL', 'bitmap pointer is not a user address');
    verifyBitmapSize(bitmap.pgsize === 0n ? 0n : req.size >> log2(lowestBit(bitmap.pgsize)), bitmap.size);
  }

  /* ---------------------------------------------------------------------------------------------------------- */
  /* Groups and domains (§4 "IOVA ranges", "Mapping to domains", T11/T12/T17/T27/T33)                             */
  /* ---------------------------------------------------------------------------------------------------------- */

  #findGroup(id: number): GroupRec | undefined {
    for (const d of this.#domains) {
      const g = d.groups.find((x) => x.id === id);
      if (g) return g;
    }
    return this.#emulated.find((x) => x.id === id);
  }

  /** The domain a group is attached to (group_iommu_domain); ENODEV if none. */
  groupDomain(id: number): IommuDomain {
    for (const d of this.#domains) if (d.groups.some((g) => g.id === id)) return d.domain;
    throw new SysError('ENODEV', `group ${id} has no domain in this container`);
  }

  #updatePgsizeBitmap(): void {
    let bm = U64_MAX;
    for (const d of this.#domains) bm &= d.domain.pgsizeBitmap;
    if ((bm & (PAGE - 1n)) !== 0n) bm = (bm & PAGE_MASK_U64) | PAGE;
    this.#pgsizeBitmap = bm;
  }

  /** vfio_iommu_aper_conflict: the new aperture leaves out existing mappings or misses the list entirely. */
  #apertureConflict(start: bigint, end: bigint): boolean {
    const list = this.#iovaList;
    const first = list[0];
    const last = list[list.length - 1];
    if (!first || !last) return false;
    if (start > last.end || end < first.start) return true;
    if (start > first.start && this.#dmas.findOverlap(first.start, start - first.start)) return true;
    if (end < last.end && this.#dmas.findOverlap(end + 1n, last.end - end)) return true;
    return false;
  }

  /**
   * attach_group: an emulated group is only recorded; an IOMMU group gets a domain (an existing compatible one
   * when possible, else a new one with every mapping replayed into it). EBUSY while a vaddr is invalid, EINVAL for
   * a duplicate or an aperture/reserved-region conflict, EPERM without MSI isolation; all or nothing.
   */
  attachGroup(group: VfioGroupRef): void {
    if (this.#vaddrInvalidCount > 0) throw new SysError('EBUSY', 'a mapping has an invalid vaddr');
    if (this.#findGroup(group.id)) throw new SysError('EINVAL', `group ${group.id} is already attached`);
    if (group.type === 'emulated-iommu') {
      // An emulated group can dirty memory only through pin_pages/dma_rw: it starts in pinned-page scope.
      this.#emulated.push({ id: group.id, iommuGroup: group.iommuGroup, pinnedPageDirtyScope: true });
      return;
    }
    const ig = group.iommuGroup;
    if (group.type !== 'iommu' || !ig) throw new SysError('EIO', `group ${group.id} has no IOMMU`);
    const domain = ig.allocDomain();
    let attachedTo: IommuDomain | undefined;
    const fail = (e: unknown): never => {
      if (attachedTo) ig.detachDomain(attachedTo);
      domain.free();
      throw e;
    };
    try {
      ig.attachDomain(domain);
    } catch (e) {
      return fail(e);
    }
    attachedTo = domain;
    const ap = domain.aperture;
    if (this.#apertureConflict(ap.start, ap.end)) fail(new SysError('EINVAL', 'the group\'s aperture conflicts with existing mappings'));
    const resv = ig.reservedRegions();
    for (const r of excludingRegions(resv)) {
      if (this.#dmas.findOverlap(r.start, r.end - r.start + 1n)) fail(new SysError('EINVAL', `reserved region 0x${r.start.toString(16)} overlaps a mapping`));
    }
    const copy = excludeReserved(resizeToAperture(this.#iovaList, ap.start, ap.end), resv);
    if (!copy) return fail(new SysError('EINVAL', 'no valid IOVA range left'));
    if (ig.isolatedMsi === false && !boolParam(this.#env.param('allow_unsafe_interrupts'))) {
      this.#env.log(
        'vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param "allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform',
      );
      fail(new SysError('EPERM', 'no interrupt remapping'));
    }
    const rec: GroupRec = { id: group.id, iommuGroup: ig, pinnedPageDirtyScope: false };
    const coherent = domain.enforceCacheCoherency;
    // Try an existing compatible domain first (same IOMMU, same coherency enforcement), as Linux does.
    for (const d of this.#domains) {
      if (d.enforceCacheCoherency !== coherent) continue;
      ig.detachDomain(domain);
      attachedTo = undefined;
      try {
        ig.attachDomain(d.domain);
        d.groups.push(rec);
        domain.free();
        this.#finishAttach(copy);
        return;
      } catch {
        // Fall back to the new domain.
      }
      try {
        ig.attachDomain(domain);
      } catch (e) {
        return fail(e);
      }
      attachedTo = domain;
    }
    try {
      this.#replay(domain);
    } catch (e) {
      return fail(e);
    }
    this.#domains.unshift({ domain, groups: [rec], enforceCacheCoherency: coherent });
    this.#updatePgsizeBitmap();
    this.#finishAttach(copy);
  }

  #finishAttach(copy: IovaRange[]): void {
    this.#iovaList = copy;
    // An IOMMU-backed group can dirty memory directly: it demotes the scope until it pins pages.
    this.#numNonPinnedGroups++;
  }

  /**
   * vfio_iommu_replay: maps every existing mapping into a new domain. Mappings already pinned for another domain
   * are mapped from the same pages; the others (recorded while only emulated groups existed) are pinned now.
   */
  #replay(domain: IommuDomain): void {
    const all = this.#dmas.toArray();
    const fresh = new Map<Dma, Run[]>();
    let k = 0;
    try {
      for (; k < all.length; k++) {
        const dma = all[k]!;
        if (dma.iommuMapped) {
          this.#mapRuns(dma, dma.runs, [domain]);
        } else {
          const runs = this.#pinRange(dma, pages(dma.size));
          try {
            this.#mapRuns(dma, runs, [domain]);
          } catch (e) {
            this.#unpinRuns(dma, runs, true);
            throw e;
          }
          fresh.set(dma, runs);
        }
      }
    } catch (e) {
      for (let j = 0; j < k; j++) {
        const dma = all[j]!;
        domain.unmap(dma.iova, dma.size);
        const runs = fresh.get(dma);
        if (runs) this.#unpinRuns(dma, runs, true);
      }
      throw e;
    }
    for (const [dma, runs] of fresh) dma.runs = runs;
    for (const dma of all) dma.iommuMapped = true;
  }

  /**
   * detach_group: the last group of a domain frees it; the last domain takes every mapping with it (or, with
   * emulated groups left, its IOMMU pins); the valid IOVA list is recomputed from what remains.
   */
  detachGroup(group: VfioGroupRef): void {
    let updateScope: boolean;
    const ei = this.#emulated.findIndex((g) => g.id === group.id);
    if (ei >= 0) {
      const g = this.#emulated[ei]!;
      updateScope = !g.pinnedPageDirtyScope;
      this.#emulated.splice(ei, 1);
      if (this.#emulated.length === 0 && this.#domains.length === 0) this.#unmapUnpinAll();
    } else {
      const di = this.#domains.findIndex((d) => d.groups.some((g) => g.id === group.id));
      if (di < 0) return;
      const d = this.#domains[di]!;
      const gi = d.groups.findIndex((g) => g.id === group.id);
      const g = d.groups[gi]!;
      g.iommuGroup?.detachDomain(d.domain);
      updateScope = !g.pinnedPageDirtyScope;
      d.groups.splice(gi, 1);
      if (d.groups.length === 0) {
        if (this.#domains.length === 1) {
          if (this.#emulated.length === 0) this.#unmapUnpinAll();
          else this.#unmapUnpinReaccount();
        }
        this.#domains.splice(di, 1);
        d.domain.free();
        this.#updatePgsizeBitmap();
      }
      this.#refreshIovaList();
    }
    if (updateScope) {
      this.#numNonPinnedGroups--;
      if (this.#dirtyTracking) {
        // Scope may have been promoted: report everything dirty once.
        const shift = log2(this.#minPgsize());
        for (const dma of this.#dmas) {
          if (!dma.bitmap) continue;
          setBits(dma.bitmap, 0, Number(dma.size >> shift));
          dma.bitmapTouched = true;
        }
      }
    }
  }

  /** vfio_iommu_aper_expand + vfio_iommu_resv_refresh: recompute the valid list from what remains. */
  #refreshIovaList(): void {
    if (this.#iovaList.length === 0) return;
    let start = 0n;
    let end = U64_MAX;
    for (const d of this.#domains) {
      if (d.domain.aperture.start > start) start = d.domain.aperture.start;
      if (d.domain.aperture.end < end) end = d.domain.aperture.end;
    }
    // As vfio_iommu_aper_expand: the ends become the smallest remaining aperture (everything with no domain).
    const resv = this.#domains.flatMap((d) => d.groups.flatMap((g) => g.iommuGroup?.reservedRegions() ?? []));
    const fresh = excludeReserved([{ start, end }], resv);
    if (fresh) this.#iovaList = fresh;
  }

  /** Last group gone: every mapping goes (vfio_iommu_unmap_unpin_all). */
  #unmapUnpinAll(): void {
    for (let d = this.#dmas.first(); d; d = this.#dmas.first()) {
      this.#dropExternalPins(d);
      this.#removeDma(d);
    }
  }

  /**
   * Last IOMMU domain gone while emulated groups remain: unpin the IOMMU pins and account only the external ones
   * (vfio_iommu_unmap_unpin_reaccount).
   */
  #unmapUnpinReaccount(): void {
    for (const dma of this.#dmas) {
      this.#unmapUnpin(dma, false);
      // Only the external pins stay accounted (Linux: locked - unlocked on the mapping's mm).
      const delta = dma.pins.size - dma.lockedPages;
      if (delta !== 0) {
        // Adding back pages that were already accounted never exceeds the limit in Linux (no check on this path).
        dma.mm.memlock.adjust(delta);
        dma.lockedPages += delta;
      }
    }
  }

  /** Pins a device left behind (Linux WARNs and leaks them; we give them back so release accounts to zero). */
  #dropExternalPins(dma: Dma): void {
    if (dma.pins.size === 0) return;
    this.#env.log(`vfio-iommu-type1: ${dma.pins.size} externally pinned pages left at iova 0x${dma.iova.toString(16)}`);
    let acct = 0;
    for (const p of dma.pins.values()) {
      // A vfio_pfn holds one page pin however many external references it counts (see pinPages).
      dma.mm.unpin(p.pfn, 1);
      if (!dma.iommuMapped) acct++;
    }
    dma.pins.clear();
    if (acct > 0) {
      dma.mm.memlock.adjust(-acct);
      dma.lockedPages -= acct;
    }
  }

  /** The container lost its last group or closed: unpin everything, free every domain. */
  release(): void {
    this.#emulated = [];
    this.#unmapUnpinAll();
    for (const d of this.#domains) {
      for (const g of d.groups) g.iommuGroup?.detachDomain(d.domain);
      d.domain.free();
    }
    this.#domains = [];
    this.#iovaList = [];
    this.#updatePgsizeBitmap();
  }

  /* ---------------------------------------------------------------------------------------------------------- */
  /* Emulated-IOMMU helpers (§2.10)                                                                               */
  /* ---------------------------------------------------------------------------------------------------------- */

  /** register_device: devices with a dma_unmap op are told before pinned ranges are unmapped. */
  registerDevice(dev: VfioDeviceRef): void {
    if (dev.dmaUnmap) this.#devices.add(dev);
  }

  /** unregister_device. */
  unregisterDevice(dev: VfioDeviceRef): void {
    this.#devices.delete(dev);
  }

  /** vfio_pin_pages backing: one pfn per page; all or nothing. */
  pinPages(groupId: number, iova: bigint, npage: number, prot: number): bigint[] {
    if (!this.v2) throw new SysError('EACCES', 'pin_pages needs a type1v2 container');
    if (this.#vaddrInvalidCount > 0) {
      this.#env.log('WARNING: vfio_pin_pages not allowed with VFIO_UPDATE_VADDR');
      throw new SysError('EBUSY', 'a mapping has an invalid vaddr');
    }
    if (this.#devices.size === 0) throw new SysError('EINVAL', 'no registered device with dma_unmap');
    const account = this.#domains.length === 0;
    const out: bigint[] = [];
    const pinned: { dma: Dma; idx: number }[] = [];
    try {
      for (let i = 0; i < npage; i++) {
        const pageIova = iova + BigInt(i) * PAGE;
        const dma = this.#dmas.findOverlap(pageIova, PAGE);
        if (!dma) throw new SysError('EINVAL', `iova 0x${pageIova.toString(16)} is not mapped`);
        if ((dma.prot & prot) !== prot) throw new SysError('EPERM', 'requested access exceeds the mapping\'s');
        const idx = pages(pageIova - dma.iova);
        const existing = dma.pins.get(idx);
        if (existing) {
          existing.refs++;
          out.push(existing.pfn);
          pinned.push({ dma, idx });
          continue;
        }
        const vaddr = dma.vaddr + BigInt(idx) * PAGE;
        const run = dma.mm.pin(vaddr, 1, { write: (dma.prot & IOMMU_WRITE) !== 0 })[0];
        if (!run) throw new SysError('EFAULT', 'pin returned nothing');
        if (account) {
          try {
            dma.mm.memlock.adjust(1, this.#limit(dma));
          } catch (e) {
            dma.mm.unpin(run.pfn, 1);
            if (isSysError(e, 'ENOMEM')) this.#env.log(`vfio_pin_page_external: Task (${dma.task.pid}) RLIMIT_MEMLOCK (${dma.task.memlockLimit ?? 'unlimited'}) exceeded`);
            throw e;
          }
          dma.lockedPages++;
        }
        dma.pins.set(idx, { pfn: run.pfn, refs: 1 });
        pinned.push({ dma, idx });
        out.push(run.pfn);
        if (this.#dirtyTracking && dma.bitmap) this.#markDirty(dma, BigInt(idx) * PAGE, PAGE);
      }
    } catch (e) {
      for (const p of pinned) this.#unpinExternal(p.dma, p.idx, account);
      throw e;
    }
    const g = this.#findGroup(groupId);
    if (g && !g.pinnedPageDirtyScope) {
      g.pinnedPageDirtyScope = true;
      this.#numNonPinnedGroups--;
    }
    return out;
  }

  #unpinExternal(dma: Dma, idx: number, account: boolean): void {
    const p = dma.pins.get(idx);
    if (!p) return;
    p.refs--;
    if (p.refs > 0) return;
    dma.mm.unpin(p.pfn, 1);
    dma.pins.delete(idx);
    if (account) {
      dma.mm.memlock.adjust(-1);
      dma.lockedPages--;
    }
  }

  /** vfio_unpin_pages backing. */
  unpinPages(iova: bigint, npage: number): void {
    if (!this.v2) {
      this.#env.log('WARNING: vfio_unpin_pages on a type1 v1 container');
      return;
    }
    const account = this.#domains.length === 0;
    let i = 0;
    for (; i < npage; i++) {
      const pageIova = iova + BigInt(i) * PAGE;
      const dma = this.#dmas.findOverlap(pageIova, PAGE);
      if (!dma) break;
      this.#unpinExternal(dma, pages(pageIova - dma.iova), account);
    }
    if (i !== npage) this.#env.log(`WARNING: vfio_unpin_pages: iova 0x${(iova + BigInt(i) * PAGE).toString(16)} is not mapped`);
  }

  /** vfio_dma_rw backing: copies through the mappings' user memory, chunk by mapping. */
  dmaRw(iova: bigint, buf: Uint8Array, write: boolean): void {
    if (this.#vaddrInvalidCount > 0) {
      this.#env.log('WARNING: vfio_dma_rw not allowed with VFIO_UPDATE_VADDR');
      throw new SysError('EBUSY', 'a mapping has an invalid vaddr');
    }
    let done = 0;
    while (done < buf.length) {
      const at = iova + BigInt(done);
      const dma = this.#dmas.findOverlap(at, 1n);
      if (!dma) throw new SysError('EINVAL', `iova 0x${at.toString(16)} is not mapped`);
      if ((write && (dma.prot & IOMMU_WRITE) === 0) || (dma.prot & IOMMU_READ) === 0) throw new SysError('EPERM', 'mapping does not allow this access');
      const offset = at - dma.iova;
      const count = Number(BigInt(buf.length - done) < dma.size - offset ? BigInt(buf.length - done) : dma.size - offset);
      const vaddr = dma.vaddr + offset;
      try {
        if (write) dma.mm.write(vaddr, buf.subarray(done, done + count));
        else buf.set(dma.mm.read(vaddr, count), done);
      } catch (e) {
        if (isSysError(e)) throw new SysError('EFAULT', `copy at vaddr 0x${vaddr.toString(16)} failed`);
        throw e;
      }
      if (write) this.#markDirty(dma, offset, BigInt(count));
      done += count;
    }
  }
}
