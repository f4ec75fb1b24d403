/**
 * A user-space driver for the edu device, written against the system-call surface only: it opens the device through
 * VFIO the way QEMU does (container → group → viability → SET_CONTAINER → SET_IOMMU type1v2 → GET_DEVICE_FD → region
 * and IRQ infos), maps DMA memory, turns on memory decoding and bus mastering through the config region, and then
 * talks to BAR0: liveness, factorial with an MSI delivered through an eventfd, DMA both ways, and a device reset.
 * Every step is reported through `onStep`, so a CLI or a test can narrate what happened.
 */
import { EFD_NONBLOCK, PROT_READ, PROT_WRITE } from '@vfio-ts/platform';
import {
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  POLLIN,
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_RESET,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  cString,
  deviceInfo,
  disableIrqIndex,
  groupStatusFlags,
  intArg,
  irqInfo,
  isSysError,
  regionInfo,
  setIrqEventfds,
  type1Info,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import type {
  Type1InfoView,
  VfioDeviceInfoView,
  VfioDriverProcess,
  VfioIrqInfoView,
  VfioRegionInfoView,
} from '@vfio-ts/uapi';
import {
  EDU_BAR0_SIZE,
  EDU_DEFAULT_DMA_MASK,
  EDU_DMA_BUFFER_ADDR,
  EDU_DMA_BUFFER_SIZE,
  EDU_DMA_CMD,
  EDU_ID_VALUE,
  EDU_IRQ,
  EDU_PCI_ID,
  EDU_REG,
  EDU_STATUS,
} from '../regs.js';

const PAGE = 4096n;

/** The steps of the driver, in the order {@link runEduDemo} takes them. */
export type EduStepId =
  | 'container'
  | 'group'
  | 'iommu'
  | 'device'
  | 'regions'
  | 'irqs'
  | 'bar0'
  | 'bus-master'
  | 'dma-map'
  | 'identify'
  | 'liveness'
  | 'msi'
  | 'factorial'
  | 'dma-to-device'
  | 'dma-from-device'
  | 'reset'
  | 'close';

/** One step the driver took: what it did, what came back, and the system calls it made. */
export interface EduStep {
  readonly id: EduStepId;
  /** A short headline ("Open the container"). */
  readonly title: string;
  /** What came back, in words ("/dev/vfio/vfio → fd 3; API version 0; TYPE1v2 supported"). */
  readonly detail: string;
  /** The system calls made, as `name(args) = result` lines. */
  readonly calls: readonly string[];
  /** Host time (ms) when the step finished, when the caller gave a clock. */
  readonly at?: number;
}

/** Options of {@link EduVfioDriver.open} and {@link runEduDemo}. */
export interface EduDriverOptions {
  /** The edu device's PCI address, e.g. `0000:01:00.0`. */
  readonly bdf: string;
  /** The IOMMU group number; by default read from `/sys/bus/pci/devices/<bdf>/iommu_group`. */
  readonly group?: number;
  /** Called after each step. */
  readonly onStep?: (step: EduStep) => void;
  /** Host time in ms, stamped on each step (e.g. `() => host.platform.clock.now()`). */
  readonly now?: () => number;
  /** How BAR0 is reached: mmap it when the region allows (QEMU's way, default) or always pread/pwrite. */
  readonly mmio?: 'auto' | 'pread';
  /** How long (host ms) to wait for an interrupt or a completion before giving up (default 1000). */
  readonly timeoutMs?: number;
}

/** Options of {@link runEduDemo}. */
export interface EduDemoOptions extends EduDriverOptions {
  /** The number whose factorial the device computes (default 10). */
  readonly factorialOf?: number;
  /** Bytes moved each way by DMA, 1..4096 (default 4096, the whole edu buffer). */
  readonly dmaBytes?: number;
  /** The IOVA of the DMA buffer (default 0x100000; it must sit below the device's 28-bit DMA mask). */
  readonly iova?: bigint;
}

/** Everything {@link runEduDemo} found out. */
export interface EduDemoResult {
  readonly bdf: string;
  readonly group: number;
  readonly device: VfioDeviceInfoView;
  readonly regions: readonly (VfioRegionInfoView | { readonly index: number; readonly errno: string })[];
  readonly irqs: readonly (VfioIrqInfoView | { readonly index: number; readonly errno: string })[];
  readonly iommu: Type1InfoView;
  /** The ID register (0x010000ed for edu 1.0). */
  readonly id: number;
  readonly liveness: { readonly wrote: number; readonly read: number; readonly ok: boolean };
  readonly factorial: { readonly n: number; readonly value: number; readonly expected: number; readonly ok: boolean };
  readonly dma: {
    readonly iova: bigint;
    readonly toDevice: number;
    readonly fromDevice: number;
    /** The bytes read back from the device equal the bytes sent. */
    readonly verified: boolean;
  };
  /** Interrupts received: MSI signals counted on the eventfd (0 when the driver had to poll). */
  readonly interrupts: { readonly msi: number; readonly mode: 'msi' | 'polling' };
  readonly reset: { readonly done: boolean; readonly livenessAfter: number; readonly factorialAfter: number; readonly ok: boolean };
  /** BAR0 access path used. */
  readonly mmio: 'mmap' | 'pread';
  readonly steps: readonly EduStep[];
  /** Host time the run took (ms), when a clock was given. */
  readonly hostMs?: number;
  /** Every check passed. */
  readonly ok: boolean;
}

/** A step failed: which one, and the error underneath (a `SysError` keeps its errno). */
export class EduDriverError extends Error {
  readonly step: EduStepId;
  override readonly cause: unknown;
  constructor(step: EduStepId, cause: unknown) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'EduDriverError';
    this.step = step;
    this.cause = cause;
  }
}

const hex = (n: number | bigint, width = 0): string => `0x${n.toString(16).padStart(width, '0')}`;
const u32le = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};
const u64le = (v: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
};
const readU32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
const readU16 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(0, true);

/** n! modulo 2^32, what the edu factorial unit computes. */
export function eduFactorial(n: number): number {
  let f = 1n;
  for (let i = 2n; i <= BigInt(n); i++) f = (f * i) & 0xffffffffn;
  return Number(f);
}

/** A deterministic test pattern for DMA. */
function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    // xorshift32: cheap, deterministic, no two neighbouring bytes alike.
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

interface DmaBuffer {
  readonly vaddr: bigint;
  readonly iova: bigint;
  readonly size: bigint;
}

/**
 * The edu device opened through VFIO. {@link EduVfioDriver.open} does the QEMU-style setup; the methods drive the
 * device; {@link EduVfioDriver.close} undoes everything in reverse. Every method reports its step.
 *
 * @example
 * const edu = await EduVfioDriver.open(p, { bdf: '0000:01:00.0', onStep: (s) => console.log(s.title, '—', s.detail) });
 * await edu.enableMsi();
 * console.log(await edu.factorial(10)); // 3628800
 * edu.close();
 */
export class EduVfioDriver {
  readonly #p: VfioDriverProcess;
  readonly #options: EduDriverOptions;
  readonly #steps: EduStep[] = [];
  #calls: string[] = [];
  #container = -1;
  #group = -1;
  #device = -1;
  #groupNumber = -1;
  #info: VfioDeviceInfoView = { flags: 0, numRegions: 0, numIrqs: 0 };
  #iommu: Type1InfoView = { flags: 0, pgsizes: 0n, iovaRanges: [], caps: [] };
  #regions: (VfioRegionInfoView | { index: number; errno: string })[] = [];
  #irqs: (VfioIrqInfoView | { index: number; errno: string })[] = [];
  #bar0: VfioRegionInfoView | undefined;
  #config: VfioRegionInfoView | undefined;
  #bar0Map: { vaddr: bigint; length: bigint } | undefined;
  #dma: DmaBuffer[] = [];
  #eventfd = -1;
  #msiSignals = 0;
  #closed = false;

  private constructor(p: VfioDriverProcess, options: EduDriverOptions) {
    this.#p = p;
    this.#options = options;
  }

  /** The steps taken so far. */
  get steps(): readonly EduStep[] {
    return this.#steps;
  }

  /** The IOMMU group number. */
  get group(): number {
    return this.#groupNumber;
  }

  /** The open fds: container, group, device and the MSI eventfd (-1 when none). */
  get fds(): { readonly container: number; readonly group: number; readonly device: number; readonly eventfd: number } {
    return { container: this.#container, group: this.#group, device: this.#device, eventfd: this.#eventfd };
  }

  /** VFIO_DEVICE_GET_INFO as read at open. */
  get deviceInfo(): VfioDeviceInfoView {
    return this.#info;
  }

  /** Every region index below num_regions: its info, or the errno GET_REGION_INFO gave. */
  get regions(): readonly (VfioRegionInfoView | { readonly index: number; readonly errno: string })[] {
    return this.#regions;
  }

  /** Every IRQ index below num_irqs: its info, or the errno GET_IRQ_INFO gave. */
  get irqs(): readonly (VfioIrqInfoView | { readonly index: number; readonly errno: string })[] {
    return this.#irqs;
  }

  /** VFIO_IOMMU_GET_INFO of the container. */
  get iommu(): Type1InfoView {
    return this.#iommu;
  }

  /** How BAR0 is reached. */
  get mmio(): 'mmap' | 'pread' {
    return this.#bar0Map ? 'mmap' : 'pread';
  }

  /** MSI signals consumed from the eventfd so far. */
  get msiSignals(): number {
    return this.#msiSignals;
  }

  /** Whether MSI is bound to an eventfd. */
  get msiEnabled(): boolean {
    return this.#eventfd >= 0;
  }

  // ---- bookkeeping ---------------------------------------------------------------------------------------------

  #call(line: string): void {
    this.#calls.push(line);
  }

  #step(id: EduStepId, title: string, detail: string): EduStep {
    const at = this.#options.now?.();
    const step: EduStep = at === undefined ? { id, title, detail, calls: this.#calls } : { id, title, detail, calls: this.#calls, at };
    this.#calls = [];
    this.#steps.push(step);
    this.#options.onStep?.(step);
    return step;
  }

  /** Runs `fn` as step `id`; a failure becomes an {@link EduDriverError} naming the step. */
  async #run<T>(id: EduStepId, fn: () => T | Promise<T>): Promise<T> {
    this.#calls = [];
    try {
      return await fn();
    } catch (e) {
      this.#calls = [];
      throw e instanceof EduDriverError ? e : new EduDriverError(id, e);
    }
  }

  #ioctl(fd: number, name: string, request: number, arg?: number | Uint8Array, show?: string): number {
    const r = this.#p.ioctl(fd, request, arg);
    this.#call(`ioctl(${fd}, ${name}${show === undefined ? '' : `, ${show}`}) = ${r}`);
    return r;
  }

  // ---- open ----------------------------------------------------------------------------------------------------

  /**
   * Opens the device the QEMU way and enables memory decoding and bus mastering. On failure everything opened so
   * far is closed again and an {@link EduDriverError} names the failing step.
   */
  static async open(p: VfioDriverProcess, options: EduDriverOptions): Promise<EduVfioDriver> {
    const d = new EduVfioDriver(p, options);
    try {
      await d.#open();
      return d;
    } catch (e) {
      d.#teardown();
      throw e;
    }
  }

  async #open(): Promise<void> {
    const p = this.#p;
    const { bdf } = this.#options;
    await this.#run('container', () => {
      this.#container = p.open('/dev/vfio/vfio');
      this.#call(`open("/dev/vfio/vfio") = ${this.#container}`);
      const api = this.#ioctl(this.#container, 'VFIO_GET_API_VERSION', VFIO_GET_API_VERSION);
      if (api !== 0) throw new SysError('EINVAL', `VFIO API version ${api}, expected 0`);
      const v2 = this.#ioctl(this.#container, 'VFIO_CHECK_EXTENSION', VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU, 'VFIO_TYPE1v2_IOMMU');
      if (v2 !== 1) throw new SysError('EINVAL', 'the container does not offer VFIO_TYPE1v2_IOMMU');
      this.#step('container', 'Open the container', `/dev/vfio/vfio → fd ${this.#container}; API version ${api}; type1v2 IOMMU available`);
    });
    await this.#run('group', () => {
      if (this.#options.group !== undefined) this.#groupNumber = this.#options.group;
      else {
        const link = p.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`);
        this.#call(`readlink("/sys/bus/pci/devices/${bdf}/iommu_group") = "${link}"`);
        this.#groupNumber = Number(link.slice(link.lastIndexOf('/') + 1));
        if (!Number.isInteger(this.#groupNumber)) throw new SysError('ENODEV', `${bdf} has no IOMMU group`);
      }
      const path = `/dev/vfio/${this.#groupNumber}`;
      this.#group = p.open(path);
      this.#call(`open("${path}") = ${this.#group}`);
      const flags = groupStatusFlags(p, this.#group);
      this.#call(`ioctl(${this.#group}, VFIO_GROUP_GET_STATUS) = 0 (flags ${hex(flags)})`);
      // A group is usable only when every device in it is bound to vfio or to no driver (§2.8).
      if ((flags & VFIO_GROUP_FLAGS_VIABLE) === 0) throw new SysError('EPERM', `group ${this.#groupNumber} is not viable (a device in it is bound to a host driver)`);
      const arg = intArg(this.#container);
      this.#ioctl(this.#group, 'VFIO_GROUP_SET_CONTAINER', VFIO_GROUP_SET_CONTAINER, arg, `&${this.#container}`);
      this.#step('group', `Open IOMMU group ${this.#groupNumber}`, `${path} → fd ${this.#group}; viable; attached to container fd ${this.#container}`);
    });
    await this.#run('iommu', () => {
      this.#ioctl(this.#container, 'VFIO_SET_IOMMU', VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, 'VFIO_TYPE1v2_IOMMU');
      this.#iommu = type1Info(p, this.#container);
      this.#call(`ioctl(${this.#container}, VFIO_IOMMU_GET_INFO) = 0`);
      const ranges = this.#iommu.iovaRanges.map((r) => `${hex(r.start)}-${hex(r.end)}`).join(', ');
      this.#step('iommu', 'Select the type1v2 IOMMU', `page sizes ${hex(this.#iommu.pgsizes)}${ranges ? `; usable IOVA ${ranges}` : ''}`);
    });
    await this.#run('device', () => {
      const name = cString(bdf);
      this.#device = this.#ioctl(this.#group, 'VFIO_GROUP_GET_DEVICE_FD', VFIO_GROUP_GET_DEVICE_FD, name, `"${bdf}"`);
      this.#info = deviceInfo(p, this.#device);
      this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_INFO) = 0`);
      if ((this.#info.flags & VFIO_DEVICE_FLAGS_PCI) === 0) throw new SysError('ENODEV', `${bdf} is not a vfio-pci device`);
      const flags = [(this.#info.flags & VFIO_DEVICE_FLAGS_PCI) !== 0 ? 'PCI' : '', (this.#info.flags & VFIO_DEVICE_FLAGS_RESET) !== 0 ? 'RESET' : '']
        .filter(Boolean).join('|');
      this.#step('device', `Get the device fd for ${bdf}`, `fd ${this.#device}; flags ${hex(this.#info.flags)} (${flags}); ${this.#info.numRegions} regions, ${this.#info.numIrqs} IRQ indexes`);
    });
    await this.#run('regions', () => {
      for (let i = 0; i < this.#info.numRegions; i++) {
        try {
          const r = regionInfo(p, this.#device, i);
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_REGION_INFO, index ${i}) = 0`);
          this.#regions.push(r);
        } catch (e) {
          // VGA (index 8) answers EINVAL on a device that is no VGA device: part of the normal walk.
          if (!isSysError(e)) throw e;
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_REGION_INFO, index ${i}) = -${e.errno}`);
          this.#regions.push({ index: i, errno: e.errno });
        }
      }
      const bar0 = this.#regions[VFIO_PCI_BAR0_REGION_INDEX];
      const config = this.#regions[VFIO_PCI_CONFIG_REGION_INDEX];
      if (!bar0 || 'errno' in bar0 || bar0.size < EDU_BAR0_SIZE) throw new SysError('ENODEV', 'BAR0 is missing or smaller than edu\'s 1 MiB');
      if (!config || 'errno' in config || config.size < 256n) throw new SysError('ENODEV', 'the config region is missing');
      this.#bar0 = bar0;
      this.#config = config;
      const implemented = this.#regions.filter((r) => !('errno' in r) && r.size > 0n).length;
      this.#step('regions', 'Read the region infos', `${implemented} of ${this.#info.numRegions} regions implemented; BAR0 ${hex(bar0.size)} bytes (flags ${hex(bar0.flags)}), config ${config.size} bytes`);
    });
    await this.#run('irqs', () => {
      for (let i = 0; i < this.#info.numIrqs; i++) {
        try {
          const r = irqInfo(p, this.#device, i);
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_IRQ_INFO, index ${i}) = 0`);
          this.#irqs.push(r);
        } catch (e) {
          // ERR (index 3) answers EINVAL on a conventional PCI device.
          if (!isSysError(e)) throw e;
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_IRQ_INFO, index ${i}) = -${e.errno}`);
          this.#irqs.push({ index: i, errno: e.errno });
        }
      }
      const names = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'];
      const summary = this.#irqs.map((r) => `${names[r.index] ?? `#${r.index}`} ${'errno' in r ? r.errno : r.count}`).join(', ');
      this.#step('irqs', 'Read the IRQ infos', summary);
    });
    await this.#run('bar0', () => {
      const bar0 = this.#bar0!;
      let why = this.#options.mmio === 'pread' ? 'by choice' : 'the region is not mmap-able';
      if (this.#options.mmio !== 'pread' && (bar0.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0) {
        const length = EDU_BAR0_SIZE;
        try {
          const vaddr = p.mmap({ length, prot: PROT_READ | PROT_WRITE, shared: true, fd: this.#device, offset: bar0.offset });
          this.#call(`mmap(NULL, ${hex(length)}, PROT_READ|PROT_WRITE, MAP_SHARED, ${this.#device}, ${hex(bar0.offset)}) = ${hex(vaddr)}`);
          this.#bar0Map = { vaddr, length };
          this.#step('bar0', 'Map BAR0', `1 MiB of registers at ${hex(vaddr)} (mmap of the device fd at ${hex(bar0.offset)})`);
          return;
        } catch (e) {
          // QEMU too falls back to read/write on the device fd when a BAR cannot be mapped.
          if (!isSysError(e)) throw e;
          this.#call(`mmap(NULL, ${hex(length)}, PROT_READ|PROT_WRITE, MAP_SHARED, ${this.#device}, ${hex(bar0.offset)}) = -${e.errno}`);
          why = `mmap failed with ${e.errno}`;
        }
      }
      this.#step('bar0', 'Reach BAR0 through the device fd', `pread/pwrite at offset ${hex(bar0.offset)} (${why})`);
    });
    await this.#run('bus-master', () => {
      // vfio-pci clears bus mastering when the device is opened (§3.1); the driver turns on memory decoding and
      // bus mastering itself, as QEMU's guest driver would, or edu neither answers MMIO nor does DMA and MSI.
      const off = this.#config!.offset + BigInt(PCI_COMMAND);
      const ids = readU32(p.pread(this.#device, 4, this.#config!.offset));
      this.#call(`pread(${this.#device}, 4, ${hex(this.#config!.offset)}) = ${hex(ids, 8)}`);
      const vendor = ids & 0xffff;
      const device = ids >>> 16;
      if (vendor !== EDU_PCI_ID.VENDOR || device !== EDU_PCI_ID.DEVICE) {
        throw new SysError('ENODEV', `${bdf} is ${hex(vendor, 4)}:${hex(device, 4)}, not edu (1234:11e8)`);
      }
      const before = readU16(p.pread(this.#device, 2, off));
      this.#call(`pread(${this.#device}, 2, ${hex(off)}) = ${hex(before, 4)}`);
      const after = before | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
      const w = new Uint8Array(2);
      new DataView(w.buffer).setUint16(0, after, true);
      p.pwrite(this.#device, w, off);
      this.#call(`pwrite(${this.#device}, ${hex(after, 4)}, 2, ${hex(off)}) = 2`);
      const check = readU16(p.pread(this.#device, 2, off));
      this.#call(`pread(${this.#device}, 2, ${hex(off)}) = ${hex(check, 4)}`);
      if ((check & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) !== (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) {
        throw new SysError('EIO', `COMMAND reads ${hex(check, 4)} after enabling memory and bus master`);
      }
      this.#step('bus-master', 'Enable memory decoding and bus mastering', `config COMMAND ${hex(before, 4)} → ${hex(check, 4)} (MEMORY|MASTER) through the config region`);
    });
  }

  // ---- BAR0 access ---------------------------------------------------------------------------------------------

  /** Reads a 32-bit edu register. */
  read32(reg: number): number {
    if (this.#bar0Map) {
      const v = readU32(this.#p.memory.read(this.#bar0Map.vaddr + BigInt(reg), 4));
      this.#call(`load32(BAR0+${hex(reg, 2)}) = ${hex(v, 8)}`);
      return v;
    }
    const off = this.#bar0!.offset + BigInt(reg);
    const v = readU32(this.#p.pread(this.#device, 4, off));
    this.#call(`pread(${this.#device}, 4, ${hex(off)}) = ${hex(v, 8)}`);
    return v;
  }

  /** Writes a 32-bit edu register. */
  write32(reg: number, value: number): void {
    this.#write(reg, u32le(value), hex(value >>> 0, 8));
  }

  /** Writes a 64-bit edu register (the DMA address and count registers, at 0x80 and above). */
  write64(reg: number, value: bigint): void {
    this.#write(reg, u64le(value), hex(value, 16));
  }

  #write(reg: number, bytes: Uint8Array, shown: string): void {
    if (this.#bar0Map) {
      this.#p.memory.write(this.#bar0Map.vaddr + BigInt(reg), bytes);
      this.#call(`store${bytes.length * 8}(BAR0+${hex(reg, 2)}, ${shown})`);
      return;
    }
    const off = this.#bar0!.offset + BigInt(reg);
    const n = this.#p.pwrite(this.#device, bytes, off);
    this.#call(`pwrite(${this.#device}, ${shown}, ${bytes.length}, ${hex(off)}) = ${n}`);
  }

  // ---- device operations ---------------------------------------------------------------------------------------

  /** Reads the ID register and checks it is edu 1.0's. */
  async identify(): Promise<number> {
    return this.#run('identify', () => {
      const id = this.read32(EDU_REG.ID);
      if (id !== EDU_ID_VALUE) throw new SysError('EIO', `ID register reads ${hex(id, 8)}, expected ${hex(EDU_ID_VALUE, 8)}`);
      this.#step('identify', 'Identify the device', `ID register ${hex(id, 8)}: edu version ${id >>> 24}.${(id >>> 16) & 0xff}`);
      return id;
    });
  }

  /** The liveness check: the register reads back the bitwise inverse of what was written. */
  async liveness(value = 0x12345678): Promise<{ wrote: number; read: number; ok: boolean }> {
    return this.#run('liveness', () => {
      this.write32(EDU_REG.LIVENESS, value);
      const read = this.read32(EDU_REG.LIVENESS);
      const ok = read === (~value >>> 0);
      if (!ok) throw new SysError('EIO', `liveness wrote ${hex(value >>> 0, 8)}, read ${hex(read, 8)}, expected ${hex(~value >>> 0, 8)}`);
      this.#step('liveness', 'Liveness check', `wrote ${hex(value >>> 0, 8)}, read back ${hex(read, 8)} (its bitwise inverse)`);
      return { wrote: value >>> 0, read, ok };
    });
  }

  /** Maps `size` bytes of anonymous memory at `iova` for device DMA (read and write). */
  async mapDma(size: bigint, iova: bigint): Promise<DmaBuffer> {
    return this.#run('dma-map', () => {
      const p = this.#p;
      const length = ((size + PAGE - 1n) / PAGE) * PAGE;
      if (iova + length - 1n > EDU_DEFAULT_DMA_MASK) throw new SysError('EINVAL', `IOVA ${hex(iova)} is beyond edu's 28-bit DMA mask`);
      const vaddr = p.mmap({ length, prot: PROT_READ | PROT_WRITE, shared: false });
      this.#call(`mmap(NULL, ${hex(length)}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = ${hex(vaddr)}`);
      const map = vfioIommuType1DmaMap.encode({
        argsz: vfioIommuType1DmaMap.size,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr,
        iova,
        size: length,
      });
      try {
        this.#ioctl(this.#container, 'VFIO_IOMMU_MAP_DMA', VFIO_IOMMU_MAP_DMA, map, `{vaddr ${hex(vaddr)}, iova ${hex(iova)}, size ${hex(length)}, READ|WRITE}`);
      } catch (e) {
        p.munmap(vaddr, length);
        throw e;
      }
      const buf = { vaddr, iova, size: length };
      this.#dma.push(buf);
      this.#step('dma-map', 'Map DMA memory', `${length} bytes of anonymous memory at ${hex(vaddr)} mapped at IOVA ${hex(iova)} (pages pinned and counted against RLIMIT_MEMLOCK)`);
      return buf;
    });
  }

  /** Binds an eventfd to the device's MSI vector 0 (SET_IRQS MSI, DATA_EVENTFD | ACTION_TRIGGER). */
  async enableMsi(): Promise<void> {
    return this.#run('msi', () => {
      const p = this.#p;
      const msi = this.#irqs[VFIO_PCI_MSI_IRQ_INDEX];
      if (!msi || 'errno' in msi || msi.count < 1) throw new SysError('ENODEV', 'the device offers no MSI vector');
      this.#eventfd = p.eventfd(0, EFD_NONBLOCK);
      this.#call(`eventfd(0, EFD_NONBLOCK) = ${this.#eventfd}`);
      try {
        setIrqEventfds(p, this.#device, VFIO_PCI_MSI_IRQ_INDEX, 0, [this.#eventfd]);
      } catch (e) {
        p.close(this.#eventfd);
        this.#eventfd = -1;
        throw e;
      }
      this.#call(`ioctl(${this.#device}, VFIO_DEVICE_SET_IRQS, {MSI, start 0, count 1, DATA_EVENTFD|ACTION_TRIGGER, [${this.#eventfd}]}) = 0`);
      this.#step('msi', 'Route MSI to an eventfd', `MSI vector 0 → eventfd ${this.#eventfd}; the driver waits for interrupts with poll(2)`);
    });
  }

  /**
   * Waits until the device raised interrupt `bit`: with MSI, poll(2) on the eventfd and read its counter; without,
   * poll the IRQ status register. Then acknowledges it. Returns the IRQ_STATUS value seen.
   */
  async #waitForIrq(bit: number, what: string): Promise<number> {
    const p = this.#p;
    const timeout = this.#options.timeoutMs ?? 1000;
    if (this.#eventfd >= 0) {
      const r = await p.poll([{ fd: this.#eventfd, events: POLLIN }], timeout);
      const revents = r[0]?.revents ?? 0;
      this.#call(`poll([{fd ${this.#eventfd}, POLLIN}], ${timeout}) = ${revents & POLLIN ? 1 : 0}`);
      if ((revents & POLLIN) === 0) throw new SysError('ETIMEDOUT', `no MSI for the ${what} within ${timeout} ms`);
      const counter = new DataView(p.read(this.#eventfd, 8).buffer).getBigUint64(0, true);
      this.#call(`read(${this.#eventfd}, 8) = 8 (counter ${counter})`);
      this.#msiSignals += Number(counter);
    }
    let status = this.read32(EDU_REG.IRQ_STATUS);
    const deadline = timeout;
    let waited = 0;
    // Without MSI (or if the MSI raced ahead of the status), poll the register every host millisecond.
    while ((status & bit) === 0 && waited < deadline) {
      await p.sleep(1);
      waited += 1;
      status = this.read32(EDU_REG.IRQ_STATUS);
    }
    if ((status & bit) === 0) throw new SysError('ETIMEDOUT', `the ${what} did not raise interrupt ${hex(bit)} within ${timeout} ms`);
    this.write32(EDU_REG.IRQ_ACK, status);
    return status;
  }

  /** Computes n! on the device with the completion interrupt on, waits for it, reads the result. */
  async factorial(n: number): Promise<{ n: number; value: number; expected: number; ok: boolean }> {
    return this.#run('factorial', async () => {
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new SysError('EINVAL', `bad factorial argument ${n}`);
      this.write32(EDU_REG.STATUS, EDU_STATUS.IRQ_FACT);
      this.write32(EDU_REG.FACTORIAL, n);
      const status = await this.#waitForIrq(EDU_IRQ.FACTORIAL, 'factorial');
      const value = this.read32(EDU_REG.FACTORIAL);
      const expected = eduFactorial(n);
      const ok = value === expected;
      if (!ok) throw new SysError('EIO', `${n}! read ${value}, expected ${expected}`);
      this.#step('factorial', `Compute ${n}! with an interrupt`, `${n}! = ${value}; ${this.msiEnabled ? 'MSI arrived on the eventfd' : 'completion seen by polling'} (IRQ status ${hex(status, 8)}, acknowledged)`);
      return { n, value, expected, ok };
    });
  }

  async #runDma(cmd: number, src: bigint, dst: bigint, count: number, what: string): Promise<void> {
    this.write64(EDU_REG.DMA_SRC, src);
    this.write64(EDU_REG.DMA_DST, dst);
    this.write64(EDU_REG.DMA_COUNT, BigInt(count));
    this.write64(EDU_REG.DMA_CMD, BigInt(cmd | EDU_DMA_CMD.START | EDU_DMA_CMD.IRQ));
    await this.#waitForIrq(EDU_IRQ.DMA, what);
    const left = this.read32(EDU_REG.DMA_CMD);
    if ((left & EDU_DMA_CMD.START) !== 0) throw new SysError('EIO', `the ${what} interrupt came but DMA_CMD still reads START`);
  }

  /** DMA `data` from the mapped buffer (at `buf.iova`) into the edu buffer. */
  async dmaToDevice(buf: DmaBuffer, data: Uint8Array): Promise<number> {
    return this.#run('dma-to-device', async () => {
      if (data.length < 1 || data.length > EDU_DMA_BUFFER_SIZE || BigInt(data.length) > buf.size) throw new SysError('EINVAL', `DMA of ${data.length} bytes does not fit`);
      this.#p.memory.write(buf.vaddr, data);
      this.#call(`memcpy(${hex(buf.vaddr)}, pattern, ${data.length})`);
      await this.#runDma(0, buf.iova, EDU_DMA_BUFFER_ADDR, data.length, 'DMA to the device');
      this.#step('dma-to-device', 'DMA into the device', `${data.length} bytes from IOVA ${hex(buf.iova)} into edu's buffer at ${hex(EDU_DMA_BUFFER_ADDR)}; DMA interrupt received`);
      return data.length;
    });
  }

  /** DMA `count` bytes from the edu buffer into the mapped buffer at `buf.iova + at`; returns them. */
  async dmaFromDevice(buf: DmaBuffer, count: number, at = 0n): Promise<Uint8Array> {
    return this.#run('dma-from-device', async () => {
      if (count < 1 || count > EDU_DMA_BUFFER_SIZE || at < 0n || at + BigInt(count) > buf.size) throw new SysError('EINVAL', `DMA of ${count} bytes does not fit`);
      this.#p.memory.write(buf.vaddr + at, new Uint8Array(count));
      await this.#runDma(EDU_DMA_CMD.TO_RAM, EDU_DMA_BUFFER_ADDR, buf.iova + at, count, 'DMA from the device');
      const back = this.#p.memory.read(buf.vaddr + at, count);
      this.#call(`memcpy(out, ${hex(buf.vaddr + at)}, ${count})`);
      this.#step('dma-from-device', 'DMA out of the device', `${count} bytes from edu's buffer to IOVA ${hex(buf.iova + at)}; DMA interrupt received`);
      return back;
    });
  }

  /**
   * VFIO_DEVICE_RESET (the device advertises VFIO_DEVICE_FLAGS_RESET), then checks the registers went back to
   * power-on while memory decoding still works (vfio-pci restores the config state around the reset, §3.5).
   */
  async reset(): Promise<{ done: boolean; livenessAfter: number; factorialAfter: number; ok: boolean }> {
    return this.#run('reset', () => {
      if ((this.#info.flags & VFIO_DEVICE_FLAGS_RESET) === 0) {
        this.#step('reset', 'Reset the device', 'skipped: the device reports no working reset (VFIO_DEVICE_FLAGS_RESET clear)');
        return { done: false, livenessAfter: 0, factorialAfter: 0, ok: true };
      }
      if (this.#eventfd >= 0) {
        disableIrqIndex(this.#p, this.#device, VFIO_PCI_MSI_IRQ_INDEX);
        this.#call(`ioctl(${this.#device}, VFIO_DEVICE_SET_IRQS, {MSI, count 0, DATA_NONE|ACTION_TRIGGER}) = 0`);
        this.#p.close(this.#eventfd);
        this.#call(`close(${this.#eventfd}) = 0`);
        this.#eventfd = -1;
      }
      this.#ioctl(this.#device, 'VFIO_DEVICE_RESET', VFIO_DEVICE_RESET);
      const id = this.read32(EDU_REG.ID);
      const livenessAfter = this.read32(EDU_REG.LIVENESS);
      const factorialAfter = this.read32(EDU_REG.FACTORIAL);
      // Power-on edu: the liveness and factorial registers hold 0; the ID still reads, so BAR0 decodes again.
      const ok = id === EDU_ID_VALUE && livenessAfter === 0 && factorialAfter === 0;
      if (!ok) throw new SysError('EIO', `after reset: ID ${hex(id, 8)}, liveness ${hex(livenessAfter, 8)}, factorial ${factorialAfter}`);
      this.#step('reset', 'Reset the device', `VFIO_DEVICE_RESET; registers back to power-on (liveness ${hex(livenessAfter, 8)}, factorial ${factorialAfter}), BAR0 still decoding`);
      return { done: true, livenessAfter, factorialAfter, ok };
    });
  }

  /** Unmaps DMA and BAR0, disables MSI, and closes the device, group and container fds, in reverse order. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#run('close', () => {
      this.#teardown(true);
      this.#step('close', 'Close everything', 'DMA unmapped, BAR0 unmapped, MSI off, device, group and container closed');
    });
  }

  /**
   * Undoes whatever is set up, newest first. Best effort: a call failing here (the device went away) must not
   * leave the rest open.
   */
  #teardown(record = false): void {
    if (this.#closed) return;
    this.#closed = true;
    const p = this.#p;
    const attempt = (line: string, fn: () => void): boolean => {
      try {
        fn();
        if (record) this.#call(line);
        return true;
      } catch {
        return false;
      }
    };
    if (this.#eventfd >= 0) {
      const efd = this.#eventfd;
      attempt(`ioctl(${this.#device}, VFIO_DEVICE_SET_IRQS, {MSI, count 0}) = 0`, () => { disableIrqIndex(p, this.#device, VFIO_PCI_MSI_IRQ_INDEX); });
      attempt(`close(${efd}) = 0`, () => { p.close(efd); });
      this.#eventfd = -1;
    }
    for (const buf of this.#dma.reverse()) {
      const unmap = vfioIommuType1DmaUnmap.encode({ argsz: vfioIommuType1DmaUnmap.size, iova: buf.iova, size: buf.size });
      attempt(`ioctl(${this.#container}, VFIO_IOMMU_UNMAP_DMA, {iova ${hex(buf.iova)}, size ${hex(buf.size)}}) = 0`, () => { p.ioctl(this.#container, VFIO_IOMMU_UNMAP_DMA, unmap); });
      attempt(`munmap(${hex(buf.vaddr)}, ${hex(buf.size)}) = 0`, () => { p.munmap(buf.vaddr, buf.size); });
    }
    this.#dma = [];
    if (this.#bar0Map) {
      const m = this.#bar0Map;
      attempt(`munmap(${hex(m.vaddr)}, ${hex(m.length)}) = 0`, () => { p.munmap(m.vaddr, m.length); });
      this.#bar0Map = undefined;
    }
    if (this.#device >= 0) attempt(`close(${this.#device}) = 0`, () => { p.close(this.#device); });
    if (this.#group >= 0 && this.#container >= 0) {
      // close(2) of the device returned with the container use dropped (as in Linux), so this succeeds at once.
      attempt(`ioctl(${this.#group}, VFIO_GROUP_UNSET_CONTAINER) = 0`, () => { p.ioctl(this.#group, VFIO_GROUP_UNSET_CONTAINER); });
    }
    if (this.#group >= 0) attempt(`close(${this.#group}) = 0`, () => { p.close(this.#group); });
    if (this.#container >= 0) attempt(`close(${this.#container}) = 0`, () => { p.close(this.#container); });
    this.#device = -1;
    this.#group = -1;
    this.#container = -1;
  }
}

/**
 * The whole demo: open edu through VFIO, map DMA memory, check liveness, compute a factorial with an MSI, DMA a
 * pattern into the device and back, reset it, close everything. Resolves with what happened; rejects with an
 * {@link EduDriverError} naming the step that failed (everything opened is closed again).
 *
 * @example
 * const result = await runEduDemo(p, { bdf: '0000:01:00.0', onStep: (s) => console.log(`${s.title}: ${s.detail}`) });
 * console.log(result.factorial.value, result.dma.verified, result.interrupts.msi); // 3628800 true 3
 */
export async function runEduDemo(p: VfioDriverProcess, options: EduDemoOptions): Promise<EduDemoResult> {
  const start = options.now?.();
  const n = options.factorialOf ?? 10;
  const bytes = options.dmaBytes ?? EDU_DMA_BUFFER_SIZE;
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > EDU_DMA_BUFFER_SIZE) throw new EduDriverError('dma-map', new SysError('EINVAL', `dmaBytes must be 1..${EDU_DMA_BUFFER_SIZE}`));
  const iova = options.iova ?? 0x100000n;
  const edu = await EduVfioDriver.open(p, options);
  try {
    // Two pages: the first holds what goes to the device, the second receives what comes back.
    const buf = await edu.mapDma(2n * PAGE, iova);
    const id = await edu.identify();
    const liveness = await edu.liveness();
    let mode: 'msi' | 'polling' = 'msi';
    try {
      await edu.enableMsi();
    } catch (e) {
      // A device without usable MSI still works: the driver falls back to polling the status register.
      if (!(e instanceof EduDriverError) || !isSysError(e.cause)) throw e;
      mode = 'polling';
    }
    const factorial = await edu.factorial(n);
    const out = pattern(bytes, 0xed0 + n);
    const toDevice = await edu.dmaToDevice(buf, out);
    const back = await edu.dmaFromDevice(buf, bytes, PAGE);
    const verified = back.length === out.length && back.every((b, i) => b === out[i]);
    if (!verified) throw new EduDriverError('dma-from-device', new SysError('EIO', 'the bytes read back differ from the bytes sent'));
    const msi = edu.msiSignals;
    const reset = await edu.reset();
    const steps = edu.steps;
    const result: EduDemoResult = {
      bdf: options.bdf,
      group: edu.group,
      device: edu.deviceInfo,
      regions: edu.regions,
      irqs: edu.irqs,
      iommu: edu.iommu,
      id,
      liveness,
      factorial,
      dma: { iova, toDevice, fromDevice: back.length, verified },
      interrupts: { msi, mode },
      reset,
      mmio: edu.mmio,
      steps,
      ok: liveness.ok && factorial.ok && verified && reset.ok,
    };
    await edu.close();
    const end = options.now?.();
    return start === undefined || end === undefined ? { ...result, steps: edu.steps } : { ...result, steps: edu.steps, hostMs: end - start };
  } catch (e) {
    await edu.close().catch(() => undefined);
    throw e;
  }
}
