/**
 * IOMMU hardware contracts (Linux: iommu_domain, iommu_group, reserved regions, DMA ownership).
 */

/** Mapping permissions, as the IOMMU API spells them (device perspective). */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;
export const IOMMU_NOEXEC = 8;
export const IOMMU_MMIO = 16;

/** A reserved IOVA region of a group (sysfs `reserved_regions`): the MSI window, RMRRs and the like. */
export interface ReservedRegion {
  readonly start: bigint;
  /** Inclusive last address. */
  readonly end: bigint;
  readonly type: 'direct' | 'direct-relaxable' | 'reserved' | 'msi' | 'sw-msi';
}

/** Counters a domain keeps, for tests and benchmarks. */
export interface IommuDomainStats {
  /** Calls of {@link IommuDomain.map}. */
  readonly mapCalls: number;
  /** Calls of {@link IommuDomain.unmap}. */
  readonly unmapCalls: number;
  /** Page-table entries currently present, by page size in bytes. */
  readonly entriesByPageSize: ReadonlyMap<bigint, number>;
}

/**
 * A translation domain: an IOVA→physical page table holding entries of the sizes in `pgsizeBitmap`.
 * Errors are `SysError`s (EINVAL for misalignment, EEXIST for an IOVA already mapped, ERANGE outside the aperture).
 */
export interface IommuDomain {
  readonly id: number;
  /** Page sizes the table can hold (bit n set = 2^n bytes). */
  readonly pgsizeBitmap: bigint;
  /** Addressable IOVA range, inclusive. */
  readonly aperture: { readonly start: bigint; readonly end: bigint };
  /** Whether the domain enforces cache coherency for DMA (IOMMU_CAP_CACHE_COHERENCY / IOMMU_CACHE). */
  readonly enforceCacheCoherency: boolean;
  /**
   * Maps `[iova, iova+size)` to `[pa, pa+size)` with `prot`, choosing the largest page sizes that alignment and
   * `pgsizeBitmap` allow (as iommu_map does). One call, however many entries it writes.
   */
  map(iova: bigint, pa: bigint, size: bigint, prot: number): void;
  /** Unmaps entries in the range and returns how many bytes were unmapped (large entries go whole). */
  unmap(iova: bigint, size: bigint): bigint;
  /** The physical address behind `iova` and its permissions, or `undefined`. */
  translate(iova: bigint): { pa: bigint; prot: number } | undefined;
  readonly stats: IommuDomainStats;
  /** Frees the domain; it must have no attached groups. */
  free(): void;
}

/** Something that may claim DMA ownership of a group (a VFIO group, an iommufd device...). */
export type DmaOwner = object;

/** An IOMMU group as the hardware model groups devices (Linux struct iommu_group). */
export interface IommuGroup {
  readonly id: number;
  /** Device names (PCI BDFs) in the group. */
  devices(): readonly string[];
  /** Reserved regions of every device in the group, merged. */
  reservedRegions(): readonly ReservedRegion[];
  /**
   * Claims user-space DMA ownership (iommu_group_claim_dma_owner): EPERM, as Linux 6.12 returns it, while a
   * device of the group is bound to a host driver that does DMA or while another owner holds it; EBUSY while a
   * domain is attached outside ownership. The same owner may claim again (counted).
   */
  claimDmaOwner(owner: DmaOwner): void;
  /** Releases one claim; the group returns to its default domain with the last one. */
  releaseDmaOwner(owner: DmaOwner): void;
  /** The current DMA owner, if any. */
  readonly dmaOwner: DmaOwner | undefined;
  /**
   * iommu_group_dma_owner_claimed(): true while user space owns the group or a device of it is bound to a host
   * driver that does DMA (VFIO_GROUP_GET_STATUS reports the group viable only when false). Optional for
   * implementations that predate it; `@vfio-ts/sim` provides it.
   */
  readonly dmaOwnerClaimed?: boolean;
  /** Attaches the group's devices to `domain` (EBUSY if already attached to another one). */
  attachDomain(domain: IommuDomain): void;
  /** Detaches from `domain`; the group blocks DMA while owned by user space and unattached. */
  detachDomain(domain: IommuDomain): void;
  /** The domain the group is attached to, if any. */
  readonly domain: IommuDomain | undefined;
  /** Whether the IOMMU enforces cache coherency for this group (IOMMU_CAP_CACHE_COHERENCY). */
  readonly cacheCoherent: boolean;
  /**
   * Allocates an empty paging domain on the IOMMU that serves this group (Linux: iommu_paging_domain_alloc(dev)
   * on the group's first device). Added for the type1 backend's attach_group, which has only the group in hand.
   * NOTE for the sim implementer: delegate to the group's IommuHardware.allocDomain().
   */
  allocDomain(): IommuDomain;
  /**
   * Whether MSIs from the group's devices are isolated (interrupt remapping; iommu_group_has_isolated_msi).
   * Absent means isolated. type1 refuses to attach a non-isolated group with EPERM unless the
   * `allow_unsafe_interrupts` module parameter is set (inventory §4).
   */
  readonly isolatedMsi?: boolean;
  /**
   * The POWER table group (PE) behind the group, on platforms whose IOMMU is TCE-based (Linux
   * iommu_group_get_iommudata on pSeries/PowerNV). The sPAPR TCE backend programs its DMA windows through it.
   * Absent on every other IOMMU.
   */
  readonly spaprTableGroup?: IommuTableGroup;
}

/** A fault the IOMMU recorded: a device's DMA that did not translate or lacked permission. */
export interface IommuFault {
  readonly device: string;
  readonly iova: bigint;
  readonly write: boolean;
  readonly reason: 'not-present' | 'permission' | 'blocked';
}

/** The IOMMU hardware of a host. */
export interface IommuHardware {
  /** 'vtd' for the VT-d-like model, 'none' when there is no IOMMU. */
  readonly kind: string;
  /** Allocates an empty paging domain. */
  allocDomain(): IommuDomain;
  /** Faults recorded so far, oldest first. */
  faults(): readonly IommuFault[];
}

/** Linux enum dma_data_direction as a TCE encodes it (DMA_NONE clears the entry). */
export type TceDirection = 'none' | 'to-device' | 'from-device' | 'bidirectional';

/**
 * One TCE table, a DMA window of a POWER IOMMU (Linux struct iommu_table with its iommu_table_ops). Entry numbers
 * are absolute: bus address >> `pageShift`.
 */
export interface IommuTable {
  /** it_page_shift: log2 of the TCE page size. */
  readonly pageShift: number;
  /** it_offset: the first entry number of the window. */
  readonly offset: number;
  /** it_size: entries in the window. */
  readonly size: number;
  /** it_allocated_size: bytes of TCE memory the table holds (accounted as locked memory). */
  readonly allocatedSize: bigint;
  /** xchg_no_kill: writes `hpa` with `direction`'s permission ('none' clears) and returns the previous TCE. */
  exchange(index: number, hpa: bigint, direction: TceDirection): { readonly hpa: bigint; readonly direction: TceDirection };
  /** Entry numbers holding a TCE within `[first, first+count)`, ascending (skips unallocated levels). */
  usedEntries(first: number, count: number): number[];
  /** The userspace view (it_userspace): the user address a v2 container mapped at an entry, 0n if none. */
  getUserspaceEntry(index: number): bigint;
  setUserspaceEntry(index: number, ua: bigint): void;
  /** it_ops->free. */
  free(): void;
}

/** EEH_STATE_* bit of {@link EehPe.state} (eeh_ops->get_state, arch/powerpc/include/asm/eeh.h): a reset is asserted. */
export const EEH_STATE_RESET_ACTIVE = 1 << 2;
/** EEH_STATE_* bit: MMIO to the PE is not frozen. */
export const EEH_STATE_MMIO_ACTIVE = 1 << 3;
/** EEH_STATE_* bit: DMA from the PE is not frozen. */
export const EEH_STATE_DMA_ACTIVE = 1 << 4;
/** EEH_STATE_* bit: MMIO to the PE is enabled. */
export const EEH_STATE_MMIO_ENABLED = 1 << 5;
/** EEH_STATE_* bit: DMA from the PE is enabled. */
export const EEH_STATE_DMA_ENABLED = 1 << 6;

/** The EEH partitionable endpoint of a table group, as eeh_ops reach it (arch/powerpc/kernel/eeh.c). */
export interface EehPe {
  /** EEH_STATE_* bits (eeh_ops->get_state): {@link EEH_STATE_RESET_ACTIVE} and its siblings. */
  readonly state: number;
  setOption(option: 'thaw-mmio' | 'thaw-dma' | 'freeze'): void;
  reset(kind: 'deactivate' | 'hot' | 'fundamental'): void;
  injectError(error: { readonly type: number; readonly func: number; readonly addr: bigint; readonly mask: bigint }): void;
}

/**
 * A POWER IOMMU table group: the DMA windows of one PE (Linux struct iommu_table_group with its
 * iommu_table_group_ops). Optional operations are absent when the platform does not provide them.
 */
export interface IommuTableGroup {
  /** Start and size of the 32-bit default window (tce32_start, tce32_size). */
  readonly tce32Start: number;
  readonly tce32Size: number;
  /** Supported TCE page sizes, bit n = 2^n bytes. */
  readonly pgsizes: bigint;
  /** 0 when the platform cannot create dynamic windows. */
  readonly maxDynamicWindowsSupported: number;
  readonly maxLevels: number;
  /** Identity of the ops family (Linux compares the create_table op): only equal families share a container. */
  readonly family: string;
  /** eeh_iommu_group_to_pe: `undefined` when the group has no EEH PE. */
  readonly eeh: EehPe | undefined;
  /** get_table_size: bytes a window of that geometry needs, 0n when refused. */
  getTableSize?(pageShift: number, windowSize: bigint, levels: number): bigint;
  /** create_table: a table for window `num` (not yet programmed). */
  createTable?(num: number, pageShift: number, windowSize: bigint, levels: number): IommuTable;
  /** set_window: programs `table` as window `num`. */
  setWindow?(num: number, table: IommuTable): void;
  /** unset_window; absent when the platform does not let user space remove windows. */
  readonly unsetWindow?: ((num: number) => void) | undefined;
}
