/**
 * `createHost`: a VFIO host assembled from a platform and plugins. Everything hangs off the returned object —
 * processes and their file tables, module parameters, the VFIO core's registries — so two hosts never meet.
 */
import type { Platform, VfsCharDev, VfsDir, VfsNode } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { OpenFile } from './file.js';
import { NullFileOps } from './files.js';
import type { DevNodeSpec, HostPlugin, HostPluginApi } from './plugin.js';
import { parseBoolParam, ParamRegistry } from './params.js';
import type { ParamValue } from './params.js';
import { Process } from './process.js';
import type { ProcessHost, SpawnOptions } from './process.js';
import { VfioCore } from './vfio.js';
import { dir, resolvePath } from './vfs.js';

/** Options of {@link createHost}. */
export interface HostOptions {
  readonly platform: Platform;
  /** Backends and drivers, set up in order. */
  readonly plugins?: readonly HostPlugin[];
  /** Initial module parameters by `'module.param'` (e.g. `'vfio.enable_unsafe_noiommu_mode': true`). */
  readonly params?: Readonly<Record<string, ParamValue>>;
}

/** One kernel log line. */
export interface LogEntry {
  readonly time: number;
  readonly text: string;
}

/** `host.describe()`: the host as data, for `vfio status`. */
export interface HostDescription {
  readonly iommuDrivers: string[];
  readonly groups: unknown[];
  readonly devices: unknown[];
  readonly containers: unknown[];
  readonly processes: { pid: number; uid: number; fds: number; lockedPages: number }[];
}

/** A simulated Linux host running the VFIO core. */
export interface Host {
  readonly platform: Platform;
  /** The VFIO core (registries and driver-facing API); plugins normally use their `HostPluginApi`. */
  readonly vfio: VfioCore;
  /** The plugin API of this host (the same object every plugin's setup received). */
  readonly api: HostPluginApi;
  /** Starts a process. */
  spawn(options: SpawnOptions): Process;
  /** Processes alive, by pid order. */
  processes(): readonly Process[];
  /** The kernel log (dmesg). */
  log(): LogEntry[];
  /** The host as data: groups, devices and open counts, containers with their backend, locked pages. */
  describe(): HostDescription;
  /** chown(2) as an administrator: give a node (e.g. a /dev/vfio group) to a user. */
  chown(path: string, uid: number, gid: number): void;
  /** chmod(2) as an administrator. */
  chmod(path: string, mode: number): void;
  /** Current value of a module parameter. */
  param(module: string, name: string): string;
  /** Sets a module parameter as root writing its sysfs file would. */
  setParam(module: string, name: string, value: ParamValue): void;
}

interface DevEntry {
  readonly node: VfsCharDev;
  readonly spec: DevNodeSpec;
}

const DEV_DIRS = ['/dev', '/dev/vfio', '/dev/vfio/devices'];

class HostImpl implements Host, ProcessHost {
  readonly params: ParamRegistry;
  readonly vfio: VfioCore;
  readonly api: HostPluginApi;
  readonly root: VfsDir;
  readonly #procs = new Map<number, Process>();
  readonly #devNodes = new Map<string, Map<string, DevEntry>>(DEV_DIRS.map((d) => [d, new Map()]));
  #nextPid = 100;
  #nextDevTag = 1;

  constructor(readonly platform: Platform, options: HostOptions) {
    this.params = new ParamRegistry(options.params ?? {});
    // §2.9: no-IOMMU mode is off unless the administrator opts in.
    this.params.declare('vfio', 'enable_unsafe_noiommu_mode', {
      default: 'N',
      mode: 0o644,
      parse: parseBoolParam,
      description: 'Enable UNSAFE, no-IOMMU mode. This mode provides no device isolation, no DMA translation, no host kernel protection, cannot be used for device assignment to virtual machines, requires RAWIO permissions, and will taint the kernel.',
    });
    this.vfio = new VfioCore({
      platform,
      param: (m, n) => this.params.get(m, n),
      log: (t) => { this.platform.log(t); },
    });
    this.root = this.#buildRoot();
    this.api = this.#buildApi();
    for (const plugin of options.plugins ?? []) plugin.setup(this.api);
    const unknown = this.params.unclaimed();
    if (unknown.length > 0) throw new SysError('EINVAL', `unknown module parameter(s): ${unknown.join(', ')}`);
  }

  get clock(): Platform['clock'] {
    return this.platform.clock;
  }

  #buildRoot(): VfsDir {
    const containerNode: VfsCharDev = { kind: 'chardev', tag: 'vfio-container', mode: 0o666, uid: 0, gid: 0 };
    const nullNode: VfsCharDev = { kind: 'chardev', tag: 'null', mode: 0o666, uid: 0, gid: 0 };
    const extra = (path: string, into: Map<string, VfsNode>): void => {
      for (const [name, e] of this.#devNodes.get(path) ?? []) into.set(name, e.node);
    };
    const devicesDir = dir(() => {
      const m = new Map<string, VfsNode>(this.vfio.cdevNodes());
      extra('/dev/vfio/devices', m);
      return m;
    });
    const vfioDir = dir(() => {
      const m = new Map<string, VfsNode>([['vfio', containerNode]]);
      for (const g of this.vfio.groups.values()) m.set(g.nodeName, g.node);
      m.set('devices', devicesDir);
      extra('/dev/vfio', m);
      return m;
    });
    const devDir = dir(() => {
      const m = new Map<string, VfsNode>([
        ['null', nullNode],
        ['vfio', vfioDir],
      ]);
      extra('/dev', m);
      return m;
    });
    const moduleDir = this.params.sysfsDir();
    const sysDir = dir(() => {
      const m = new Map<string, VfsNode>(this.#platformSys().entries());
      m.set('module', moduleDir);
      return m;
    });
    return dir(
      () =>
        new Map<string, VfsNode>([
          ['dev', devDir],
          ['sys', sysDir],
        ]),
    );
  }

  /** The platform's /sys: its sysfs root is either /sys itself or a root holding `sys`. */
  #platformSys(): VfsDir {
    const top = this.platform.sysfs;
    const sys = top.entries().get('sys');
    return sys?.kind === 'dir' && !top.entries().has('bus') ? sys : top;
  }

  #buildApi(): HostPluginApi {
    const vfio = this.vfio;
    return {
      platform: this.platform,
      registerIommuDriver: (ops) => vfio.registerIommuDriver(ops),
      declareParam: (module, name, spec) => { this.params.declare(module, name, spec); },
      param: (module, name) => this.params.get(module, name),
      log: (text) => { this.platform.log(text); },
      registerPciDriver: (driver) => this.platform.pci.registerDriver(driver),
      allocDevice: (options) => vfio.allocDevice(options),
      registerGroupDevice: (device, options) => { vfio.registerGroupDevice(device, options); },
      registerEmulatedDevice: (device) => { vfio.registerEmulatedDevice(device); },
      deviceSet: (setId) => vfio.deviceSet(setId),
      registerFeatureHandler: (index, handler) => vfio.registerFeatureHandler(index, handler),
      registerDevNode: (path, spec) => this.#registerDevNode(path, spec),
      addSysfsNode: (dirPath, name, node) => this.platform.addSysfsNode(dirPath, name, node),
      fileIsGroup: (file) => vfio.fileIsGroup(file),
      fileHasDevice: (file, device) => vfio.fileHasDevice(file, device),
      deviceOfFile: (file) => vfio.deviceOfFile(file),
      fileEnforcedCoherent: (file) => vfio.fileEnforcedCoherent(file),
      fileSetKvm: (file, kvm) => {
        vfio.fileSetKvm(file, kvm);
      },
      registerIommufdProvider: (provider) => vfio.registerIommufdProvider(provider),
      iommufdStockOps: (kind) => vfio.stockIommufdOps(kind),
      iommufdOfFile: (file) => vfio.iommufdOfFile(file),
      deviceIommufdInfo: (device) => vfio.deviceIommufdInfo(device),
      iommufdDeviceId: (device, ictx) => vfio.iommufdDeviceId(device, ictx),
    };
  }

  #registerDevNode(path: string, spec: DevNodeSpec): () => void {
    const slash = path.lastIndexOf('/');
    const parent = path.slice(0, slash);
    const name = path.slice(slash + 1);
    const entries = this.#devNodes.get(parent);
    if (!entries || name === '') throw new SysError('EINVAL', `device nodes live in ${DEV_DIRS.join(', ')}`);
    let taken: boolean;
    try {
      resolvePath(this.root, path, false);
      taken = true;
    } catch {
      taken = false;
    }
    if (taken) throw new SysError('EEXIST', `${path} exists`);
    const node: VfsCharDev = {
      kind: 'chardev',
      tag: `devnode:${this.#nextDevTag++}`,
      mode: spec.mode ?? 0o600,
      uid: spec.uid ?? 0,
      gid: spec.gid ?? 0,
    };
    const entry = { node, spec };
    entries.set(name, entry);
    return () => {
      if (entries.get(name) === entry) entries.delete(name);
    };
  }

  openCharDev(node: VfsCharDev, flags: number, proc: Process): OpenFile {
    if (node.tag === 'vfio-container') return this.vfio.openContainer(flags);
    if (node.tag === 'null') return new OpenFile(new NullFileOps(), flags);
    if (node.tag.startsWith('vfio-group:')) {
      const id = Number(node.tag.slice('vfio-group:'.length));
      const g = this.vfio.groups.get(id);
      if (!g || g.node !== node) throw new SysError('ENODEV', `group ${id} is gone`);
      return this.vfio.openGroup(g, flags, proc);
    }
    if (node.tag.startsWith('vfio-cdev:')) return this.vfio.openCdev(node, flags);
    for (const entries of this.#devNodes.values()) {
      for (const e of entries.values()) {
        if (e.node === node) return new OpenFile(e.spec.open(flags, proc.callContext), flags);
      }
    }
    throw new SysError('ENXIO', `no driver for ${node.tag}`);
  }

  createEventFd(initval: bigint, semaphore: boolean): ReturnType<Platform['createEventFd']> {
    return this.platform.createEventFd(initval, semaphore);
  }

  newPid(): number {
    return this.#nextPid++;
  }

  processCreated(p: Process): void {
    this.#procs.set(p.pid, p);
  }

  processExited(p: Process): void {
    this.#procs.delete(p.pid);
  }

  spawn(options: SpawnOptions): Process {
    return Process.spawn(this, this.platform.createAddressSpace(), options);
  }

  processes(): readonly Process[] {
    return [...this.#procs.values()];
  }

  log(): LogEntry[];
  log(text: string): void;
  log(text?: string): LogEntry[] | void {
    if (text !== undefined) {
      this.platform.log(text);
      return;
    }
    return this.platform.logEntries().map((e) => ({ time: e.time, text: e.text }));
  }

  describe(): HostDescription {
    return {
      ...this.vfio.describe(),
      processes: this.processes().map((p) => ({
        pid: p.pid,
        uid: p.uid,
        fds: p.fds().length,
        lockedPages: p.mm.memlock.lockedPages,
      })),
    };
  }

  #node(path: string): VfsNode {
    const { node } = resolvePath(this.root, path);
    if (node.kind === 'symlink') throw new SysError('EINVAL', `${path} is a symlink`);
    return node;
  }

  chown(path: string, uid: number, gid: number): void {
    const node = this.#node(path) as { uid: number; gid: number };
    node.uid = uid;
    node.gid = gid;
  }

  chmod(path: string, mode: number): void {
    const node = this.#node(path) as { mode: number };
    node.mode = mode & 0o7777;
  }

  param(module: string, name: string): string {
    return this.params.get(module, name);
  }

  setParam(module: string, name: string, value: ParamValue): void {
    this.params.set(module, name, value);
  }
}

/**
 * Creates a host: a platform (e.g. `simPlatform(...)` from `@vfio-ts/sim`) plus plugins (IOMMU backends, bus
 * drivers). Throws EINVAL for a module parameter in `params` that no module declares.
 */
export function createHost(options: HostOptions): Host {
  return new HostImpl(options.platform, options);
}

