/**
 * Every struct of linux/vfio.h and linux/iommufd.h named in the inventory (§1), as a {@link StructCodec} with its
 * LP64 `sizeof`, its `minsz` (the `offsetofend()` of the last field the kernel requires) and its field offsets.
 *
 * Field names are the Linux member names, so a codec reads like the header. Two conventions:
 * - a nested struct member is flattened as `<member>_<field>` (e.g. `bitmap_pgsize` in
 *   `vfio_iommu_type1_dirty_bitmap_get`, `header_id` in a capability);
 * - a union is declared by its first member; the others are listed in the codec's TSDoc.
 * Flexible array members (`data[]`) are not fields: `size` is the fixed header, the array starts at `size`.
 */
import { defineStruct } from './struct.js';

/* ------------------------------------------------------------------------------------------------------------ */
/* Capability header (inventory §1.0)                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

/** `struct vfio_info_cap_header` (8): `id`, `version`, `next` (offset from the start of the INFO buffer, 0 ends). */
export const vfioInfoCapHeader = defineStruct('vfio_info_cap_header', 8, 8, {
  id: [0, 'u16'],
  version: [2, 'u16'],
  next: [4, 'u32'],
});

/** The three header fields every capability struct starts with. */
const CAP_HEADER = {
  header_id: [0, 'u16'],
  header_version: [2, 'u16'],
  header_next: [4, 'u32'],
} as const;

/* ------------------------------------------------------------------------------------------------------------ */
/* Group and device (inventory §1.3, §1.4)                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

/** `struct vfio_group_status` (8, minsz 8) — VFIO_GROUP_GET_STATUS. */
export const vfioGroupStatus = defineStruct('vfio_group_status', 8, 8, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
});

/** `struct vfio_device_info` (24, minsz 16 = offsetofend(num_irqs)) — VFIO_DEVICE_GET_INFO. */
export const vfioDeviceInfo = defineStruct('vfio_device_info', 24, 16, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  num_regions: [8, 'u32'],
  num_irqs: [12, 'u32'],
  cap_offset: [16, 'u32'],
  pad: [20, 'u32'],
});

/** `struct vfio_region_info` (32, minsz 32) — VFIO_DEVICE_GET_REGION_INFO. */
export const vfioRegionInfo = defineStruct('vfio_region_info', 32, 32, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  index: [8, 'u32'],
  cap_offset: [12, 'u32'],
  size: [16, 'u64'],
  offset: [24, 'u64'],
});

/** `struct vfio_region_sparse_mmap_area` (16): one mmap-able area of a SPARSE_MMAP capability. */
export const vfioRegionSparseMmapArea = defineStruct('vfio_region_sparse_mmap_area', 16, 16, {
  offset: [0, 'u64'],
  size: [8, 'u64'],
});

/** `struct vfio_region_info_cap_sparse_mmap` (16 + 16·nr_areas): region cap 1; `areas[]` at 16. */
export const vfioRegionInfoCapSparseMmap = defineStruct('vfio_region_info_cap_sparse_mmap', 16, 16, {
  ...CAP_HEADER,
  nr_areas: [8, 'u32'],
  reserved: [12, 'u32'],
});

/** `struct vfio_region_info_cap_type` (16): region cap 2. */
export const vfioRegionInfoCapType = defineStruct('vfio_region_info_cap_type', 16, 16, {
  ...CAP_HEADER,
  type: [8, 'u32'],
  subtype: [12, 'u32'],
});

/** `struct vfio_region_gfx_edid` (24): the EDID region's register block (region type GFX, subtype EDID). */
export const vfioRegionGfxEdid = defineStruct('vfio_region_gfx_edid', 24, 24, {
  edid_offset: [0, 'u32'],
  edid_max_size: [4, 'u32'],
  edid_size: [8, 'u32'],
  max_xres: [12, 'u32'],
  max_yres: [16, 'u32'],
  link_state: [20, 'u32'],
});

/** `struct vfio_device_migration_info` (32): the deprecated v1 migration region header (kept for ABI only). */
export const vfioDeviceMigrationInfo = defineStruct('vfio_device_migration_info', 32, 32, {
  device_state: [0, 'u32'],
  reserved: [4, 'u32'],
  pending_bytes: [8, 'u64'],
  data_offset: [16, 'u64'],
  data_size: [24, 'u64'],
});

/** `struct vfio_region_info_cap_nvlink2_ssatgt` (16): region cap 4 (deprecated). */
export const vfioRegionInfoCapNvlink2Ssatgt = defineStruct('vfio_region_info_cap_nvlink2_ssatgt', 16, 16, {
  ...CAP_HEADER,
  tgt: [8, 'u64'],
});

/** `struct vfio_region_info_cap_nvlink2_lnkspd` (16): region cap 5 (deprecated). */
export const vfioRegionInfoCapNvlink2Lnkspd = defineStruct('vfio_region_info_cap_nvlink2_lnkspd', 16, 16, {
  ...CAP_HEADER,
  link_speed: [8, 'u32'],
  pad: [12, 'u32'],
});

/** `struct vfio_device_info_cap_pci_atomic_comp` (16): device info cap 5. */
export const vfioDeviceInfoCapPciAtomicComp = defineStruct('vfio_device_info_cap_pci_atomic_comp', 16, 16, {
  ...CAP_HEADER,
  flags: [8, 'u32'],
  reserved: [12, 'u32'],
});

/** `struct vfio_irq_info` (16, minsz 16) — VFIO_DEVICE_GET_IRQ_INFO. */
export const vfioIrqInfo = defineStruct('vfio_irq_info', 16, 16, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  index: [8, 'u32'],
  count: [12, 'u32'],
});

/** `struct vfio_irq_set` (header 20, minsz 20) — VFIO_DEVICE_SET_IRQS; `data[]` (u8 or s32 per vector) at 20. */
export const vfioIrqSet = defineStruct('vfio_irq_set', 20, 20, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  index: [8, 'u32'],
  start: [12, 'u32'],
  count: [16, 'u32'],
});

/**
 * `struct vfio_pci_dependent_device` (8): one entry of GET_PCI_HOT_RESET_INFO. `group_id` is a union with
 * `devid` (cdev path; `VFIO_PCI_DEVID_NOT_OWNED` is -1, read here as 0xffffffff).
 */
export const vfioPciDependentDevice = defineStruct('vfio_pci_dependent_device', 8, 8, {
  group_id: [0, 'u32'],
  segment: [4, 'u16'],
  bus: [6, 'u8'],
  devfn: [7, 'u8'],
});

/** `struct vfio_pci_hot_reset_info` (header 12, minsz 12); `devices[]` at 12. */
export const vfioPciHotResetInfo = defineStruct('vfio_pci_hot_reset_info', 12, 12, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  count: [8, 'u32'],
});

/** `struct vfio_pci_hot_reset` (header 12, minsz 12); `s32 group_fds[]` at 12. */
export const vfioPciHotReset = defineStruct('vfio_pci_hot_reset', 12, 12, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  count: [8, 'u32'],
});

/**
 * `struct vfio_device_gfx_plane_info` (64, minsz 60 = offsetofend(region_index)) — VFIO_DEVICE_QUERY_GFX_PLANE.
 * `region_index` is a union with `dmabuf_id`.
 */
export const vfioDeviceGfxPlaneInfo = defineStruct('vfio_device_gfx_plane_info', 64, 60, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  drm_plane_type: [8, 'u32'],
  drm_format: [12, 'u32'],
  drm_format_mod: [16, 'u64'],
  width: [24, 'u32'],
  height: [28, 'u32'],
  stride: [32, 'u32'],
  size: [36, 'u32'],
  x_pos: [40, 'u32'],
  y_pos: [44, 'u32'],
  x_hot: [48, 'u32'],
  y_hot: [52, 'u32'],
  region_index: [56, 'u32'],
  reserved: [60, 'u32'],
});

/** `struct vfio_device_ioeventfd` (32, minsz 28 = offsetofend(fd)) — VFIO_DEVICE_IOEVENTFD. */
export const vfioDeviceIoeventfd = defineStruct('vfio_device_ioeventfd', 32, 28, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  offset: [8, 'u64'],
  data: [16, 'u64'],
  fd: [24, 's32'],
  reserved: [28, 'u32'],
});

/** `struct vfio_device_feature` (header 8, minsz 8) — VFIO_DEVICE_FEATURE; `data[]` at 8. */
export const vfioDeviceFeature = defineStruct('vfio_device_feature', 8, 8, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
});

/* ------------------------------------------------------------------------------------------------------------ */
/* cdev binding (inventory §1.10)                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * `struct vfio_device_bind_iommufd` (24, minsz 16 = offsetofend(out_devid)) — VFIO_DEVICE_BIND_IOMMUFD.
 * `token_uuid_ptr` (with `VFIO_DEVICE_BIND_FLAG_TOKEN`) is from kernels newer than 6.12, where the struct was 16.
 */
export const vfioDeviceBindIommufd = defineStruct('vfio_device_bind_iommufd', 24, 16, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  iommufd: [8, 's32'],
  out_devid: [12, 'u32'],
  token_uuid_ptr: [16, 'u64'],
});

/** `struct vfio_device_attach_iommufd_pt` (16, minsz 12 = offsetofend(pt_id)) — VFIO_DEVICE_ATTACH_IOMMUFD_PT. */
export const vfioDeviceAttachIommufdPt = defineStruct('vfio_device_attach_iommufd_pt', 16, 12, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  pt_id: [8, 'u32'],
  pasid: [12, 'u32'],
});

/** `struct vfio_device_detach_iommufd_pt` (12, minsz 8 = offsetofend(flags)) — VFIO_DEVICE_DETACH_IOMMUFD_PT. */
export const vfioDeviceDetachIommufdPt = defineStruct('vfio_device_detach_iommufd_pt', 12, 8, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  pasid: [8, 'u32'],
});

/* ------------------------------------------------------------------------------------------------------------ */
/* VFIO_DEVICE_FEATURE payloads (inventory §1.5)                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

/** `struct vfio_device_feature_migration` (8): feature 1, `flags` = VFIO_MIGRATION_*. */
export const vfioDeviceFeatureMigration = defineStruct('vfio_device_feature_migration', 8, 8, {
  flags: [0, 'u64'],
});

/** `struct vfio_device_feature_mig_state` (8): feature 2. */
export const vfioDeviceFeatureMigState = defineStruct('vfio_device_feature_mig_state', 8, 8, {
  device_state: [0, 'u32'],
  data_fd: [4, 's32'],
});

/** `struct vfio_device_low_power_entry_with_wakeup` (8): feature 4. */
export const vfioDeviceLowPowerEntryWithWakeup = defineStruct('vfio_device_low_power_entry_with_wakeup', 8, 8, {
  wakeup_eventfd: [0, 's32'],
  reserved: [4, 'u32'],
});

/** `struct vfio_device_feature_dma_logging_control` (24): feature 6; `ranges` points at an array of ranges. */
export const vfioDeviceFeatureDmaLoggingControl = defineStruct('vfio_device_feature_dma_logging_control', 24, 24, {
  page_size: [0, 'u64'],
  num_ranges: [8, 'u32'],
  __reserved: [12, 'u32'],
  ranges: [16, 'u64'],
});

/** `struct vfio_device_feature_dma_logging_range` (16). */
export const vfioDeviceFeatureDmaLoggingRange = defineStruct('vfio_device_feature_dma_logging_range', 16, 16, {
  iova: [0, 'u64'],
  length: [8, 'u64'],
});

/** `struct vfio_device_feature_dma_logging_report` (32): feature 8. */
export const vfioDeviceFeatureDmaLoggingReport = defineStruct('vfio_device_feature_dma_logging_report', 32, 32, {
  iova: [0, 'u64'],
  length: [8, 'u64'],
  page_size: [16, 'u64'],
  bitmap: [24, 'u64'],
});

/** `struct vfio_device_feature_mig_data_size` (8): feature 9. */
export const vfioDeviceFeatureMigDataSize = defineStruct('vfio_device_feature_mig_data_size', 8, 8, {
  stop_copy_length: [0, 'u64'],
});

/** `struct vfio_device_feature_bus_master` (4): feature 10, `op` = VFIO_DEVICE_FEATURE_CLEAR/SET_MASTER. */
export const vfioDeviceFeatureBusMaster = defineStruct('vfio_device_feature_bus_master', 4, 4, {
  op: [0, 'u32'],
});

/** `struct vfio_region_dma_range` (16): one slice of a DMA_BUF feature request. */
export const vfioRegionDmaRange = defineStruct('vfio_region_dma_range', 16, 16, {
  offset: [0, 'u64'],
  length: [8, 'u64'],
});

/** `struct vfio_device_feature_dma_buf` (header 16): feature 11 (newer than 6.12); `dma_ranges[]` at 16. */
export const vfioDeviceFeatureDmaBuf = defineStruct('vfio_device_feature_dma_buf', 16, 16, {
  region_index: [0, 'u32'],
  open_flags: [4, 'u32'],
  flags: [8, 'u32'],
  nr_ranges: [12, 'u32'],
});

/** `struct vfio_precopy_info` (24, minsz 24) — VFIO_MIG_GET_PRECOPY_INFO on the migration data fd. */
export const vfioPrecopyInfo = defineStruct('vfio_precopy_info', 24, 24, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  initial_bytes: [8, 'u64'],
  dirty_bytes: [16, 'u64'],
});

/* ------------------------------------------------------------------------------------------------------------ */
/* Type1 backend (inventory §1.7)                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

/** `struct vfio_iommu_type1_info` (24, minsz 16 = offsetofend(iova_pgsizes)) — VFIO_IOMMU_GET_INFO. */
export const vfioIommuType1Info = defineStruct('vfio_iommu_type1_info', 24, 16, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  iova_pgsizes: [8, 'u64'],
  cap_offset: [16, 'u32'],
  pad: [20, 'u32'],
});

/** `struct vfio_iova_range` (16): `end` is inclusive. */
export const vfioIovaRange = defineStruct('vfio_iova_range', 16, 16, {
  start: [0, 'u64'],
  end: [8, 'u64'],
});

/** `struct vfio_iommu_type1_info_cap_iova_range` (16 + 16·nr_iovas): type1 cap 1; `iova_ranges[]` at 16. */
export const vfioIommuType1InfoCapIovaRange = defineStruct('vfio_iommu_type1_info_cap_iova_range', 16, 16, {
  ...CAP_HEADER,
  nr_iovas: [8, 'u32'],
  reserved: [12, 'u32'],
});

/** `struct vfio_iommu_type1_info_cap_migration` (32 on LP64): type1 cap 2. */
export const vfioIommuType1InfoCapMigration = defineStruct('vfio_iommu_type1_info_cap_migration', 32, 32, {
  ...CAP_HEADER,
  flags: [8, 'u32'],
  pgsize_bitmap: [16, 'u64'],
  max_dirty_bitmap_size: [24, 'u64'],
});

/** `struct vfio_iommu_type1_info_dma_avail` (12): type1 cap 3. */
export const vfioIommuType1InfoDmaAvail = defineStruct('vfio_iommu_type1_info_dma_avail', 12, 12, {
  ...CAP_HEADER,
  avail: [8, 'u32'],
});

/** `struct vfio_iommu_type1_dma_map` (32, minsz 32) — VFIO_IOMMU_MAP_DMA. */
export const vfioIommuType1DmaMap = defineStruct('vfio_iommu_type1_dma_map', 32, 32, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  vaddr: [8, 'u64'],
  iova: [16, 'u64'],
  size: [24, 'u64'],
});

/** `struct vfio_bitmap` (24): `size` in bytes, `data` a user pointer; one bit per `pgsize` page. */
export const vfioBitmap = defineStruct('vfio_bitmap', 24, 24, {
  pgsize: [0, 'u64'],
  size: [8, 'u64'],
  data: [16, 'u64'],
});

/** `struct vfio_iommu_type1_dma_unmap` (header 24, minsz 24) — VFIO_IOMMU_UNMAP_DMA; `data[]` (a vfio_bitmap) at 24. */
export const vfioIommuType1DmaUnmap = defineStruct('vfio_iommu_type1_dma_unmap', 24, 24, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  iova: [8, 'u64'],
  size: [16, 'u64'],
});

/** `struct vfio_iommu_type1_dirty_bitmap` (header 8, minsz 8) — VFIO_IOMMU_DIRTY_PAGES; `data[]` at 8. */
export const vfioIommuType1DirtyBitmap = defineStruct('vfio_iommu_type1_dirty_bitmap', 8, 8, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
});

/** `struct vfio_iommu_type1_dirty_bitmap_get` (40): the GET_BITMAP payload; `bitmap` (a vfio_bitmap) flattened. */
export const vfioIommuType1DirtyBitmapGet = defineStruct('vfio_iommu_type1_dirty_bitmap_get', 40, 40, {
  iova: [0, 'u64'],
  size: [8, 'u64'],
  bitmap_pgsize: [16, 'u64'],
  bitmap_size: [24, 'u64'],
  bitmap_data: [32, 'u64'],
});

/* ------------------------------------------------------------------------------------------------------------ */
/* sPAPR TCE backend (inventory §1.8)                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

/** `struct vfio_iommu_spapr_tce_ddw_info` (16). */
export const vfioIommuSpaprTceDdwInfo = defineStruct('vfio_iommu_spapr_tce_ddw_info', 16, 16, {
  pgsizes: [0, 'u64'],
  max_dynamic_windows_supported: [8, 'u32'],
  levels: [12, 'u32'],
});

/**
 * `struct vfio_iommu_spapr_tce_info` (32, minsz 16 = offsetofend(dma32_window_size)) —
 * VFIO_IOMMU_SPAPR_TCE_GET_INFO; `ddw` flattened as `ddw_*`.
 */
export const vfioIommuSpaprTceInfo = defineStruct('vfio_iommu_spapr_tce_info', 32, 16, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  dma32_window_start: [8, 'u32'],
  dma32_window_size: [12, 'u32'],
  ddw_pgsizes: [16, 'u64'],
  ddw_max_dynamic_windows_supported: [24, 'u32'],
  ddw_levels: [28, 'u32'],
});

/** `struct vfio_eeh_pe_err` (24): the INJECT_ERR payload. */
export const vfioEehPeErr = defineStruct('vfio_eeh_pe_err', 24, 24, {
  type: [0, 'u32'],
  func: [4, 'u32'],
  addr: [8, 'u64'],
  mask: [16, 'u64'],
});

/** `struct vfio_eeh_pe_op` (40, minsz 12 = offsetofend(op)) — VFIO_EEH_PE_OP; the union `err` flattened as `err_*`. */
export const vfioEehPeOp = defineStruct('vfio_eeh_pe_op', 40, 12, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  op: [8, 'u32'],
  err_type: [16, 'u32'],
  err_func: [20, 'u32'],
  err_addr: [24, 'u64'],
  err_mask: [32, 'u64'],
});

/** `struct vfio_iommu_spapr_register_memory` (24, minsz 24) — VFIO_IOMMU_SPAPR_(UN)REGISTER_MEMORY. */
export const vfioIommuSpaprRegisterMemory = defineStruct('vfio_iommu_spapr_register_memory', 24, 24, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  vaddr: [8, 'u64'],
  size: [16, 'u64'],
});

/** `struct vfio_iommu_spapr_tce_create` (40, minsz 40) — VFIO_IOMMU_SPAPR_TCE_CREATE. */
export const vfioIommuSpaprTceCreate = defineStruct('vfio_iommu_spapr_tce_create', 40, 40, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  page_shift: [8, 'u32'],
  __resv1: [12, 'u32'],
  window_size: [16, 'u64'],
  levels: [24, 'u32'],
  __resv2: [28, 'u32'],
  start_addr: [32, 'u64'],
});

/** `struct vfio_iommu_spapr_tce_remove` (16, minsz 16) — VFIO_IOMMU_SPAPR_TCE_REMOVE. */
export const vfioIommuSpaprTceRemove = defineStruct('vfio_iommu_spapr_tce_remove', 16, 16, {
  argsz: [0, 'u32'],
  flags: [4, 'u32'],
  start_addr: [8, 'u64'],
});

/* ------------------------------------------------------------------------------------------------------------ */
/* iommufd (inventory §1.9). minsz = the `IOCTL_OP(..., last)` member of drivers/iommu/iommufd/main.c.           */
/* ------------------------------------------------------------------------------------------------------------ */

/** `struct iommu_destroy` (8, minsz 8) — IOMMU_DESTROY. */
export const iommuDestroy = defineStruct('iommu_destroy', 8, 8, {
  size: [0, 'u32'],
  id: [4, 'u32'],
});

/** `struct iommu_ioas_alloc` (12, minsz 12) — IOMMU_IOAS_ALLOC. */
export const iommuIoasAlloc = defineStruct('iommu_ioas_alloc', 12, 12, {
  size: [0, 'u32'],
  flags: [4, 'u32'],
  out_ioas_id: [8, 'u32'],
});

/** `struct iommu_iova_range` (16): `last` is inclusive. */
export const iommuIovaRange = defineStruct('iommu_iova_range', 16, 16, {
  start: [0, 'u64'],
  last: [8, 'u64'],
});

/** `struct iommu_ioas_allow_iovas` (24, minsz 24) — IOMMU_IOAS_ALLOW_IOVAS. */
export const iommuIoasAllowIovas = defineStruct('iommu_ioas_allow_iovas', 24, 24, {
  size: [0, 'u32'],
  ioas_id: [4, 'u32'],
  num_iovas: [8, 'u32'],
  __reserved: [12, 'u32'],
  allowed_iovas: [16, 'u64'],
});

/** `struct iommu_ioas_copy` (40, minsz 40) — IOMMU_IOAS_COPY. */
export const iommuIoasCopy = defineStruct('iommu_ioas_copy', 40, 40, {
  size: [0, 'u32'],
  flags: [4, 'u32'],
  dst_ioas_id: [8, 'u32'],
  src_ioas_id: [12, 'u32'],
  length: [16, 'u64'],
  dst_iova: [24, 'u64'],
  src_iova: [32, 'u64'],
});

/** `struct iommu_ioas_iova_ranges` (32, minsz 32) — IOMMU_IOAS_IOVA_RANGES. */
export const iommuIoasIovaRanges = defineStruct('iommu_ioas_iova_ranges', 32, 32, {
  size: [0, 'u32'],
  ioas_id: [4, 'u32'],
  num_iovas: [8, 'u32'],
  __reserved: [12, 'u32'],
  allowed_iovas: [16, 'u64'],
  out_iova_alignment: [24, 'u64'],
});

/** `struct iommu_ioas_map` (40, minsz 40) — IOMMU_IOAS_MAP. */
export const iommuIoasMap = defineStruct('iommu_ioas_map', 40, 40, {
  size: [0, 'u32'],
  flags: [4, 'u32'],
  ioas_id: [8, 'u32'],
  __reserved: [12, 'u32'],
  user_va: [16, 'u64'],
  length: [24, 'u64'],
  iova: [32, 'u64'],
});

/** `struct iommu_ioas_unmap` (24, minsz 24) — IOMMU_IOAS_UNMAP. */
export const iommuIoasUnmap = defineStruct('iommu_ioas_unmap', 24, 24, {
  size: [0, 'u32'],
  ioas_id: [4, 'u32'],
  iova: [8, 'u64'],
  length: [16, 'u64'],
});

/** `struct iommu_option` (24, minsz 24) — IOMMU_OPTION. */
export const iommuOption = defineStruct('iommu_option', 24, 24, {
  size: [0, 'u32'],
  option_id: [4, 'u32'],
  op: [8, 'u16'],
  __reserved: [10, 'u16'],
  object_id: [12, 'u32'],
  val64: [16, 'u64'],
});

/** `struct iommu_vfio_ioas` (12, minsz 12) — IOMMU_VFIO_IOAS. */
export const iommuVfioIoas = defineStruct('iommu_vfio_ioas', 12, 12, {
  size: [0, 'u32'],
  ioas_id: [4, 'u32'],
  op: [8, 'u16'],
  __reserved: [10, 'u16'],
});

/**
 * `struct iommu_hwpt_alloc` (48 since 6.11, minsz 24 = offsetofend(__reserved)) — IOMMU_HWPT_ALLOC.
 * `fault_id`/`__reserved2` were appended in 6.11 (with IOMMU_HWPT_FAULT_ID_VALID); 6.6 callers pass 24, 6.7 pass 40.
 */
export const iommuHwptAlloc = defineStruct('iommu_hwpt_alloc', 48, 24, {
  size: [0, 'u32'],
  flags: [4, 'u32'],
  dev_id: [8, 'u32'],
  pt_id: [12, 'u32'],
  out_hwpt_id: [16, 'u32'],
  __reserved: [20, 'u32'],
  data_type: [24, 'u32'],
  data_len: [28, 'u32'],
  data_uptr: [32, 'u64'],
  fault_id: [40, 'u32'],
  __reserved2: [44, 'u32'],
});

/** `struct iommu_hwpt_vtd_s1` (24): IOMMU_HWPT_DATA_VTD_S1 user data. */
export const iommuHwptVtdS1 = defineStruct('iommu_hwpt_vtd_s1', 24, 24, {
  flags: [0, 'u64'],
  pgtbl_addr: [8, 'u64'],
  addr_width: [16, 'u32'],
  __reserved: [20, 'u32'],
});

/** `struct iommu_hw_info` (40, minsz 32 = offsetofend(__reserved)) — IOMMU_GET_HW_INFO. */
export const iommuHwInfo = defineStruct('iommu_hw_info', 40, 32, {
  size: [0, 'u32'],
  flags: [4, 'u32'],
  dev_id: [8, 'u32'],
  data_len: [12, 'u32'],
  data_uptr: [16, 'u64'],
  out_data_type: [24, 'u32'],
  __reserved: [28, 'u32'],
  out_capabilities: [32, 'u64'],
});

/** `struct iommu_hw_info_vtd` (24): IOMMU_HW_INFO_TYPE_INTEL_VTD data. */
export const iommuHwInfoVtd = defineStruct('iommu_hw_info_vtd', 24, 24, {
  flags: [0, 'u32'],
  __reserved: [4, 'u32'],
  cap_reg: [8, 'u64'],
  ecap_reg: [16, 'u64'],
});

/** `struct iommu_hwpt_set_dirty_tracking` (16, minsz 16) — IOMMU_HWPT_SET_DIRTY_TRACKING. */
export const iommuHwptSetDirtyTracking = defineStruct('iommu_hwpt_set_dirty_tracking', 16, 16, {
  size: [0, 'u32'],
  flags: [4, 'u32'],
  hwpt_id: [8, 'u32'],
  __reserved: [12, 'u32'],
});

/** `struct iommu_hwpt_get_dirty_bitmap` (48, minsz 48) — IOMMU_HWPT_GET_DIRTY_BITMAP. */
export const iommuHwptGetDirtyBitmap = defineStruct('iommu_hwpt_get_dirty_bitmap', 48, 48, {
  size: [0, 'u32'],
  hwpt_id: [4, 'u32'],
  flags: [8, 'u32'],
  __reserved: [12, 'u32'],
  iova: [16, 'u64'],
  length: [24, 'u64'],
  page_size: [32, 'u64'],
  data: [40, 'u64'],
});

/** `struct iommu_hwpt_invalidate` (32, minsz 32) — IOMMU_HWPT_INVALIDATE (6.8). */
export const iommuHwptInvalidate = defineStruct('iommu_hwpt_invalidate', 32, 32, {
  size: [0, 'u32'],
  hwpt_id: [4, 'u32'],
  data_uptr: [8, 'u64'],
  data_type: [16, 'u32'],
  entry_len: [20, 'u32'],
  entry_num: [24, 'u32'],
  __reserved: [28, 'u32'],
});

/** `struct iommu_hwpt_vtd_s1_invalidate` (24): one IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 entry. */
export const iommuHwptVtdS1Invalidate = defineStruct('iommu_hwpt_vtd_s1_invalidate', 24, 24, {
  addr: [0, 'u64'],
  npages: [8, 'u64'],
  flags: [16, 'u32'],
  __reserved: [20, 'u32'],
});

/** `struct iommu_fault_alloc` (16, minsz 16) — IOMMU_FAULT_QUEUE_ALLOC (6.11). */
export const iommuFaultAlloc = defineStruct('iommu_fault_alloc', 16, 16, {
  size: [0, 'u32'],
  flags: [4, 'u32'],
  out_fault_id: [8, 'u32'],
  out_fault_fd: [12, 'u32'],
});

/* ------------------------------------------------------------------------------------------------------------ */

/** Every codec, keyed by its Linux struct name (e.g. `STRUCTS['vfio_iommu_type1_dma_map']`). */
export const STRUCTS = {
  vfio_info_cap_header: vfioInfoCapHeader,
  vfio_group_status: vfioGroupStatus,
  vfio_device_info: vfioDeviceInfo,
  vfio_region_info: vfioRegionInfo,
  vfio_region_sparse_mmap_area: vfioRegionSparseMmapArea,
  vfio_region_info_cap_sparse_mmap: vfioRegionInfoCapSparseMmap,
  vfio_region_info_cap_type: vfioRegionInfoCapType,
  vfio_region_gfx_edid: vfioRegionGfxEdid,
  vfio_device_migration_info: vfioDeviceMigrationInfo,
  vfio_region_info_cap_nvlink2_ssatgt: vfioRegionInfoCapNvlink2Ssatgt,
  vfio_region_info_cap_nvlink2_lnkspd: vfioRegionInfoCapNvlink2Lnkspd,
  vfio_device_info_cap_pci_atomic_comp: vfioDeviceInfoCapPciAtomicComp,
  vfio_irq_info: vfioIrqInfo,
  vfio_irq_set: vfioIrqSet,
  vfio_pci_dependent_device: vfioPciDependentDevice,
  vfio_pci_hot_reset_info: vfioPciHotResetInfo,
  vfio_pci_hot_reset: vfioPciHotReset,
  vfio_device_gfx_plane_info: vfioDeviceGfxPlaneInfo,
  vfio_device_ioeventfd: vfioDeviceIoeventfd,
  vfio_device_feature: vfioDeviceFeature,
  vfio_device_bind_iommufd: vfioDeviceBindIommufd,
  vfio_device_attach_iommufd_pt: vfioDeviceAttachIommufdPt,
  vfio_device_detach_iommufd_pt: vfioDeviceDetachIommufdPt,
  vfio_device_feature_migration: vfioDeviceFeatureMigration,
  vfio_device_feature_mig_state: vfioDeviceFeatureMigState,
  vfio_device_low_power_entry_with_wakeup: vfioDeviceLowPowerEntryWithWakeup,
  vfio_device_feature_dma_logging_control: vfioDeviceFeatureDmaLoggingControl,
  vfio_device_feature_dma_logging_range: vfioDeviceFeatureDmaLoggingRange,
  vfio_device_feature_dma_logging_report: vfioDeviceFeatureDmaLoggingReport,
  vfio_device_feature_mig_data_size: vfioDeviceFeatureMigDataSize,
  vfio_device_feature_bus_master: vfioDeviceFeatureBusMaster,
  vfio_region_dma_range: vfioRegionDmaRange,
  vfio_device_feature_dma_buf: vfioDeviceFeatureDmaBuf,
  vfio_precopy_info: vfioPrecopyInfo,
  vfio_iommu_type1_info: vfioIommuType1Info,
  vfio_iova_range: vfioIovaRange,
  vfio_iommu_type1_info_cap_iova_range: vfioIommuType1InfoCapIovaRange,
  vfio_iommu_type1_info_cap_migration: vfioIommuType1InfoCapMigration,
  vfio_iommu_type1_info_dma_avail: vfioIommuType1InfoDmaAvail,
  vfio_iommu_type1_dma_map: vfioIommuType1DmaMap,
  vfio_bitmap: vfioBitmap,
  vfio_iommu_type1_dma_unmap: vfioIommuType1DmaUnmap,
  vfio_iommu_type1_dirty_bitmap: vfioIommuType1DirtyBitmap,
  vfio_iommu_type1_dirty_bitmap_get: vfioIommuType1DirtyBitmapGet,
  vfio_iommu_spapr_tce_ddw_info: vfioIommuSpaprTceDdwInfo,
  vfio_iommu_spapr_tce_info: vfioIommuSpaprTceInfo,
  vfio_eeh_pe_err: vfioEehPeErr,
  vfio_eeh_pe_op: vfioEehPeOp,
  vfio_iommu_spapr_register_memory: vfioIommuSpaprRegisterMemory,
  vfio_iommu_spapr_tce_create: vfioIommuSpaprTceCreate,
  vfio_iommu_spapr_tce_remove: vfioIommuSpaprTceRemove,
  iommu_destroy: iommuDestroy,
  iommu_ioas_alloc: iommuIoasAlloc,
  iommu_iova_range: iommuIovaRange,
  iommu_ioas_allow_iovas: iommuIoasAllowIovas,
  iommu_ioas_copy: iommuIoasCopy,
  iommu_ioas_iova_ranges: iommuIoasIovaRanges,
  iommu_ioas_map: iommuIoasMap,
  iommu_ioas_unmap: iommuIoasUnmap,
  iommu_option: iommuOption,
  iommu_vfio_ioas: iommuVfioIoas,
  iommu_hwpt_alloc: iommuHwptAlloc,
  iommu_hwpt_vtd_s1: iommuHwptVtdS1,
  iommu_hw_info: iommuHwInfo,
  iommu_hw_info_vtd: iommuHwInfoVtd,
  iommu_hwpt_set_dirty_tracking: iommuHwptSetDirtyTracking,
  iommu_hwpt_get_dirty_bitmap: iommuHwptGetDirtyBitmap,
  iommu_hwpt_invalidate: iommuHwptInvalidate,
  iommu_hwpt_vtd_s1_invalidate: iommuHwptVtdS1Invalidate,
  iommu_fault_alloc: iommuFaultAlloc,
} as const;

/** A Linux struct name known to {@link STRUCTS}. */
export type StructName = keyof typeof STRUCTS;
