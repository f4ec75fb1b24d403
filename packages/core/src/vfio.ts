/**
 * The VFIO core of one host: registries (IOMMU backends, groups, devices, device sets, feature handlers), the
 * device open/close sequencing and the emulated-IOMMU DMA helpers (inventory §2.5–§2.10).
 */
import type { IommuGroup, Platform, Task, VfsCharDev, VfsNode } from '@vfio-ts/platform';
import { IOMMU_WRITE, PAGE_SIZE_N } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_PASID,
  VFIO_DEVICE_FEATURE,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_NOIOMMU_IOMMU,
  isSysError,
} from '@vfio-ts/uapi';
import { Container, ContainerFile } from './container.js';
import type { ContainerHost } from './container.js';
import { DeviceSet, VfioDevice } from './device.js';
import type { DeviceCoreHooks, VfioDeviceOptions } from './device.js';
import { decodeDeviceFeature } from './feature.js';
import type { DeviceFeatureHandler } from './feature.js';
import { O_CLOEXEC, O_RDWR, OpenFile } from './file.js';
import type { FileMapping, FileOps, MmapRequest, SyscallContext } from './file.js';
import { Group, GroupFile } from './group.js';
import type { GroupHost, GroupIommufd } from './group.js';
import type { CallContext, IoctlArg, IommuBackendEnv, VfioDeviceRef, VfioGroupType, VfioIommuDriverOps } from './iommu-driver.js';
import type {
  IommufdDeviceBinding,
  IommufdDeviceId,
  IommufdHandle,
  IommufdProvider,
  VfioDeviceIommufdInfo,
  VfioIommufdOps,
} from './iommufd.js';
import { argValue, IdAllocator, isPromise, readUserString, userBytes } from './user.js';

/** The major number of the /dev/vfio/devices nodes (Linux allocates the vfio-dev region dynamically). */
export const VFIO_DEV_MAJOR = 511;

/** Most pages one vfio_pin_pages call may pin (PAGE_SIZE / sizeof(unsigned long), §2.10). */
export const VFIO_PIN_PAGES_MAX_ENTRIES = 512;

/** Options of registerGroupDevice. */
export interface RegisterGroupDeviceOptions {
  /** The IOMMU group of the device; by default the group of the PCI function named like the device. */
  readonly iommuGroup?: IommuGroup;
}

/** The per-file state of an opened device (Linux struct vfio_device_file). */
export interface DeviceOpenState {
  device: VfioDevice;
  /** The device's group (the file came from it unless `cdev`). */
  group: Group;
  /** False until open_device finished (Linux df->access_granted). */
  granted: boolean;
  /** Set when an asynchronous open_device failed: the file is dead. */
  failed: SysError | undefined;
  closed: boolean;
  /** Opened through /dev/vfio/devices/vfioN (Linux: df->group is NULL). */
  cdev?: boolean;
  /** cdev: BIND_IOMMUFD succeeded (or its open_device is still running); close unbinds. */
  bound?: boolean;
  /** cdev: the KVM instance set on this file (vfio_device_file_set_kvm), handed to the device at bind. */
  kvm?: unknown;
}

/** The iommufd a device was first opened through (Linux df->iommufd + df->devid); `file` keeps the context alive. */
interface DeviceIommufd {
  readonly handle: IommufdHandle;
  readonly file: OpenFile;
  /** The devid the bind returned; undefined for a no-IOMMU device (no IOMMU binding, §2.9). */
  readonly devid: number | undefined;
}

/** The state of the stock iommufd ops (Linux vdev->iommufd_device / iommufd_access + iommufd_attached). */
interface StockBinding {
  readonly binding: IommufdDeviceBinding;
  readonly ictx: IommufdHandle;
  readonly kind: 'physical' | 'emulated';
  attached: boolean;
}

/** The iommufd ops of a device with every member the core calls. */
type IommufdDeviceOps = Required<Pick<VfioIommufdOps<VfioDevice>, 'bindIommufd' | 'unbindIommufd' | 'attachIoas' | 'detachIoas'>> &
  Pick<VfioIommufdOps<VfioDevice>, 'pasidAttachIoas' | 'pasidDetachIoas'>;

/** The services the core needs from its host (params, logging). */
export interface VfioCoreEnv {
  readonly platform: Platform;
  param(module: string, name: string): string;
  log(text: string): void;
}

/** The VFIO core of a host. */
export class VfioCore implements ContainerHost, GroupHost, DeviceCoreHooks {
  readonly #drivers: VfioIommuDriverOps[] = [];
  /** Groups by IOMMU group number. */
  readonly groups = new Map<number, Group>();
  /** Devices by index. */
  readonly devices = new Map<number, VfioDevice>();
  readonly #sets = new Map<unknown, DeviceSet>();
  readonly #features = new Map<number, DeviceFeatureHandler>();
  readonly containers = new Set<Container>();
  readonly #deviceIndexes = new IdAllocator(0);
  #nextContainer = 1;
  /** The task that first opened each device (the mm the emulated-IOMMU helpers act for). */
  readonly #opener = new WeakMap<VfioDevice, Task>();
  readonly #deviceRefs = new WeakMap<VfioDevice, VfioDeviceRef>();
  readonly noiommuDriver: VfioIommuDriverOps;
  #iommufd: IommufdProvider | undefined;
  /** The iommufd each device was first opened through (cdev BIND or a group on an iommufd). */
  readonly #deviceIommufd = new WeakMap<VfioDevice, DeviceIommufd>();
  /** Bindings made by the stock iommufd ops. */
  readonly #stock = new WeakMap<VfioDevice, StockBinding>();
  /** Devices open through their cdev (Linux device->cdev_opened). */
  readonly #cdevOpened = new WeakSet<VfioDevice>();
  /** The /dev/vfio/devices/vfioN node of each registered device, by index. */
  readonly #cdevNodes = new Map<number, VfsCharDev>();

  constructor(readonly env: VfioCoreEnv) {
    const noiommuEnabled = (): boolean => this.noiommuEnabled;
    // The built-in no-IOMMU backend (§2.5, §2.9): answers extension 8 only while the module parameter is on.
    this.noiommuDriver = {
      name: 'vfio-noiommu',
      module: 'vfio',
      open(type: number, _env: IommuBackendEnv, call: CallContext): null {
        if (type !== VFIO_NOIOMMU_IOMMU) throw new SysError('EINVAL', 'vfio-noiommu only serves type 8');
        if (!call.task.capable('CAP_SYS_RAWIO')) throw new SysError('EPERM', 'vfio-noiommu needs CAP_SYS_RAWIO');
        return null;
      },
      release(): void {
        /* nothing to free */
      },
      ioctl(_data: unknown, cmd: number, arg: IoctlArg): number {
        if (cmd === VFIO_CHECK_EXTENSION) return noiommuEnabled() && argValue(arg) === VFIO_NOIOMMU_IOMMU ? 1 : 0;
        throw new SysError('ENOTTY', 'vfio-noiommu has no DMA mapping ioctls');
      },
      attachGroup(): void {
        /* no IOMMU to program */
      },
      detachGroup(): void {
        /* no IOMMU to program */
      },
    };
    this.#drivers.push(this.noiommuDriver);
  }

  get clock(): Platform['clock'] {
    return this.env.platform.clock;
  }

  log(text: string): void {
    this.env.log(text);
  }

  /** vfio.enable_unsafe_noiommu_mode. */
  get noiommuEnabled(): boolean {
    return this.env.param('vfio', 'enable_unsafe_noiommu_mode') === 'Y';
  }

  /* ---------------------------------------------------------------- IOMMU backends (§2.5) */

  iommuDrivers(): readonly VfioIommuDriverOps[] {
    return this.#drivers;
  }

  /** vfio_register_iommu_driver: EINVAL for a taken name; newest first in the polling order. */
  registerIommuDriver<D>(ops: VfioIommuDriverOps<D>): () => void {
    const driver = ops as VfioIommuDriverOps;
    if (this.#drivers.some((d) => d.name === driver.name)) {
      throw new SysError('EINVAL', `IOMMU driver ${driver.name} already registered`);
    }
    this.#drivers.unshift(driver);
    return () => {
      // The module reference a selected backend holds keeps it loaded (try_module_get in SET_IOMMU).
      for (const c of this.containers) {
        if (c.backend?.driver === driver) throw new SysError('EBUSY', `IOMMU driver ${driver.name} is in use`);
      }
      const i = this.#drivers.indexOf(driver);
      if (i >= 0) this.#drivers.splice(i, 1);
    };
  }

  backendEnv(driver: VfioIommuDriverOps): IommuBackendEnv {
    return {
      param: (name) => this.env.param(driver.module, name),
      log: (text) => { this.env.log(text); },
    };
  }

  /* ---------------------------------------------------------------- feature handlers (§1.5) */

  /** Registers the handler of one VFIO_DEVICE_FEATURE index (EEXIST if taken). */
  registerFeatureHandler(index: number, handler: DeviceFeatureHandler): () => void {
    if (!Number.isInteger(index) || index < 0 || index > 0xffff) throw new SysError('EINVAL', `bad feature index ${index}`);
    if (this.#features.has(index)) throw new SysError('EEXIST', `feature ${index} already has a handler`);
    this.#features.set(index, handler);
    return () => {
      if (this.#features.get(index) === handler) this.#features.delete(index);
    };
  }

  /* ---------------------------------------------------------------- containers and groups */

  containerGone(container: Container): void {
    this.containers.delete(container);
  }

  /** Opens /dev/vfio/vfio: a new, empty container. */
  openContainer(flags: number): OpenFile {
    const c = new Container(this.#nextContainer++, this);
    this.containers.add(c);
    return new OpenFile(new ContainerFile(c), flags);
  }

  /** Opens a group node (§1.3 open rules): ENODEV without devices, EPERM for no-IOMMU without RAWIO, EBUSY. */
  openGroup(group: Group, flags: number, task: Task): OpenFile {
    if (group.drivers === 0 || !group.iommuGroup) throw new SysError('ENODEV', `group ${group.id} has no devices`);
    if (group.type === 'no-iommu' && !task.capable('CAP_SYS_RAWIO')) {
      throw new SysError('EPERM', 'no-IOMMU group needs CAP_SYS_RAWIO');
    }
    if (group.openedFile) throw new SysError('EBUSY', `group ${group.id} is already open`);
    // A device of the group bound through its cdev blocks the group (vfio_group_fops_open, §1.10).
    if (group.cdevDeviceOpenCount > 0) throw new SysError('EBUSY', `a device of group ${group.id} is open through its cdev`);
    const file = new OpenFile(new GroupFile(group, this), flags);
    group.openedFile = file;
    return file;
  }

  groupViable(group: Group): boolean {
    const ig = group.iommuGroup;
    if (!ig) return false;
    if (ig.dmaOwner !== undefined) return false;
    // A device bound to a host driver that does DMA holds the group's DMA ownership (§2.8).
    const pci = this.env.platform.pci;
    for (const bdf of ig.devices()) {
      const name = pci.device(bdf)?.driver;
      if (name !== undefined && !(pci.driver(name)?.driverManagedDma ?? false)) return false;
    }
    return true;
  }

  #createGroup(iommuGroup: IommuGroup, type: VfioGroupType): Group {
    const g = new Group(iommuGroup.id, type, iommuGroup);
    this.groups.set(iommuGroup.id, g);
    return g;
  }

  #removeGroup(group: Group): void {
    if (this.groups.get(group.id) === group) this.groups.delete(group.id);
    if (group.container) group.container.detachGroup(group);
    const ig = group.iommuGroup;
    group.iommuGroup = undefined;
    // vfio_device_remove_group: the software group of an emulated or no-IOMMU device goes with its last device
    // (iommu_group_remove_device + iommu_group_put), so /sys/kernel/iommu_groups/N disappears and N is free again.
    if (ig && group.type !== 'iommu') this.env.platform.releaseSoftGroup?.(ig);
  }

  /* ---------------------------------------------------------------- device life cycle (§2.7) */

  /** vfio_alloc_device: a new device with the lowest free index; the driver's `init` runs (its failure unwinds). */
  allocDevice<T>(options: VfioDeviceOptions<T>): VfioDevice<T> {
    const index = this.#deviceIndexes.alloc();
    const device = new VfioDevice<T>(index, options.name, options.ops, options.data, this);
    device.migrationOps = options.migrationOps;
    device.logOps = options.logOps;
    device.migrationFlags = options.migrationFlags ?? 0;
    try {
      options.ops.init?.(device);
    } catch (e) {
      this.#deviceIndexes.free(index);
      throw e;
    }
    return device;
  }

  assignDeviceSet(device: VfioDevice, setId: unknown): void {
    if (device.deviceSet) throw new SysError('EINVAL', `device ${device.name} already has a device set`);
    if (device.state !== 'allocated') throw new SysError('EINVAL', 'device set must be assigned before registration');
    let set = this.#sets.get(setId);
    if (!set) {
      set = new DeviceSet(setId);
      this.#sets.set(setId, set);
    }
    set.add(device);
    device.deviceSet = set;
  }

  /** The set registered under `setId`, if any. */
  deviceSet(setId: unknown): DeviceSet | undefined {
    return this.#sets.get(setId);
  }

  /**
   * vfio_register_group_dev: a device with real DMA behind an IOMMU group (§2.7 step 3, §2.8). Without a group it
   * is EINVAL unless no-IOMMU mode is on (then a `noiommu-N` group is made and the kernel tainted); a group whose
   * IOMMU lacks cache coherency is EINVAL.
   */
  registerGroupDevice(device: VfioDevice, options: RegisterGroupDeviceOptions = {}): void {
    this.#checkRegistrable(device);
    const iommuGroup = options.iommuGroup ?? this.env.platform.pci.device(device.name)?.iommuGroup;
    let group: Group;
    if (!iommuGroup) {
      if (!this.noiommuEnabled) throw new SysError('EINVAL', `device ${device.name} has no IOMMU group`);
      group = this.#createGroup(this.env.platform.allocSoftGroup('vfio-noiommu'), 'no-iommu');
      this.log(`vfio: ${device.name}: Adding kernel taint for vfio-noiommu group on device`);
    } else {
      if (!iommuGroup.cacheCoherent) {
        throw new SysError('EINVAL', `IOMMU of ${device.name} does not enforce cache coherency`);
      }
      const existing = this.groups.get(iommuGroup.id);
      if (existing && existing.devices.some((d) => d.name === device.name)) {
        throw new SysError('EINVAL', `device ${device.name} is already in group ${existing.id}`);
      }
      group = existing ?? this.#createGroup(iommuGroup, 'iommu');
    }
    this.#finishRegister(device, group);
  }

  /** vfio_register_emulated_iommu_dev: an mdev-style device in its own software group (§2.7, §2.8). */
  registerEmulatedDevice(device: VfioDevice): void {
    this.#checkRegistrable(device);
    const group = this.#createGroup(this.env.platform.allocSoftGroup('vfio-noiommu'), 'emulated-iommu');
    this.#finishRegister(device, group);
  }

  #checkRegistrable(device: VfioDevice): void {
    if (device.hooks !== this) throw new SysError('EINVAL', 'device belongs to another host');
    if (device.state !== 'allocated') throw new SysError('EINVAL', `device ${device.name} is ${device.state}`);
    // __vfio_register_dev: bind_iommufd without its companions is a driver bug (§2.2).
    const ops = device.ops;
    if (ops.bindIommufd && (!ops.unbindIommufd || !ops.attachIoas || !ops.detachIoas)) {
      throw new SysError('EINVAL', `driver of ${device.name} sets bindIommufd without unbindIommufd/attachIoas/detachIoas`);
    }
  }

  #finishRegister(device: VfioDevice, group: Group): void {
    if (!device.deviceSet) this.assignDeviceSet(device, device);
    device.group = group;
    group.devices.push(device);
    group.drivers++;
    device.registrationRefs = 1;
    device.state = 'registered';
    this.devices.set(device.index, device);
    // The cdev node /dev/vfio/devices/vfioN, root-only like Linux's vfio-dev class nodes (§1.10). No-IOMMU devices
    // get none: "cdev does not support noiommu device" (vfio_device_add); they are used through their group only.
    const hasCdev = group.type !== 'no-iommu';
    if (hasCdev) {
      this.#cdevNodes.set(device.index, { kind: 'chardev', tag: `vfio-cdev:${device.index}`, mode: 0o600, uid: 0, gid: 0 });
    }
    device.onRemoved = () => {
      this.devices.delete(device.index);
      this.#cdevNodes.delete(device.index);
      group.drivers--;
      if (group.drivers === 0) this.#removeGroup(group);
    };
    const pci = this.env.platform.pci.device(device.name);
    if (pci) {
      // vfio-dev/vfioN: with the cdev (an iommufd provider), its `dev` attribute names the char device as
      // "major:minor" (the minor is the device index; the vfio-dev major is dynamic in Linux, VFIO_DEV_MAJOR here).
      const devAttr: VfsNode = {
        kind: 'file',
        mode: 0o444,
        uid: 0,
        gid: 0,
        read: () => new TextEncoder().encode(`${VFIO_DEV_MAJOR}:${device.index}\n`),
      };
      const entries = (): ReadonlyMap<string, VfsNode> =>
        this.#iommufd && hasCdev ? new Map<string, VfsNode>([['dev', devAttr]]) : new Map<string, VfsNode>();
      const devDir = { kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, entries };
      try {
        device.sysfsUndo = this.env.platform.addSysfsNode(`/sys/bus/pci/devices/${device.name}`, 'vfio-dev', {
          kind: 'dir',
          mode: 0o755,
          uid: 0,
          gid: 0,
          entries: () => new Map([[device.devName, devDir]]),
        });
      } catch (e) {
        if (!isSysError(e)) throw e;
      }
    }
  }

  unregisterDevice(device: VfioDevice): void {
    // No new GET_DEVICE_FD from now on (vfio_device_group_unregister).
    const g = device.group instanceof Group ? device.group : undefined;
    if (g) {
      const i = g.devices.indexOf(device);
      if (i >= 0) g.devices.splice(i, 1);
    }
  }

  releaseDevice(device: VfioDevice): void {
    const set = device.deviceSet;
    if (set && set.remove(device) && this.#sets.get(set.id) === set) this.#sets.delete(set.id);
    device.deviceSet = undefined;
    this.#deviceIndexes.free(device.index);
  }

  /* ---------------------------------------------------------------- device open / close (§2.7 step 4) */

  #findDevice(group: Group, name: string): VfioDevice {
    for (const d of group.devices) {
      if (d.ops.match) {
        if (d.ops.match(d, name)) return d;
      } else if (d.name === name) {
        return d;
      }
    }
    throw new SysError('ENODEV', `no device ${JSON.stringify(name)} in group ${group.id}`);
  }

  /** VFIO_GROUP_GET_DEVICE_FD (synchronous: a device set busy with an asynchronous holder answers EBUSY). */
  getDeviceFd(group: Group, arg: IoctlArg, call: SyscallContext): number {
    const { device, set } = this.#prepareOpen(group, arg, call);
    if (!set.lock.tryAcquire()) {
      this.#putRegistration(device);
      throw new SysError('EBUSY', `device set of ${device.name} is busy`);
    }
    return this.#openLocked(group, device, set, call, false);
  }

  /** VFIO_GROUP_GET_DEVICE_FD that waits for the device-set lock and for an asynchronous open_device. */
  async getDeviceFdAsync(group: Group, arg: IoctlArg, call: SyscallContext): Promise<number> {
    const { device, set } = this.#prepareOpen(group, arg, call);
    await set.lock.acquire();
    return this.#openLocked(group, device, set, call, true);
  }

  #prepareOpen(group: Group, arg: IoctlArg, call: SyscallContext): { device: VfioDevice; set: DeviceSet } {
    const name = readUserString(arg, call);
    const device = this.#findDevice(group, name);
    if (device.state !== 'registered') throw new SysError('ENODEV', `device ${device.name} is going away`);
    if (!group.hasIommu) {
      throw new SysError('EINVAL', `group ${group.id} has no container`);
    }
    device.registrationRefs++;
    return { device, set: device.deviceSet! };
  }

  /** Runs the open with the set lock held; releases it (now or when an async open_device settles). */
  #openLocked(group: Group, device: VfioDevice, set: DeviceSet, call: SyscallContext, wait: true): Promise<number>;
  #openLocked(group: Group, device: VfioDevice, set: DeviceSet, call: SyscallContext, wait: false): number;
  #openLocked(group: Group, device: VfioDevice, set: DeviceSet, call: SyscallContext, wait: boolean): number | Promise<number> {
    const state: DeviceOpenState = { device, group, granted: false, failed: undefined, closed: false };
    let pending: Promise<unknown> | undefined;
    try {
      // Re-check under the lock: the group may have lost its container while we waited.
      if (!group.hasIommu) throw new SysError('EINVAL', `group ${group.id} has no container`);
      device.openCount++;
      if (device.openCount === 1) {
        try {
          pending = this.#firstOpen(state, call, undefined);
        } catch (e) {
          device.openCount--;
          throw e;
        }
      }
    } catch (e) {
      set.lock.release();
      this.#putRegistration(device);
      if (wait) return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
    const install = (): number => {
      const fd = call.installFile(new DeviceFile(state, this), O_RDWR | O_CLOEXEC);
      if (group.type === 'no-iommu') {
        this.log(`vfio: ${device.name}: vfio-noiommu device opened by user (pid ${call.task.pid})`);
      }
      return fd;
    };
    if (!pending) {
      state.granted = true;
      set.lock.release();
      return wait ? Promise.resolve(install()) : install();
    }
    const settle = pending.then(
      () => {
        state.granted = true;
      },
      (e: unknown) => {
        this.#unwindFirstOpen(state);
        device.openCount--;
        state.failed = isSysError(e) ? e : new SysError('EIO', String(e));
        if (wait) throw e;
      },
    ).finally(() => {
      set.lock.release();
    });
    if (wait) {
      return settle.then(() => install(), (e: unknown) => {
        this.#putRegistration(device);
        throw e;
      });
    }
    settle.catch(() => undefined);
    return install();
  }

  /**
   * First open (vfio_df_device_first_open): use the IOMMU — the group's container, or an iommufd (`ictx` for the cdev
   * path, the group's iommufd otherwise) — then open_device; on the group-over-iommufd path the device is then
   * attached to the compat IOAS (vfio_df_group_open). Unwinds everything on failure.
   */
  #firstOpen(state: DeviceOpenState, call: SyscallContext, ictx: GroupIommufd | undefined): Promise<unknown> | undefined {
    const { device, group } = state;
    const viaIommufd = ictx ?? group.iommufd;
    if (viaIommufd) this.#iommufdBind(state, viaIommufd, call);
    else {
      const container = group.container!;
      if (!container.backend) throw new SysError('EINVAL', 'VFIO_SET_IOMMU has not been done');
      if (group.type === 'no-iommu' && !call.task.capable('CAP_SYS_RAWIO')) {
        throw new SysError('EPERM', 'no-IOMMU device needs CAP_SYS_RAWIO');
      }
      group.containerUsers++;
      const b = container.backend;
      if (b.driver.registerDevice && b.driver.unregisterDevice) b.driver.registerDevice(b.data, this.#deviceRef(device));
    }
    if (!state.cdev) group.openedFile!.get();
    this.#opener.set(device, call.task);
    device.kvm = state.cdev ? state.kvm : group.kvm;
    let r: unknown;
    try {
      r = device.ops.openDevice?.(device);
    } catch (e) {
      this.#unwindFirstOpen(state);
      throw e;
    }
    const compat = !state.cdev && viaIommufd !== undefined && group.type !== 'no-iommu';
    if (!compat) return isPromise(r) ? r : undefined;
    // vfio_iommufd_compat_attach_ioas: after open_device; its failure closes the device again.
    const attach = (): unknown => {
      try {
        const ioas = this.#provider().compatIoasId(viaIommufd.handle);
        if (ioas === undefined) throw new SysError('ENODEV', 'the iommufd has no compat IOAS');
        this.#iommufdOps(device).attachIoas(device, ioas);
        return undefined;
      } catch (e) {
        const closing = this.#callCloseDevice(device);
        if (isPromise(closing)) return closing.then(() => { throw e; });
        throw e;
      }
    };
    if (isPromise(r)) return r.then(attach);
    let a: unknown;
    try {
      a = attach();
    } catch (e) {
      this.#unwindFirstOpen(state);
      throw e;
    }
    return isPromise(a) ? a : undefined;
  }

  /** close_device, logging (not throwing) a failure as Linux's void op would. */
  #callCloseDevice(device: VfioDevice): unknown {
    let r: unknown;
    try {
      r = device.ops.closeDevice?.(device);
    } catch (e) {
      this.log(`vfio: ${device.name}: close_device failed: ${String(e)}`);
      return undefined;
    }
    if (isPromise(r)) {
      return r.catch((e: unknown) => {
        this.log(`vfio: ${device.name}: close_device failed: ${String(e)}`);
      });
    }
    return undefined;
  }

  /**
   * vfio_df_iommufd_bind: no-IOMMU devices (reached through their group only: they have no cdev) need CAP_SYS_RAWIO
   * and no compat IOAS (the user must not expect translation, §2.9) and are not bound; others are bound through the
   * driver's (or the stock) bind op.
   */
  #iommufdBind(state: DeviceOpenState, ictx: GroupIommufd, call: CallContext): void {
    const { device, group } = state;
    let devid: number | undefined;
    if (group.type === 'no-iommu') {
      if (!call.task.capable('CAP_SYS_RAWIO')) throw new SysError('EPERM', 'no-IOMMU device needs CAP_SYS_RAWIO');
      if (this.#provider().compatIoasId(ictx.handle) !== undefined) {
        throw new SysError('EPERM', 'no-IOMMU device with a compat IOAS (translation expected)');
      }
    } else {
      devid = this.#iommufdOps(device).bindIommufd(device, ictx.handle);
    }
    this.#deviceIommufd.set(device, { handle: ictx.handle, file: ictx.file.get(), devid });
  }

  #unwindFirstOpen(state: DeviceOpenState): void {
    const { device, group } = state;
    const rec = this.#deviceIommufd.get(device);
    if (rec) {
      this.#deviceIommufd.delete(device);
      if (rec.devid !== undefined) this.#iommufdOps(device).unbindIommufd(device);
      rec.file.put();
    } else {
      const b = group.container?.backend;
      if (b?.driver.registerDevice && b.driver.unregisterDevice) b.driver.unregisterDevice(b.data, this.#deviceRef(device));
      group.containerUsers--;
    }
    this.#opener.delete(device);
    device.kvm = undefined;
    if (!state.cdev) group.openedFile!.put();
  }

  #deviceRef(device: VfioDevice): VfioDeviceRef {
    let ref = this.#deviceRefs.get(device);
    if (!ref) {
      const ops = device.ops;
      ref = ops.dmaUnmap
        ? {
            name: device.name,
            dmaUnmap: (iova: bigint, length: bigint): void => {
              ops.dmaUnmap?.(device, iova, length);
            },
          }
        : { name: device.name };
      this.#deviceRefs.set(device, ref);
    }
    return ref;
  }

  /** A device file's last reference went away (vfio_device_fops_release). */
  closeDeviceFile(state: DeviceOpenState): void {
    state.closed = true;
    const { device } = state;
    if (state.failed || (state.cdev === true && state.bound !== true)) {
      // A failed open, or a cdev file that was never bound: only the registration reference to drop.
      this.#putRegistration(device);
      return;
    }
    const set = device.deviceSet!;
    const close = (): unknown => {
      device.openCount--;
      if (device.openCount > 0) return undefined;
      const r = this.#callCloseDevice(device);
      // Linux's release is synchronous (vfio_df_close): close_device, the IOMMU "unuse" (container_users--, backend
      // unregister, iommufd unbind) and the group reference are all done when close(2) returns, so an immediate
      // UNSET_CONTAINER succeeds. DMA is stopped by the time close_device returns; only the driver's deferred
      // cleanup (vfio-pci's virqfd flush) may still run, and the caller keeps the set lock until it settles.
      this.#unwindFirstOpen(state);
      if (state.cdev) this.#cdevUnbound(state);
      return r;
    };
    if (!state.granted) {
      // open_device is still running and holds the set lock: close once it settled.
      void set.lock.run(() => {
        // A failed open (or a cdev bind whose open_device failed) has been unwound already.
        if (state.failed || (state.cdev === true && state.bound !== true)) {
          this.#putRegistration(device);
          return undefined;
        }
        return Promise.resolve(close()).then(() => { this.#putRegistration(device); });
      });
      return;
    }
    if (set.lock.tryAcquire()) {
      let r: unknown;
      try {
        r = close();
      } catch (e) {
        set.lock.release();
        throw e;
      }
      if (isPromise(r)) {
        void r.finally(() => {
          set.lock.release();
          this.#putRegistration(device);
        });
        return;
      }
      set.lock.release();
      this.#putRegistration(device);
      return;
    }
    void set.lock.run(async () => {
      await close();
      this.#putRegistration(device);
    });
  }

  #putRegistration(device: VfioDevice): void {
    device.registrationRefs--;
    if (device.registrationRefs === 0) device.onUnused?.();
  }

  /* ---------------------------------------------------------------- iommufd and the device cdev (§1.10, §2.2) */

  /** Registers the host's iommufd implementation (one per host: EEXIST otherwise). */
  registerIommufdProvider(provider: IommufdProvider): () => void {
    if (this.#iommufd) throw new SysError('EEXIST', `iommufd provider ${this.#iommufd.name} already registered`);
    this.#iommufd = provider;
    return () => {
      if (this.#iommufd === provider) this.#iommufd = undefined;
    };
  }

  /** Whether an iommufd provider is registered (the cdev nodes exist only then). */
  get hasIommufd(): boolean {
    return this.#iommufd !== undefined;
  }

  #provider(): IommufdProvider {
    if (!this.#iommufd) throw new SysError('ENODEV', 'no iommufd on this host');
    return this.#iommufd;
  }

  /**
   * The stock iommufd ops (vfio_iommufd_physical_* / vfio_iommufd_emulated_*): bind through the provider, remember
   * the binding, attach with replace semantics, detach only when attached, unbind (which detaches).
   */
  stockIommufdOps(kind: 'physical' | 'emulated'): IommufdDeviceOps {
    const bound = (device: VfioDevice): StockBinding => {
      const s = this.#stock.get(device);
      // WARN_ON(!vdev->iommufd_device) → -EINVAL
      if (!s) throw new SysError('EINVAL', `device ${device.name} is not bound to an iommufd`);
      return s;
    };
    return {
      bindIommufd: (device, ictx) => {
        const provider = this.#provider();
        let binding: IommufdDeviceBinding;
        if (kind === 'physical') {
          const iommuGroup = device.group?.iommuGroup;
          if (!iommuGroup) throw new SysError('EINVAL', `device ${device.name} has no IOMMU group`);
          binding = provider.bindPhysical(ictx, { name: device.name, iommuGroup });
        } else {
          binding = provider.bindEmulated(ictx, {
            name: device.name,
            dmaUnmap: (iova, length) => {
              device.ops.dmaUnmap?.(device, iova, length);
            },
          });
        }
        this.#stock.set(device, { binding, ictx, kind, attached: false });
        return binding.devid;
      },
      unbindIommufd: (device) => {
        const s = this.#stock.get(device);
        if (!s) return;
        this.#stock.delete(device);
        s.binding.unbind();
      },
      attachIoas: (device, ptId) => {
        const s = bound(device);
        const id = s.binding.attach(ptId);
        s.attached = true;
        return id;
      },
      detachIoas: (device) => {
        const s = this.#stock.get(device);
        if (!s?.attached) return;
        s.binding.detach();
        s.attached = false;
      },
    };
  }

  /**
   * The iommufd ops the core calls for `device`: the driver's bind/unbind/attach/detach when it sets them, else the
   * stock ones for its group type; the PASID ops are the driver's own either way (absent → EOPNOTSUPP).
   */
  #iommufdOps(device: VfioDevice): IommufdDeviceOps {
    const ops = device.ops;
    const pasid = {
      ...(ops.pasidAttachIoas ? { pasidAttachIoas: ops.pasidAttachIoas.bind(ops) } : {}),
      ...(ops.pasidDetachIoas ? { pasidDetachIoas: ops.pasidDetachIoas.bind(ops) } : {}),
    };
    if (ops.bindIommufd && ops.unbindIommufd && ops.attachIoas && ops.detachIoas) {
      return {
        bindIommufd: ops.bindIommufd.bind(ops),
        unbindIommufd: ops.unbindIommufd.bind(ops),
        attachIoas: ops.attachIoas.bind(ops),
        detachIoas: ops.detachIoas.bind(ops),
        ...pasid,
      };
    }
    return { ...this.stockIommufdOps(device.group?.type === 'emulated-iommu' ? 'emulated' : 'physical'), ...pasid };
  }

  /** The /dev/vfio/devices entries: `vfioN` for every registered device, when an iommufd provider exists. */
  cdevNodes(): Map<string, VfsCharDev> {
    const out = new Map<string, VfsCharDev>();
    if (!this.#iommufd) return out;
    for (const [index, node] of this.#cdevNodes) {
      const d = this.devices.get(index);
      // vfio_device_del removes the node as unregistering starts.
      if (d?.state === 'registered') out.set(d.devName, node);
    }
    return out;
  }

  /**
   * Opens /dev/vfio/devices/vfioN (vfio_device_fops_cdev_open): ENODEV once unregistering started; the new file is
   * unbound, so everything but BIND_IOMMUFD fails with EINVAL until a bind opened the device.
   */
  openCdev(node: VfsCharDev, flags: number): OpenFile {
    const index = Number(node.tag.slice('vfio-cdev:'.length));
    const device = this.devices.get(index);
    if (!device || this.#cdevNodes.get(index) !== node || device.state !== 'registered' || !(device.group instanceof Group)) {
      throw new SysError('ENODEV', `vfio${index} is gone`);
    }
    device.registrationRefs++;
    const state: DeviceOpenState = { device, group: device.group, granted: false, failed: undefined, closed: false, cdev: true, bound: false };
    return new OpenFile(new DeviceFile(state, this), flags);
  }

  /** VFIO_DEVICE_BIND_IOMMUFD (vfio_df_ioctl_bind_iommufd); `wait` for the ioctlAsync form. */
  bindIommufd(state: DeviceOpenState, arg: IoctlArg, call: SyscallContext, wait: true): Promise<number>;
  bindIommufd(state: DeviceOpenState, arg: IoctlArg, call: SyscallContext, wait: false): number;
  bindIommufd(state: DeviceOpenState, arg: IoctlArg, call: SyscallContext, wait: boolean): number | Promise<number> {
    const minsz = 16; // offsetofend(struct vfio_device_bind_iommufd, out_devid)
    const bytes = userBytes(arg, call, minsz);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, minsz);
    const argsz = dv.getUint32(0, true);
    const flags = dv.getUint32(4, true);
    const fd = dv.getInt32(8, true);
    // Linux 6.12 knows no bind flag (VFIO_DEVICE_BIND_FLAG_TOKEN came later).
    if (argsz < minsz || flags !== 0 || fd < 0) throw new SysError('EINVAL', 'bad argsz, flags or iommufd');
    if (state.cdev !== true) throw new SysError('EINVAL', 'BIND_IOMMUFD on a group device fd');
    const { device, group } = state;
    // vfio_device_block_group: a group opened through its node keeps cdevs from binding.
    if (group.openedFile) throw new SysError('EBUSY', `group ${group.id} is open`);
    group.cdevDeviceOpenCount++;
    const set = device.deviceSet!;
    /** With `wait`, the asynchronous open_device the caller waits for. */
    let waitFor: Promise<unknown> | undefined;
    const locked = (): number => {
      let pending: Promise<unknown> | undefined;
      /** Set when the unwind (and the lock release) must wait for an open_device still running. */
      let deferred = false;
      try {
        // The file went away while an ioctlAsync waited for the lock (Linux holds the file for the call).
        if (state.closed) throw new SysError('EBADF', 'device file closed');
        // One device file binds once (df->access_granted).
        if (state.bound === true || state.failed) throw new SysError('EINVAL', 'device file already bound');
        const file = call.file(fd);
        const handle = this.#iommufd?.contextOfFile(file);
        if (!handle) throw new SysError('EBADFD', `fd ${fd} is not an iommufd`);
        // vfio_df_open: only the group path may open a device more than once.
        if (device.openCount !== 0) throw new SysError('EINVAL', `device ${device.name} is already open`);
        device.openCount++;
        try {
          pending = this.#firstOpen(state, call, { handle, file });
        } catch (e) {
          device.openCount--;
          throw e;
        }
        const devid = this.#deviceIommufd.get(device)?.devid ?? 0;
        try {
          writeUser(arg, call, 12, u32Bytes(devid));
        } catch (e) {
          // copy_to_user failed: close the device again (vfio_df_close), once open_device settled if it is async.
          const closing = pending
            ? pending.then(() => this.#callCloseDevice(device), () => undefined)
            : this.#callCloseDevice(device);
          const undo = (): void => {
            this.#unwindFirstOpen(state);
            device.openCount--;
          };
          if (isPromise(closing)) {
            deferred = true;
            void closing.finally(() => {
              undo();
              set.lock.release();
              group.cdevDeviceOpenCount--;
            });
          } else {
            undo();
          }
          throw e;
        }
      } catch (e) {
        if (!deferred) {
          set.lock.release();
          group.cdevDeviceOpenCount--;
        }
        throw e;
      }
      state.bound = true;
      this.#cdevOpened.add(device);
      if (!pending) {
        state.granted = true;
        set.lock.release();
        return 0;
      }
      // An asynchronous open_device keeps the set lock until it settles; its failure unbinds the file.
      const settle = pending.then(
        () => {
          state.granted = true;
        },
        (e: unknown) => {
          this.#unwindFirstOpen(state);
          device.openCount--;
          this.#cdevUnbound(state);
          state.bound = false;
          if (!wait) state.failed = isSysError(e) ? e : new SysError('EIO', String(e));
          throw e;
        },
      ).finally(() => {
        set.lock.release();
      });
      if (wait) waitFor = settle;
      else settle.catch(() => undefined);
      return 0;
    };
    if (wait) {
      return set.lock.acquire().then(async () => {
        locked();
        if (waitFor) await waitFor;
        return 0;
      });
    }
    if (!set.lock.tryAcquire()) {
      group.cdevDeviceOpenCount--;
      throw new SysError('EBUSY', `device set of ${device.name} is busy`);
    }
    return locked();
  }

  /** The cdev half of the last close (vfio_df_unbind_iommufd after the open count dropped). */
  #cdevUnbound(state: DeviceOpenState): void {
    this.#cdevOpened.delete(state.device);
    state.group.cdevDeviceOpenCount--;
  }

  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT (vfio_df_ioctl_attach_pt). */
  attachIommufdPt(device: VfioDevice, arg: IoctlArg, call: SyscallContext): number {
    const minsz = 12; // offsetofend(pt_id)
    let bytes = userBytes(arg, call, minsz);
    let dv = new DataView(bytes.buffer, bytes.byteOffset, minsz);
    const argsz = dv.getUint32(0, true);
    const flags = dv.getUint32(4, true);
    if (argsz < minsz) throw new SysError('EINVAL', `argsz ${argsz} < ${minsz}`);
    if ((flags & ~VFIO_DEVICE_ATTACH_PASID) !== 0) throw new SysError('EINVAL', 'unknown attach flags');
    const ops = this.#iommufdOps(device);
    const pasid = (flags & VFIO_DEVICE_ATTACH_PASID) !== 0;
    let pasidValue = 0;
    if (pasid) {
      if (!ops.pasidAttachIoas) throw new SysError('EOPNOTSUPP', `driver of ${device.name} cannot attach PASIDs`);
      if (argsz < 16) throw new SysError('EINVAL', `argsz ${argsz} < 16 with ATTACH_PASID`);
      bytes = userBytes(arg, call, 16);
      dv = new DataView(bytes.buffer, bytes.byteOffset, 16);
      pasidValue = dv.getUint32(12, true);
    }
    const ptId = dv.getUint32(8, true);
    const set = device.deviceSet!;
    if (!set.lock.tryAcquire()) throw new SysError('EBUSY', `device set of ${device.name} is busy`);
    try {
      const out = pasid ? ops.pasidAttachIoas!(device, pasidValue, ptId) : ops.attachIoas(device, ptId);
      try {
        writeUser(arg, call, 8, u32Bytes(out));
      } catch (e) {
        ops.detachIoas(device);
        throw e;
      }
      return 0;
    } finally {
      set.lock.release();
    }
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT (vfio_df_ioctl_detach_pt): the device then blocks DMA. */
  detachIommufdPt(device: VfioDevice, arg: IoctlArg, call: SyscallContext): number {
    const minsz = 8; // offsetofend(flags)
    const bytes = userBytes(arg, call, minsz);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, minsz);
    const argsz = dv.getUint32(0, true);
    const flags = dv.getUint32(4, true);
    if (argsz < minsz) throw new SysError('EINVAL', `argsz ${argsz} < ${minsz}`);
    if ((flags & ~VFIO_DEVICE_DETACH_PASID) !== 0) throw new SysError('EINVAL', 'unknown detach flags');
    const ops = this.#iommufdOps(device);
    const pasid = (flags & VFIO_DEVICE_DETACH_PASID) !== 0;
    let pasidValue = 0;
    if (pasid) {
      if (!ops.pasidDetachIoas) throw new SysError('EOPNOTSUPP', `driver of ${device.name} cannot detach PASIDs`);
      if (argsz < 12) throw new SysError('EINVAL', `argsz ${argsz} < 12 with DETACH_PASID`);
      const b = userBytes(arg, call, 12);
      pasidValue = new DataView(b.buffer, b.byteOffset, 12).getUint32(8, true);
    }
    const set = device.deviceSet!;
    if (!set.lock.tryAcquire()) throw new SysError('EBUSY', `device set of ${device.name} is busy`);
    try {
      if (pasid) ops.pasidDetachIoas!(device, pasidValue);
      else ops.detachIoas(device);
      return 0;
    } finally {
      set.lock.release();
    }
  }

  /**
   * VFIO_GROUP_SET_CONTAINER with an iommufd (group.c): a no-IOMMU group puts the context in no-IOMMU compat mode,
   * any other group makes sure the compat IOAS exists; the group then holds the context. DMA ownership is claimed
   * later, when GET_DEVICE_FD binds the device.
   */
  setGroupIommufd(group: Group, file: OpenFile, call: SyscallContext): boolean {
    const handle = this.#iommufd?.contextOfFile(file);
    if (!handle) return false;
    if (group.type === 'no-iommu') this.#provider().compatSetNoIommu(handle);
    else this.#provider().compatIoasCreate(handle, call);
    group.iommufd = { handle, file: file.get() };
    return true;
  }

  /** The iommufd context behind `file`, when it is an iommufd (iommufd_ctx_from_file). */
  iommufdOfFile(file: OpenFile): IommufdHandle | undefined {
    return this.#iommufd?.contextOfFile(file);
  }

  /** A device's relation to iommufd (for vfio-pci's hot reset, §1.6). */
  deviceIommufdInfo(device: VfioDevice): VfioDeviceIommufdInfo {
    const s = this.#stock.get(device);
    const physical = s?.kind === 'physical' ? s : undefined;
    return {
      cdevOpened: this.#cdevOpened.has(device),
      ictx: physical?.ictx,
      devid: physical?.binding.devid,
      attached: s?.attached ?? false,
    };
  }

  /** vfio_iommufd_get_dev_id (§1.6). */
  iommufdDeviceId(device: VfioDevice, ictx: IommufdHandle): IommufdDeviceId {
    const s = this.#stock.get(device);
    if (s?.kind === 'physical' && s.ictx === ictx) return s.binding.devid;
    const group = device.group;
    if (!group?.iommuGroup || group.type !== 'iommu' || !this.#iommufd) return 'not-owned';
    return this.#iommufd.hasGroup(ictx, group.iommuGroup) ? 'owned' : 'not-owned';
  }

  /** VFIO_DEVICE_FEATURE dispatch (§1.5). */
  deviceFeature(device: VfioDevice, arg: IoctlArg, call: SyscallContext): number {
    if (!(arg instanceof Uint8Array)) throw new SysError('EFAULT', 'VFIO_DEVICE_FEATURE needs the struct bytes');
    const f = decodeDeviceFeature(arg);
    const handler = this.#features.get(f.index);
    if (handler) return handler(device, f.flags, f.data, f.dataSize, call);
    if (!device.ops.deviceFeature) throw new SysError('EINVAL', `feature ${f.index} is not supported`);
    return device.ops.deviceFeature(device, f.flags, f.data, f.dataSize, call);
  }

  /* ---------------------------------------------------------------- emulated-IOMMU DMA helpers (§2.10) */

  #containerOf(device: VfioDevice): { container: Container; group: Group } {
    if (device.openCount === 0) throw new SysError('EINVAL', `device ${device.name} is not open`);
    const group = device.group instanceof Group ? device.group : undefined;
    const container = group?.container;
    if (!group || !container) throw new SysError('EINVAL', `device ${device.name} has no container`);
    return { container, group };
  }

  /** The iommufd access of an open device without a container (vfio_pin_pages' iommufd branch), if any. */
  #accessOf(device: VfioDevice): IommufdDeviceBinding | undefined {
    if (device.openCount === 0) return undefined;
    const group = device.group instanceof Group ? device.group : undefined;
    if (group?.container && !this.#deviceIommufd.has(device)) return undefined;
    const s = this.#stock.get(device);
    return s?.kind === 'emulated' ? s.binding : undefined;
  }

  #callFor(device: VfioDevice): CallContext {
    const task = this.#opener.get(device);
    if (!task) throw new SysError('EINVAL', `device ${device.name} is not open`);
    return { task };
  }

  pinPages(device: VfioDevice, iova: bigint, npage: number, prot: number): bigint[] {
    if (!Number.isInteger(npage) || npage <= 0) throw new SysError('EINVAL', 'npage must be positive');
    const access = this.#accessOf(device);
    if (access) {
      if (!device.ops.dmaUnmap) throw new SysError('EINVAL', 'pinning needs a dma_unmap op');
      if (!access.pinPages) throw new SysError('EINVAL', 'the binding cannot pin pages');
      // VFIO ignores the sub-page offset: npage pages from the start of iova's page.
      return access.pinPages(iova - (iova % PAGE_SIZE_N), BigInt(npage) * PAGE_SIZE_N, (prot & IOMMU_WRITE) !== 0);
    }
    const { container, group } = this.#containerOf(device);
    if (!device.ops.dmaUnmap) throw new SysError('EINVAL', 'pinning needs a dma_unmap op');
    if (npage > VFIO_PIN_PAGES_MAX_ENTRIES) throw new SysError('E2BIG', `at most ${VFIO_PIN_PAGES_MAX_ENTRIES} pages`);
    const b = container.backend;
    if (!b?.driver.pinPages) throw new SysError('ENOTTY', 'the IOMMU backend cannot pin pages');
    return b.driver.pinPages(b.data, group, iova, npage, prot, this.#callFor(device));
  }

  unpinPages(device: VfioDevice, iova: bigint, npage: number): void {
    // Linux WARNs and returns on misuse; a warning line stands in for the WARN.
    const access = this.#accessOf(device);
    if (access) {
      if (!device.ops.dmaUnmap || !access.unpinPages || npage <= 0) {
        this.log(`vfio: ${device.name}: WARNING: bad vfio_unpin_pages call`);
        return;
      }
      access.unpinPages(iova - (iova % PAGE_SIZE_N), BigInt(npage) * PAGE_SIZE_N);
      return;
    }
    let container: Container;
    try {
      container = this.#containerOf(device).container;
    } catch {
      this.log(`vfio: ${device.name}: WARNING: unpin on a device that is not open`);
      return;
    }
    const b = container.backend;
    if (!device.ops.dmaUnmap || !b?.driver.unpinPages || npage <= 0 || npage > VFIO_PIN_PAGES_MAX_ENTRIES) {
      this.log(`vfio: ${device.name}: WARNING: bad vfio_unpin_pages call`);
      return;
    }
    b.driver.unpinPages(b.data, iova, npage);
  }

  dmaRw(device: VfioDevice, iova: bigint, buf: Uint8Array, write: boolean): void {
    if (buf.length === 0) throw new SysError('EINVAL', 'empty DMA access');
    const access = this.#accessOf(device);
    if (access) {
      if (!access.rw) throw new SysError('EINVAL', 'the binding cannot do dma_rw');
      access.rw(iova, buf, write);
      return;
    }
    const { container } = this.#containerOf(device);
    const b = container.backend;
    if (!b?.driver.dmaRw) throw new SysError('ENOTTY', 'the IOMMU backend cannot do dma_rw');
    b.driver.dmaRw(b.data, iova, buf, write);
  }

  /* ---------------------------------------------------------------- external helpers (§2.8) */

  /** vfio_file_is_group. */
  fileIsGroup(file: OpenFile): boolean {
    return file.ops instanceof GroupFile;
  }

  /** vfio_file_has_dev: the file is the group of `device`, or a device file of it. */
  fileHasDevice(file: OpenFile, device: VfioDevice): boolean {
    if (file.ops instanceof GroupFile) return file.ops.group.devices.includes(device) || device.group === file.ops.group;
    if (file.ops instanceof DeviceFile) return file.ops.state.device === device;
    return false;
  }

  /**
   * vfio_file_enforced_coherent: whether DMA of everything behind the file (a group or a device file) is cache
   * coherent; `undefined` when the file is neither.
   */
  fileEnforcedCoherent(file: OpenFile): boolean | undefined {
    if (file.ops instanceof GroupFile) return file.ops.group.iommuGroup?.cacheCoherent ?? false;
    if (file.ops instanceof DeviceFile) {
      const g = file.ops.state.group;
      return g.type !== 'iommu' || (g.iommuGroup?.cacheCoherent ?? false);
    }
    return undefined;
  }

  /** vfio_file_set_kvm: associates a KVM instance with a group file (devices pick it up at first open). */
  fileSetKvm(file: OpenFile, kvm: unknown): void {
    if (file.ops instanceof GroupFile) file.ops.group.kvm = kvm;
    // vfio_device_file_set_kvm: a cdev file hands its KVM to the device at BIND_IOMMUFD.
    else if (file.ops instanceof DeviceFile && file.ops.state.cdev === true) file.ops.state.kvm = kvm;
  }

  /** The device behind a device file, if it is one. */
  deviceOfFile(file: OpenFile): VfioDevice | undefined {
    return file.ops instanceof DeviceFile ? file.ops.state.device : undefined;
  }

  /* ---------------------------------------------------------------- describe */

  describe(): { groups: unknown[]; devices: unknown[]; containers: unknown[]; iommuDrivers: string[] } {
    return {
      iommuDrivers: this.#drivers.map((d) => d.name),
      groups: [...this.groups.values()].map((g) => ({
        id: g.id,
        node: `/dev/vfio/${g.nodeName}`,
        type: g.type,
        // What VFIO_GROUP_GET_STATUS reports as VIABLE: also set while a container or iommufd is attached, although
        // the attach claimed the group's DMA ownership (group.c vfio_group_ioctl_get_status).
        viable: g.iommuGroup !== undefined && (g.statusFlags(this) & VFIO_GROUP_FLAGS_VIABLE) !== 0,
        open: g.openedFile !== undefined,
        container: g.container?.id ?? null,
        iommufd: g.iommufd !== undefined,
        containerUsers: g.containerUsers,
        devices: g.devices.map((d) => d.name),
      })),
      devices: [...this.devices.values()].map((d) => ({
        name: d.name,
        index: d.index,
        devName: d.devName,
        driver: d.ops.name ?? null,
        state: d.state,
        group: d.group?.id ?? null,
        openCount: d.openCount,
        cdevOpened: this.#cdevOpened.has(d),
        iommufdDevid: this.#deviceIommufd.get(d)?.devid ?? null,
        mappings: d.mappingCount,
        setOpenCount: d.deviceSet?.openCount ?? 0,
        setSize: d.deviceSet?.size ?? 0,
      })),
      containers: [...this.containers].map((c) => c.describe()),
    };
  }
}

/** The file operations of a device fd (vfio_device_fops). */
export class DeviceFile implements FileOps {
  readonly kind = 'vfio-device';
  readonly seekable = true;
  constructor(
    readonly state: DeviceOpenState,
    readonly core: VfioCore,
  ) {}

  #check(): VfioDevice {
    // Paired with the open: nothing reaches the driver until open_device finished (df->access_granted).
    if (!this.state.granted || this.state.failed) throw new SysError('EINVAL', 'device open did not complete');
    return this.state.device;
  }

  ioctl(request: number, arg: IoctlArg, call: SyscallContext): number {
    // BIND_IOMMUFD is the one ioctl before access is granted; a group-opened device refuses it (EINVAL).
    if (request === VFIO_DEVICE_BIND_IOMMUFD) return this.core.bindIommufd(this.state, arg, call, false);
    const device = this.#check();
    // Every device ioctl runs with the device runtime-resumed (vfio_device_pm_runtime_get, §1.4).
    if (device.ops.pmRuntimeGet) {
      try {
        device.ops.pmRuntimeGet(device);
      } catch (e) {
        device.hooks.log(`vfio: ${device.name}: runtime resume failed: ${String(e)}`);
        throw new SysError('EIO', `runtime resume of ${device.name} failed`);
      }
    }
    try {
      // cdev-only ioctls; on a group fd these numbers go to the driver like any other (vfio_device_fops_unl_ioctl).
      if (this.state.cdev === true) {
        if (request === VFIO_DEVICE_ATTACH_IOMMUFD_PT) return this.core.attachIommufdPt(device, arg, call);
        if (request === VFIO_DEVICE_DETACH_IOMMUFD_PT) return this.core.detachIommufdPt(device, arg, call);
      }
      if (request === VFIO_DEVICE_FEATURE) return this.core.deviceFeature(device, arg, call);
      if (!device.ops.ioctl) throw new SysError('EINVAL', `driver of ${device.name} has no ioctl op`);
      return device.ops.ioctl(device, request, arg, call);
    } finally {
      device.ops.pmRuntimePut?.(device);
    }
  }

  /** BIND_IOMMUFD waits for a busy device set and an asynchronous open_device; the rest is synchronous. */
  async ioctlAsync(request: number, arg: IoctlArg, call: SyscallContext): Promise<number> {
    if (request === VFIO_DEVICE_BIND_IOMMUFD) return this.core.bindIommufd(this.state, arg, call, true);
    return this.ioctl(request, arg, call);
  }

  read(length: number, pos: bigint, call: SyscallContext): Uint8Array {
    const device = this.#check();
    if (!device.ops.read) throw new SysError('EINVAL', `driver of ${device.name} has no read op`);
    return device.ops.read(device, length, pos, call);
  }

  /** pread into the caller's buffer: the driver's `readInto` when it has one, else its `read` and a copy. */
  readInto(buf: Uint8Array, pos: bigint, call: SyscallContext): number {
    const device = this.#check();
    if (device.ops.readInto) return device.ops.readInto(device, buf, pos, call);
    return DeviceFile.#readCopy(device, buf, pos, call);
  }

  /** {@link readInto} for a driver without `readInto`: its `read` and a copy (kept out of the inlinable body). */
  static #readCopy(device: VfioDevice, buf: Uint8Array, pos: bigint, call: SyscallContext): number {
    if (!device.ops.read) throw new SysError('EINVAL', `driver of ${device.name} has no read op`);
    const out = device.ops.read(device, buf.length, pos, call);
    const n = Math.min(out.length, buf.length);
    buf.set(n === out.length ? out : out.subarray(0, n));
    return n;
  }

  write(data: Uint8Array, pos: bigint, call: SyscallContext): number {
    const device = this.#check();
    if (!device.ops.write) throw new SysError('EINVAL', `driver of ${device.name} has no write op`);
    return device.ops.write(device, data, pos, call);
  }

  mmap(req: MmapRequest, call: SyscallContext): FileMapping {
    const device = this.#check();
    if (!device.ops.mmap) throw new SysError('EINVAL', `driver of ${device.name} has no mmap op`);
    return device.trackMapping(req, device.ops.mmap(device, req, call));
  }

  release(): void {
    this.core.closeDeviceFile(this.state);
  }
}

/** A little-endian u32. */
function u32Bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

/** copy_to_user of `data` at byte `offset` of the argument (the struct bytes or a user pointer). */
function writeUser(arg: IoctlArg, call: CallContext, offset: number, data: Uint8Array): void {
  if (arg instanceof Uint8Array) {
    if (arg.length < offset + data.length) throw new SysError('EFAULT', 'argument too short');
    arg.set(data, offset);
    return;
  }
  if (arg === undefined) throw new SysError('EFAULT', 'NULL argument');
  call.task.mm.write(BigInt(arg) + BigInt(offset), data);
}
