/**
 * The VFIO core of one host: registries (IOMMU backends, groups, devices, device sets, feature handlers), the
 * device open/close sequencing and the emulated-IOMMU DMA helpers (inventory §2.5–§2.10).
 */
import type { IommuGroup, Platform, Task, VfsNode } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_FEATURE,
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
import type { GroupHost } from './group.js';
import type { CallContext, IoctlArg, IommuBackendEnv, VfioDeviceRef, VfioGroupType, VfioIommuDriverOps } from './iommu-driver.js';
import { argValue, IdAllocator, isPromise, readUserString } from './user.js';

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
  group: Group;
  /** False until open_device finished (Linux df->access_granted). */
  granted: boolean;
  /** Set when an asynchronous open_device failed: the file is dead. */
  failed: SysError | undefined;
  closed: boolean;
}

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
    group.iommuGroup = undefined;
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
  }

  #finishRegister(device: VfioDevice, group: Group): void {
    if (!device.deviceSet) this.assignDeviceSet(device, device);
    device.group = group;
    group.devices.push(device);
    group.drivers++;
    device.registrationRefs = 1;
    device.state = 'registered';
    this.devices.set(device.index, device);
    device.onRemoved = () => {
      this.devices.delete(device.index);
      group.drivers--;
      if (group.drivers === 0) this.#removeGroup(group);
    };
    const pci = this.env.platform.pci.device(device.name);
    if (pci) {
      const empty = (): ReadonlyMap<string, VfsNode> => new Map<string, VfsNode>();
      const devDir = { kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, entries: empty };
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
    if (!group.container) {
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
      if (!group.container) throw new SysError('EINVAL', `group ${group.id} has no container`);
      device.openCount++;
      if (device.openCount === 1) {
        try {
          pending = this.#firstOpen(group, device, call);
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
        this.#unwindFirstOpen(group, device);
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

  /** First open: use the container, register with the backend, open_device; unwinds on failure. */
  #firstOpen(group: Group, device: VfioDevice, call: SyscallContext): Promise<unknown> | undefined {
    const container = group.container!;
    if (!container.backend) throw new SysError('EINVAL', 'VFIO_SET_IOMMU has not been done');
    if (group.type === 'no-iommu' && !call.task.capable('CAP_SYS_RAWIO')) {
      throw new SysError('EPERM', 'no-IOMMU device needs CAP_SYS_RAWIO');
    }
    group.openedFile!.get();
    group.containerUsers++;
    this.#opener.set(device, call.task);
    device.kvm = group.kvm;
    const b = container.backend;
    const ref = this.#deviceRef(device);
    if (b.driver.registerDevice && b.driver.unregisterDevice) b.driver.registerDevice(b.data, ref);
    let r: unknown;
    try {
      r = device.ops.openDevice?.(device);
    } catch (e) {
      this.#unwindFirstOpen(group, device);
      throw e;
    }
    return isPromise(r) ? r : undefined;
  }

  #unwindFirstOpen(group: Group, device: VfioDevice): void {
    const b = group.container?.backend;
    if (b?.driver.registerDevice && b.driver.unregisterDevice) b.driver.unregisterDevice(b.data, this.#deviceRef(device));
    this.#opener.delete(device);
    device.kvm = undefined;
    group.containerUsers--;
    group.openedFile!.put();
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
    const { device, group } = state;
    if (state.failed) {
      this.#putRegistration(device);
      return;
    }
    const set = device.deviceSet!;
    const close = (): unknown => {
      device.openCount--;
      if (device.openCount > 0) return undefined;
      let r: unknown;
      try {
        r = device.ops.closeDevice?.(device);
      } catch (e) {
        this.log(`vfio: ${device.name}: close_device failed: ${String(e)}`);
      }
      const finish = (): void => { this.#unwindFirstOpen(group, device); };
      if (isPromise(r)) {
        return r.then(finish, (e: unknown) => {
          this.log(`vfio: ${device.name}: close_device failed: ${String(e)}`);
          finish();
        });
      }
      finish();
      return undefined;
    };
    if (!state.granted) {
      // open_device is still running and holds the set lock: close once it settled.
      void set.lock.run(() => {
        if (state.failed) {
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

  #callFor(device: VfioDevice): CallContext {
    const task = this.#opener.get(device);
    if (!task) throw new SysError('EINVAL', `device ${device.name} is not open`);
    return { task };
  }

  pinPages(device: VfioDevice, iova: bigint, npage: number, prot: number): bigint[] {
    if (!Number.isInteger(npage) || npage <= 0) throw new SysError('EINVAL', 'npage must be positive');
    const { container, group } = this.#containerOf(device);
    if (!device.ops.dmaUnmap) throw new SysError('EINVAL', 'pinning needs a dma_unmap op');
    if (npage > VFIO_PIN_PAGES_MAX_ENTRIES) throw new SysError('E2BIG', `at most ${VFIO_PIN_PAGES_MAX_ENTRIES} pages`);
    const b = container.backend;
    if (!b?.driver.pinPages) throw new SysError('ENOTTY', 'the IOMMU backend cannot pin pages');
    return b.driver.pinPages(b.data, group, iova, npage, prot, this.#callFor(device));
  }

  unpinPages(device: VfioDevice, iova: bigint, npage: number): void {
    // Linux WARNs and returns on misuse; a warning line stands in for the WARN.
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
        viable: this.groupViable(g),
        open: g.openedFile !== undefined,
        container: g.container?.id ?? null,
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
    // BIND_IOMMUFD belongs to the cdev path only; a group-opened device refuses it.
    if (request === VFIO_DEVICE_BIND_IOMMUFD) throw new SysError('EINVAL', 'BIND_IOMMUFD on a group device fd');
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
      if (request === VFIO_DEVICE_FEATURE) return this.core.deviceFeature(device, arg, call);
      if (!device.ops.ioctl) throw new SysError('EINVAL', `driver of ${device.name} has no ioctl op`);
      return device.ops.ioctl(device, request, arg, call);
    } finally {
      device.ops.pmRuntimePut?.(device);
    }
  }

  read(length: number, pos: bigint, call: SyscallContext): Uint8Array {
    const device = this.#check();
    if (!device.ops.read) throw new SysError('EINVAL', `driver of ${device.name} has no read op`);
    return device.ops.read(device, length, pos, call);
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
