/**
 * Constants of linux/vfio.h: API version, extension ids, flags, capability ids, region and IRQ indexes,
 * device-feature indexes and migration states (inventory §1.1–§1.11). Values are Linux's.
 */

/** `VFIO_API_VERSION`: what VFIO_GET_API_VERSION returns (§1.0). */
export const VFIO_API_VERSION = 0;

/* §1.1 Extensions (VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU arguments) */

/** Extension 1: type1 v1 IOMMU (coalescing, lax unmap). */
export const VFIO_TYPE1_IOMMU = 1;
/** Extension 2: sPAPR TCE v1 IOMMU. */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** Extension 3: type1 v2 IOMMU (strict unmap, pin_pages, dirty tracking). */
export const VFIO_TYPE1v2_IOMMU = 3;
/** Extension 4: every domain enforces cache coherency. */
export const VFIO_DMA_CC_IOMMU = 4;
/** Extension 5: EEH supported (sPAPR). */
export const VFIO_EEH = 5;
/** Extension 6: reserved (formerly type1 nesting); CHECK_EXTENSION answers 0 for it. */
export const __VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
/** Extension 7: sPAPR TCE v2 IOMMU (pre-registered memory, DDW). */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** Extension 8: the no-IOMMU driver (only when enabled by the module parameter). */
export const VFIO_NOIOMMU_IOMMU = 8;
/** Extension 9: `VFIO_DMA_UNMAP_FLAG_ALL` supported. */
export const VFIO_UNMAP_ALL = 9;
/** Extension 10: `VFIO_DMA_MAP_FLAG_VADDR` / `VFIO_DMA_UNMAP_FLAG_VADDR` supported. */
export const VFIO_UPDATE_VADDR = 10;

/* §1.3 Group status */

/** vfio_group_status.flags: the group is viable (all devices bound to vfio or claimed by nobody). */
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
/** vfio_group_status.flags: a container or iommufd is set. */
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

/* §1.4 Device info */

/** vfio_device_info.flags: the device supports VFIO_DEVICE_RESET. */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
/** vfio_device_info.flags: vfio-pci device. */
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
/** vfio_device_info.flags: vfio-platform device. */
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
/** vfio_device_info.flags: vfio-amba device. */
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
/** vfio_device_info.flags: vfio-ccw device. */
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
/** vfio_device_info.flags: vfio-ap device. */
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
/** vfio_device_info.flags: vfio-fsl-mc device. */
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
/** vfio_device_info.flags: `cap_offset` is valid (a capability chain follows). */
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
/** vfio_device_info.flags: vfio-cdx device. */
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;

/** `device_api` string of vfio-pci devices (mdev types report it). */
export const VFIO_DEVICE_API_PCI_STRING = 'vfio-pci';
/** `device_api` string of vfio-platform devices. */
export const VFIO_DEVICE_API_PLATFORM_STRING = 'vfio-platform';
/** `device_api` string of vfio-amba devices. */
export const VFIO_DEVICE_API_AMBA_STRING = 'vfio-amba';
/** `device_api` string of vfio-ccw devices. */
export const VFIO_DEVICE_API_CCW_STRING = 'vfio-ccw';
/** `device_api` string of vfio-ap devices. */
export const VFIO_DEVICE_API_AP_STRING = 'vfio-ap';

/** Device info cap 1 (s390 zPCI base). */
export const VFIO_DEVICE_INFO_CAP_ZPCI_BASE = 1;
/** Device info cap 2 (s390 zPCI group). */
export const VFIO_DEVICE_INFO_CAP_ZPCI_GROUP = 2;
/** Device info cap 3 (s390 zPCI utility string). */
export const VFIO_DEVICE_INFO_CAP_ZPCI_UTIL = 3;
/** Device info cap 4 (s390 zPCI function path). */
export const VFIO_DEVICE_INFO_CAP_ZPCI_PFIP = 4;
/** Device info cap 5: PCIe AtomicOp completer widths (`vfio_device_info_cap_pci_atomic_comp`). */
export const VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP = 5;
/** PCI_ATOMIC_COMP flags: 32-bit AtomicOp completion. */
export const VFIO_PCI_ATOMIC_COMP32 = 1 << 0;
/** PCI_ATOMIC_COMP flags: 64-bit AtomicOp completion. */
export const VFIO_PCI_ATOMIC_COMP64 = 1 << 1;
/** PCI_ATOMIC_COMP flags: 128-bit CAS completion. */
export const VFIO_PCI_ATOMIC_COMP128 = 1 << 2;

/* §1.4 Region info and §1.4.1 region capabilities */

/** vfio_region_info.flags: region supports read. */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
/** vfio_region_info.flags: region supports write. */
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
/** vfio_region_info.flags: region supports mmap. */
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
/** vfio_region_info.flags: `cap_offset` is valid. */
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

/** Region cap 1: only the listed areas may be mmapped. */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
/** Region cap 2: device-specific region type/subtype. */
export const VFIO_REGION_INFO_CAP_TYPE = 2;
/** Region cap 3 (header only): the BAR holding the MSI-X table may be mmapped whole. */
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;
/** Region cap 4 (deprecated): NVLink2 SSA target. */
export const VFIO_REGION_INFO_CAP_NVLINK2_SSATGT = 4;
/** Region cap 5 (deprecated): NVLink2 link speed. */
export const VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD = 5;

/** Region type bit: the low 16 bits are a PCI vendor id. */
export const VFIO_REGION_TYPE_PCI_VENDOR_TYPE = 0x80000000;
/** Mask of the vendor id in a vendor region type. */
export const VFIO_REGION_TYPE_PCI_VENDOR_MASK = 0xffff;
/** Region type 1: graphics. */
export const VFIO_REGION_TYPE_GFX = 1;
/** Region type 2: s390 channel I/O. */
export const VFIO_REGION_TYPE_CCW = 2;
/** Region type 3: the deprecated v1 migration region. */
export const VFIO_REGION_TYPE_MIGRATION_DEPRECATED = 3;
/** Intel (0x8086) subtype 1: IGD OpRegion. */
export const VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION = 1;
/** Intel subtype 2: IGD host bridge config. */
export const VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG = 2;
/** Intel subtype 3: IGD LPC bridge config. */
export const VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG = 3;
/** NVIDIA (0x10de) subtype 1 (deprecated): NVLink2 RAM. */
export const VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM = 1;
/** IBM (0x1014) subtype 1 (deprecated): NVLink2 ATSD. */
export const VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD = 1;
/** GFX subtype 1: EDID (`vfio_region_gfx_edid`). */
export const VFIO_REGION_SUBTYPE_GFX_EDID = 1;
/** CCW subtype 1: async command region. */
export const VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD = 1;
/** CCW subtype 2: SCHIB region. */
export const VFIO_REGION_SUBTYPE_CCW_SCHIB = 2;
/** CCW subtype 3: CRW region. */
export const VFIO_REGION_SUBTYPE_CCW_CRW = 3;
/** MIGRATION_DEPRECATED subtype 1. */
export const VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED = 1;
/** vfio_region_gfx_edid.link_state: link up. */
export const VFIO_DEVICE_GFX_LINK_STATE_UP = 1;
/** vfio_region_gfx_edid.link_state: link down. */
export const VFIO_DEVICE_GFX_LINK_STATE_DOWN = 2;

/** Deprecated v1 migration device_state bit: stopped (no bits). */
export const VFIO_DEVICE_STATE_V1_STOP = 0;
/** Deprecated v1 migration device_state bit: running. */
export const VFIO_DEVICE_STATE_V1_RUNNING = 1 << 0;
/** Deprecated v1 migration device_state bit: saving. */
export const VFIO_DEVICE_STATE_V1_SAVING = 1 << 1;
/** Deprecated v1 migration device_state bit: resuming. */
export const VFIO_DEVICE_STATE_V1_RESUMING = 1 << 2;
/** Deprecated v1 migration device_state mask. */
export const VFIO_DEVICE_STATE_MASK = 0x7;

/* §1.4 IRQ info and §1.4.2 SET_IRQS */

/** vfio_irq_info.flags: signals through an eventfd. */
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
/** vfio_irq_info.flags: supports MASK/UNMASK. */
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
/** vfio_irq_info.flags: masked automatically when it fires (level-triggered, e.g. INTx). */
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
/** vfio_irq_info.flags: the vector count cannot change without disabling the index. */
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** SET_IRQS data type: none. */
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
/** SET_IRQS data type: one u8 boolean per vector. */
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
/** SET_IRQS data type: one s32 eventfd per vector. */
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
/** SET_IRQS action: mask. */
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
/** SET_IRQS action: unmask. */
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
/** SET_IRQS action: trigger. */
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
/** Mask of the data-type bits. */
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
/** Mask of the action bits. */
export const VFIO_IRQ_SET_ACTION_TYPE_MASK =
  VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

/* §1.11 VFIO-PCI indexes */

/** vfio-pci region index of BAR0. */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
/** vfio-pci region index of BAR1. */
export const VFIO_PCI_BAR1_REGION_INDEX = 1;
/** vfio-pci region index of BAR2. */
export const VFIO_PCI_BAR2_REGION_INDEX = 2;
/** vfio-pci region index of BAR3. */
export const VFIO_PCI_BAR3_REGION_INDEX = 3;
/** vfio-pci region index of BAR4. */
export const VFIO_PCI_BAR4_REGION_INDEX = 4;
/** vfio-pci region index of BAR5. */
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
/** vfio-pci region index of the expansion ROM. */
export const VFIO_PCI_ROM_REGION_INDEX = 6;
/** vfio-pci region index of config space. */
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
/** vfio-pci region index of the legacy VGA ranges. */
export const VFIO_PCI_VGA_REGION_INDEX = 8;
/** Number of fixed vfio-pci regions; indexes from here on are device-specific (TYPE cap). */
export const VFIO_PCI_NUM_REGIONS = 9;
/** vfio-pci IRQ index: INTx. */
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
/** vfio-pci IRQ index: MSI. */
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
/** vfio-pci IRQ index: MSI-X. */
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
/** vfio-pci IRQ index: AER error notification. */
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
/** vfio-pci IRQ index: device release request. */
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
/** Number of vfio-pci IRQ indexes. */
export const VFIO_PCI_NUM_IRQS = 5;
/** vfio-ccw region index of the I/O region. */
export const VFIO_CCW_CONFIG_REGION_INDEX = 0;
/** Number of fixed vfio-ccw regions. */
export const VFIO_CCW_NUM_REGIONS = 1;
/** vfio-ccw IRQ index: I/O. */
export const VFIO_CCW_IO_IRQ_INDEX = 0;
/** vfio-ccw IRQ index: CRW. */
export const VFIO_CCW_CRW_IRQ_INDEX = 1;
/** vfio-ccw IRQ index: request. */
export const VFIO_CCW_REQ_IRQ_INDEX = 2;
/** Number of vfio-ccw IRQ indexes. */
export const VFIO_CCW_NUM_IRQS = 3;
/** vfio-ap IRQ index: request. */
export const VFIO_AP_REQ_IRQ_INDEX = 0;
/** vfio-ap IRQ index: configuration change. */
export const VFIO_AP_CFG_CHG_IRQ_INDEX = 1;
/** Number of vfio-ap IRQ indexes. */
export const VFIO_AP_NUM_IRQS = 2;

/** vfio-pci places region `i` at fd offset `i << 40` (§1.11). */
export const VFIO_PCI_OFFSET_SHIFT = 40;
/** Mask of the offset within a vfio-pci region. */
export const VFIO_PCI_OFFSET_MASK = (1n << 40n) - 1n;

/** The fd offset of vfio-pci region `index` (`index << 40`, a bigint because it passes 2^53). */
export function vfioPciOffset(index: number): bigint {
  return BigInt(index) << BigInt(VFIO_PCI_OFFSET_SHIFT);
}

/** The vfio-pci region index an fd offset falls into (`offset >> 40`). */
export function vfioPciIndex(offset: bigint): number {
  return Number(BigInt.asUintN(64, offset) >> BigInt(VFIO_PCI_OFFSET_SHIFT));
}

/** The offset within its region of a vfio-pci fd offset (`offset & VFIO_PCI_OFFSET_MASK`). */
export function vfioPciRegionOffset(offset: bigint): bigint {
  return BigInt.asUintN(64, offset) & VFIO_PCI_OFFSET_MASK;
}

/* §1.6 Hot reset */

/** vfio_pci_dependent_device.devid: not opened but owned by this iommufd. */
export const VFIO_PCI_DEVID_OWNED = 0;
/** vfio_pci_dependent_device.devid: not owned by this iommufd (-1 as s32). */
export const VFIO_PCI_DEVID_NOT_OWNED = -1;
/** vfio_pci_hot_reset_info.flags: entries report devid, not group_id. */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0;
/** vfio_pci_hot_reset_info.flags: every affected device is owned by the caller's iommufd. */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1;

/* §1.4 GFX plane and ioeventfd */

/** QUERY_GFX_PLANE flag: probe for support only. */
export const VFIO_GFX_PLANE_TYPE_PROBE = 1 << 0;
/** QUERY_GFX_PLANE flag: dma-buf plane. */
export const VFIO_GFX_PLANE_TYPE_DMABUF = 1 << 1;
/** QUERY_GFX_PLANE flag: region plane. */
export const VFIO_GFX_PLANE_TYPE_REGION = 1 << 2;
/** IOEVENTFD flag: 8-bit write. */
export const VFIO_DEVICE_IOEVENTFD_8 = 1 << 0;
/** IOEVENTFD flag: 16-bit write. */
export const VFIO_DEVICE_IOEVENTFD_16 = 1 << 1;
/** IOEVENTFD flag: 32-bit write. */
export const VFIO_DEVICE_IOEVENTFD_32 = 1 << 2;
/** IOEVENTFD flag: 64-bit write. */
export const VFIO_DEVICE_IOEVENTFD_64 = 1 << 3;
/** Mask of the IOEVENTFD size flags. */
export const VFIO_DEVICE_IOEVENTFD_SIZE_MASK = 0xf;

/* §1.5 VFIO_DEVICE_FEATURE */

/** Low 16 bits of vfio_device_feature.flags: the feature index. */
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
/** vfio_device_feature.flags: get. */
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
/** vfio_device_feature.flags: set. */
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
/** vfio_device_feature.flags: probe (ask whether GET/SET is supported). */
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;

/** Feature 0: set the PF's VF token (16-byte UUID). */
export const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;
/** Feature 1: migration capabilities (`vfio_device_feature_migration`). */
export const VFIO_DEVICE_FEATURE_MIGRATION = 1;
/** Feature 2: migration device state (`vfio_device_feature_mig_state`). */
export const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2;
/** Feature 3: enter low power. */
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
/** Feature 4: enter low power with a wakeup eventfd. */
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4;
/** Feature 5: exit low power. */
export const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;
/** Feature 6: start device DMA dirty logging. */
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6;
/** Feature 7: stop device DMA dirty logging. */
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7;
/** Feature 8: report device DMA dirty bitmap. */
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8;
/** Feature 9: estimated STOP_COPY data size. */
export const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9;
/** Feature 10: bus master control (CDX). */
export const VFIO_DEVICE_FEATURE_BUS_MASTER = 10;
/** Feature 11: export BAR slices as a dma-buf (newer than 6.12). */
export const VFIO_DEVICE_FEATURE_DMA_BUF = 11;

/** MIGRATION feature flag: STOP_COPY supported (mandatory). */
export const VFIO_MIGRATION_STOP_COPY = 1 << 0;
/** MIGRATION feature flag: RUNNING_P2P supported. */
export const VFIO_MIGRATION_P2P = 1 << 1;
/** MIGRATION feature flag: PRE_COPY supported. */
export const VFIO_MIGRATION_PRE_COPY = 1 << 2;

/** BUS_MASTER op: clear bus master. */
export const VFIO_DEVICE_FEATURE_CLEAR_MASTER = 0;
/** BUS_MASTER op: set bus master. */
export const VFIO_DEVICE_FEATURE_SET_MASTER = 1;

/**
 * Migration v2 device states (`enum vfio_device_mig_state`, §5), as an enum-like object with Linux's values.
 */
export const VFIO_DEVICE_MIG_STATE = {
  ERROR: 0,
  STOP: 1,
  RUNNING: 2,
  STOP_COPY: 3,
  RESUMING: 4,
  RUNNING_P2P: 5,
  PRE_COPY: 6,
  PRE_COPY_P2P: 7,
} as const;

/** A migration v2 state name such as `'STOP_COPY'`. */
export type VfioDeviceMigStateName = keyof typeof VFIO_DEVICE_MIG_STATE;
/** A migration v2 state value (0..7). */
export type VfioDeviceMigState = (typeof VFIO_DEVICE_MIG_STATE)[VfioDeviceMigStateName];

/** `VFIO_DEVICE_STATE_ERROR`: the device failed a transition and must be reset. */
export const VFIO_DEVICE_STATE_ERROR = 0;
/** `VFIO_DEVICE_STATE_STOP`. */
export const VFIO_DEVICE_STATE_STOP = 1;
/** `VFIO_DEVICE_STATE_RUNNING`. */
export const VFIO_DEVICE_STATE_RUNNING = 2;
/** `VFIO_DEVICE_STATE_STOP_COPY`. */
export const VFIO_DEVICE_STATE_STOP_COPY = 3;
/** `VFIO_DEVICE_STATE_RESUMING`. */
export const VFIO_DEVICE_STATE_RESUMING = 4;
/** `VFIO_DEVICE_STATE_RUNNING_P2P`. */
export const VFIO_DEVICE_STATE_RUNNING_P2P = 5;
/** `VFIO_DEVICE_STATE_PRE_COPY`. */
export const VFIO_DEVICE_STATE_PRE_COPY = 6;
/** `VFIO_DEVICE_STATE_PRE_COPY_P2P`. */
export const VFIO_DEVICE_STATE_PRE_COPY_P2P = 7;

const MIG_STATE_NAMES = Object.keys(VFIO_DEVICE_MIG_STATE) as VfioDeviceMigStateName[];

/** The name of a migration v2 state value, or `undefined` outside 0..7. */
export function migStateName(state: number): VfioDeviceMigStateName | undefined {
  return Number.isInteger(state) ? MIG_STATE_NAMES[state] : undefined;
}

/* §1.10 cdev */

/** BIND_IOMMUFD flag: `token_uuid_ptr` carries the VF token (newer than 6.12). */
export const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;
/** ATTACH_IOMMUFD_PT flag: attach a PASID (`pasid` field valid). */
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;
/** DETACH_IOMMUFD_PT flag: detach a PASID (`pasid` field valid). */
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;

/* §1.7 Type1 */

/** vfio_iommu_type1_info.flags: `iova_pgsizes` is valid. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** vfio_iommu_type1_info.flags: `cap_offset` is valid. */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
/** Type1 info cap 1: valid IOVA ranges. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** Type1 info cap 2: dirty-tracking (migration) parameters. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
/** Type1 info cap 3: remaining DMA mapping slots. */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
/** MAP_DMA flag: the device may read. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** MAP_DMA flag: the device may write. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** MAP_DMA flag: update the vaddr of an invalidated mapping. */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
/** UNMAP_DMA flag: return the dirty bitmap of the range (`vfio_bitmap` in data[]). */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
/** UNMAP_DMA flag: unmap everything (iova and size must be 0). */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** UNMAP_DMA flag: invalidate vaddr, keep the mapping. */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;
/** DIRTY_PAGES flag: start tracking. */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
/** DIRTY_PAGES flag: stop tracking. */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
/** DIRTY_PAGES flag: get the bitmap (`vfio_iommu_type1_dirty_bitmap_get` in data[]). */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

/* §1.8 sPAPR */

/** vfio_iommu_spapr_tce_info.flags: dynamic DMA windows supported (`ddw` valid). */
export const VFIO_IOMMU_SPAPR_INFO_DDW = 1 << 0;
/** EEH op 0: disable. */
export const VFIO_EEH_PE_DISABLE = 0;
/** EEH op 1: enable. */
export const VFIO_EEH_PE_ENABLE = 1;
/** EEH op 2: unfreeze MMIO. */
export const VFIO_EEH_PE_UNFREEZE_IO = 2;
/** EEH op 3: unfreeze DMA. */
export const VFIO_EEH_PE_UNFREEZE_DMA = 3;
/** EEH op 4: get state (returns one of the `VFIO_EEH_PE_STATE_*`). */
export const VFIO_EEH_PE_GET_STATE = 4;
/** EEH state: normal. */
export const VFIO_EEH_PE_STATE_NORMAL = 0;
/** EEH state: in reset. */
export const VFIO_EEH_PE_STATE_RESET = 1;
/** EEH state: stopped. */
export const VFIO_EEH_PE_STATE_STOPPED = 2;
/** EEH state: DMA stopped. */
export const VFIO_EEH_PE_STATE_STOPPED_DMA = 4;
/** EEH state: unavailable. */
export const VFIO_EEH_PE_STATE_UNAVAIL = 5;
/** EEH op 5: deactivate reset. */
export const VFIO_EEH_PE_RESET_DEACTIVATE = 5;
/** EEH op 6: hot reset. */
export const VFIO_EEH_PE_RESET_HOT = 6;
/** EEH op 7: fundamental reset. */
export const VFIO_EEH_PE_RESET_FUNDAMENTAL = 7;
/** EEH op 8: configure. */
export const VFIO_EEH_PE_CONFIGURE = 8;
/** EEH op 9: inject an error (`vfio_eeh_pe_err`). */
export const VFIO_EEH_PE_INJECT_ERR = 9;
