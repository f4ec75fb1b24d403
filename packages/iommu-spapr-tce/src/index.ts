/**
 * @vfio-ts/iommu-spapr-tce — the VFIO sPAPR TCE IOMMU backend (Linux drivers/vfio/vfio_iommu_spapr_tce.c) for
 * POWER-style IOMMUs: v1 (ENABLE with worst-case locked-memory accounting) and v2 (pre-registered memory, dynamic
 * DMA windows), MAP/UNMAP through TCE tables, the lazy 32-bit default window, multi-group containers and EEH.
 * Install it into a host with `plugins: [spaprTce()]`.
 * @packageDocumentation
 */
export { spaprTce, spaprTceDriverOps, SPAPR_TCE_NAME, SPAPR_TCE_MODULE } from './plugin.js';
export type { SpaprTceOptions, SpaprTcePlugin } from './plugin.js';
export { TceContainer, IOMMU_TABLE_GROUP_MAX_TABLES, IOMMU_PAGE_SHIFT_4K } from './container.js';
export type { SpaprTceEnv, TceContainerDescription, TceWindowDescription, TceMapRequest } from './container.js';
export { spaprCheckExtension, spaprIoctl } from './ioctl.js';
export {
  eehPeOp,
  vfioEehStateOf,
  EEH_STATE_RESET_ACTIVE,
  EEH_STATE_MMIO_ACTIVE,
  EEH_STATE_DMA_ACTIVE,
  EEH_STATE_MMIO_ENABLED,
  EEH_STATE_DMA_ENABLED,
  EEH_ERR_TYPE_32,
  EEH_ERR_TYPE_64,
  EEH_ERR_FUNC_MAX,
} from './eeh.js';
export { MmIommuContext, PreregRegion, memlockLimitOf } from './prereg.js';
export { defaultTableGroupOf } from './table-group.js';
export type { TableGroupLookup, TceDirection, TceTableGroupLike, TceTableLike, EehPeLike } from './table-group.js';
