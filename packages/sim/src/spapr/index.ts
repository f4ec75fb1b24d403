/**
 * The sPAPR / PowerNV TCE IOMMU hardware model: TCE tables, table groups (PEs) with DDW parameters and EEH state,
 * and IOMMU groups that carry them. Used standalone in tests and by `simPlatform({ iommu: 'spapr' })`.
 * @packageDocumentation
 */
export {
  TceTable,
  SparseEntryArray,
  TCE_PCI_READ,
  TCE_PCI_WRITE,
  POWERNV_IOMMU_MAX_LEVELS,
  tceTableSize,
  tcePermOf,
  tceDirectionOf,
  type TceDirection,
  type TceEntry,
  type TceTableGeometry,
  type TceTableStats,
} from './tce-table.js';
export {
  SpaprTableGroup,
  IOMMU_TABLE_GROUP_MAX_TABLES,
  TCE_BYPASS_BASE,
  POWER8_TCE_PGSIZES,
  POWER9_TCE_PGSIZES,
  type SpaprTableGroupOptions,
  type SpaprDmaChunk,
  type SpaprFaultSink,
} from './table-group.js';
export {
  SpaprEehPe,
  EEH_STATE_RESET_ACTIVE,
  EEH_STATE_MMIO_ACTIVE,
  EEH_STATE_DMA_ACTIVE,
  EEH_STATE_MMIO_ENABLED,
  EEH_STATE_DMA_ENABLED,
  type EehPeOption,
  type EehResetKind,
  type EehInjectedError,
  type EehPeStats,
} from './eeh.js';
export {
  SpaprIommu,
  SpaprIommuGroup,
  spaprTableGroupOf,
  type SpaprCapableIommuGroup,
  type SpaprIommuOptions,
} from './iommu.js';
