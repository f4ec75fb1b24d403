/**
 * The platform a VFIO host runs on: everything the core needs from "the hardware and the rest of the kernel".
 */
import type { EventFdContext } from './eventfd.js';
import type { IommuGroup, IommuHardware } from './iommu.js';
import type { AddressSpace, PhysicalMemory } from './memory.js';
import type { Clock, PciBus } from './pci.js';
import type { VfsDir, VfsNode } from './vfs.js';

export interface Platform {
  readonly memory: PhysicalMemory;
  /** A new, empty address space (a process's mm). */
  createAddressSpace(): AddressSpace;
  /** The IOMMU, absent when the host has none (then PCI devices have no IOMMU group). */
  readonly iommu: IommuHardware | undefined;
  /** IOMMU groups by number. */
  iommuGroup(id: number): IommuGroup | undefined;
  iommuGroups(): readonly IommuGroup[];
  /**
   * Creates a software IOMMU group for a device that has none (Linux iommu_group_alloc for emulated and
   * no-IOMMU VFIO groups); it has no hardware and its number is the lowest free one. When `device` names a PCI
   * function without a group (iommu_group_add_device), the function joins it and sysfs shows the link.
   */
  allocSoftGroup(name: string, device?: string): IommuGroup;
  /**
   * Drops a software group made by {@link allocSoftGroup} (iommu_group_remove_device + iommu_group_put): its
   * device leaves it and its number becomes free again. Optional; hardware groups are never released.
   */
  releaseSoftGroup?(group: IommuGroup): void;
  readonly pci: PciBus;
  /** A new eventfd kernel object with `initval`. */
  createEventFd(initval: bigint, semaphore: boolean): EventFdContext;
  readonly clock: Clock;
  /** The platform's part of the file system: /sys/bus/pci, /sys/kernel/iommu_groups and the like. */
  readonly sysfs: VfsDir;
  /**
   * Adds `node` as entry `name` of the platform directory at `dirPath` (e.g. add `vfio-dev` under
   * /sys/bus/pci/devices/0000:00:03.0); returns the undo. Upper layers use it for their sysfs nodes.
   */
  addSysfsNode(dirPath: string, name: string, node: VfsNode): () => void;
  /** Kernel log (dmesg). */
  log(text: string): void;
  logEntries(): readonly { time: number; text: string }[];
}
