/**
 * The mdev bus of one host (inventory §6, §8.6 M1–M11; Linux drivers/vfio/mdev/mdev_core.c, mdev_sysfs.c,
 * mdev_driver.c): parents and their types, devices created and removed by UUID through sysfs text, and the
 * sysfs tree exactly as Linux lays it out.
 *
 * ```
 * <parent>/mdev_supported_types/<drv>-<type>/{create,name,device_api,available_instances,description,devices/}
 * <parent>/<uuid>/{remove,mdev_type,iommu_group,driver,subsystem,vfio-dev/}
 * /sys/bus/mdev/devices/<uuid> -> <parent>/<uuid>      /sys/class/mdev_bus/<parent> -> <parent>
 * ```
 */
import type { HostPluginApi, VfioDevice, VfioDeviceOps, VfioDeviceState } from '@vfio-ts/core';
import type { VfsDir, VfsNode } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { attribute, directory, parseGuid, parseUlong, relativeLink, symlink, UUID_STRING_LEN } from './sysfs.js';
import type { MdevDriver, MdevParentOptions, MdevTypeSpec } from './types.js';

/** Where a mediated device is in its life: created devices are `active` until a remove starts. */
export type MdevDeviceState = 'probing' | 'active' | 'removing' | 'released';

/* ------------------------------------------------------------------------------------------------ paths */

function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** The platform's /sys directory: its sysfs root is /sys itself or a root holding `sys` (as the host reads it). */
function sysRoot(api: HostPluginApi): VfsDir {
  const top = api.platform.sysfs;
  const sys = top.entries().get('sys');
  return sys?.kind === 'dir' && !top.entries().has('bus') ? sys : top;
}

/** Resolves an absolute /sys path to its canonical form (every symlink followed). ENOENT when absent. */
function canonicalSysPath(api: HostPluginApi, path: string): string {
  const root = sysRoot(api);
  const queue = components(path);
  if (queue.shift() !== 'sys') throw new SysError('ENOENT', `${path} is not below /sys`);
  let stack: [string, VfsNode][] = [];
  let node: VfsNode = root;
  let hops = 0;
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (name === '..') {
      stack.pop();
      node = stack.at(-1)?.[1] ?? root;
      continue;
    }
    if (node.kind !== 'dir') throw new SysError('ENOTDIR', `${path}: not a directory`);
    const next = node.entries().get(name);
    if (!next) throw new SysError('ENOENT', `${path}: no such file or directory`);
    if (next.kind === 'symlink') {
      if (++hops > 40) throw new SysError('ELOOP', path);
      const target = components(next.target);
      if (next.target.startsWith('/')) {
        if (target.shift() !== 'sys') throw new SysError('ENOENT', `${path} leaves /sys`);
        stack = [];
        node = root;
      }
      queue.unshift(...target);
      continue;
    }
    stack.push([name, next]);
    node = next;
  }
  return '/sys/' + stack.map(([n]) => n).join('/');
}

/** A device's state read afresh (a call in between may have changed it). */
function stateOf(dev: VfioDevice): VfioDeviceState {
  return dev.state;
}

/* ------------------------------------------------------------------------------------------------ types */

/** One type of a registered parent (Linux struct mdev_type): its sysfs directory and its instance count. */
export class MdevType<TT = unknown> {
  readonly sysfsName: string;
  readonly prettyName: string | undefined;
  /** The driver's data for this type. */
  readonly data: TT;

  constructor(
    readonly parent: MdevParent<TT>,
    spec: MdevTypeSpec<TT>,
  ) {
    this.sysfsName = spec.sysfsName;
    this.prettyName = spec.prettyName;
    this.data = spec.data;
  }

  /** The directory name under `mdev_supported_types/`: `<parent driver>-<sysfs name>`. */
  get dirName(): string {
    return `${this.parent.driverString}-${this.sysfsName}`;
  }

  /** Canonical sysfs path of the type's directory. */
  get path(): string {
    return `${this.parent.path}/mdev_supported_types/${this.dirName}`;
  }

  /** The `name` attribute: the pretty name, or the sysfs name. */
  get name(): string {
    return this.prettyName ?? this.sysfsName;
  }

  /** The `available_instances` attribute: the driver's count, or the parent counter. */
  get availableInstances(): number {
    const drv = this.parent.driver;
    return drv.getAvailable ? drv.getAvailable(this) : this.parent.availableInstances;
  }

  /** Devices of this type listed in its `devices/` directory. */
  get devices(): MdevDevice<TT>[] {
    return this.parent.devices.filter((d) => d.type === this && d.linked);
  }

  /** @internal the type's directory. */
  sysfsDir(): VfsDir {
    const drv = this.parent.driver;
    return directory(() => {
      const e: [string, VfsNode][] = [
        ['create', attribute(0o200, undefined, (text, bytes) => { this.parent.create(this, text, bytes.length); })],
        ['device_api', attribute(0o444, () => `${drv.deviceApi}\n`)],
        ['name', attribute(0o444, () => `${this.name}\n`)],
        ['available_instances', attribute(0o444, () => `${this.availableInstances >>> 0}\n`)],
      ];
      // The description attribute is visible only when the driver can show one (mdev_types_core_is_visible).
      if (drv.showDescription) {
        const show = drv.showDescription.bind(drv);
        e.push(['description', attribute(0o444, () => show(this))]);
      }
      for (const [name, show] of Object.entries(drv.typeAttrs ?? {})) {
        e.push([name, attribute(0o444, () => show(this))]);
      }
      const devicesPath = `${this.path}/devices`;
      e.push([
        'devices',
        directory(() => this.devices.map((d): [string, VfsNode] => [d.uuid, symlink(relativeLink(devicesPath, d.path))])),
      ]);
      return e;
    });
  }
}

/* ------------------------------------------------------------------------------------------------ devices */

/**
 * A mediated device (Linux struct mdev_device): named by its UUID, of one type, bound to its parent's driver.
 * The driver's probe usually calls {@link MdevDevice.registerEmulatedDevice}; its remove calls
 * {@link MdevDevice.unregisterVfioDevice}, which waits until every user closed the device.
 */
export class MdevDevice<TT = unknown> {
  /** Life-cycle state. */
  state: MdevDeviceState = 'probing';
  /** The driver's private data (dev_set_drvdata). */
  driverData: unknown = undefined;
  /** @internal the `mdev_type` link and the type's `devices/` link exist (mdev_create_sysfs_files). */
  linked = false;
  #vfio: VfioDevice | undefined;
  #bound = false;
  /** False once a writer claimed the self-removing `remove` attribute (device_remove_file_self). */
  #removeAttr = true;
  #removal: Promise<void> | 'done' | undefined;
  readonly #undo: (() => void)[] = [];

  constructor(
    /** The device name: the UUID in lower case (`%pUl`). */
    readonly uuid: string,
    readonly type: MdevType<TT>,
    readonly bus: MdevBus,
  ) {}

  /** The parent the device was created on. */
  get parent(): MdevParent<TT> {
    return this.type.parent;
  }

  /** The host's plugin API, for drivers that allocate VFIO devices themselves. */
  get api(): HostPluginApi {
    return this.bus.api;
  }

  /** Canonical sysfs path: `<parent>/<uuid>`. */
  get path(): string {
    return `${this.parent.path}/${this.uuid}`;
  }

  /** The VFIO device the driver registered for this mdev, if any. */
  get vfioDevice(): VfioDevice | undefined {
    return this.#vfio;
  }

  /** Whether the driver is bound (between a successful probe and the end of remove). */
  get bound(): boolean {
    return this.#bound;
  }

  /**
   * The usual probe: allocates a VFIO device named by the UUID with `ops` and `data` (its `init` may refuse, e.g.
   * ENOSPC) and registers it as an emulated-IOMMU device, which gives the mdev its own IOMMU group
   * (vfio_register_emulated_iommu_dev, §2.7). A failed registration drops the device again.
   */
  registerEmulatedDevice<T>(ops: VfioDeviceOps<T>, data: T): VfioDevice<T> {
    if (this.#vfio) throw new SysError('EEXIST', `mdev ${this.uuid} already has a VFIO device`);
    const dev = this.api.allocDevice({ name: this.uuid, ops, data });
    try {
      this.api.registerEmulatedDevice(dev);
    } catch (e) {
      dev.put();
      throw e;
    }
    this.#vfio = dev;
    return dev;
  }

  /**
   * Records a VFIO device the driver registered itself (so `iommu_group` and `vfio-dev/` show it).
   */
  attachVfioDevice(device: VfioDevice): void {
    if (this.#vfio && this.#vfio !== device) throw new SysError('EEXIST', `mdev ${this.uuid} already has a VFIO device`);
    this.#vfio = device;
  }

  /**
   * The usual remove: unregisters the VFIO device — asking its users to release it and waiting until they
   * closed it (vfio_unregister_group_dev, §2.7) — and drops the driver's reference. Finishes synchronously when
   * nobody has the device open; otherwise the returned promise settles when the last user closed it.
   */
  unregisterVfioDevice(): Promise<void> | undefined {
    const dev = this.#vfio;
    if (!dev) return undefined;
    const finish = (): void => {
      if (this.#vfio === dev) this.#vfio = undefined;
      if (dev.state !== 'released') dev.put();
    };
    if (dev.state !== 'registered') {
      finish();
      return undefined;
    }
    const waiting = dev.unregister();
    // Nobody had it open: unregistering finished at once, and so does the removal (the sysfs write returns).
    if (stateOf(dev) === 'unregistered') {
      finish();
      return undefined;
    }
    return waiting.then(finish);
  }

  readonly #releaseHooks: (() => void)[] = [];

  /** @internal runs `fn` when the device is released. */
  onRelease(fn: () => void): void {
    this.#releaseHooks.push(fn);
  }

  /** @internal */
  runReleaseHooks(): void {
    for (const fn of this.#releaseHooks.splice(0).reverse()) fn();
  }

  /** @internal finishes a successful probe: links, group listing, state. */
  activate(): void {
    this.#bound = true;
    this.linked = true;
    this.state = 'active';
    const g = this.#vfio?.group;
    if (g) {
      const dir = `/sys/kernel/iommu_groups/${g.id}/devices`;
      try {
        this.#undo.push(this.api.addSysfsNode(dir, this.uuid, symlink(relativeLink(dir, this.path))));
      } catch {
        // A platform that does not list software groups simply shows no link.
      }
    }
  }

  /**
   * @internal mdev_device_remove_common: hides the links, runs the driver's remove, then the device goes —
   * synchronously when the driver's remove did not have to wait, else when its promise settles.
   */
  removeCommon(): Promise<void> | undefined {
    if (this.#removal !== undefined) return this.#removal === 'done' ? undefined : this.#removal;
    this.state = 'removing';
    this.linked = false;
    this.#removeAttr = false;
    const finish = (): void => {
      this.#bound = false;
      for (const undo of this.#undo.splice(0).reverse()) undo();
      this.bus.releaseDevice(this);
      this.#removal = 'done';
    };
    let r: void | Promise<void> = undefined;
    try {
      r = this.parent.driver.remove(this);
    } catch (e) {
      this.api.log(`mdev: ${this.uuid}: remove failed: ${String(e)}`);
    }
    if (r instanceof Promise) {
      const pending = r.then(finish, (e: unknown) => {
        this.api.log(`mdev: ${this.uuid}: remove failed: ${String(e)}`);
        finish();
      });
      this.#removal = pending;
      return pending;
    }
    finish();
    return undefined;
  }

  /** @internal the store of the `remove` attribute (remove_store + mdev_device_remove). */
  storeRemove(text: string): Promise<void> | undefined {
    const val = parseUlong(text);
    if (val === undefined) throw new SysError('EINVAL', `remove: ${JSON.stringify(text)} is not a number`);
    // Only the first writer gets the self-removing attribute; later writes through an open fd are no-ops.
    if (val === 0n || !this.#removeAttr) return undefined;
    this.#removeAttr = false;
    if (!this.bus.hasDevice(this)) throw new SysError('ENODEV', `mdev ${this.uuid} is gone`);
    if (this.state !== 'active') throw new SysError('EAGAIN', `mdev ${this.uuid} is ${this.state}`);
    if (this.parent.unregistering) {
      this.state = 'removing';
      throw new SysError('ENODEV', `parent of ${this.uuid} is unregistering`);
    }
    return this.removeCommon();
  }

  /** @internal the device's sysfs directory. */
  sysfsDir(): VfsDir {
    return directory(() => {
      const e: [string, VfsNode][] = [];
      if (this.state === 'released') return e;
      if (this.#removeAttr) e.push(['remove', attribute(0o200, undefined, (text) => this.storeRemove(text))]);
      if (this.linked) e.push(['mdev_type', symlink(relativeLink(this.path, this.type.path))]);
      const dev = this.#vfio;
      if (dev?.group) e.push(['iommu_group', symlink(relativeLink(this.path, `/sys/kernel/iommu_groups/${dev.group.id}`))]);
      if (this.#bound) e.push(['driver', symlink(relativeLink(this.path, `/sys/bus/mdev/drivers/${this.parent.driver.name}`))]);
      e.push(['subsystem', symlink(relativeLink(this.path, '/sys/bus/mdev'))]);
      if (dev && (dev.state === 'registered' || dev.state === 'unregistering')) {
        e.push(['vfio-dev', directory(() => [[dev.devName, directory(() => [])]])]);
      }
      for (const [group, attrs] of Object.entries(this.parent.driver.deviceAttrs ?? {})) {
        const files = Object.entries(attrs).map(([name, show]): [string, VfsNode] => [name, attribute(0o444, () => show(this))]);
        if (group === '') e.push(...files);
        else e.push([group, directory(() => files)]);
      }
      return e;
    });
  }
}

/* ------------------------------------------------------------------------------------------------ parents */

/**
 * A registered parent (Linux struct mdev_parent): its types, the driver bound to its devices and the instance
 * counter. Unregistering removes every child first (waiting for each to be released) and then the sysfs tree.
 */
export class MdevParent<TT = unknown> {
  readonly types: readonly MdevType<TT>[];
  readonly driver: MdevDriver<TT>;
  /** The parent counter: `maxInstances` minus the devices alive (used when the driver has no getAvailable). */
  availableInstances: number;
  /** The parent's device name (a BDF, or the virtual device's name). */
  readonly devName: string;
  /** The prefix of type directories (dev_driver_string of the parent). */
  readonly driverString: string;
  /** Canonical sysfs path of the parent device. */
  readonly path: string;
  readonly #children = new Map<string, MdevDevice<TT>>();
  readonly #undo: (() => void)[] = [];
  #unregistering: Promise<void> | undefined;

  constructor(
    readonly bus: MdevBus,
    options: MdevParentOptions<TT>,
    where: { readonly path: string; readonly devName: string; readonly driverString: string },
  ) {
    this.driver = options.driver;
    this.availableInstances = options.driver.maxInstances ?? 0;
    this.path = where.path;
    this.devName = where.devName;
    this.driverString = where.driverString;
    this.types = options.types.map((t) => new MdevType<TT>(this, t));
  }

  /** Whether unregistration started (creates then answer ENODEV). */
  get unregistering(): boolean {
    return this.#unregistering !== undefined;
  }

  /** Devices created on this parent and not yet released, in creation order. */
  get devices(): MdevDevice<TT>[] {
    return [...this.#children.values()];
  }

  /** The type whose sysfs name (or directory name) is `name`. */
  type(name: string): MdevType<TT> | undefined {
    return this.types.find((t) => t.sysfsName === name || t.dirName === name);
  }

  /** @internal records an undo of the parent's registration. */
  onUnregister(undo: () => void): void {
    this.#undo.push(undo);
  }

  /** @internal the `mdev_supported_types` directory. */
  typesDir(): VfsDir {
    return directory(() => this.types.map((t): [string, VfsNode] => [t.dirName, t.sysfsDir()]));
  }

  /** @internal child directories of a parent whose directory the mdev bus computes (virtual parents). */
  childEntries(): [string, VfsNode][] {
    return this.devices.map((d): [string, VfsNode] => [d.uuid, d.sysfsDir()]);
  }

  /**
   * The `create` attribute (create_store): 36 or 37 bytes (UUID plus one more, usually a newline) else EINVAL;
   * a malformed UUID is EINVAL; then mdev_device_create.
   */
  create(type: MdevType<TT>, text: string, byteLength: number): MdevDevice<TT> {
    if (byteLength < UUID_STRING_LEN || byteLength > UUID_STRING_LEN + 1) {
      throw new SysError('EINVAL', `create: ${byteLength} bytes is not a UUID`);
    }
    const uuid = parseGuid(text);
    if (uuid === undefined) throw new SysError('EINVAL', `create: ${JSON.stringify(text)} is not a UUID`);
    return this.createDevice(type, uuid);
  }

  /**
   * mdev_device_create: EEXIST for a UUID in use anywhere on the host (removal not finished included), EUSERS
   * when the parent counter is exhausted, ENODEV while the parent unregisters, else the driver's probe decides.
   * Nothing stays behind on failure.
   */
  createDevice(type: MdevType<TT>, uuid: string): MdevDevice<TT> {
    if (type.parent !== this) throw new SysError('EINVAL', 'type of another parent');
    const canonical = parseGuid(uuid);
    if (canonical === undefined || uuid.length !== UUID_STRING_LEN) throw new SysError('EINVAL', `${uuid} is not a UUID`);
    if (this.bus.device(canonical)) throw new SysError('EEXIST', `mdev ${canonical} exists`);
    const counted = !this.driver.getAvailable;
    if (counted) {
      if (this.availableInstances <= 0) throw new SysError('EUSERS', `no instances left on ${this.devName}`);
      this.availableInstances--;
    }
    const mdev = new MdevDevice<TT>(canonical, type, this.bus);
    this.bus.addDevice(mdev);
    if (this.unregistering) {
      this.bus.releaseDevice(mdev);
      throw new SysError('ENODEV', `parent ${this.devName} is unregistering`);
    }
    this.#children.set(canonical, mdev);
    let undoDir: (() => void) | undefined;
    try {
      undoDir = this.bus.addChildDir(this, mdev);
      this.driver.probe(mdev);
    } catch (e) {
      undoDir?.();
      this.bus.releaseDevice(mdev);
      throw e;
    }
    mdev.activate();
    mdev.onRelease(() => undoDir?.());
    this.bus.api.log(`mdev: ${canonical}: MDEV: created (${type.dirName})`);
    return mdev;
  }

  /** @internal forgets a released child and gives its instance back. */
  childReleased(mdev: MdevDevice<TT>): void {
    if (this.#children.get(mdev.uuid) === mdev) this.#children.delete(mdev.uuid);
    // The instance taken in createDevice comes back (mdev_device_release).
    if (!this.driver.getAvailable) this.availableInstances++;
  }

  /**
   * mdev_unregister_parent: no more creates (ENODEV); every child is removed (each removal waits for its VFIO
   * device to be released by its users); then the types and the parent's links leave sysfs.
   */
  unregister(): Promise<void> {
    this.#unregistering ??= (async () => {
      this.bus.api.log(`mdev: ${this.devName}: MDEV: Unregistering`);
      const pending = this.devices.map((d) => d.removeCommon()).filter((r): r is Promise<void> => r !== undefined);
      await Promise.all(pending);
      for (const undo of this.#undo.splice(0).reverse()) undo();
      this.bus.parentGone(this);
    })();
    return this.#unregistering;
  }
}

/* ------------------------------------------------------------------------------------------------ the bus */

/** What {@link MdevBus.describe} reports. */
export interface MdevBusDescription {
  readonly parents: {
    readonly name: string;
    readonly path: string;
    readonly driver: string;
    readonly unregistering: boolean;
    readonly types: { readonly dir: string; readonly name: string; readonly availableInstances: number; readonly devices: string[] }[];
  }[];
  readonly devices: {
    readonly uuid: string;
    readonly type: string;
    readonly parent: string;
    readonly state: MdevDeviceState;
    readonly group: number | null;
    readonly openCount: number;
  }[];
}

interface VirtualDevice {
  readonly parent: MdevParent;
}

/**
 * The mdev bus of a host: the global UUID list, the registered parents, `/sys/bus/mdev`, `/sys/class/mdev_bus`
 * and the virtual parent devices under `/sys/devices/virtual`. Get it with `mdevBus(api)`.
 */
export class MdevBus {
  /** mdev_list: every device not yet released, by UUID (duplicates are refused across parents). */
  readonly #devices = new Map<string, MdevDevice>();
  readonly #parents = new Set<MdevParent>();
  /** class → name → virtual parent device. */
  readonly #virtual = new Map<string, Map<string, VirtualDevice>>();
  #virtualDirs = false;

  constructor(readonly api: HostPluginApi) {
    const devicesPath = '/sys/bus/mdev/devices';
    const bus = directory(() => [
      [
        'devices',
        directory(() =>
          [...this.#devices.values()]
            .filter((d) => d.state === 'active')
            .map((d): [string, VfsNode] => [d.uuid, symlink(relativeLink(devicesPath, d.path))]),
        ),
      ],
      ['drivers', directory(() => this.#driverEntries())],
      ['drivers_autoprobe', attribute(0o644, () => '1\n')],
    ]);
    api.addSysfsNode('/sys/bus', 'mdev', bus);
    this.#addClassAndVirtualDirs();
  }

  /** The device named `uuid` (any case), if it exists and is not released. */
  device(uuid: string): MdevDevice | undefined {
    return this.#devices.get(uuid.toLowerCase());
  }

  /** Every device not yet released. */
  get devices(): MdevDevice[] {
    return [...this.#devices.values()];
  }

  /** Registered parents. */
  get parents(): MdevParent[] {
    return [...this.#parents];
  }

  /**
   * The bus as data (DESIGN "Observable"): every parent with its types (available instances, devices) and every
   * device with its state, group and VFIO open count.
   */
  describe(): MdevBusDescription {
    return {
      parents: [...this.#parents].map((p) => ({
        name: p.devName,
        path: p.path,
        driver: p.driver.name,
        unregistering: p.unregistering,
        types: p.types.map((t) => ({ dir: t.dirName, name: t.name, availableInstances: t.availableInstances, devices: t.devices.map((d) => d.uuid) })),
      })),
      devices: [...this.#devices.values()].map((d) => ({
        uuid: d.uuid,
        type: d.type.dirName,
        parent: d.parent.devName,
        state: d.state,
        group: d.vfioDevice?.group?.id ?? null,
        openCount: d.vfioDevice?.openCount ?? 0,
      })),
    };
  }

  /** @internal */
  hasDevice(d: MdevDevice): boolean {
    return this.#devices.get(d.uuid) === d;
  }

  /** @internal */
  addDevice(d: MdevDevice): void {
    this.#devices.set(d.uuid, d);
  }

  /** @internal mdev_device_release: off the list, instance back to the parent. */
  releaseDevice(dev: MdevDevice): void {
    if (dev.state === 'released') return;
    if (this.#devices.get(dev.uuid) === dev) this.#devices.delete(dev.uuid);
    dev.state = 'released';
    dev.parent.childReleased(dev);
    dev.runReleaseHooks();
  }

  #driverEntries(): [string, VfsNode][] {
    const names = new Set([...this.#parents].map((p) => p.driver.name));
    return [...names].map((name): [string, VfsNode] => {
      const path = `/sys/bus/mdev/drivers/${name}`;
      return [
        name,
        directory(() =>
          [...this.#devices.values()]
            .filter((d) => d.bound && d.parent.driver.name === name)
            .map((d): [string, VfsNode] => [d.uuid, symlink(relativeLink(path, d.path))]),
        ),
      ];
    });
  }

  #ensureVirtualDirs(): void {
    if (!this.#virtualDirs) throw new SysError('ENOENT', '/sys/devices/virtual belongs to another layer');
  }

  /** /sys/devices/virtual and /sys/class, unless another layer made them already (then virtual parents fail). */
  #addClassAndVirtualDirs(): void {
    try {
      this.api.addSysfsNode(
        '/sys/devices',
        'virtual',
        directory(() =>
          [...this.#virtual].map(([cls, devs]): [string, VfsNode] => [
            cls,
            directory(() => [...devs].map(([name, v]): [string, VfsNode] => [name, this.#virtualDeviceDir(cls, v)])),
          ]),
        ),
      );
      this.#virtualDirs = true;
    } catch {
      this.#virtualDirs = false;
    }
    try {
      this.api.addSysfsNode(
        '/sys',
        'class',
        directory(() => {
          const e: [string, VfsNode][] = [['mdev_bus', this.#mdevBusClassDir()]];
          for (const [cls, devs] of this.#virtual) {
            if (cls === 'mdev_bus') continue;
            const dir = `/sys/class/${cls}`;
            e.push([
              cls,
              directory(() => [...devs.keys()].map((n): [string, VfsNode] => [n, symlink(relativeLink(dir, `/sys/devices/virtual/${cls}/${n}`))])),
            ]);
          }
          return e;
        }),
      );
    } catch {
      // Another layer owns /sys/class: the compatibility links are simply absent.
    }
  }

  #mdevBusClassDir(): VfsDir {
    const dir = '/sys/class/mdev_bus';
    return directory(() => [...this.#parents].map((p): [string, VfsNode] => [p.devName, symlink(relativeLink(dir, p.path))]));
  }

  #virtualDeviceDir(cls: string, v: VirtualDevice): VfsDir {
    const path = `/sys/devices/virtual/${cls}/${v.parent.devName}`;
    return directory(() => [
      ['mdev_supported_types', v.parent.typesDir()],
      ['subsystem', symlink(relativeLink(path, `/sys/class/${cls}`))],
      ...v.parent.childEntries(),
    ]);
  }

  /**
   * mdev_register_parent: creates `mdev_supported_types/` on the parent device (a PCI function, or a virtual
   * class device made for it) and lists the parent in `/sys/class/mdev_bus`. EINVAL for no types or duplicate
   * type names, ENODEV for an unknown PCI function, EEXIST for a parent already registered.
   */
  registerParent<TT>(options: MdevParentOptions<TT>): MdevParent<TT> {
    const { parent: where, driver, types } = options;
    if (types.length === 0) throw new SysError('EINVAL', 'a parent needs at least one type');
    const names = new Set(types.map((t) => t.sysfsName));
    if (names.size !== types.length || [...names].some((n) => n === '' || n.includes('/'))) {
      throw new SysError('EINVAL', 'type sysfs names must be unique, non-empty and without /');
    }
    if (driver.maxInstances !== undefined && (!Number.isInteger(driver.maxInstances) || driver.maxInstances < 0)) {
      throw new SysError('EINVAL', 'maxInstances must be a non-negative integer');
    }
    let parent: MdevParent<TT>;
    if ('pci' in where) {
      const dev = this.api.platform.pci.device(where.pci);
      if (!dev) throw new SysError('ENODEV', `no PCI device ${where.pci}`);
      if ([...this.#parents].some((p) => p.devName === where.pci)) throw new SysError('EEXIST', `${where.pci} is already a parent`);
      const path = canonicalSysPath(this.api, `/sys/bus/pci/devices/${where.pci}`);
      parent = new MdevParent<TT>(this, options, {
        path,
        devName: where.pci,
        driverString: where.driverName ?? dev.driver ?? 'pci',
      });
      parent.onUnregister(this.api.addSysfsNode(path, 'mdev_supported_types', parent.typesDir()));
    } else {
      const { class: cls, name } = where.virtual;
      for (const s of [cls, name]) {
        if (s === '' || s.includes('/') || s === '.' || s === '..') throw new SysError('EINVAL', `bad virtual device name ${s}`);
      }
      this.#ensureVirtualDirs();
      let devs = this.#virtual.get(cls);
      if (devs?.has(name)) throw new SysError('EEXIST', `/sys/devices/virtual/${cls}/${name} exists`);
      parent = new MdevParent<TT>(this, options, { path: `/sys/devices/virtual/${cls}/${name}`, devName: name, driverString: cls });
      if (!devs) {
        devs = new Map();
        this.#virtual.set(cls, devs);
      }
      const map = devs;
      const entry: VirtualDevice = { parent: parent };
      map.set(name, entry);
      parent.onUnregister(() => {
        if (map.get(name) === entry) map.delete(name);
        if (map.size === 0 && this.#virtual.get(cls) === map) this.#virtual.delete(cls);
      });
    }
    this.#parents.add(parent);
    this.api.log(`mdev: ${parent.devName}: MDEV: Registered`);
    return parent;
  }

  /** @internal the device directory under a PCI parent is added to the platform tree; virtual ones are computed. */
  addChildDir(parent: MdevParent, mdev: MdevDevice): (() => void) | undefined {
    if (parent.path.startsWith('/sys/devices/virtual/')) return undefined;
    return this.api.addSysfsNode(parent.path, mdev.uuid, mdev.sysfsDir());
  }

  /** @internal */
  parentGone(parent: MdevParent): void {
    this.#parents.delete(parent);
  }
}
