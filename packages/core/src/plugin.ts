/**
 * Host plugins: how backend and driver packages attach themselves to a host (`createHost({ plugins })`).
 * A plugin is data plus a `setup` that registers what it brings; each registration returns its undo.
 */
import type { PciDriver, Platform, VfsNode } from '@vfio-ts/platform';
import type { DeviceSet, VfioDevice, VfioDeviceOptions } from './device.js';
import type { DeviceFeatureHandler } from './feature.js';
import type { FileOps, OpenFile, SyscallContext } from './file.js';
import type { VfioIommuDriverOps } from './iommu-driver.js';
import type { IommufdDeviceId, IommufdHandle, IommufdProvider, VfioDeviceIommufdInfo, VfioIommufdOps } from './iommufd.js';
import type { RegisterGroupDeviceOptions } from './vfio.js';

/** A module parameter (mirrored at /sys/module/<module>/parameters/<name>). */
export interface ModuleParamSpec {
  /** Default value as sysfs text ('65535', 'N'). */
  readonly default: string;
  /** sysfs mode, e.g. 0o644 (writable by root at run time) or 0o444. */
  readonly mode: number;
  /** Validates and normalizes a new value (throw SysError EINVAL to refuse). */
  parse?(text: string): string;
  readonly description?: string;
}

/**
 * What a plugin's `setup` receives. The core helper extends this interface with more registration points
 * (PCI drivers, VFIO devices, feature handlers...); members listed here are stable.
 */
export interface HostPluginApiBase {
  /** Registers a container IOMMU backend (vfio_register_iommu_driver); EINVAL if the name is taken. */
  registerIommuDriver<D>(ops: VfioIommuDriverOps<D>): () => void;
  /** Declares a module parameter; its value is read with `param(module, name)`. */
  declareParam(module: string, name: string, spec: ModuleParamSpec): void;
  param(module: string, name: string): string;
  log(text: string): void;
}

/** A character device node a plugin adds under /dev (e.g. /dev/iommu, /dev/vfio/devices/vfioN). */
export interface DevNodeSpec {
  /** Permission bits; default 0o600. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Opens the node (after the permission check) and returns the new file's operations. */
  open(flags: number, call: SyscallContext): FileOps;
}

/**
 * What a plugin's `setup` receives: the stable base plus the registration points drivers need. Registrations
 * return their undo.
 */
export interface HostPluginApi extends HostPluginApiBase {
  /** The platform the host runs on. */
  readonly platform: Platform;
  /** Registers a PCI driver with the platform's bus (pci_register_driver); probes matching devices. */
  registerPciDriver(driver: PciDriver): () => Promise<void>;
  /** vfio_alloc_device. */
  allocDevice<T>(options: VfioDeviceOptions<T>): VfioDevice<T>;
  /** vfio_register_group_dev: a device doing DMA behind an IOMMU group (or a no-IOMMU group when enabled). */
  registerGroupDevice<T>(device: VfioDevice<T>, options?: RegisterGroupDeviceOptions): void;
  /** vfio_register_emulated_iommu_dev: a device whose DMA goes through pinPages/dmaRw only. */
  registerEmulatedDevice<T>(device: VfioDevice<T>): void;
  /** The device set registered under `setId`, if any. */
  deviceSet(setId: unknown): DeviceSet | undefined;
  /** Registers the handler of a VFIO_DEVICE_FEATURE index (migration, DMA logging...); EEXIST if taken. */
  registerFeatureHandler(index: number, handler: DeviceFeatureHandler): () => void;
  /** Adds a char device node under /dev, /dev/vfio or /dev/vfio/devices (EEXIST if the name is taken). */
  registerDevNode(path: string, node: DevNodeSpec): () => void;
  /** Adds a sysfs node under a platform directory. */
  addSysfsNode(dirPath: string, name: string, node: VfsNode): () => void;
  /** vfio_file_is_group. */
  fileIsGroup(file: OpenFile): boolean;
  /** vfio_file_has_dev: the file is `device`'s group or a device file of it. */
  fileHasDevice<T>(file: OpenFile, device: VfioDevice<T>): boolean;
  /** vfio_file_enforced_coherent (undefined for a file that is neither a group nor a device). */
  fileEnforcedCoherent(file: OpenFile): boolean | undefined;
  /** vfio_file_set_kvm. */
  fileSetKvm(file: OpenFile, kvm: unknown): void;
  /** The device behind a device file. */
  deviceOfFile(file: OpenFile): VfioDevice | undefined;
  /**
   * Registers the host's iommufd implementation (one per host; EEXIST otherwise). From then on every registered
   * device has a `/dev/vfio/devices/vfioN` node, VFIO_DEVICE_BIND_IOMMUFD accepts the provider's files and
   * VFIO_GROUP_SET_CONTAINER accepts them in place of a container (inventory §1.3, §1.10).
   */
  registerIommufdProvider(provider: IommufdProvider): () => void;
  /**
   * The stock iommufd ops (vfio_iommufd_physical_* for IOMMU-backed devices, vfio_iommufd_emulated_* for emulated
   * ones): what a driver that sets none of the iommufd ops gets, for drivers that wrap them.
   */
  iommufdStockOps(kind: 'physical' | 'emulated'): Required<Pick<VfioIommufdOps<VfioDevice>, 'bindIommufd' | 'unbindIommufd' | 'attachIoas' | 'detachIoas'>>;
  /** The iommufd context behind `file` (iommufd_ctx_from_file), undefined when it is none. */
  iommufdOfFile(file: OpenFile): IommufdHandle | undefined;
  /**
   * A device's relation to iommufd — cdev-opened or not, the context and devid of its physical binding, attached
   * or not — for GET_PCI_HOT_RESET_INFO / PCI_HOT_RESET on cdev-opened devices (inventory §1.6).
   */
  deviceIommufdInfo<T>(device: VfioDevice<T>): VfioDeviceIommufdInfo;
  /**
   * vfio_iommufd_get_dev_id: the devid when `device` is bound to `ictx`, 'owned' when `ictx` owns its IOMMU group
   * through a sibling (report VFIO_PCI_DEVID_OWNED), 'not-owned' otherwise (VFIO_PCI_DEVID_NOT_OWNED).
   */
  iommufdDeviceId<T>(device: VfioDevice<T>, ictx: IommufdHandle): IommufdDeviceId;
}

/** A plugin: a backend, a bus driver or anything else that attaches itself to a host. */
export interface HostPlugin {
  readonly name: string;
  setup(api: HostPluginApi): void;
}
