/**
 * VFIO devices as drivers see them (inventory §2.1, §2.2, §2.6, §2.7): the driver-ops contract, the device object
 * with its life cycle (alloc → register → unregister → put) and device sets.
 */
import type { Clock, IommuGroup, MmioHandler } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import type { MmapRequest, SyscallContext } from './file.js';
import type { IoctlArg, VfioGroupType } from './iommu-driver.js';
import type { VfioIommufdOps } from './iommufd.js';
import { AsyncLock } from './lock.js';

/**
 * A VFIO driver's operations (Linux struct vfio_device_ops, inventory §2.2). Every member is optional; the core
 * answers for an absent one as Linux does (EINVAL for read/write/ioctl/mmap/device features). The iommufd members
 * (`bindIommufd` … `pasidDetachIoas`) come from {@link VfioIommufdOps}.
 */
export interface VfioDeviceOps<T = unknown> extends VfioIommufdOps<VfioDevice<T>> {
  /** Driver name (vfio-pci uses it as the driver_override of captured VFs). */
  readonly name?: string;
  /** Called inside `allocDevice`; throw to abort the allocation. */
  init?(device: VfioDevice<T>): void;
  /** Called on the last `put()`, after the device left its set and freed its index. */
  release?(device: VfioDevice<T>): void;
  /**
   * First open of the device (open count 0 → 1), under the device-set lock, after the IOMMU is in use. May be
   * async (then the set lock is held until it settles). Throw to refuse the open; nothing stays changed.
   */
  openDevice?(device: VfioDevice<T>): void | Promise<void>;
  /**
   * Last close (1 → 0), under the device-set lock, before the IOMMU is released: stop DMA, free interrupts. DMA
   * must be stopped when it returns: the core releases the IOMMU right after it (close(2) is synchronous in Linux).
   * May return a Promise for deferred cleanup; the set lock stays held until it settles.
   */
  closeDevice?(device: VfioDevice<T>): void | Promise<void>;
  /** read(2)/pread(2) on the device fd at `offset` (regions live at `index << 40` for vfio-pci). */
  read?(device: VfioDevice<T>, length: number, offset: bigint, call: SyscallContext): Uint8Array;
  /**
   * pread(2) into the caller's buffer (`Process.preadInto`): fill `buf` from `offset` and return the bytes read,
   * with the same errno rules as `read`. Optional: without it the core calls `read` and copies.
   */
  readInto?(device: VfioDevice<T>, buf: Uint8Array, offset: bigint, call: SyscallContext): number;
  /** write(2)/pwrite(2) on the device fd; returns bytes written. */
  write?(device: VfioDevice<T>, data: Uint8Array, offset: bigint, call: SyscallContext): number;
  /**
   * Runtime-PM bracketing of every device ioctl (pm_runtime_resume_and_get / pm_runtime_put): `pmRuntimeGet`
   * resumes the device (throw to fail the ioctl with EIO), `pmRuntimePut` drops the reference afterwards.
   */
  pmRuntimeGet?(device: VfioDevice<T>): void;
  pmRuntimePut?(device: VfioDevice<T>): void;
  /** Every device ioctl the core does not handle itself (all but VFIO_DEVICE_FEATURE). */
  ioctl?(device: VfioDevice<T>, cmd: number, arg: IoctlArg, call: SyscallContext): number;
  /** mmap(2) of a region: returns the MMIO handler that serves loads and stores of the mapping. */
  mmap?(device: VfioDevice<T>, req: MmapRequest, call: SyscallContext): MmioHandler;
  /**
   * The first access to a mapping after {@link VfioDevice.zapMappings} (Linux's mmap fault handler): return the
   * handler that serves it from now on, or throw (EFAULT stands for SIGBUS, e.g. while memory decoding is off).
   * Absent: every access to a zapped mapping faults.
   */
  mmapFault?(device: VfioDevice<T>, req: MmapRequest): MmioHandler;
  /** Asked to release the device while unregistering: immediately, then every 10 s with an increasing count. */
  request?(device: VfioDevice<T>, count: number): void;
  /**
   * GET_DEVICE_FD name lookup: `true` to claim the string, `false` for no match (the core then compares the name);
   * throw a SysError to abort the lookup with its errno (e.g. EACCES for a wrong VF token).
   */
  match?(device: VfioDevice<T>, name: string): boolean;
  /** An IOVA range holding pages this device pinned is being unmapped: unpin them all before returning. */
  dmaUnmap?(device: VfioDevice<T>, iova: bigint, length: bigint): void;
  /**
   * VFIO_DEVICE_FEATURE for an index no registered feature handler serves. `data` is the user's buffer after
   * the 8-byte header (read and written in place); `dataSize` is argsz − 8. Use {@link checkFeature}.
   */
  deviceFeature?(device: VfioDevice<T>, flags: number, data: Uint8Array, dataSize: number, call: SyscallContext): number;
}

interface DeviceMapping {
  readonly req: MmapRequest;
  handler: MmioHandler;
  zapped: boolean;
}

/** Where a device is in its life cycle. */
export type VfioDeviceState = 'allocated' | 'registered' | 'unregistering' | 'unregistered' | 'released';

/** The internal services a device needs from its host's VFIO core. */
export interface DeviceCoreHooks {
  readonly clock: Clock;
  log(text: string): void;
  releaseDevice(device: VfioDevice): void;
  unregisterDevice(device: VfioDevice): void;
  pinPages(device: VfioDevice, iova: bigint, npage: number, prot: number): bigint[];
  unpinPages(device: VfioDevice, iova: bigint, npage: number): void;
  dmaRw(device: VfioDevice, iova: bigint, buf: Uint8Array, write: boolean): void;
  assignDeviceSet(device: VfioDevice, setId: unknown): void;
}

/** The group a device belongs to, as a device sees it. */
export interface VfioDeviceGroupInfo {
  readonly id: number;
  readonly type: VfioGroupType;
  readonly iommuGroup: IommuGroup | undefined;
}

/**
 * A set of devices opened and closed under one lock (Linux struct vfio_device_set, §2.6): devices that a bus or
 * slot reset would hit together share a set so the driver can decide on reset at last close.
 */
export class DeviceSet {
  /** The lock held around open_device/close_device of every member (and by drivers around resets). */
  readonly lock = new AsyncLock();
  readonly #devices = new Set<VfioDevice>();
  constructor(
    /** The key drivers assigned (a bus, a slot, or the device itself). */
    readonly id: unknown,
  ) {}

  /** Members, in registration order. */
  get devices(): readonly VfioDevice[] {
    return [...this.#devices];
  }

  /** Σ open count over members (vfio_device_set_open_count). */
  get openCount(): number {
    let n = 0;
    for (const d of this.#devices) n += d.openCount;
    return n;
  }

  /** The member whose name is `name`, if any (vfio_find_device_in_devset). */
  find(name: string): VfioDevice | undefined {
    for (const d of this.#devices) if (d.name === name) return d;
    return undefined;
  }

  /** @internal */
  add(d: VfioDevice): void {
    this.#devices.add(d);
  }

  /** @internal */
  remove(d: VfioDevice): boolean {
    this.#devices.delete(d);
    return this.#devices.size === 0;
  }

  /** Number of members. */
  get size(): number {
    return this.#devices.size;
  }
}

/** Options of `allocDevice`. */
export interface VfioDeviceOptions<T> {
  /** The device name (dev_name): a PCI BDF for PCI devices, a UUID for mdevs. */
  readonly name: string;
  readonly ops: VfioDeviceOps<T>;
  /** Driver-private data (the rest of the driver's struct, whose first member is the vfio_device). */
  readonly data: T;
  /** Linux device->mig_ops (§2.3): read by the migration feature handlers; the core does not look inside. */
  readonly migrationOps?: unknown;
  /** Linux device->log_ops (§2.4): device DMA dirty logging, for the DMA-logging feature handlers. */
  readonly logOps?: unknown;
  /** Linux device->migration_flags (VFIO_MIGRATION_* bits). */
  readonly migrationFlags?: number;
}

/**
 * A VFIO device (Linux struct vfio_device). Allocated by `allocDevice`, registered with
 * `registerGroupDevice` / `registerEmulatedDevice`, removed with `unregister()` and freed with `put()`.
 */
export class VfioDevice<T = unknown> {
  /** The driver's private data. */
  readonly data: T;
  /** Linux device->mig_ops (§2.3), for the migration feature handlers (set before registration). */
  migrationOps: unknown = undefined;
  /** Linux device->log_ops (§2.4), for the DMA-logging feature handlers (set before registration). */
  logOps: unknown = undefined;
  /** Linux device->migration_flags (VFIO_MIGRATION_* bits). */
  migrationFlags = 0;
  /** Open count (number of opens of the device through any fd; 0 when closed). */
  openCount = 0;
  /**
   * The KVM instance of the group at first open (Linux device->kvm): valid from first open to last close only;
   * a driver that needs it longer takes its own reference in openDevice.
   */
  kvm: unknown = undefined;
  /** @internal registration references: 1 while registered + 1 per open device file. */
  registrationRefs = 0;
  /** Life-cycle state. */
  state: VfioDeviceState = 'allocated';
  /** @internal the device set (a singleton keyed by the device when the driver assigns none). */
  deviceSet: DeviceSet | undefined;
  /** @internal the group after registration. */
  group: VfioDeviceGroupInfo | undefined;
  /** @internal resolves waiters of unregister when the last user went away. */
  onUnused: (() => void) | undefined;
  /** Undo of the sysfs vfio-dev node. */
  sysfsUndo: (() => void) | undefined;
  #refs = 1;
  /** Live user mappings of the device's regions (Linux: the shared inode's address_space). */
  readonly #mappings = new Set<DeviceMapping>();

  constructor(
    /** The core's index; the device's name in the vfio-dev class is `vfio<index>`. */
    readonly index: number,
    readonly name: string,
    readonly ops: VfioDeviceOps<T>,
    data: T,
    readonly hooks: DeviceCoreHooks,
  ) {
    this.data = data;
  }

  /** `vfio<index>`, the device's name in the vfio-dev class and its future /dev/vfio/devices node. */
  get devName(): string {
    return `vfio${this.index}`;
  }

  /** Puts the device in the set keyed by `setId` (vfio_assign_device_set); only before registration. */
  assignDeviceSet(setId: unknown): void {
    this.hooks.assignDeviceSet(this, setId);
  }

  /** The set the device belongs to (after registration or assignment). */
  get set(): DeviceSet | undefined {
    return this.deviceSet;
  }

  /**
   * Unregisters the device (vfio_unregister_group_dev, §2.7 step 5): no new opens (ENODEV) from now on; waits for
   * every open file to close, calling the driver's `request(count)` at once and then every 10 s of host time.
   */
  async unregister(): Promise<void> {
    if (this.state !== 'registered') throw new SysError('EINVAL', `device ${this.name} is not registered`);
    this.state = 'unregistering';
    this.hooks.unregisterDevice(this);
    this.registrationRefs--;
    let count = 0;
    while (this.registrationRefs > 0) {
      this.ops.request?.(this, count++);
      await new Promise<void>((resolve) => {
        const timer = this.hooks.clock.setTimeout(() => {
          this.onUnused = undefined;
          resolve();
        }, 10_000);
        this.onUnused = () => {
          timer.cancel();
          this.onUnused = undefined;
          resolve();
        };
      });
    }
    this.finishUnregister();
  }

  /** @internal called when the device has no users left after unregister. */
  finishUnregister(): void {
    this.sysfsUndo?.();
    this.sysfsUndo = undefined;
    this.state = 'unregistered';
    this.hooks.log(`vfio: ${this.name}: unregistered ${this.devName}`);
    this.onRemoved?.();
  }

  /** @internal hook the core sets to remove the device from its group at the end of unregister. */
  onRemoved: (() => void) | undefined;

  /** Number of live user mappings of the device's regions. */
  get mappingCount(): number {
    return this.#mappings.size;
  }

  /**
   * Revokes every user mapping of the device (unmap_mapping_range on the shared inode, §2.1): the mappings stay,
   * but their next access goes through `ops.mmapFault` (vfio-pci uses this around resets and memory-disable).
   */
  zapMappings(): void {
    for (const m of this.#mappings) m.zapped = true;
  }

  /** @internal wraps a driver's handler so it can be zapped; the returned mapping forgets itself when unmapped. */
  trackMapping(req: MmapRequest, handler: MmioHandler): MmioHandler & { unmapped(): void } {
    const m: DeviceMapping = { req, handler, zapped: false };
    this.#mappings.add(m);
    const current = (): MmioHandler => {
      if (m.zapped) {
        if (!this.ops.mmapFault) throw new SysError('EFAULT', `mapping of ${this.name} is revoked`);
        m.handler = this.ops.mmapFault(this, req);
        m.zapped = false;
      }
      return m.handler;
    };
    return {
      read: (offset, length) => current().read(offset, length),
      write: (offset, data) => {
        current().write(offset, data);
      },
      unmapped: () => {
        this.#mappings.delete(m);
      },
    };
  }

  /** Takes a reference on the device object (get_device). */
  get(): this {
    if (this.#refs === 0) throw new SysError('EINVAL', 'device already released');
    this.#refs++;
    return this;
  }

  /**
   * Drops a reference (vfio_put_device); the last one releases it: it leaves its set, frees its index and the
   * driver's `release` runs. A registered device must be unregistered first (EBUSY).
   */
  put(): void {
    if (this.#refs === 0) throw new SysError('EINVAL', 'device already released');
    if (this.#refs === 1 && (this.state === 'registered' || this.state === 'unregistering')) {
      throw new SysError('EBUSY', `device ${this.name} is still registered`);
    }
    this.#refs--;
    if (this.#refs === 0) {
      this.state = 'released';
      this.hooks.releaseDevice(this);
      this.ops.release?.(this);
    }
  }

  /**
   * Pins `npage` pages of guest IOVA for an emulated device (vfio_pin_pages, §2.10): the device must be open and
   * have a `dmaUnmap` op; at most 512 pages (E2BIG); returns one host page frame number per page.
   */
  pinPages(iova: bigint, npage: number, prot: number): bigint[] {
    return this.hooks.pinPages(this, iova, npage, prot);
  }

  /** Unpins pages pinned with {@link pinPages} (vfio_unpin_pages). */
  unpinPages(iova: bigint, npage: number): void {
    this.hooks.unpinPages(this, iova, npage);
  }

  /** Copies between `buf` and the guest memory behind `iova` without pinning (vfio_dma_rw). */
  dmaRw(iova: bigint, buf: Uint8Array, write: boolean): void {
    this.hooks.dmaRw(this, iova, buf, write);
  }
}
