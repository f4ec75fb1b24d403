/**
 * What the backend needs from the platform's POWER IOMMU: the table group behind an IOMMU group (Linux struct
 * iommu_table_group with its iommu_table_group_ops, reached with iommu_group_get_iommudata) and the TCE tables it
 * creates (struct iommu_table with its iommu_table_ops). The platform contract (`@vfio-ts/platform` IommuGroup) carries
 * it as the optional `spaprTableGroup` field (typed `IommuTableGroup`); the simulated 'spapr' IOMMU of `@vfio-ts/sim`
 * provides it. The names below alias those platform types; being structural, any object with their members works.
 */
import type { EehPe, IommuGroup, IommuTable, IommuTableGroup, TceDirection as PlatformTceDirection } from '@vfio-ts/platform';

/** Linux enum dma_data_direction as a TCE encodes it (the platform contract's `TceDirection`). */
export type TceDirection = PlatformTceDirection;

/** One TCE table (struct iommu_table): the platform contract's `IommuTable`. Entry numbers are absolute. */
export type TceTableLike = IommuTable;

/** The EEH PE of a table group, as eeh_ops reach it: the platform contract's `EehPe`. */
export type EehPeLike = EehPe;

/** A POWER IOMMU table group (struct iommu_table_group + ops): the platform contract's `IommuTableGroup`. */
export type TceTableGroupLike = IommuTableGroup;

/** Finds the table group behind an IOMMU group (iommu_group_get_iommudata). */
export type TableGroupLookup = (group: IommuGroup) => TceTableGroupLike | undefined;

/**
 * The default lookup: the platform contract's optional `IommuGroup.spaprTableGroup` (`@vfio-ts/platform`
 * IommuTableGroup, which {@link TceTableGroupLike} names; set by `@vfio-ts/sim`'s 'spapr' model).
 */
export const defaultTableGroupOf: TableGroupLookup = (group) => group.spaprTableGroup;
