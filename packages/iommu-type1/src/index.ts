/**
 * @vfio-ts/iommu-type1 — the VFIO type1 IOMMU backend (Linux drivers/vfio/vfio_iommu_type1.c): MAP/UNMAP_DMA with
 * page pinning and RLIMIT_MEMLOCK accounting, valid IOVA ranges, dirty page tracking, live vaddr update and the
 * emulated-IOMMU helpers for mediated devices. Install it into a host with `plugins: [type1()]`.
 * @packageDocumentation
 */
export { type1, type1DriverOps, TYPE1_MODULE, TYPE1_NAME } from './plugin.js';
export type { Type1Options, Type1Plugin } from './plugin.js';
export { Type1Container, PAGE_MASK_U64 } from './container.js';
export type { Dma, MapRequest, UnmapRequest, UserBitmap, Type1Description } from './container.js';
export type { IovaRange } from './iova-list.js';
export { parseBoolParam, parseUintParam } from './params.js';
