/**
 * What the backend needs from the platform's POWER IOMMU: the table group behind an IOMMU group (Linux struct
 * iommu_table_group with its iommu_table_group_ops, reached with iommu_group_get_iommudata) and the TCE tables it
 * creates (struct iommu_table with its iommu_table_ops). The platform contract (`@vfio-ts/platform` IommuGroup) carries
 * it as the optional `spaprTableGroup` field (typed `IommuTableGroup`); the simulated 'spapr' IOMMU of `@vfio-ts/sim`
 * provides it. These interfaces are structural: any object with these members works.
 */
import type { IommuGroup } from '@vfio-ts/platform';

/** Linux enum dma_data_direction as a TCE encodes it. */
export type TceDirection = 'none' | 'to-device' | 'from-device' | 'bidirectional';

/** One TCE table (struct iommu_table). Entry numbers are absolute: bus address >> pageShift. */
export interface TceTableLike {
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
  /** Entry numbers holding a TCE within `[first, first+count)`, ascending (the multi-level shortcut of tce_iommu_clear). */
  usedEntries(first: number, count: number): number[];
  /** The userspace view (it_userspace): the user address mapped at an entry by a v2 container, 0n if none. */
  getUserspaceEntry(index: number): bigint;
  setUserspaceEntry(index: number, ua: bigint): void;
  /** it_ops->free. */
  free(): void;
}

/** The EEH PE of a table group, as eeh_ops reach it. */
export interface EehPeLike {
  /** EEH_STATE_* bits (eeh_ops->get_state). */
  readonly state: number;
  setOption(option: 'thaw-mmio' | 'thaw-dma' | 'freeze'): void;
  reset(kind: 'deactivate' | 'hot' | 'fundamental'): void;
  injectError(error: { readonly type: number; readonly func: number; readonly addr: bigint; readonly mask: bigint }): void;
}

/** A POWER IOMMU table group (struct iommu_table_group + iommu_table_group_ops). Optional ops may be absent. */
export interface TceTableGroupLike {
  readonly tce32Start: number;
  readonly tce32Size: number;
  /** Supported TCE page sizes, bit n = 2^n bytes. */
  readonly pgsizes: bigint;
  /** 0 when the platform cannot create dynamic windows (v2 containers refuse such a group). */
  readonly maxDynamicWindowsSupported: number;
  readonly maxLevels: number;
  /** Identity of the ops family (Linux compares the create_table op): only equal families share a container. */
  readonly family: string;
  /** eeh_iommu_group_to_pe: `undefined` when the group has no EEH PE. */
  readonly eeh: EehPeLike | undefined;
  getTableSize?(pageShift: number, windowSize: bigint, levels: number): bigint;
  createTable?(num: number, pageShift: number, windowSize: bigint, levels: number): TceTableLike;
  setWindow?(num: number, table: TceTableLike): void;
  /** Absent when the platform does not let user space remove windows. */
  readonly unsetWindow?: ((num: number) => void) | undefined;
}

/** Finds the table group behind an IOMMU group (iommu_group_get_iommudata). */
export type TableGroupLookup = (group: IommuGroup) => TceTableGroupLike | undefined;

/**
 * The default lookup: the platform contract's optional `IommuGroup.spaprTableGroup` (`@vfio-ts/platform`
 * IommuTableGroup, structurally the same as {@link TceTableGroupLike}; set by `@vfio-ts/sim`'s 'spapr' model).
 */
export const defaultTableGroupOf: TableGroupLookup = (group) => group.spaprTableGroup;
