/**
 * The simulated PCI bus: topology from `simPlatform({ devices })`, IOMMU groups formed by Linux's rules
 * (iommu.c pci_device_group with pci_acs_enabled / pci_acs_path_enabled / pci_for_each_dma_alias), host drivers
 * with binding and DMA-ownership checks (driver_managed_dma), resets, and interrupt routing from device models.
 */
import type {
  Clock,
  IommuHardware,
  PciDeviceHandle,
  PciDma,
  PciDriver,
  PciBus,
  PciFunction,
  PciFunctionContext,
} from '@vfio-ts/platform';
import {
  PCI_ACS_CAP,
  PCI_ACS_CR,
  PCI_ACS_CTRL,
  PCI_ACS_EC,
  PCI_ACS_RR,
  PCI_ACS_SV,
  PCI_ACS_UF,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CLASS_REVISION,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL2,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_FLAGS,
  PCI_EXP_LNKCTL,
  PCI_PM_CTRL,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_PMC,
  PCI_PRIMARY_BUS,
  PCI_SECONDARY_BUS,
  PCI_SUBORDINATE_BUS,
  isSysError,
  sysError,
} from '@vfio-ts/uapi';
import { ConfigSpaceFunction, PCI, findCapability, findExtCapability, type ConfigReader } from './pci-config.js';
import type { DmaChunk, SimGroup } from './group.js';
import type { SimPhysicalMemory } from './physical.js';

/** A PCI function of the topology. */
export interface SimPciFunctionEntry {
  /** 'DDDD:BB:DD.F' in hex. */
  readonly bdf: string;
  readonly fn: PciFunction;
  /**
   * Driver bound at boot: a `hostDrivers` name, 'pci-stub' or 'pcieport'. Any other name (e.g. 'vfio-pci', which
   * its plugin registers later) becomes the device's driver_override, so the device binds when that driver
   * registers.
   */
  readonly driver?: string;
  /** Overrides ACS detection for this function (like a kernel ACS quirk). */
  readonly acs?: boolean;
}

/** A bridge of the topology; its config space is synthesized (QEMU's ids). */
export interface SimPciBridgeEntry {
  readonly bdf: string;
  readonly bridge: 'pcie-root-port' | 'pcie-switch-upstream' | 'pcie-switch-downstream' | 'pci-bridge';
  /** Bus number behind the bridge. */
  readonly secondaryBus: number;
  /** ACS (source validation, request/completion redirect, upstream forwarding) implemented and enabled. */
  readonly acs?: boolean;
}

/** One entry of `simPlatform({ devices })`. */
export type SimPciDeviceEntry = SimPciFunctionEntry | SimPciBridgeEntry;

/** A host driver stub of `simPlatform({ hostDrivers })`. */
export interface SimHostDriverSpec {
  readonly name: string;
  /** vendor:device ids ('8086:100e'). */
  readonly ids: readonly string[];
  /** Whether the driver does DMA of its own (default true: not driver-managed, blocks user ownership). */
  readonly dma?: boolean;
}

/** A PCI address: domain, bus, device (slot) and function numbers. */
export interface Bdf {
  readonly domain: number;
  readonly bus: number;
  readonly dev: number;
  readonly fn: number;
}

const BDF_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;

/** Parses 'DDDD:BB:DD.F'; EINVAL otherwise. */
export function parseBdf(text: string): Bdf {
  const m = BDF_RE.exec(text);
  const dev = m ? parseInt(m[3]!, 16) : 0x20;
  if (!m || dev > 0x1f) throw sysError('EINVAL', `bad PCI address '${text}'`);
  return { domain: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), dev, fn: parseInt(m[4]!, 10) };
}

const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');

/** 'DDDD:BB:DD.F' from its parts. */
export function formatBdf(b: Bdf): string {
  return `${hex(b.domain, 4)}:${hex(b.bus, 2)}:${hex(b.dev, 2)}.${b.fn}`;
}

const bdfKey = (b: Bdf): number => ((b.domain * 256 + b.bus) * 32 + b.dev) * 8 + b.fn;

/** ACS flags Linux requires for isolation (drivers/iommu/iommu.c REQ_ACS_FLAGS). */
const REQ_ACS_FLAGS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

const BRIDGE_IDS: Record<SimPciBridgeEntry['bridge'], { vendor: number; device: number; expType: number | undefined }> = {
  'pcie-root-port': { vendor: 0x1b36, device: 0x000c, expType: PCI.EXP_TYPE_ROOT_PORT },
  'pcie-switch-upstream': { vendor: 0x104c, device: 0x8232, expType: PCI.EXP_TYPE_UPSTREAM },
  'pcie-switch-downstream': { vendor: 0x104c, device: 0x8233, expType: PCI.EXP_TYPE_DOWNSTREAM },
  'pci-bridge': { vendor: 0x1b36, device: 0x0001, expType: undefined },
};

/** Synthesizes a type-1 config space for a bridge entry. */
function bridgeFunction(e: SimPciBridgeEntry, bus: number, subordinate: number, multifunction: boolean): ConfigSpaceFunction {
  const ids = BRIDGE_IDS[e.bridge];
  const pcie = ids.expType !== undefined;
  const c = new Uint8Array(pcie ? 4096 : 256);
  const dv = new DataView(c.buffer);
  dv.setUint16(PCI.VENDOR_ID, ids.vendor, true);
  dv.setUint16(PCI.DEVICE_ID, ids.device, true);
  dv.setUint16(PCI.STATUS, PCI.STATUS_CAP_LIST, true);
  dv.setUint32(PCI_CLASS_REVISION, 0x06040000, true); // class 0604 (PCI-to-PCI bridge), revision 0
  c[PCI.HEADER_TYPE] = 0x01 | (multifunction ? 0x80 : 0);
  c[PCI_PRIMARY_BUS] = bus;
  c[PCI_SECONDARY_BUS] = e.secondaryBus;
  c[PCI_SUBORDINATE_BUS] = subordinate;
  const cap = 0x40; // the one standard capability
  const ext = 0x100; // the first extended capability
  c[PCI.CAPABILITY_LIST] = cap;
  if (pcie) {
    // PCIe capability v2 with the port type; DevCap FLR is not set on ports.
    c[cap + PCI_CAP_LIST_ID] = PCI.CAP_ID_EXP;
    c[cap + PCI_CAP_LIST_NEXT] = 0x00;
    dv.setUint16(cap + PCI_EXP_FLAGS, 0x0002 | (ids.expType! << 4), true);
    if (e.acs) {
      // ACS extended capability, every control Linux asks for implemented and enabled (pci_enable_acs).
      dv.setUint32(ext, (0x1 << 16) | PCI.EXT_CAP_ID_ACS, true);
      dv.setUint16(ext + PCI_ACS_CAP, 0x005f, true);
      dv.setUint16(ext + PCI_ACS_CTRL, 0x001f, true);
    }
  } else {
    // Conventional bridge: a PM capability so the chain is not empty.
    c[cap + PCI_CAP_LIST_ID] = PCI.CAP_ID_PM;
    dv.setUint16(cap + PCI_PM_PMC, 0x0003, true);
    dv.setUint16(cap + PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET, true);
  }
  return new ConfigSpaceFunction({ config: c, bars: [] });
}

/** A registered driver with its dynamic ids. */
interface DriverEntry {
  readonly driver: PciDriver;
  readonly dynamicIds: Set<string>;
  /** Built-in match rule (pcieport binds PCIe ports by class). */
  readonly matchExtra?: (dev: SimPciDevice) => boolean;
}

/** What the bus needs from the platform. */
export interface PciBusHost {
  readonly memory: SimPhysicalMemory;
  /** The IOMMU (any model); `undefined` = no IOMMU, devices get no group. */
  readonly iommu: IommuHardware | undefined;
  readonly clock: Clock;
  log(text: string): void;
  /** Allocates the next hardware IOMMU group of the platform's IOMMU model (a VT-d group, a POWER PE...). */
  newGroup(): SimGroup;
}

/** A PCI function on the simulated bus (Linux struct pci_dev). */
export class SimPciDevice implements PciDeviceHandle {
  readonly bdf: string;
  readonly addr: Bdf;
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  readonly classCode: number;
  readonly revision: number;
  readonly headerType: number;
  /** Config space size: 4096 with a PCIe capability, else 256. */
  readonly cfgSize: number;
  /** PCIe port type (flags bits 7:4), or undefined for conventional PCI. */
  readonly expType: number | undefined;
  multifunction = false;
  /** Set for bridges: the bus behind it. */
  secondaryBus: number | undefined;
  bridgeKind: SimPciBridgeEntry['bridge'] | undefined;
  parentDevice: SimPciDevice | undefined;
  group: SimGroup | undefined;
  driverName: string | undefined;
  driverOverride = '';
  /** Pending unbind, while the driver's remove runs. */
  unbinding: Promise<void> | undefined;
  /** Resource start addresses as enumerated (BAR values at boot). */
  readonly resourceStarts: bigint[] = [];
  readonly romStart: bigint;
  private intxHandler: ((level: boolean) => void) | undefined;
  private msiHandler: ((vector: number) => void) | undefined;
  private intxLevel = false;
  /** Interrupts delivered, for describe/tests. */
  readonly interruptCounts = { intx: 0, msi: 0 };
  readonly acsOverride: boolean | undefined;

  constructor(
    bdf: Bdf,
    readonly fn: PciFunction,
    private readonly owner: SimPciBus,
    acs: boolean | undefined,
  ) {
    this.addr = bdf;
    this.bdf = formatBdf(bdf);
    this.acsOverride = acs;
    const r = this.read;
    this.vendor = r(PCI.VENDOR_ID, 2);
    this.device = r(PCI.DEVICE_ID, 2);
    if (this.vendor === 0xffff || this.vendor === 0) throw sysError('EINVAL', `${this.bdf}: config space has no vendor id`);
    this.revision = r(PCI.REVISION_ID, 1);
    this.classCode = r(PCI_CLASS_REVISION, 4) >>> 8;
    const ht = r(PCI.HEADER_TYPE, 1);
    this.headerType = ht & 0x7f;
    this.multifunction = (ht & 0x80) !== 0;
    this.subsystemVendor = this.headerType === 0 ? r(PCI.SUBSYSTEM_VENDOR_ID, 2) : 0;
    this.subsystemDevice = this.headerType === 0 ? r(PCI.SUBSYSTEM_ID, 2) : 0;
    const exp = findCapability(r, PCI.CAP_ID_EXP);
    this.expType = exp ? (r(exp + PCI_EXP_FLAGS, 2) >> 4) & 0xf : undefined;
    this.cfgSize = fn instanceof ConfigSpaceFunction ? fn.configSize : exp ? 4096 : 256;
    // Resources as the PCI core enumerated them: the BAR addresses firmware assigned.
    for (const b of fn.bars) {
      if (b.size === 0n || b.index > 5) continue;
      let start = BigInt(r(PCI.BASE_ADDRESS_0 + 4 * b.index, 4) >>> 0) & (b.type === 'io' ? ~3n : ~15n) & 0xffffffffn;
      if (b.type === 'mem64' && b.index < 5) start |= BigInt(r(PCI.BASE_ADDRESS_0 + 4 * (b.index + 1), 4) >>> 0) << 32n;
      this.resourceStarts[b.index] = start;
    }
    const romReg = this.headerType === 1 ? PCI.ROM_ADDRESS1 : PCI.ROM_ADDRESS;
    this.romStart = (fn.romSize ?? 0n) > 0n ? BigInt(r(romReg, 4) >>> 0) & 0xfffff800n : 0n;
  }

  /** Config read that never throws (a model error reads as all ones, like a master abort). */
  readonly read: ConfigReader = (offset, size) => {
    try {
      return this.fn.configRead(offset, size) >>> 0;
    } catch {
      return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    }
  };

  get iommuGroup(): SimGroup | undefined {
    return this.group;
  }

  get driver(): string | undefined {
    return this.driverName;
  }

  /** Number of the bus the function sits on. */
  get bus(): number {
    return this.addr.bus;
  }

  get parent(): string | undefined {
    return this.parentDevice?.bdf;
  }

  get isPcie(): boolean {
    return this.expType !== undefined;
  }

  /** pci_acs_enabled(pdev, REQ_ACS_FLAGS). */
  acsEnabled(): boolean {
    if (this.acsOverride !== undefined) return this.acsOverride;
    if (this.expType === undefined) return false; // conventional PCI never isolates
    switch (this.expType) {
      case PCI.EXP_TYPE_PCIE_BRIDGE:
      case PCI.EXP_TYPE_PCI_BRIDGE:
      case PCI.EXP_TYPE_RC_EC:
        return false;
      case PCI.EXP_TYPE_DOWNSTREAM:
      case PCI.EXP_TYPE_ROOT_PORT:
        return this.acsFlagsEnabled();
      case PCI.EXP_TYPE_ENDPOINT:
      case PCI.EXP_TYPE_UPSTREAM:
      case PCI.EXP_TYPE_LEG_END:
      case PCI.EXP_TYPE_RC_END:
        if (!this.multifunction) return true;
        return this.acsFlagsEnabled();
      default:
        return true;
    }
  }

  /** pci_acs_flags_enabled: controls missing from the capability count as hard-wired on (except EC). */
  private acsFlagsEnabled(): boolean {
    const pos = findExtCapability(this.read, this.cfgSize, PCI.EXT_CAP_ID_ACS);
    if (!pos) return false;
    const cap = this.read(pos + PCI_ACS_CAP, 2);
    const ctrl = this.read(pos + PCI_ACS_CTRL, 2);
    const flags = REQ_ACS_FLAGS & (cap | PCI_ACS_EC);
    return (ctrl & flags) === flags;
  }

  // ---- resets ----------------------------------------------------------------------------------------------

  private hasFlr(): boolean {
    const exp = findCapability(this.read, PCI.CAP_ID_EXP);
    if (exp && this.read(exp + 4, 4) & (1 << 28)) return true;
    const af = findCapability(this.read, PCI.CAP_ID_AF);
    return af !== 0 && (this.read(af + 3, 1) & 3) === 3;
  }

  private hasPmReset(): boolean {
    const pm = findCapability(this.read, PCI.CAP_ID_PM);
    return pm !== 0 && (this.read(pm + 4, 2) & 0x0008) === 0;
  }

  /** pci_parent_bus_reset as a function reset: only a lone function below a bridge. */
  private hasBusFunctionReset(): boolean {
    if (!this.parentDevice || this.secondaryBus !== undefined) return false;
    return this.owner.devicesOnBus(this.addr.domain, this.addr.bus).length === 1;
  }

  get resetMethods(): readonly ('flr' | 'pm' | 'bus')[] {
    const out: ('flr' | 'pm' | 'bus')[] = [];
    if (this.hasFlr()) out.push('flr');
    if (this.hasPmReset()) out.push('pm');
    if (this.hasBusFunctionReset()) out.push('bus');
    return out;
  }

  functionReset(kind?: 'flr' | 'pm'): void {
    const methods = this.resetMethods;
    const method = kind ?? methods[0];
    if (method === undefined || !methods.includes(method)) {
      throw sysError('ENOTTY', `${this.bdf}: no ${kind ?? 'function'} reset available`);
    }
    if (method === 'bus') {
      this.owner.resetDevices([this]);
      return;
    }
    // pci_reset_function saves and restores the config state around the reset.
    const saved = this.saveState();
    this.fn.reset?.(method);
    this.restoreState(saved);
  }

  /** pci_save_state: the standard header and the PCIe control registers. */
  saveState(): { header: number[]; exp: number; expRegs: number[] } {
    const header = Array.from({ length: 16 }, (_, i) => this.read(4 * i, 4));
    const exp = findCapability(this.read, PCI.CAP_ID_EXP);
    const expRegs = exp
      ? [this.read(exp + PCI_EXP_DEVCTL, 2), this.read(exp + PCI_EXP_LNKCTL, 2), this.read(exp + PCI_EXP_DEVCTL2, 2)]
      : [];
    return { header, exp, expRegs };
  }

  /** pci_restore_state: PCIe controls, then the header from the top down, writing only what differs. */
  restoreState(s: { header: number[]; exp: number; expRegs: number[] }): void {
    const write = (o: number, size: 1 | 2 | 4, v: number): void => {
      try {
        this.fn.configWrite(o, size, v);
      } catch {
        /* a model that rejects a write keeps its value, as hardware ignores it */
      }
    };
    if (s.exp) {
      write(s.exp + PCI_EXP_DEVCTL, 2, s.expRegs[0]! & ~PCI_EXP_DEVCTL_BCR_FLR & 0xffff);
      write(s.exp + PCI_EXP_LNKCTL, 2, s.expRegs[1]!);
      write(s.exp + PCI_EXP_DEVCTL2, 2, s.expRegs[2]!);
    }
    for (let i = 15; i >= 0; i--) {
      if (i === 1) continue; // command/status last, below
      if (this.read(4 * i, 4) !== s.header[i]) write(4 * i, 4, s.header[i]!);
    }
    write(PCI.COMMAND, 2, s.header[1]! & 0xffff);
  }

  busResetScope(): readonly SimPciDevice[] {
    if (!this.parentDevice) throw sysError('ENOTTY', `${this.bdf} is on a root bus`);
    return this.owner.subtree(this.addr.domain, this.addr.bus);
  }

  busReset(): void {
    this.owner.resetDevices(this.busResetScope());
  }

  // ---- interrupts ------------------------------------------------------------------------------------------

  onIntx(handler: ((level: boolean) => void) | undefined): void {
    this.intxHandler = handler;
  }

  onMsi(handler: ((vector: number) => void) | undefined): void {
    this.msiHandler = handler;
  }

  /** Current INTx line level. */
  get intxAsserted(): boolean {
    return this.intxLevel;
  }

  /** Called by the model through its context. */
  setIntx(level: boolean): void {
    if (level === this.intxLevel) return;
    this.intxLevel = level;
    if (level) this.interruptCounts.intx++;
    this.intxHandler?.(level);
  }

  msiNotify(vector: number): void {
    this.interruptCounts.msi++;
    this.msiHandler?.(vector);
  }

  /** The context handed to the model. */
  makeContext(host: PciBusHost): PciFunctionContext {
    const dma: PciDma = {
      read: (iova, length) => {
        const chunks = this.translate(host, iova, length, false);
        const out = new Uint8Array(length);
        let done = 0;
        for (const c of chunks) {
          out.set(host.memory.read(c.pa, c.length), done);
          done += c.length;
        }
        return out;
      },
      write: (iova, data) => {
        const chunks = this.translate(host, iova, data.length, true);
        let done = 0;
        for (const c of chunks) {
          host.memory.write(c.pa, data.subarray(done, done + c.length));
          done += c.length;
        }
      },
    };
    return {
      bdf: this.bdf,
      dma,
      setIntx: (level) => {
        this.setIntx(level);
      },
      msiNotify: (vector) => {
        this.msiNotify(vector);
      },
      clock: host.clock,
    };
  }

  private translate(host: PciBusHost, iova: bigint, length: number, write: boolean): DmaChunk[] {
    if (!Number.isInteger(length) || length < 0 || iova < 0n) throw sysError('EINVAL', 'bad DMA range');
    if (this.group?.hardware) return this.group.translateDma(this.bdf, iova, length, write);
    return [{ pa: iova, length }];
  }
}

/** The bus: devices in BDF order, drivers in registration order. */
export class SimPciBus implements PciBus {
  private readonly byBdf = new Map<string, SimPciDevice>();
  private ordered: SimPciDevice[] = [];
  private readonly drivers = new Map<string, DriverEntry>();

  constructor(private readonly host: PciBusHost) {}

  /** Builds the topology, forms IOMMU groups and binds boot drivers. */
  populate(entries: readonly SimPciDeviceEntry[], hostDrivers: readonly SimHostDriverSpec[]): void {
    // Built-in drivers: pci-stub (driver-managed DMA, binds only through new_id / driver_override) and pcieport.
    this.addDriver({ name: 'pci-stub', ids: [], driverManagedDma: true, probe: () => undefined, remove: () => undefined });
    this.addDriver(
      { name: 'pcieport', driverManagedDma: true, probe: () => undefined, remove: () => undefined },
      (d) => d.bridgeKind !== undefined && d.isPcie,
    );
    for (const h of hostDrivers) {
      if (this.drivers.has(h.name)) throw sysError('EINVAL', `host driver '${h.name}' declared twice`);
      for (const id of h.ids) parseId(id);
      this.addDriver({
        name: h.name,
        ids: h.ids.map((i) => i.toLowerCase()),
        driverManagedDma: h.dma === false,
        probe: () => undefined,
        remove: () => undefined,
      });
    }
    const parsed = entries.map((e) => ({ e, addr: parseBdf(e.bdf) }));
    const seen = new Set<number>();
    for (const { e, addr } of parsed) {
      if (seen.has(bdfKey(addr))) throw sysError('EEXIST', `duplicate PCI address ${e.bdf}`);
      seen.add(bdfKey(addr));
    }
    // Secondary buses → bridge, and the subordinate range of every bridge.
    const bridgeOfBus = new Map<string, { e: SimPciBridgeEntry; addr: Bdf }>();
    for (const { e, addr } of parsed) {
      if (!('bridge' in e)) continue;
      if (!Number.isInteger(e.secondaryBus) || e.secondaryBus <= addr.bus || e.secondaryBus > 255) {
        throw sysError('EINVAL', `${e.bdf}: secondary bus must be above the bridge's own bus`);
      }
      if (!(e.bridge in BRIDGE_IDS)) throw sysError('EINVAL', `${e.bdf}: unknown bridge kind`);
      const k = `${addr.domain}:${e.secondaryBus}`;
      if (bridgeOfBus.has(k)) throw sysError('EINVAL', `bus ${e.secondaryBus} has two bridges`);
      bridgeOfBus.set(k, { e, addr });
    }
    const slotCount = new Map<string, number>();
    for (const { addr } of parsed) {
      const k = `${addr.domain}:${addr.bus}:${addr.dev}`;
      slotCount.set(k, (slotCount.get(k) ?? 0) + 1);
    }
    const subordinate = (bus: number, domain: number): number => {
      let max = bus;
      for (const [k, b] of bridgeOfBus) {
        if (b.addr.domain === domain && b.addr.bus === bus) max = Math.max(max, subordinate(Number(k.split(':')[1]), domain));
      }
      return max;
    };
    for (const { e, addr } of parsed) {
      const multi = (slotCount.get(`${addr.domain}:${addr.bus}:${addr.dev}`) ?? 0) > 1;
      let dev: SimPciDevice;
      if ('bridge' in e) {
        const fn = bridgeFunction(e, addr.bus, subordinate(e.secondaryBus, addr.domain), multi);
        dev = new SimPciDevice(addr, fn, this, undefined);
        dev.secondaryBus = e.secondaryBus;
        dev.bridgeKind = e.bridge;
      } else {
        if (typeof e.fn !== 'object' || typeof e.fn.configRead !== 'function') {
          throw sysError('EINVAL', `${e.bdf}: fn is not a PCI function`);
        }
        dev = new SimPciDevice(addr, e.fn, this, e.acs);
        if (dev.headerType === 1) throw sysError('EINVAL', `${e.bdf}: a bridge must be declared with 'bridge'`);
      }
      if (multi) dev.multifunction = true;
      this.byBdf.set(dev.bdf, dev);
    }
    this.ordered = [...this.byBdf.values()].sort((a, b) => bdfKey(a.addr) - bdfKey(b.addr));
    for (const dev of this.ordered) {
      const b = bridgeOfBus.get(`${dev.addr.domain}:${dev.addr.bus}`);
      dev.parentDevice = b ? this.byBdf.get(formatBdf(b.addr)) : undefined;
    }
    // A bridge below its own secondary bus would make a cycle.
    for (const dev of this.ordered) {
      let p = dev.parentDevice;
      for (let hops = 0; p; hops++, p = p.parentDevice) {
        if (p === dev || hops > 256) throw sysError('EINVAL', `${dev.bdf}: bridge loop in the topology`);
      }
    }
    this.enableAcs();
    if (this.host.iommu) for (const dev of this.ordered) this.ensureGroup(dev);
    for (const dev of this.ordered) dev.fn.attach?.(dev.makeContext(this.host));
    // Boot-time binding: bridges to pcieport, functions to the driver their entry names.
    for (const { e } of parsed) {
      const dev = this.byBdf.get(parseBdfNormalized(e.bdf))!;
      const name = 'bridge' in e ? (dev.isPcie ? 'pcieport' : undefined) : e.driver;
      if (name === undefined) continue;
      if (typeof name !== 'string' || name === '') throw sysError('EINVAL', `${e.bdf}: bad driver name`);
      const entry = this.drivers.get(name);
      // A driver that registers later (vfio-pci comes with its plugin) gets the device through driver_override.
      if (!entry) dev.driverOverride = name;
      else this.attach(dev, entry);
    }
  }

  /** pci_enable_acs at enumeration: turn on every ACS control the capability implements. */
  private enableAcs(): void {
    for (const dev of this.ordered) {
      const pos = findExtCapability(dev.read, dev.cfgSize, PCI.EXT_CAP_ID_ACS);
      if (!pos) continue;
      const cap = dev.read(pos + PCI_ACS_CAP, 2);
      const ctrl = dev.read(pos + PCI_ACS_CTRL, 2);
      const want = ctrl | (cap & 0x1f);
      if (want !== ctrl) {
        try {
          dev.fn.configWrite(pos + PCI_ACS_CTRL, 2, want);
        } catch {
          /* read-only control: ACS stays as the hardware has it */
        }
      }
    }
  }

  // ---- IOMMU groups (iommu.c pci_device_group) ---------------------------------------------------------------

  private ensureGroup(dev: SimPciDevice): SimGroup {
    if (dev.group) return dev.group;
    const group = this.findGroup(dev) ?? this.host.newGroup();
    dev.group = group;
    group.members.push(dev.bdf);
    return group;
  }

  private findGroup(dev: SimPciDevice): SimGroup | undefined {
    // DMA aliases (pci_for_each_dma_alias): bridges to conventional PCI take over their subordinates' requester id.
    const pdev = dev;
    for (let p = dev.parentDevice; p; p = p.parentDevice) {
      const t = p.expType;
      if (t === PCI.EXP_TYPE_ROOT_PORT || t === PCI.EXP_TYPE_UPSTREAM || t === PCI.EXP_TYPE_DOWNSTREAM) continue;
      // The bridge was enumerated (and grouped) before anything behind it.
      return this.ensureGroup(p);
    }
    // Up to the first bridge whose path to the root is ACS-isolated: an unisolated parent bridge's group is ours.
    const up = pdev.parentDevice;
    if (up && !this.acsPathEnabled(up)) return this.ensureGroup(up);
    // Functions of a multifunction device without ACS share a group (get_pci_function_alias_group).
    if (pdev.multifunction && !pdev.acsEnabled()) {
      for (const tmp of this.ordered) {
        if (tmp === pdev || tmp.addr.domain !== pdev.addr.domain || tmp.addr.bus !== pdev.addr.bus) continue;
        if (tmp.addr.dev !== pdev.addr.dev || tmp.acsEnabled()) continue;
        if (tmp.group) return tmp.group;
      }
    }
    return undefined;
  }

  /** pci_acs_path_enabled(start, NULL): every bridge from `start` to the root bus isolates. */
  private acsPathEnabled(start: SimPciDevice): boolean {
    for (let p: SimPciDevice | undefined = start; p; p = p.parentDevice) {
      if (!p.acsEnabled()) return false;
    }
    return true;
  }

  // ---- topology queries ------------------------------------------------------------------------------------

  devices(): readonly SimPciDevice[] {
    return this.ordered;
  }

  device(bdf: string): SimPciDevice | undefined {
    return this.byBdf.get(bdf.toLowerCase());
  }

  /** Functions on one bus. */
  devicesOnBus(domain: number, bus: number): SimPciDevice[] {
    return this.ordered.filter((d) => d.addr.domain === domain && d.addr.bus === bus);
  }

  /** Functions on `bus` and every bus below it. */
  subtree(domain: number, bus: number): SimPciDevice[] {
    const out: SimPciDevice[] = [];
    const walk = (b: number): void => {
      for (const d of this.devicesOnBus(domain, b)) {
        out.push(d);
        if (d.secondaryBus !== undefined) walk(d.secondaryBus);
      }
    };
    walk(bus);
    return out;
  }

  /** Secondary bus reset of the devices' bus: save, reset, restore every function (pci_bus_reset). */
  resetDevices(devs: readonly SimPciDevice[]): void {
    const saved = devs.map((d) => d.saveState());
    for (const d of devs) d.fn.reset?.('bus');
    devs.forEach((d, i) => {
      d.restoreState(saved[i]!);
    });
  }

  // ---- drivers ---------------------------------------------------------------------------------------------

  private addDriver(driver: PciDriver, matchExtra?: (dev: SimPciDevice) => boolean): void {
    const entry: DriverEntry = matchExtra ? { driver, dynamicIds: new Set(), matchExtra } : { driver, dynamicIds: new Set() };
    this.drivers.set(driver.name, entry);
  }

  driver(name: string): PciDriver | undefined {
    return this.drivers.get(name)?.driver;
  }

  /** Names of registered drivers, in registration order. */
  driverNames(): string[] {
    return [...this.drivers.keys()];
  }

  /** Dynamic ids of a driver ('vvvv:dddd'). */
  dynamicIds(name: string): readonly string[] {
    return [...(this.drivers.get(name)?.dynamicIds ?? [])];
  }

  /** pci_match_device: driver_override first, then dynamic ids, then the static table. */
  private matches(dev: SimPciDevice, entry: DriverEntry): boolean {
    if (dev.driverOverride !== '') return dev.driverOverride === entry.driver.name;
    const id = `${hex(dev.vendor, 4)}:${hex(dev.device, 4)}`;
    if (entry.dynamicIds.has(id)) return true;
    if (entry.driver.ids?.some((x) => x.toLowerCase() === id)) return true;
    return entry.matchExtra?.(dev) ?? false;
  }

  registerDriver(driver: PciDriver): () => Promise<void> {
    if (this.drivers.has(driver.name)) throw sysError('EBUSY', `driver '${driver.name}' is already registered`);
    for (const id of driver.ids ?? []) parseId(id);
    this.addDriver(driver);
    const entry = this.drivers.get(driver.name)!;
    this.attachAll(entry);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      for (const dev of this.ordered) {
        if (dev.driverName === driver.name) {
          try {
            await this.unbind(dev.bdf);
          } catch (e) {
            if (!isSysError(e, 'ENODEV')) throw e;
          }
        }
      }
      this.drivers.delete(driver.name);
    };
  }

  /** driver_attach: probe every unbound matching device; failures are logged, not thrown. */
  private attachAll(entry: DriverEntry): void {
    for (const dev of this.ordered) {
      if (dev.driverName !== undefined || !this.matches(dev, entry)) continue;
      try {
        this.attach(dev, entry);
      } catch (e) {
        this.logProbeFailure(entry, dev, e);
      }
    }
  }

  private logProbeFailure(entry: DriverEntry, dev: SimPciDevice, e: unknown): void {
    // call_driver_probe: -ENODEV and -ENXIO mean "not mine" and stay quiet.
    if (isSysError(e, 'ENODEV') || isSysError(e, 'ENXIO')) return;
    const code = isSysError(e) ? e.code : 5;
    this.host.log(`${entry.driver.name} ${dev.bdf}: probe with driver ${entry.driver.name} failed with error -${code}`);
  }

  /** really_probe: DMA-ownership check, then the driver's probe. */
  private attach(dev: SimPciDevice, entry: DriverEntry): void {
    if (dev.driverName !== undefined || dev.unbinding) throw sysError('EBUSY', `${dev.bdf} is already bound`);
    // Software groups (no-IOMMU, emulated) have no default domain to share: no ownership checks.
    const group = dev.group?.hardware ? dev.group : undefined;
    const kernelDma = !entry.driver.driverManagedDma;
    if (kernelDma && group) {
      // iommu_device_use_default_domain: a DMA-doing driver cannot bind while user space owns the group.
      if (group.dmaOwner !== undefined) throw sysError('EBUSY', `IOMMU group ${group.id} is owned by user space`);
      group.kernelUsers++;
    }
    try {
      entry.driver.probe(dev);
    } catch (e) {
      if (kernelDma && group) group.kernelUsers--;
      throw e;
    }
    dev.driverName = entry.driver.name;
  }

  bind(bdf: string, name: string): void {
    const dev = this.device(bdf);
    const entry = this.drivers.get(name);
    if (!dev || !entry) throw sysError('ENODEV', `no device ${bdf} or driver ${name}`);
    // bind_store: the driver must match the device (ids or driver_override), else ENODEV.
    if (!this.matches(dev, entry)) throw sysError('ENODEV', `driver ${name} does not match ${dev.bdf}`);
    this.attach(dev, entry);
  }

  unbind(bdf: string): Promise<void> {
    const dev = this.device(bdf);
    if (!dev) return Promise.reject(sysError('ENODEV', `no device ${bdf}`));
    if (dev.unbinding) {
      const pending = dev.unbinding;
      return pending.then(() => {
        throw sysError('ENODEV', `${dev.bdf} is not bound`);
      });
    }
    const name = dev.driverName;
    if (name === undefined) return Promise.reject(sysError('ENODEV', `${dev.bdf} is not bound`));
    const entry = this.drivers.get(name)!;
    const finish = (): void => {
      dev.driverName = undefined;
      dev.unbinding = undefined;
      if (!entry.driver.driverManagedDma && dev.group?.hardware) dev.group.kernelUsers--;
    };
    let result: void | Promise<void>;
    try {
      result = entry.driver.remove(dev);
    } catch (e) {
      this.host.log(`${name} ${dev.bdf}: remove failed: ${String(e)}`);
      result = undefined;
    }
    if (!(result instanceof Promise)) {
      finish();
      return Promise.resolve();
    }
    dev.unbinding = result.then(finish, (e: unknown) => {
      this.host.log(`${name} ${dev.bdf}: remove failed: ${String(e)}`);
      finish();
    });
    return dev.unbinding;
  }

  /** Unbinds against a specific driver (sysfs drivers/<name>/unbind): ENODEV unless bound to it. */
  unbindFrom(bdf: string, name: string): Promise<void> {
    const dev = this.device(bdf);
    if (!dev || dev.driverName !== name || dev.unbinding) return Promise.reject(sysError('ENODEV', `${bdf} is not bound to ${name}`));
    return this.unbind(bdf);
  }

  probe(bdf: string): void {
    const dev = this.device(bdf);
    if (!dev) throw sysError('ENODEV', `no device ${bdf}`);
    if (dev.driverName !== undefined || dev.unbinding) return;
    for (const entry of this.drivers.values()) {
      if (!this.matches(dev, entry)) continue;
      try {
        this.attach(dev, entry);
        return;
      } catch (e) {
        this.logProbeFailure(entry, dev, e);
      }
    }
  }

  addDynamicId(driver: string, id: string): void {
    const entry = this.drivers.get(driver);
    if (!entry) throw sysError('ENODEV', `no driver ${driver}`);
    const norm = normalizeId(id);
    // new_id_store: EEXIST when the driver already matches the id.
    if (entry.dynamicIds.has(norm) || entry.driver.ids?.some((x) => x.toLowerCase() === norm)) {
      throw sysError('EEXIST', `driver ${driver} already handles ${norm}`);
    }
    entry.dynamicIds.add(norm);
    this.attachAll(entry);
  }

  /** sysfs remove_id: ENODEV when the dynamic id is not there. */
  removeDynamicId(driver: string, id: string): void {
    const entry = this.drivers.get(driver);
    if (!entry || !entry.dynamicIds.delete(normalizeId(id))) throw sysError('ENODEV', `no dynamic id ${id}`);
  }
}

function parseBdfNormalized(text: string): string {
  return formatBdf(parseBdf(text));
}

/** Parses 'vvvv:dddd' (hex); EINVAL otherwise. */
function parseId(id: string): [number, number] {
  const m = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(id.trim());
  if (!m) throw sysError('EINVAL', `bad PCI id '${id}'`);
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16)];
}

function normalizeId(id: string): string {
  const [v, d] = parseId(id);
  return `${hex(v, 4)}:${hex(d, 4)}`;
}
