/**
 * ioctl request numbers of VFIO and iommufd, computed as Linux's `_IO()` computes them, and a table describing each
 * (inventory §1.0, §1.2–§1.10). VFIO numbers `n` are reused on different fd types (n=12..21), so lookups by request
 * return every match and the caller dispatches by fd type, as the kernel does.
 */

/** `_IOC_NONE`: no data direction (every VFIO/iommufd ioctl; the size travels in argsz/size). */
export const IOC_NONE = 0;
/** `_IOC_WRITE` (userland writes). */
export const IOC_WRITE = 1;
/** `_IOC_READ` (userland reads). */
export const IOC_READ = 2;

/** Linux `_IOC(dir, type, nr, size)` on x86_64/arm64: `dir << 30 | size << 16 | type << 8 | nr`, unsigned. */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | ((size & 0x3fff) << 16) | ((type & 0xff) << 8) | (nr & 0xff)) >>> 0;
}

/** Linux `_IO(type, nr)`. */
export function io(type: number, nr: number): number {
  return ioc(IOC_NONE, type, nr, 0);
}

/** `_IOC_NR(request)`: the low 8 bits. */
export function iocNr(request: number): number {
  return request & 0xff;
}

/** `_IOC_TYPE(request)`: bits 8..15. */
export function iocType(request: number): number {
  return (request >>> 8) & 0xff;
}

/** `VFIO_TYPE`: `';'`. */
export const VFIO_TYPE = 0x3b;
/** `VFIO_BASE`: 100. */
export const VFIO_BASE = 100;
/** `IOMMUFD_TYPE`: `';'` as well. */
export const IOMMUFD_TYPE = 0x3b;
/** `IOMMUFD_CMD_BASE`: 0x80. */
export const IOMMUFD_CMD_BASE = 0x80;

const vfio = (n: number): number => io(VFIO_TYPE, VFIO_BASE + n);
const iommufd = (k: number): number => io(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + k);

/* Container fd (§1.2) */
/** n=0 (0x3b64): returns VFIO_API_VERSION. */
export const VFIO_GET_API_VERSION = vfio(0);
/** n=1 (0x3b65): does the container/backend support an extension (arg by value). */
export const VFIO_CHECK_EXTENSION = vfio(1);
/** n=2 (0x3b66): select the IOMMU backend (arg by value). */
export const VFIO_SET_IOMMU = vfio(2);
/* Group fd (§1.3) */
/** n=3 (0x3b67): `vfio_group_status`. */
export const VFIO_GROUP_GET_STATUS = vfio(3);
/** n=4 (0x3b68): pointer to the s32 container (or iommufd) fd. */
export const VFIO_GROUP_SET_CONTAINER = vfio(4);
/** n=5 (0x3b69): no argument. */
export const VFIO_GROUP_UNSET_CONTAINER = vfio(5);
/** n=6 (0x3b6a): NUL-terminated device name; returns a device fd. */
export const VFIO_GROUP_GET_DEVICE_FD = vfio(6);
/* Device fd (§1.4) */
/** n=7 (0x3b6b): `vfio_device_info`. */
export const VFIO_DEVICE_GET_INFO = vfio(7);
/** n=8 (0x3b6c): `vfio_region_info`. */
export const VFIO_DEVICE_GET_REGION_INFO = vfio(8);
/** n=9 (0x3b6d): `vfio_irq_info`. */
export const VFIO_DEVICE_GET_IRQ_INFO = vfio(9);
/** n=10 (0x3b6e): `vfio_irq_set`. */
export const VFIO_DEVICE_SET_IRQS = vfio(10);
/** n=11 (0x3b6f): no argument. */
export const VFIO_DEVICE_RESET = vfio(11);
/** n=12 (0x3b70) on a device fd: `vfio_pci_hot_reset_info`. */
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = vfio(12);
/** n=13 (0x3b71) on a device fd: `vfio_pci_hot_reset`. */
export const VFIO_DEVICE_PCI_HOT_RESET = vfio(13);
/** n=14 (0x3b72) on a device fd: `vfio_device_gfx_plane_info`. */
export const VFIO_DEVICE_QUERY_GFX_PLANE = vfio(14);
/** n=15 (0x3b73) on a device fd: pointer to a u32 dmabuf_id; returns a dma-buf fd. */
export const VFIO_DEVICE_GET_GFX_DMABUF = vfio(15);
/** n=16 (0x3b74) on a device fd: `vfio_device_ioeventfd`. */
export const VFIO_DEVICE_IOEVENTFD = vfio(16);
/** n=17 (0x3b75) on a device fd: `vfio_device_feature`. */
export const VFIO_DEVICE_FEATURE = vfio(17);
/** n=18 (0x3b76) on a cdev fd: `vfio_device_bind_iommufd`. */
export const VFIO_DEVICE_BIND_IOMMUFD = vfio(18);
/** n=19 (0x3b77) on a cdev fd: `vfio_device_attach_iommufd_pt`. */
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = vfio(19);
/** n=20 (0x3b78) on a cdev fd: `vfio_device_detach_iommufd_pt`. */
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = vfio(20);
/** n=21 (0x3b79) on a migration data fd: `vfio_precopy_info`. */
export const VFIO_MIG_GET_PRECOPY_INFO = vfio(21);
/* Container fd, backend ioctls (§1.7, §1.8) */
/** n=12 (0x3b70) on a type1 container: `vfio_iommu_type1_info`. */
export const VFIO_IOMMU_GET_INFO = vfio(12);
/** n=12 (0x3b70) on a sPAPR container: `vfio_iommu_spapr_tce_info`. */
export const VFIO_IOMMU_SPAPR_TCE_GET_INFO = vfio(12);
/** n=13 (0x3b71) on a container: `vfio_iommu_type1_dma_map`. */
export const VFIO_IOMMU_MAP_DMA = vfio(13);
/** n=14 (0x3b72) on a container: `vfio_iommu_type1_dma_unmap`. */
export const VFIO_IOMMU_UNMAP_DMA = vfio(14);
/** n=15 (0x3b73) on a sPAPR v1 container: no argument. */
export const VFIO_IOMMU_ENABLE = vfio(15);
/** n=16 (0x3b74) on a sPAPR v1 container: no argument. */
export const VFIO_IOMMU_DISABLE = vfio(16);
/** n=17 (0x3b75) on a type1 v2 container: `vfio_iommu_type1_dirty_bitmap`. */
export const VFIO_IOMMU_DIRTY_PAGES = vfio(17);
/** n=17 (0x3b75) on a sPAPR v2 container: `vfio_iommu_spapr_register_memory`. */
export const VFIO_IOMMU_SPAPR_REGISTER_MEMORY = vfio(17);
/** n=18 (0x3b76) on a sPAPR v2 container: `vfio_iommu_spapr_register_memory`. */
export const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY = vfio(18);
/** n=19 (0x3b77) on a sPAPR v2 container: `vfio_iommu_spapr_tce_create`. */
export const VFIO_IOMMU_SPAPR_TCE_CREATE = vfio(19);
/** n=20 (0x3b78) on a sPAPR v2 container: `vfio_iommu_spapr_tce_remove`. */
export const VFIO_IOMMU_SPAPR_TCE_REMOVE = vfio(20);
/** n=21 (0x3b79) on a sPAPR container: `vfio_eeh_pe_op`. */
export const VFIO_EEH_PE_OP = vfio(21);
/* iommufd (§1.9) */
/** 0x3b80: `iommu_destroy`. */
export const IOMMU_DESTROY = iommufd(0x00);
/** 0x3b81: `iommu_ioas_alloc`. */
export const IOMMU_IOAS_ALLOC = iommufd(0x01);
/** 0x3b82: `iommu_ioas_allow_iovas`. */
export const IOMMU_IOAS_ALLOW_IOVAS = iommufd(0x02);
/** 0x3b83: `iommu_ioas_copy`. */
export const IOMMU_IOAS_COPY = iommufd(0x03);
/** 0x3b84: `iommu_ioas_iova_ranges`. */
export const IOMMU_IOAS_IOVA_RANGES = iommufd(0x04);
/** 0x3b85: `iommu_ioas_map`. */
export const IOMMU_IOAS_MAP = iommufd(0x05);
/** 0x3b86: `iommu_ioas_unmap`. */
export const IOMMU_IOAS_UNMAP = iommufd(0x06);
/** 0x3b87: `iommu_option`. */
export const IOMMU_OPTION = iommufd(0x07);
/** 0x3b88: `iommu_vfio_ioas`. */
export const IOMMU_VFIO_IOAS = iommufd(0x08);
/** 0x3b89: `iommu_hwpt_alloc` (6.6). */
export const IOMMU_HWPT_ALLOC = iommufd(0x09);
/** 0x3b8a: `iommu_hw_info` (6.6). */
export const IOMMU_GET_HW_INFO = iommufd(0x0a);
/** 0x3b8b: `iommu_hwpt_set_dirty_tracking` (6.7). */
export const IOMMU_HWPT_SET_DIRTY_TRACKING = iommufd(0x0b);
/** 0x3b8c: `iommu_hwpt_get_dirty_bitmap` (6.7). */
export const IOMMU_HWPT_GET_DIRTY_BITMAP = iommufd(0x0c);
/** 0x3b8d: `iommu_hwpt_invalidate` (6.8). */
export const IOMMU_HWPT_INVALIDATE = iommufd(0x0d);
/** 0x3b8e: `iommu_fault_alloc` (6.11). */
export const IOMMU_FAULT_QUEUE_ALLOC = iommufd(0x0e);
/** 0x3b8f: map a file range into an IOAS (6.13; not in 6.12). */
export const IOMMU_IOAS_MAP_FILE = iommufd(0x0f);
/** 0x3b90: allocate a vIOMMU (6.13; not in 6.12). */
export const IOMMU_VIOMMU_ALLOC = iommufd(0x10);
/** 0x3b91: allocate a vDEVICE (6.13; not in 6.12). */
export const IOMMU_VDEVICE_ALLOC = iommufd(0x11);
/** 0x3b92: move pinned-memory accounting to the calling process (6.14). */
export const IOMMU_IOAS_CHANGE_PROCESS = iommufd(0x12);
/** 0x3b93: allocate a vEVENTQ (6.15). */
export const IOMMU_VEVENTQ_ALLOC = iommufd(0x13);
/** 0x3b94: allocate a hardware queue (6.17). */
export const IOMMU_HW_QUEUE_ALLOC = iommufd(0x14);

/** Which kind of file an ioctl is issued on. */
export type IoctlFd = 'container' | 'group' | 'device' | 'migration' | 'iommufd' | 'cdev';

/**
 * How the ioctl's argument travels: nothing, an integer by value, a struct whose first u32 is argsz/size,
 * a NUL-terminated string, or a pointer to one integer.
 */
export type IoctlArgKind = 'none' | 'value' | 'struct' | 'string' | 'int-pointer';

/** One ioctl as described by its header (one entry per name). */
export interface IoctlInfo {
  /** The Linux macro name, e.g. `VFIO_IOMMU_MAP_DMA`. */
  readonly name: string;
  /** `_IOC_NR(request)`: `VFIO_BASE + n` for VFIO, `0x80 + k` for iommufd. */
  readonly nr: number;
  /** The full request number passed to ioctl(2). */
  readonly request: number;
  /** The fd type it is valid on; `device` ioctls are also valid on a bound cdev fd. */
  readonly fd: IoctlFd;
  /** The Linux struct name of the argument (a key of `STRUCTS`), or `null`. */
  readonly struct: string | null;
  /** How the argument travels. */
  readonly arg: IoctlArgKind;
  /** One line on what it does. */
  readonly summary: string;
  /** The first Linux release with it, when later than VFIO's 3.6 or iommufd's 6.2. */
  readonly since?: string;
}

function entry(
  name: string,
  request: number,
  fd: IoctlFd,
  struct: string | null,
  arg: IoctlArgKind,
  summary: string,
  since?: string,
): IoctlInfo {
  const info = { name, nr: iocNr(request), request, fd, struct, arg, summary };
  return Object.freeze(since === undefined ? info : { ...info, since });
}

/** Every VFIO and iommufd ioctl, in request order (ties keep device before container). */
export const IOCTLS: readonly IoctlInfo[] = Object.freeze([
  entry('VFIO_GET_API_VERSION', VFIO_GET_API_VERSION, 'container', null, 'none', 'Returns VFIO_API_VERSION (0).'),
  entry('VFIO_CHECK_EXTENSION', VFIO_CHECK_EXTENSION, 'container', null, 'value', 'Returns 1 if the extension id is supported, else 0.'),
  entry('VFIO_SET_IOMMU', VFIO_SET_IOMMU, 'container', null, 'value', 'Selects the IOMMU backend type for the container.'),
  entry('VFIO_GROUP_GET_STATUS', VFIO_GROUP_GET_STATUS, 'group', 'vfio_group_status', 'struct', 'Reports whether the group is viable and has a container.'),
  entry('VFIO_GROUP_SET_CONTAINER', VFIO_GROUP_SET_CONTAINER, 'group', null, 'int-pointer', 'Attaches the group to a container or iommufd fd.'),
  entry('VFIO_GROUP_UNSET_CONTAINER', VFIO_GROUP_UNSET_CONTAINER, 'group', null, 'none', 'Detaches the group from its container.'),
  entry('VFIO_GROUP_GET_DEVICE_FD', VFIO_GROUP_GET_DEVICE_FD, 'group', null, 'string', 'Opens a device of the group by name and returns its fd.'),
  entry('VFIO_DEVICE_GET_INFO', VFIO_DEVICE_GET_INFO, 'device', 'vfio_device_info', 'struct', 'Device flags, region and IRQ counts, capabilities.'),
  entry('VFIO_DEVICE_GET_REGION_INFO', VFIO_DEVICE_GET_REGION_INFO, 'device', 'vfio_region_info', 'struct', 'Size, fd offset, flags and capabilities of one region.'),
  entry('VFIO_DEVICE_GET_IRQ_INFO', VFIO_DEVICE_GET_IRQ_INFO, 'device', 'vfio_irq_info', 'struct', 'Flags and vector count of one IRQ index.'),
  entry('VFIO_DEVICE_SET_IRQS', VFIO_DEVICE_SET_IRQS, 'device', 'vfio_irq_set', 'struct', 'Binds, triggers, masks or unmasks interrupt vectors.'),
  entry('VFIO_DEVICE_RESET', VFIO_DEVICE_RESET, 'device', null, 'none', 'Function-level reset of the device.'),
  entry('VFIO_DEVICE_GET_PCI_HOT_RESET_INFO', VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, 'device', 'vfio_pci_hot_reset_info', 'struct', 'Lists the devices a bus/slot reset would affect.'),
  entry('VFIO_IOMMU_GET_INFO', VFIO_IOMMU_GET_INFO, 'container', 'vfio_iommu_type1_info', 'struct', 'Type1 page sizes and capabilities (IOVA ranges, migration, DMA slots).'),
  entry('VFIO_IOMMU_SPAPR_TCE_GET_INFO', VFIO_IOMMU_SPAPR_TCE_GET_INFO, 'container', 'vfio_iommu_spapr_tce_info', 'struct', 'sPAPR 32-bit DMA window and DDW parameters.'),
  entry('VFIO_DEVICE_PCI_HOT_RESET', VFIO_DEVICE_PCI_HOT_RESET, 'device', 'vfio_pci_hot_reset', 'struct', 'Resets the bus/slot given ownership proof of every affected device.'),
  entry('VFIO_IOMMU_MAP_DMA', VFIO_IOMMU_MAP_DMA, 'container', 'vfio_iommu_type1_dma_map', 'struct', 'Maps process memory at an IOVA for device DMA.'),
  entry('VFIO_DEVICE_QUERY_GFX_PLANE', VFIO_DEVICE_QUERY_GFX_PLANE, 'device', 'vfio_device_gfx_plane_info', 'struct', 'Describes a guest display plane (mdev vGPUs).'),
  entry('VFIO_IOMMU_UNMAP_DMA', VFIO_IOMMU_UNMAP_DMA, 'container', 'vfio_iommu_type1_dma_unmap', 'struct', 'Unmaps an IOVA range (optionally returning its dirty bitmap).'),
  entry('VFIO_DEVICE_GET_GFX_DMABUF', VFIO_DEVICE_GET_GFX_DMABUF, 'device', null, 'int-pointer', 'Returns a dma-buf fd for a plane reported by QUERY_GFX_PLANE.'),
  entry('VFIO_IOMMU_ENABLE', VFIO_IOMMU_ENABLE, 'container', null, 'none', 'sPAPR v1: enables the container (accounts locked memory).'),
  entry('VFIO_DEVICE_IOEVENTFD', VFIO_DEVICE_IOEVENTFD, 'device', 'vfio_device_ioeventfd', 'struct', 'Performs a fixed write to a region when an eventfd fires.'),
  entry('VFIO_IOMMU_DISABLE', VFIO_IOMMU_DISABLE, 'container', null, 'none', 'sPAPR v1: disables the container.'),
  entry('VFIO_DEVICE_FEATURE', VFIO_DEVICE_FEATURE, 'device', 'vfio_device_feature', 'struct', 'Gets, sets or probes a device feature (migration, low power, DMA logging...).'),
  entry('VFIO_IOMMU_DIRTY_PAGES', VFIO_IOMMU_DIRTY_PAGES, 'container', 'vfio_iommu_type1_dirty_bitmap', 'struct', 'Type1 v2: starts/stops dirty tracking or reads the bitmap.'),
  entry('VFIO_IOMMU_SPAPR_REGISTER_MEMORY', VFIO_IOMMU_SPAPR_REGISTER_MEMORY, 'container', 'vfio_iommu_spapr_register_memory', 'struct', 'sPAPR v2: pre-registers (pins) process memory.'),
  entry('VFIO_DEVICE_BIND_IOMMUFD', VFIO_DEVICE_BIND_IOMMUFD, 'cdev', 'vfio_device_bind_iommufd', 'struct', 'Binds a cdev-opened device to an iommufd and opens it.', '6.6'),
  entry('VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY', VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, 'container', 'vfio_iommu_spapr_register_memory', 'struct', 'sPAPR v2: releases pre-registered memory.'),
  entry('VFIO_DEVICE_ATTACH_IOMMUFD_PT', VFIO_DEVICE_ATTACH_IOMMUFD_PT, 'cdev', 'vfio_device_attach_iommufd_pt', 'struct', 'Attaches (or replaces) the IOAS/HWPT of a bound device.', '6.6'),
  entry('VFIO_IOMMU_SPAPR_TCE_CREATE', VFIO_IOMMU_SPAPR_TCE_CREATE, 'container', 'vfio_iommu_spapr_tce_create', 'struct', 'sPAPR v2: creates an additional DMA window.'),
  entry('VFIO_DEVICE_DETACH_IOMMUFD_PT', VFIO_DEVICE_DETACH_IOMMUFD_PT, 'cdev', 'vfio_device_detach_iommufd_pt', 'struct', 'Detaches a bound device (or PASID) from its IOAS/HWPT.', '6.6'),
  entry('VFIO_IOMMU_SPAPR_TCE_REMOVE', VFIO_IOMMU_SPAPR_TCE_REMOVE, 'container', 'vfio_iommu_spapr_tce_remove', 'struct', 'sPAPR v2: removes a DMA window.'),
  entry('VFIO_MIG_GET_PRECOPY_INFO', VFIO_MIG_GET_PRECOPY_INFO, 'migration', 'vfio_precopy_info', 'struct', 'PRE_COPY: initial and dirty bytes still to be read.', '6.2'),
  entry('VFIO_EEH_PE_OP', VFIO_EEH_PE_OP, 'container', 'vfio_eeh_pe_op', 'struct', 'sPAPR: EEH operation on every PE of the container.'),
  entry('IOMMU_DESTROY', IOMMU_DESTROY, 'iommufd', 'iommu_destroy', 'struct', 'Destroys an object by id.'),
  entry('IOMMU_IOAS_ALLOC', IOMMU_IOAS_ALLOC, 'iommufd', 'iommu_ioas_alloc', 'struct', 'Allocates an empty I/O address space.'),
  entry('IOMMU_IOAS_ALLOW_IOVAS', IOMMU_IOAS_ALLOW_IOVAS, 'iommufd', 'iommu_ioas_allow_iovas', 'struct', 'Replaces the list of IOVA ranges that must stay usable.'),
  entry('IOMMU_IOAS_COPY', IOMMU_IOAS_COPY, 'iommufd', 'iommu_ioas_copy', 'struct', 'Maps an existing mapping of one IOAS into another.'),
  entry('IOMMU_IOAS_IOVA_RANGES', IOMMU_IOAS_IOVA_RANGES, 'iommufd', 'iommu_ioas_iova_ranges', 'struct', 'Reads the usable IOVA ranges and alignment of an IOAS.'),
  entry('IOMMU_IOAS_MAP', IOMMU_IOAS_MAP, 'iommufd', 'iommu_ioas_map', 'struct', 'Maps process memory into an IOAS.'),
  entry('IOMMU_IOAS_UNMAP', IOMMU_IOAS_UNMAP, 'iommufd', 'iommu_ioas_unmap', 'struct', 'Unmaps whole areas of an IOAS.'),
  entry('IOMMU_OPTION', IOMMU_OPTION, 'iommufd', 'iommu_option', 'struct', 'Gets or sets an option (RLIMIT mode, huge pages).'),
  entry('IOMMU_VFIO_IOAS', IOMMU_VFIO_IOAS, 'iommufd', 'iommu_vfio_ioas', 'struct', 'Gets, sets or clears the IOAS used by the VFIO compat layer.'),
  entry('IOMMU_HWPT_ALLOC', IOMMU_HWPT_ALLOC, 'iommufd', 'iommu_hwpt_alloc', 'struct', 'Allocates a hardware page table (paging or nested).', '6.6'),
  entry('IOMMU_GET_HW_INFO', IOMMU_GET_HW_INFO, 'iommufd', 'iommu_hw_info', 'struct', 'Reads the IOMMU hardware info of a bound device.', '6.6'),
  entry('IOMMU_HWPT_SET_DIRTY_TRACKING', IOMMU_HWPT_SET_DIRTY_TRACKING, 'iommufd', 'iommu_hwpt_set_dirty_tracking', 'struct', 'Enables or disables HW dirty tracking of a HWPT.', '6.7'),
  entry('IOMMU_HWPT_GET_DIRTY_BITMAP', IOMMU_HWPT_GET_DIRTY_BITMAP, 'iommufd', 'iommu_hwpt_get_dirty_bitmap', 'struct', 'Reads (and clears) the dirty bitmap of an IOVA range.', '6.7'),
  entry('IOMMU_HWPT_INVALIDATE', IOMMU_HWPT_INVALIDATE, 'iommufd', 'iommu_hwpt_invalidate', 'struct', 'Invalidates caches of a user-managed (nested) HWPT.', '6.8'),
  entry('IOMMU_FAULT_QUEUE_ALLOC', IOMMU_FAULT_QUEUE_ALLOC, 'iommufd', 'iommu_fault_alloc', 'struct', 'Allocates an I/O page-fault queue and its fd.', '6.11'),
  entry('IOMMU_IOAS_MAP_FILE', IOMMU_IOAS_MAP_FILE, 'iommufd', null, 'struct', 'Maps a range of a memfd into an IOAS.', '6.13'),
  entry('IOMMU_VIOMMU_ALLOC', IOMMU_VIOMMU_ALLOC, 'iommufd', null, 'struct', 'Allocates a virtual IOMMU object.', '6.13'),
  entry('IOMMU_VDEVICE_ALLOC', IOMMU_VDEVICE_ALLOC, 'iommufd', null, 'struct', 'Allocates a virtual device of a vIOMMU.', '6.13'),
  entry('IOMMU_IOAS_CHANGE_PROCESS', IOMMU_IOAS_CHANGE_PROCESS, 'iommufd', null, 'struct', 'Moves pinned-page accounting to the calling process.', '6.14'),
  entry('IOMMU_VEVENTQ_ALLOC', IOMMU_VEVENTQ_ALLOC, 'iommufd', null, 'struct', 'Allocates a vIOMMU event queue.', '6.15'),
  entry('IOMMU_HW_QUEUE_ALLOC', IOMMU_HW_QUEUE_ALLOC, 'iommufd', null, 'struct', 'Allocates a hardware-accelerated vIOMMU queue.', '6.17'),
]);

// Built once at load and never changed afterwards (lookup indexes, not state).
const BY_NAME: ReadonlyMap<string, IoctlInfo> = new Map(IOCTLS.map((i) => [i.name, i]));
const BY_REQUEST: ReadonlyMap<number, readonly IoctlInfo[]> = new Map(
  [...new Set(IOCTLS.map((i) => i.request))].map((r) => [r, Object.freeze(IOCTLS.filter((i) => i.request === r))]),
);

/** The ioctl with this Linux name (e.g. `'VFIO_IOMMU_MAP_DMA'`), or `undefined`. */
export function findIoctl(name: string): IoctlInfo | undefined {
  return BY_NAME.get(name);
}

/** Every ioctl with this request number (several for VFIO n=12..21: one per fd type/backend); may be empty. */
export function ioctlsByRequest(request: number): readonly IoctlInfo[] {
  return BY_REQUEST.get(request >>> 0) ?? [];
}
