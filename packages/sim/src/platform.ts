/**
 * `simPlatform(options)`: a whole simulated host — physical memory, address spaces, the IOMMU and its groups, the
 * PCI bus with host drivers, eventfds, a clock, sysfs and the kernel log — behind the `@vfio-ts/platform` contract.
 */
import type { IommuGroup, Platform, VfsDir, VfsNode } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import { SimAddressSpace } from './address-space.js';
import { SimClock, type ClockMode } from './clock.js';
import { SimEventFd } from './eventfd.js';
import type { SimGroup } from './group.js';
import { SimIommu, SimIommuGroup, type VtdOptions } from './iommu.js';
import { SimPciBus, type SimHostDriverSpec, type SimPciDeviceEntry } from './pci-bus.js';
import { SimPhysicalMemory } from './physical.js';
import { SpaprIommu } from './spapr/iommu.js';
import type { SpaprTableGroupOptions } from './spapr/table-group.js';
import { SimSysfs } from './sysfs.js';

/** The IOMMU hardware models a simulated host can have. */
export type SimIommuModel = SimIommu | SpaprIommu;

/** `iommu` values that give a VT-d-like IOMMU ('vtd', tuned with `{ model: 'vtd', ... }`) or none. */
export type VtdIommuOption = 'vtd' | 'none' | ({ readonly model: 'vtd' } & VtdOptions);

/**
 * `iommu` values that give a PowerNV-style TCE IOMMU: every IOMMU group is a PE with its table group; the options
 * of `{ model: 'spapr', ... }` are the defaults of every PE (window sizes, TCE page sizes, EEH...).
 */
export type SpaprIommuOption = 'spapr' | ({ readonly model: 'spapr' } & SpaprTableGroupOptions);

/** The `iommu` option values that build hardware `H`. */
export type IommuOptionFor<H extends SimIommuModel> = H extends SpaprIommu ? SpaprIommuOption : VtdIommuOption;

/** Options of {@link simPlatform}. */
export interface SimPlatformOptions {
  /**
   * 'vtd' (default): an Intel VT-d-like IOMMU (4K|2M|1G pages, 48-bit aperture, MSI window reserved);
   * `{ model: 'vtd', ...VtdOptions }` to tune it; 'spapr': a PowerNV-style TCE IOMMU whose groups are PEs
   * (`{ model: 'spapr', ...SpaprTableGroupOptions }` to tune it); 'none': no IOMMU, devices have no group.
   */
  readonly iommu?: VtdIommuOption | SpaprIommuOption;
  /** PCI functions and bridges (see README for the entry shapes). */
  readonly devices?: readonly SimPciDeviceEntry[];
  /** Host driver stubs devices may be bound to. */
  readonly hostDrivers?: readonly SimHostDriverSpec[];
  /** How simulated time moves (default 'virtual'; see {@link SimClock}). */
  readonly clock?: ClockMode;
}

/**
 * The simulated {@link Platform}, with a few extras for tests and `describe`. `H` is the IOMMU model (the VT-d-like
 * {@link SimIommu} unless built with `iommu: 'spapr'`); {@link simPlatform} infers it from the options.
 */
export class SimPlatform<H extends SimIommuModel = SimIommu> implements Platform {
  readonly memory = new SimPhysicalMemory();
  readonly iommu: H | undefined;
  readonly pci: SimPciBus;
  readonly clock: SimClock;
  private readonly sysfsTree: SimSysfs;
  private readonly groups = new Map<number, SimGroup>();
  private readonly logLines: { time: number; text: string }[] = [];
  private nextAddressSpace = 1;
  private nextEventFd = 1;

  /**
   * Builds the host. Prefer {@link simPlatform}, which types `H` from the options; with `new`, name the model
   * (`new SimPlatform<SpaprIommu>({ iommu: 'spapr' })`).
   */
  constructor(options: SimPlatformOptions & { readonly iommu?: IommuOptionFor<H> } = {}) {
    this.clock = new SimClock(options.clock ?? 'virtual');
    const hw = this.makeIommu(options.iommu ?? 'vtd');
    // The option type ties H to the model built from it (IommuOptionFor), so this narrowing holds.
    this.iommu = hw as H | undefined;
    this.pci = new SimPciBus({
      memory: this.memory,
      iommu: hw,
      clock: this.clock,
      log: (t) => { this.log(t); },
      // One group per device/function group as pci_device_group forms them; on POWER each one is a PE.
      newGroup: () =>
        this.addGroup((id) => (hw instanceof SpaprIommu ? hw.newGroup(id) : new SimIommuGroup(id, hw, undefined))),
    });
    this.pci.populate(options.devices ?? [], options.hostDrivers ?? []);
    this.sysfsTree = new SimSysfs({ pci: this.pci, groups: () => this.iommuGroups() });
  }

  private makeIommu(iommu: VtdIommuOption | SpaprIommuOption): SimIommuModel | undefined {
    const log = (t: string): void => {
      this.log(t);
    };
    if (iommu === 'none') return undefined;
    if (iommu === 'vtd') return new SimIommu({}, log);
    if (iommu === 'spapr') return new SpaprIommu({ log });
    if (typeof iommu === 'object' && iommu.model === 'vtd') {
      const { model: _model, ...options } = iommu;
      return new SimIommu(options, log);
    }
    if (typeof iommu === 'object' && iommu.model === 'spapr') {
      const { model: _model, ...options } = iommu;
      const hw = new SpaprIommu({ ...options, log });
      hw.newGroup(-1); // validates the PE options now (EINVAL) rather than at the first device
      return hw;
    }
    throw sysError('EINVAL', `unknown IOMMU model ${JSON.stringify(iommu)}`);
  }

  /** Creates a group with the lowest free number (ida_alloc). */
  private addGroup<G extends SimGroup>(make: (id: number) => G): G {
    let id = 0;
    while (this.groups.has(id)) id++;
    const g = make(id);
    this.groups.set(id, g);
    return g;
  }

  createAddressSpace(): SimAddressSpace {
    return new SimAddressSpace(this.nextAddressSpace++, this.memory, () => this.nextAddressSpace++);
  }

  iommuGroup(id: number): SimGroup | undefined {
    return this.groups.get(id);
  }

  iommuGroups(): readonly SimGroup[] {
    return [...this.groups.values()].sort((a, b) => a.id - b.id);
  }

  allocSoftGroup(name: string, device?: string): SimIommuGroup {
    const dev = device === undefined ? undefined : this.pci.device(device);
    if (device !== undefined && !dev) throw sysError('ENODEV', `no PCI device ${device}`);
    if (dev?.group) throw sysError('EBUSY', `${dev.bdf} already has IOMMU group ${dev.group.id}`);
    const g = this.addGroup((id) => new SimIommuGroup(id, undefined, name));
    if (dev) {
      dev.group = g;
      g.members.push(dev.bdf);
    }
    return g;
  }

  releaseSoftGroup(group: IommuGroup): void {
    const g = this.groups.get(group.id);
    if (!g || g !== group || g.hardware) return;
    for (const bdf of g.members) {
      const dev = this.pci.device(bdf);
      if (dev?.group === g) dev.group = undefined;
    }
    g.members.length = 0;
    this.groups.delete(g.id);
  }

  createEventFd(initval: bigint, semaphore: boolean): SimEventFd {
    return new SimEventFd(this.nextEventFd++, initval, semaphore, (t) => { this.log(t); });
  }

  get sysfs(): VfsDir {
    return this.sysfsTree.root;
  }

  addSysfsNode(dirPath: string, name: string, node: VfsNode): () => void {
    return this.sysfsTree.addNode(dirPath, name, node);
  }

  /**
   * Resolves a path below /sys (symlinks followed, the last one only when `follow`): the node and its
   * canonical path. ENOENT when absent.
   */
  lookupSysfs(path: string, follow = true): { node: VfsNode; path: string } {
    return this.sysfsTree.resolve(path, follow);
  }

  log(text: string): void {
    this.logLines.push({ time: this.clock.now(), text });
  }

  logEntries(): readonly { time: number; text: string }[] {
    return this.logLines;
  }
}

/**
 * Builds a simulated host platform:
 * ```ts
 * simPlatform({
 *   iommu: 'vtd',
 *   devices: [
 *     { bdf: '0000:00:03.0', fn: myFunction },
 *     { bdf: '0000:00:04.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
 *     { bdf: '0000:01:00.0', fn: other, driver: 'e1000' },
 *   ],
 *   hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }],
 * });
 * ```
 * Invalid topologies throw `SysError` EINVAL (bad address, unknown driver, bridge loops) or EEXIST (duplicate).
 * With `iommu: 'spapr'` the result is a `SimPlatform<SpaprIommu>`: its groups are PEs (`SpaprIommuGroup`).
 */
export function simPlatform(options: SimPlatformOptions & { readonly iommu: SpaprIommuOption }): SimPlatform<SpaprIommu>;
export function simPlatform(options?: SimPlatformOptions & { readonly iommu?: VtdIommuOption }): SimPlatform;
export function simPlatform(options?: SimPlatformOptions): SimPlatform<SimIommuModel>;
export function simPlatform(options: SimPlatformOptions = {}): SimPlatform<SimIommuModel> {
  return new SimPlatform<SimIommuModel>(options);
}
