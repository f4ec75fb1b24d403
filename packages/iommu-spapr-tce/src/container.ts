/**
 * The per-container state of the sPAPR TCE backend (Linux struct tce_container, drivers/vfio/vfio_iommu_spapr_tce.c):
 * the latched mm, the shared DMA windows (TCE tables) programmed into every attached group, the lazily created
 * 32-bit default window, v1's enable state with its worst-case locked-memory charge, and v2's references to
 * pre-registered memory. Inventory §1.8, §8.3 S1–S15.
 */
import type { IoctlArg, VfioGroupRef } from '@vfio-ts/core';
import { PAGE_SHIFT } from '@vfio-ts/platform';
import type { AddressSpace, IommuGroup, PinnedRun, Task } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { memlockLimitOf } from './prereg.js';
import type { PreregRegion , MmIommuContext} from './prereg.js';
import type { TableGroupLookup, TceDirection, TceTableGroupLike, TceTableLike } from './table-group.js';

/** Windows per container and per table group (IOMMU_TABLE_GROUP_MAX_TABLES). */
export const IOMMU_TABLE_GROUP_MAX_TABLES = 2;

/** IOMMU_PAGE_SHIFT_4K: the TCE page shift of the default 32-bit window. */
export const IOMMU_PAGE_SHIFT_4K = 12;

/** Host services shared by every container of one backend instance (one host). */
export interface SpaprTceEnv {
  /** eeh_enabled(): the platform has EEH. */
  readonly eehEnabled: boolean;
  readonly tableGroupOf: TableGroupLookup;
  /** The pre-registered memory of an mm (mm->context), created on first use. */
  registryOf(mm: AddressSpace): MmIommuContext;
  log(text: string): void;
}

/** A group attached to the container (struct tce_iommu_group). */
interface AttachedGroup {
  readonly ref: VfioGroupRef;
  readonly iommuGroup: IommuGroup;
  readonly tableGroup: TceTableGroupLike;
}

/** One window as `describe` reports it. */
export interface TceWindowDescription {
  readonly num: number;
  readonly start: bigint;
  readonly size: bigint;
  readonly pageShift: number;
}

/** What `describe` reports about a container. */
export interface TceContainerDescription {
  readonly version: 1 | 2;
  readonly enabled: boolean;
  readonly defaultWindowPending: boolean;
  /** Groups in the kernel's list order (most recently attached first). */
  readonly groups: readonly number[];
  readonly windows: readonly TceWindowDescription[];
  readonly preregistered: readonly { readonly vaddr: bigint; readonly size: bigint; readonly mappings: number }[];
  /** Pages charged to locked_vm by v1 ENABLE. */
  readonly enableLockedPages: number;
}

/** Arguments of MAP (already decoded). */
export interface TceMapRequest {
  readonly vaddr: bigint;
  readonly iova: bigint;
  readonly size: bigint;
  readonly direction: Exclude<TceDirection, 'none'>;
}

/** The sPAPR TCE container. All methods throw `SysError` and leave the state as it was. */
export class TceContainer {
  enabled = false;
  /** The 32-bit default window is still to be created at the first MAP/UNMAP/CREATE (def_window_pending). */
  defWindowPending = false;
  /** Pages charged by v1 ENABLE (locked_pages). */
  lockedPages = 0;
  /** The mm latched by the first ENABLE/REGISTER/CREATE/REMOVE (container->mm). */
  mm: AddressSpace | undefined;
  readonly tables: (TceTableLike | undefined)[] = [undefined, undefined];
  /** Attached groups, most recent first (list_add). */
  readonly groups: AttachedGroup[] = [];
  /** Pre-registered regions this container references, most recent first. */
  readonly prereg: PreregRegion[] = [];

  constructor(
    readonly v2: boolean,
    private readonly env: SpaprTceEnv,
  ) {}

  // ---- mm ---------------------------------------------------------------------------------------------------

  /** tce_iommu_mm_set: latch the caller's mm, EPERM if another one is latched. */
  mmSet(task: Task): AddressSpace {
    if (this.mm) {
      if (this.mm !== task.mm) throw new SysError('EPERM', 'container belongs to another process');
      return this.mm;
    }
    this.mm = task.mm;
    return this.mm;
  }

  /** The sanity check every ioctl after CHECK_EXTENSION makes (§1.8): another mm is EPERM. */
  checkMm(task: Task): void {
    if (this.mm && this.mm !== task.mm) throw new SysError('EPERM', 'container belongs to another process');
  }

  private registry(): MmIommuContext {
    if (!this.mm) throw new SysError('EPERM', 'no mm latched');
    return this.env.registryOf(this.mm);
  }

  // ---- v1 enable ----------------------------------------------------------------------------------------------

  /**
   * v1 ENABLE (tce_iommu_enable): charges the worst case — the whole 32-bit window — to locked_vm once, since
   * per-page accounting on the hot H_PUT_TCE path is impossible. EBUSY if enabled, ENODEV without a group, EPERM
   * when the PE has no 32-bit window, ENOMEM over RLIMIT_MEMLOCK (unless CAP_IPC_LOCK).
   */
  enable(task: Task): void {
    if (this.enabled) throw new SysError('EBUSY', 'container already enabled');
    const first = this.groups[0];
    if (!first) throw new SysError('ENODEV', 'no group attached');
    const tg = first.tableGroup;
    if (!tg.tce32Size) throw new SysError('EPERM', 'the PE has no 32-bit DMA window');
    const mm = this.mmSet(task);
    const locked = Math.floor(tg.tce32Size / 2 ** PAGE_SHIFT);
    mm.memlock.adjust(locked, memlockLimitOf(task));
    this.lockedPages = locked;
    this.enabled = true;
  }

  /** v1 DISABLE (tce_iommu_disable): returns the charge; a no-op when not enabled. */
  disable(): void {
    if (!this.enabled) return;
    this.enabled = false;
    if (this.mm && this.lockedPages > 0) this.mm.memlock.adjust(-this.lockedPages);
    this.lockedPages = 0;
  }

  // ---- windows ------------------------------------------------------------------------------------------------

  /** tce_iommu_find_table: the window whose entries cover bus address `ioba`. */
  findTable(ioba: bigint): { num: number; table: TceTableLike } | undefined {
    for (let num = 0; num < IOMMU_TABLE_GROUP_MAX_TABLES; num++) {
      const table = this.tables[num];
      if (!table) continue;
      const entry = ioba >> BigInt(table.pageShift);
      if (entry >= BigInt(table.offset) && entry < BigInt(table.offset + table.size)) return { num, table };
    }
    return undefined;
  }

  /** The table group of the most recently attached group (list_first_entry), the one Linux asks. */
  firstTableGroup(): TceTableGroupLike | undefined {
    return this.groups[0]?.tableGroup;
  }

  /**
   * tce_iommu_create_window: a new table in the first free slot (ENOSPC), for a page size the PE supports
   * (EINVAL), charged to locked_vm (ENOMEM), programmed into every attached group (unwound on failure).
   * Returns the window's bus start address.
   */
  createWindow(pageShift: number, windowSize: bigint, levels: number, task: Task): bigint {
    const num = this.tables.findIndex((t) => t === undefined);
    if (num < 0) throw new SysError('ENOSPC', 'no free DMA window slot');
    const tg = this.firstTableGroup();
    if (!tg) throw new SysError('EFAULT', 'no table group');
    if (!Number.isInteger(pageShift) || pageShift < 0 || pageShift > 63 || (tg.pgsizes & (1n << BigInt(pageShift))) === 0n) {
      throw new SysError('EINVAL', `TCE page shift ${pageShift} not supported`);
    }
    if (!tg.setWindow || !tg.unsetWindow || !tg.getTableSize || !tg.createTable) {
      throw new SysError('EPERM', 'the platform cannot create DMA windows');
    }
    const tableSize = tg.getTableSize(pageShift, windowSize, levels);
    if (tableSize === 0n) throw new SysError('EINVAL', 'window geometry refused by the platform');
    const mm = this.mm ?? task.mm;
    const pages = Number(tableSize >> BigInt(PAGE_SHIFT));
    mm.memlock.adjust(pages, memlockLimitOf(task));
    let table: TceTableLike;
    try {
      table = tg.createTable(num, pageShift, windowSize, levels);
    } catch (e) {
      // Linux leaks the charge here; nothing partially applied stays in vfio-ts.
      mm.memlock.adjust(-pages);
      throw e;
    }
    try {
      for (const g of this.groups) {
        if (!g.tableGroup.setWindow) throw new SysError('EPERM', 'the platform cannot program DMA windows');
        g.tableGroup.setWindow(num, table);
      }
    } catch (e) {
      for (const g of this.groups) g.tableGroup.unsetWindow?.(num);
      this.freeTable(table, mm);
      throw e;
    }
    this.tables[num] = table;
    return BigInt(table.offset) << BigInt(table.pageShift);
  }

  /** tce_iommu_free_table: frees the table and returns its locked-memory charge. */
  private freeTable(table: TceTableLike, mm: AddressSpace | undefined = this.mm): void {
    table.free();
    mm?.memlock.adjust(-Number(table.allocatedSize >> BigInt(PAGE_SHIFT)));
  }

  /**
   * tce_iommu_remove_window: the window holding `startAddr` (EINVAL if none) is cleared and unprogrammed from every
   * group. EPERM when the platform does not let user space remove windows (checked before anything changes).
   */
  removeWindow(startAddr: bigint): void {
    const found = this.findTable(startAddr);
    if (!found) throw new SysError('EINVAL', `no DMA window at 0x${startAddr.toString(16)}`);
    if (this.groups.some((g) => !g.tableGroup.unsetWindow)) {
      throw new SysError('EPERM', 'the platform does not allow removing this window');
    }
    const { num, table } = found;
    this.clear(table, table.offset, table.size);
    for (const g of this.groups) g.tableGroup.unsetWindow!(num);
    this.freeTable(table);
    this.tables[num] = undefined;
  }

  /** tce_iommu_create_default_window: the lazy 32-bit window (4K pages, tce32_size, one level). */
  createDefaultWindow(task: Task): void {
    if (!this.defWindowPending) return;
    const tg = this.firstTableGroup();
    if (!tg) throw new SysError('ENODEV', 'no group attached');
    this.createWindow(IOMMU_PAGE_SHIFT_4K, BigInt(tg.tce32Size), 1, task);
    this.defWindowPending = false;
  }

  // ---- TCEs ---------------------------------------------------------------------------------------------------

  /**
   * tce_iommu_clear: clears every TCE of `table` in `[first, first+count)`: v1 unpins the page, v2 drops the
   * mapping reference of the pre-registered region it came from.
   */
  clear(table: TceTableLike, first: number, count: number): void {
    const tcePages = 2 ** (table.pageShift - PAGE_SHIFT);
    for (const entry of table.usedEntries(first, count)) {
      const old = table.exchange(entry, 0n, 'none');
      if (old.direction === 'none') continue;
      if (this.v2) this.unusePageV2(table, entry);
      else this.mm?.unpin(old.hpa >> BigInt(PAGE_SHIFT), tcePages);
    }
  }

  /** tce_iommu_unuse_page_v2: forget the user address of an entry and its region's mapping reference. */
  private unusePageV2(table: TceTableLike, entry: number): void {
    const ua = table.getUserspaceEntry(entry);
    if (ua === 0n || !this.mm) return;
    const region = this.env.registryOf(this.mm).lookup(ua, 1n << BigInt(table.pageShift));
    region?.mappedDec();
    table.setUserspaceEntry(entry, 0n);
  }

  /**
   * tce_iommu_build (v1): pins each TCE page of the caller's memory (EFAULT), checks that the backing page is at
   * least as large as the TCE page (EPERM: the device could otherwise reach memory it was not given), then writes
   * the TCEs. Every page is validated before the first TCE changes; a TCE already present is replaced and its old
   * page unpinned, as the hardware exchange does.
   */
  buildV1(table: TceTableLike, req: TceMapRequest, task: Task): void {
    const mm = this.mm ?? task.mm;
    const tceSize = 1n << BigInt(table.pageShift);
    const tcePages = 2 ** (table.pageShift - PAGE_SHIFT);
    const pages = Number(req.size >> BigInt(table.pageShift));
    const first = Number(req.iova >> BigInt(table.pageShift));
    const write = req.direction !== 'to-device';
    const pinned: PinnedRun[][] = [];
    const hpas: bigint[] = [];
    try {
      for (let i = 0; i < pages; i++) {
        const va = req.vaddr + BigInt(i) * tceSize;
        const runs = mm.pin(va, tcePages, { write });
        pinned.push(runs);
        const backing = mm.lookup(va)?.pageSize ?? 0n;
        const hpa = runs[0]!.pfn << BigInt(PAGE_SHIFT);
        if (backing < tceSize || runs.length !== 1 || hpa % tceSize !== 0n) {
          throw new SysError('EPERM', `TCE page of ${tceSize} bytes is larger than the backing page at 0x${va.toString(16)}`);
        }
        hpas.push(hpa);
      }
    } catch (e) {
      for (const runs of pinned) for (const r of runs) mm.unpin(r.pfn, r.npages);
      throw e;
    }
    for (let i = 0; i < pages; i++) {
      const old = table.exchange(first + i, hpas[i]!, req.direction);
      if (old.direction !== 'none') mm.unpin(old.hpa >> BigInt(PAGE_SHIFT), tcePages);
    }
  }

  /**
   * tce_iommu_build_v2: each TCE page must lie inside memory this mm pre-registered, with a backing the region can
   * provide at this TCE size (EINVAL otherwise) and a backing page no smaller than the TCE page (EPERM). Nothing
   * is pinned here: the region already is; the TCE takes a mapping reference on it.
   */
  buildV2(table: TceTableLike, req: TceMapRequest): void {
    const registry = this.registry();
    const mm = registry.mm;
    const tceSize = 1n << BigInt(table.pageShift);
    const pages = Number(req.size >> BigInt(table.pageShift));
    const first = Number(req.iova >> BigInt(table.pageShift));
    const plan: { region: PreregRegion; hpa: bigint; ua: bigint }[] = [];
    for (let i = 0; i < pages; i++) {
      const ua = req.vaddr + BigInt(i) * tceSize;
      const region = registry.lookup(ua, tceSize);
      if (!region) throw new SysError('EINVAL', `0x${ua.toString(16)} is not in pre-registered memory`);
      let hpa: bigint;
      try {
        hpa = region.uaToHpa(ua, table.pageShift);
      } catch (e) {
        if (e instanceof SysError) throw new SysError('EINVAL', e.message);
        throw e;
      }
      if ((mm.lookup(ua)?.pageSize ?? 0n) < tceSize) {
        throw new SysError('EPERM', `TCE page of ${tceSize} bytes is larger than the backing page at 0x${ua.toString(16)}`);
      }
      plan.push({ region, hpa: hpa & ~(tceSize - 1n), ua });
    }
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i]!;
      p.region.mappedInc();
      const old = table.exchange(first + i, p.hpa, req.direction);
      if (old.direction !== 'none') this.unusePageV2(table, first + i);
      table.setUserspaceEntry(first + i, p.ua);
    }
  }

  // ---- pre-registration (v2) ------------------------------------------------------------------------------------

  /**
   * tce_iommu_register_pages: page-aligned, non-wrapping range (EINVAL); the exact region already referenced by
   * this container is EBUSY; a region another container of this mm registered is shared; otherwise a new region is
   * pinned and charged once (mm_iommu_new). Marks the container enabled.
   */
  registerMemory(vaddr: bigint, size: bigint, task: Task): void {
    const mask = (1n << BigInt(PAGE_SHIFT)) - 1n;
    if ((vaddr & mask) !== 0n || (size & mask) !== 0n || vaddr + size > 0xffff_ffff_ffff_ffffn) {
      throw new SysError('EINVAL', 'pre-registered memory must be page aligned and must not wrap');
    }
    const entries = Number(size >> BigInt(PAGE_SHIFT));
    const registry = this.registry();
    let region = registry.get(vaddr, entries);
    if (region) {
      if (this.prereg.includes(region)) {
        registry.put(region);
        throw new SysError('EBUSY', 'memory already registered in this container');
      }
    } else {
      region = registry.create(vaddr, entries, task);
    }
    this.prereg.unshift(region);
    this.enabled = true;
  }

  /**
   * tce_iommu_unregister_pages: EINVAL unaligned, ENOENT for a range that is not exactly a region this container
   * registered. The container drops its reference. Linux 6.12 takes a lookup reference first, so the container's
   * release never is the last one and an in-use region is not refused: the mm_iommu_put EBUSY of the lookup
   * reference is ignored, and the region stays pinned and charged in the mm (still mappable) until its TCEs are
   * gone and it is released with the mm. Kept as Linux has it.
   */
  unregisterMemory(vaddr: bigint, size: bigint): void {
    const mask = (1n << BigInt(PAGE_SHIFT)) - 1n;
    if ((vaddr & mask) !== 0n || (size & mask) !== 0n) throw new SysError('EINVAL', 'range must be page aligned');
    const registry = this.registry();
    const region = registry.get(vaddr, Number(size >> BigInt(PAGE_SHIFT)));
    if (!region) throw new SysError('ENOENT', 'no such pre-registered memory');
    const i = this.prereg.indexOf(region);
    let err: SysError | undefined;
    if (i < 0) err = new SysError('ENOENT', 'memory not registered by this container');
    else {
      try {
        registry.put(region);
        this.prereg.splice(i, 1);
      } catch (e) {
        if (!(e instanceof SysError)) throw e;
        err = e;
      }
    }
    try {
      registry.put(region);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      this.env.log(`vfio-spapr: pre-registered memory at 0x${vaddr.toString(16)} is still mapped (${e.errno})`);
    }
    if (err) throw err;
  }

  // ---- groups ------------------------------------------------------------------------------------------------

  /**
   * tce_iommu_attach_group: emulated groups are EINVAL; a group without a table group ENODEV; v2 needs dynamic
   * windows (EINVAL); v1 takes one group (EBUSY); the same group twice is EBUSY; an incompatible platform family
   * EPERM. Every existing window is programmed into the new group (unwound on failure).
   */
  attachGroup(ref: VfioGroupRef): void {
    if (ref.type === 'emulated-iommu') throw new SysError('EINVAL', 'sPAPR TCE does not handle emulated IOMMU groups');
    const iommuGroup = ref.iommuGroup;
    const tg = iommuGroup ? this.env.tableGroupOf(iommuGroup) : undefined;
    if (!iommuGroup || !tg) throw new SysError('ENODEV', `group ${ref.id} has no TCE table group`);
    if (this.v2 && tg.maxDynamicWindowsSupported === 0) throw new SysError('EINVAL', 'v2 needs dynamic DMA windows');
    if (!this.v2 && this.groups.length > 0) throw new SysError('EBUSY', 'a v1 container holds one group');
    for (const g of this.groups) {
      if (g.iommuGroup === iommuGroup) {
        this.env.log(`tce_vfio: Group ${iommuGroup.id} is already attached`);
        throw new SysError('EBUSY', `group ${iommuGroup.id} is already attached`);
      }
      if (g.tableGroup.family !== tg.family) {
        this.env.log(`tce_vfio: Group ${iommuGroup.id} is incompatible with group ${g.iommuGroup.id}`);
        throw new SysError('EPERM', `group ${iommuGroup.id} is incompatible with group ${g.iommuGroup.id}`);
      }
    }
    try {
      for (let num = 0; num < IOMMU_TABLE_GROUP_MAX_TABLES; num++) {
        const table = this.tables[num];
        if (!table) continue;
        if (!tg.setWindow) throw new SysError('EPERM', 'the platform cannot program DMA windows');
        tg.setWindow(num, table);
      }
    } catch (e) {
      for (let num = 0; num < IOMMU_TABLE_GROUP_MAX_TABLES; num++) tg.unsetWindow?.(num);
      throw e;
    }
    if (this.groups.length === 0 && !this.tables[0]) this.defWindowPending = true;
    this.groups.unshift({ ref, iommuGroup, tableGroup: tg });
  }

  /**
   * tce_iommu_detach_group: clears every TCE of the container's windows (they are shared, so the remaining groups
   * lose them too, as on Linux) and unprograms the windows from the leaving group.
   */
  detachGroup(ref: VfioGroupRef): void {
    const i = this.groups.findIndex((g) => g.ref === ref || (ref.iommuGroup !== undefined && g.iommuGroup === ref.iommuGroup));
    if (i < 0) {
      this.env.log(`tce_vfio: detaching unattached group #${ref.id}`);
      return;
    }
    const [g] = this.groups.splice(i, 1);
    const tg = g!.tableGroup;
    if (!tg.unsetWindow) return;
    for (let num = 0; num < IOMMU_TABLE_GROUP_MAX_TABLES; num++) {
      const table = this.tables[num];
      if (!table) continue;
      this.clear(table, table.offset, table.size);
      tg.unsetWindow(num);
    }
  }

  /**
   * tce_iommu_release: detaches what is left, frees the windows, drops every pre-registration reference and the
   * v1 charge. Everything pinned or accounted by this container is returned.
   */
  release(): void {
    while (this.groups.length > 0) this.detachGroup(this.groups[0]!.ref);
    for (let num = 0; num < IOMMU_TABLE_GROUP_MAX_TABLES; num++) {
      const table = this.tables[num];
      if (!table) continue;
      this.clear(table, table.offset, table.size);
      this.freeTable(table);
      this.tables[num] = undefined;
    }
    if (this.mm) {
      const registry = this.env.registryOf(this.mm);
      for (const region of this.prereg.splice(0)) {
        try {
          registry.put(region);
        } catch (e) {
          if (!(e instanceof SysError)) throw e;
          this.env.log(`vfio-spapr: releasing pre-registered memory failed (${e.errno})`);
        }
      }
    }
    this.disable();
    this.mm = undefined;
  }

  describe(): TceContainerDescription {
    const windows: TceWindowDescription[] = [];
    this.tables.forEach((t, num) => {
      if (t) {
        windows.push({
          num,
          start: BigInt(t.offset) << BigInt(t.pageShift),
          size: BigInt(t.size) << BigInt(t.pageShift),
          pageShift: t.pageShift,
        });
      }
    });
    return {
      version: this.v2 ? 2 : 1,
      enabled: this.enabled,
      defaultWindowPending: this.defWindowPending,
      groups: this.groups.map((g) => g.ref.id),
      windows,
      preregistered: this.prereg.map((r) => ({
        vaddr: r.ua,
        size: BigInt(r.entries) << BigInt(PAGE_SHIFT),
        mappings: Math.max(0, r.mapped - 1),
      })),
      enableLockedPages: this.lockedPages,
    };
  }
}

/**
 * The user struct behind a struct ioctl (copy_from_user of a pointer): EFAULT when there is none, or when the
 * buffer ends before the `minsz` bytes Linux copies in before it looks at argsz.
 */
export function structArg(arg: IoctlArg, minsz = 0): Uint8Array {
  if (!(arg instanceof Uint8Array)) throw new SysError('EFAULT', 'argument must point to a struct');
  if (arg.length < minsz) throw new SysError('EFAULT', `${arg.length}-byte buffer ends inside the ${minsz}-byte header`);
  return arg;
}
