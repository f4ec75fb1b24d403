/**
 * The mdev driver contract (inventory §6, Linux include/linux/mdev.h): what a vendor driver hands to
 * `registerMdevParent` — the parent device, the types it offers and the driver that binds to created devices.
 */
import type { MdevDevice, MdevType } from './mdev.js';

/** One mediated-device type a parent offers (Linux struct mdev_type, the driver-set part). */
export interface MdevTypeSpec<TT = unknown> {
  /** The type's sysfs name; its directory is `<parent driver>-<sysfsName>` (e.g. `mtty-2`). */
  readonly sysfsName: string;
  /** The `name` attribute; the sysfs name when absent. */
  readonly prettyName?: string;
  /** Driver data of the type (ports, resolution...), handed back as `type.data`. */
  readonly data: TT;
}

/**
 * A sysfs attribute a driver adds: text shown on read. (Declared through a method so drivers typed with their own
 * type data stay assignable to the bus's erased view.)
 */
export type MdevShow<X> = { show(subject: X): string }['show'];

/**
 * The driver bound to every device created on a parent (Linux struct mdev_driver). `probe` runs inside the
 * `create` write and usually registers an emulated-IOMMU VFIO device (`mdev.registerEmulatedDevice`); `remove`
 * runs on removal and waits until that device was released by its users.
 */
export interface MdevDriver<TT = unknown> {
  /** Driver name: `/sys/bus/mdev/drivers/<name>` and the device's `driver` link. */
  readonly name: string;
  /** The `device_api` attribute, e.g. `vfio-pci` (VFIO_DEVICE_API_PCI_STRING). */
  readonly deviceApi: string;
  /**
   * Instances the parent can hold in total, for drivers without `getAvailable`: the parent counter starts
   * here, goes down on create and up on release; create with none left is EUSERS.
   */
  readonly maxInstances?: number;
  /** `available_instances` of a type, when the driver accounts itself (then create never answers EUSERS). */
  getAvailable?(type: MdevType<TT>): number;
  /** The `description` attribute text (with its newline); the attribute exists only when this is given. */
  showDescription?(type: MdevType<TT>): string;
  /** Binds the driver to a new device; throw a SysError to fail the create with its errno. */
  probe(mdev: MdevDevice<TT>): void;
  /** Unbinds the driver; may wait (for the VFIO device's users to close it). */
  remove(mdev: MdevDevice<TT>): void | Promise<void>;
  /** Extra read-only attributes of every type directory (Linux mdev_driver.types_attrs). */
  readonly typeAttrs?: Readonly<Record<string, MdevShow<MdevType<TT>>>>;
  /**
   * Attribute groups of every device (Linux driver dev_groups): group name → attributes; the group `''` puts its
   * attributes at the top of the device directory, any other name makes a subdirectory (mtty's `vendor/`).
   */
  readonly deviceAttrs?: Readonly<Record<string, Readonly<Record<string, MdevShow<MdevDevice<TT>>>>>>;
}

/** A PCI function as the parent (a GPU offering vGPUs): its sysfs directory holds `mdev_supported_types/`. */
export interface MdevPciParent {
  /** The function's BDF, e.g. `0000:00:03.0`. */
  readonly pci: string;
  /**
   * The prefix of type directories (dev_driver_string of the parent): by default the name of the host driver
   * the function is bound to, or `pci` when it is bound to none.
   */
  readonly driverName?: string;
}

/**
 * A virtual class device as the parent, like the sample drivers' `/sys/devices/virtual/mtty/mtty`; it also
 * appears as `/sys/class/<class>/<name>`. Type directories are prefixed with the class name.
 */
export interface MdevVirtualParent {
  readonly virtual: { readonly class: string; readonly name: string };
}

/** Where a parent lives. */
export type MdevParentDevice = MdevPciParent | MdevVirtualParent;

/** Options of `registerMdevParent` (mdev_register_parent). */
export interface MdevParentOptions<TT = unknown> {
  readonly parent: MdevParentDevice;
  readonly driver: MdevDriver<TT>;
  /** The types, in the order sysfs lists them (at least one). */
  readonly types: readonly MdevTypeSpec<TT>[];
}
