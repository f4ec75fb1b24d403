/**
 * The seam between the VFIO core and an iommufd implementation (inventory §1.3, §1.9.4, §1.10, §2.2, §2.9). The core
 * imports no iommufd: a plugin (`@vfio-ts/iommufd-cdev`) registers an {@link IommufdProvider}, and the core reaches
 * iommufd contexts through it — from the fd given to VFIO_DEVICE_BIND_IOMMUFD or VFIO_GROUP_SET_CONTAINER — to bind
 * devices, attach them to IO address spaces and set up the VFIO compat IOAS.
 */
import type { IommuGroup } from '@vfio-ts/platform';
import type { CallContext } from './iommu-driver.js';
import type { OpenFile } from './file.js';

/**
 * An iommufd context (Linux struct iommufd_ctx) as the core sees it: an opaque object the provider hands out. The
 * provider returns the same object for every file of one context, so identity means "the same ictx".
 */
export type IommufdHandle = object;

/**
 * A device bound to an iommufd context (Linux: an iommufd_device for a physical device, an iommufd_access for an
 * emulated one). Every method throws `SysError` with Linux's errno and leaves state as it was on failure.
 */
export interface IommufdDeviceBinding {
  /** The object id user space sees (out_devid of BIND_IOMMUFD). */
  readonly devid: number;
  /**
   * Attaches to `ptId` (an IOAS or an HWPT id), replacing the current attachment when there is one
   * (iommufd_device_attach / iommufd_device_replace; iommufd_access_attach / iommufd_access_replace). Returns the
   * id actually attached: the HWPT (automatic one for an IOAS) for a physical device, the IOAS for an access.
   */
  attach(ptId: number): number;
  /** Detaches (the device then blocks DMA). Only called while attached. */
  detach(): void;
  /** Unbinds: detaches if attached, releases DMA ownership or destroys the access, frees the id. */
  unbind(): void;
  /** Emulated bindings: iommufd_access_pin_pages over `[iova, iova+length)`; one pfn per page. */
  pinPages?(iova: bigint, length: bigint, write: boolean): bigint[];
  /** Emulated bindings: undoes one pinPages of exactly that range. */
  unpinPages?(iova: bigint, length: bigint): void;
  /** Emulated bindings: iommufd_access_rw. */
  rw?(iova: bigint, buf: Uint8Array, write: boolean): void;
}

/** What a physical bind needs to know about the device. */
export interface IommufdPhysicalDevice {
  /** dev_name (a PCI BDF). */
  readonly name: string;
  /** The device's IOMMU group (DMA ownership is claimed on it for the context). */
  readonly iommuGroup: IommuGroup;
}

/** What an emulated bind (an access) needs to know about the device. */
export interface IommufdEmulatedDevice {
  readonly name: string;
  /** User space unmapped `[iova, iova+length)`: the driver must unpin what it pinned there (vfio_emulated_unmap). */
  dmaUnmap(iova: bigint, length: bigint): void;
}

/**
 * An iommufd implementation, registered with `api.registerIommufdProvider` (one per host). While none is registered
 * the host has no `/dev/vfio/devices` nodes (Linux: CONFIG_VFIO_DEVICE_CDEV depends on CONFIG_IOMMUFD) and
 * SET_CONTAINER accepts only VFIO containers.
 */
export interface IommufdProvider {
  /** A name for diagnostics. */
  readonly name: string;
  /** iommufd_ctx_from_file: the context behind `file`, or undefined when it is not an iommufd. */
  contextOfFile(file: OpenFile): IommufdHandle | undefined;
  /** vfio_iommufd_physical_bind → iommufd_device_bind: claims DMA ownership of the group (EPERM when not viable). */
  bindPhysical(ictx: IommufdHandle, device: IommufdPhysicalDevice): IommufdDeviceBinding;
  /** vfio_iommufd_emulated_bind → iommufd_access_create. */
  bindEmulated(ictx: IommufdHandle, device: IommufdEmulatedDevice): IommufdDeviceBinding;
  /** iommufd_vfio_compat_ioas_create: makes (or keeps) the compat IOAS; EINVAL in no-IOMMU compat mode. */
  compatIoasCreate(ictx: IommufdHandle, call: CallContext): void;
  /** iommufd_vfio_compat_set_no_iommu: EINVAL when a compat IOAS exists. */
  compatSetNoIommu(ictx: IommufdHandle): void;
  /** iommufd_vfio_compat_ioas_get_id: the compat IOAS id, or undefined (Linux: ENODEV). */
  compatIoasId(ictx: IommufdHandle): number | undefined;
  /** iommufd_ctx_has_group: some device of `group` is bound to the context (it owns the group's DMA). */
  hasGroup(ictx: IommufdHandle, group: IommuGroup): boolean;
}

/**
 * The iommufd half of a VFIO driver's ops (Linux vfio_device_ops bind_iommufd … pasid_detach_ioas, inventory §2.2).
 * A driver that sets `bindIommufd` must also set `unbindIommufd`, `attachIoas` and `detachIoas` (registration is
 * EINVAL otherwise). Drivers that set none get the stock behaviour for their group type: physical binding for
 * IOMMU-backed devices, an access for emulated ones (`api.iommufdStockOps(kind)` returns the same ops to wrap).
 * All are called under the device-set lock.
 */
export interface VfioIommufdOps<D = unknown> {
  /** First open through an iommufd (cdev BIND, or a group whose "container" is an iommufd): returns the devid. */
  bindIommufd?(device: D, ictx: IommufdHandle): number;
  /** Last close of an iommufd-opened device, or the unwind of a failed open. */
  unbindIommufd?(device: D): void;
  /** cdev ATTACH_IOMMUFD_PT, or the compat IOAS on the group path: attach or replace; returns the attached id. */
  attachIoas?(device: D, ptId: number): number;
  /** cdev DETACH_IOMMUFD_PT (a no-op when not attached). */
  detachIoas?(device: D): void;
  /** ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID; absent → EOPNOTSUPP. */
  pasidAttachIoas?(device: D, pasid: number, ptId: number): number;
  /** DETACH_IOMMUFD_PT with VFIO_DEVICE_DETACH_PASID; absent → EOPNOTSUPP. */
  pasidDetachIoas?(device: D, pasid: number): void;
}

/**
 * A device's relation to iommufd, for bus drivers (vfio-pci's GET_PCI_HOT_RESET_INFO / PCI_HOT_RESET cdev path,
 * inventory §1.6): see `api.deviceIommufdInfo`.
 */
export interface VfioDeviceIommufdInfo {
  /** vfio_device_cdev_opened: the device is open through its /dev/vfio/devices node (bound). */
  readonly cdevOpened: boolean;
  /** vfio_iommufd_device_ictx: the context a physical binding belongs to (undefined when not bound physically). */
  readonly ictx: IommufdHandle | undefined;
  /** The devid of that binding. */
  readonly devid: number | undefined;
  /** Whether the device is attached to an IOAS/HWPT (Linux iommufd_attached). */
  readonly attached: boolean;
}

/**
 * vfio_iommufd_get_dev_id as a value: the devid (> 0) when the device is bound to `ictx`; 'owned' when it is not but
 * `ictx` owns its IOMMU group (a group sibling is bound; Linux −ENOENT, reported as VFIO_PCI_DEVID_OWNED);
 * 'not-owned' otherwise (Linux −ENODEV, VFIO_PCI_DEVID_NOT_OWNED).
 */
export type IommufdDeviceId = number | 'owned' | 'not-owned';
