/**
 * Constants of linux/iommufd.h (inventory §1.9): map flags, options, VFIO compat ops, HWPT allocation flags and
 * data types, hardware-info types and capabilities, dirty-tracking flags. Values are Linux's.
 */

/** `IOMMU_IOAS_MAP_FIXED_IOVA`: map at the given iova (otherwise the kernel picks one). */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** `IOMMU_IOAS_MAP_WRITEABLE`: DMA may write. */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** `IOMMU_IOAS_MAP_READABLE`: DMA may read. */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

/** Option 0: RLIMIT_MEMLOCK accounting mode (global; 0 per-user, 1 per-process). */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
/** Option 1: combine contiguous pages into huge IOMMU mappings (per IOAS; default 1). */
export const IOMMU_OPTION_HUGE_PAGES = 1;
/** Option op 0: set. */
export const IOMMU_OPTION_OP_SET = 0;
/** Option op 1: get. */
export const IOMMU_OPTION_OP_GET = 1;

/** IOMMU_VFIO_IOAS op 0: get the compat IOAS. */
export const IOMMU_VFIO_IOAS_GET = 0;
/** IOMMU_VFIO_IOAS op 1: set the compat IOAS. */
export const IOMMU_VFIO_IOAS_SET = 1;
/** IOMMU_VFIO_IOAS op 2: clear (disable compat). */
export const IOMMU_VFIO_IOAS_CLEAR = 2;

/** HWPT_ALLOC flag: the HWPT may be a nesting parent. */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** HWPT_ALLOC flag: enforce dirty-tracking support on attach. */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** HWPT_ALLOC flag: `fault_id` is valid (6.11). */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** HWPT_ALLOC flag: the HWPT may be attached to PASIDs (newer than 6.12). */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** HWPT data type 0: none (kernel-managed paging HWPT). */
export const IOMMU_HWPT_DATA_NONE = 0;
/** HWPT data type 1: Intel VT-d stage-1 (`iommu_hwpt_vtd_s1`). */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** HWPT data type 2: ARM SMMUv3 stage-1 (newer than 6.12). */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
/** VT-d stage-1 flag: supervisor request. */
export const IOMMU_VTD_S1_SRE = 1 << 0;
/** VT-d stage-1 flag: extended access enable. */
export const IOMMU_VTD_S1_EAFE = 1 << 1;
/** VT-d stage-1 flag: write protect enable. */
export const IOMMU_VTD_S1_WPE = 1 << 2;

/** HWPT_INVALIDATE data type 0: VT-d stage-1 (`iommu_hwpt_vtd_s1_invalidate`). */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** VT-d invalidation flag: leaf entries only. */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

/** Hardware info type 0: none. */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** Hardware info type 1: Intel VT-d (`iommu_hw_info_vtd`). */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** Hardware info type 2: ARM SMMUv3 (later kernels). */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** iommu_hw_info_vtd.flags: erratum 772415 (no read-only mappings on a nesting parent). */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;
/** iommu_hw_info.out_capabilities: hardware dirty tracking. */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1n << 0n;

/** HWPT_SET_DIRTY_TRACKING flag: enable (clear = disable). */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
/** HWPT_GET_DIRTY_BITMAP flag: read without clearing the IOPTE dirty bits. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
