/**
 * A user-space port of Linux's drivers/misc/pci_endpoint_test.c (6.12) for the pci-epf-test function, written
 * against the system-call surface only. It opens the function through VFIO the way QEMU does (container → group →
 * viability → SET_CONTAINER → SET_IOMMU type1v2 → GET_DEVICE_FD → region and IRQ infos), enables memory decoding
 * and bus mastering through the config region, and runs the `pcitest` checks: the BAR test, the interrupt test
 * (INTx, every MSI and MSI-X vector), and READ / WRITE / COPY transfers through DMA buffers it mmaps anonymously and
 * maps with VFIO_IOMMU_MAP_DMA, each completion waited for with poll(2) on an eventfd bound with SET_IRQS.
 * Every step is reported through `onStep`, as the edu driver does.
 */
import { randomFillSync } from 'node:crypto';
import { EFD_NONBLOCK, PROT_READ, PROT_WRITE } from '@vfio-ts/platform';
import {
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
  POLLIN,
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_FLAGS_PCI,
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
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
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
  unmaskIrq,
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
import { crc32Le } from '../crc32.js';
import { EPF_TEST_COMMAND, EPF_TEST_FLAG, EPF_TEST_IRQ_TYPE, EPF_TEST_PCI_ID, EPF_TEST_REG, EPF_TEST_STATUS } from '../regs.js';

/** The page size the driver maps and aligns its DMA buffers to. */
const PAGE = 4096n;
/** The number of BARs of a type 0 header. */
const BAR_COUNT = 6;
/** pci_endpoint_test's `bar_test_pattern[]`: 0xA0A0A0A0 for BAR0 … 0xA5A5A5A5 for BAR5 (older kernels used 0xA0A0A0A0 for all). */
const BAR_TEST_PATTERN = (bar: number): number => (0xa0a0a0a0 + bar * 0x01010101) >>> 0;
/** BAR test chunk: the BAR is written and read back in pieces this big, as the kernel's memcpy_toio/memcpy_fromio loop. */
const BAR_CHUNK = 0x10000;

/** Which interrupt a command completes with (pcitest's `-i 0/1/2`). */
export type EpfIrqType = 'intx' | 'msi' | 'msix';

/** The transfers of pcitest, named after the endpoint COMMAND: READ (endpoint reads host memory), WRITE, COPY. */
export type EpfTransferKind = 'read' | 'write' | 'copy';

/** The steps of the driver. */
export type EpfTestStepId =
  | 'container'
  | 'group'
  | 'iommu'
  | 'device'
  | 'regions'
  | 'irqs'
  | 'bus-master'
  | 'bar-test'
  | 'irq-setup'
  | 'interrupt-test'
  | 'read'
  | 'write'
  | 'copy'
  | 'command'
  | 'close';

/** One step the driver took: what it did, what came back, and the system calls it made. */
export interface EpfTestStep {
  readonly id: EpfTestStepId;
  /** A short headline ("BAR test"). */
  readonly title: string;
  /** What came back, in words. */
  readonly detail: string;
  /** The system calls made, as `name(args) = result` lines (bulk BAR traffic is summarised). */
  readonly calls: readonly string[];
  /** Whether the check this step made passed (setup steps that return are always ok). */
  readonly ok: boolean;
  /** Host time (ms) when the step finished, when the caller gave a clock. */
  readonly at?: number;
}

/** Options of {@link EpfTestVfioDriver.open}. */
export interface EpfTestDriverOptions {
  /** The endpoint's PCI address, e.g. `0000:01:00.0`. */
  readonly bdf: string;
  /** The IOMMU group number; by default read from `/sys/bus/pci/devices/<bdf>/iommu_group`. */
  readonly group?: number;
  /** Called after each step. */
  readonly onStep?: (step: EpfTestStep) => void;
  /** Host time in ms, stamped on each step (e.g. `() => host.platform.clock.now()`). */
  readonly now?: () => number;
  /** How the test BARs are reached: mmap when the region allows (default) or always pread/pwrite. */
  readonly mmio?: 'auto' | 'pread';
  /** How long (host ms) to wait for a completion interrupt (default 1000, the kernel's wait_for_completion). */
  readonly timeoutMs?: number;
  /** The first IOVA used for DMA buffers (default 0x10000000; buffers are placed upwards from it). */
  readonly iovaBase?: bigint;
  /**
   * The endpoint's DMA alignment (pci_endpoint_test_data.alignment): a buffer's start is rounded up to it. 0 (the
   * default) leaves buffers wherever the allocation put them, e.g. mid-page.
   */
  readonly alignment?: number;
  /** The random payload source for READ and COPY (default node:crypto). */
  readonly randomBytes?: (length: number) => Uint8Array;
  /** Ask the endpoint to move data with its DMA engine (FLAGS.USE_DMA, pcitest's `-d`). Default false. */
  readonly useDma?: boolean;
  /** Accept any vendor:device (default: only the ids pci_endpoint_test binds, 104c:b500/b501). */
  readonly anyId?: boolean;
}

/** The BAR test of one BAR. */
export interface EpfBarTestResult {
  readonly bar: number;
  /** The region size. */
  readonly size: bigint;
  /** Bytes written and read back (4 for the register BAR, as the kernel). */
  readonly tested: number;
  readonly pattern: number;
  readonly access: 'mmap' | 'pread';
  readonly ok: boolean;
}

/** The interrupt test of one vector. */
export interface EpfInterruptTestResult {
  readonly type: EpfIrqType;
  /** IRQ_NUMBER written (1-based; 0 for INTx). */
  readonly number: number;
  /** The eventfd the interrupt arrived on, by vector index (-1 when none did). */
  readonly vector: number;
  readonly status: number;
  readonly ok: boolean;
}

/** One READ / WRITE / COPY transfer. */
export interface EpfTransferResult {
  readonly kind: EpfTransferKind;
  readonly irq: EpfIrqType;
  readonly size: number;
  /** Where the buffer(s) start within their first page. */
  readonly pageOffset: number;
  /** The IOVA of the source (READ, COPY) and destination (WRITE, COPY) buffers. */
  readonly src?: bigint;
  readonly dst?: bigint;
  /** STATUS after the completion interrupt. */
  readonly status: number;
  /** The checksum the host computed and the one it compared with (CHECKSUM, or the source's for COPY). */
  readonly checksum: { readonly host: number; readonly expected: number; readonly verified: boolean };
  readonly ok: boolean;
}

/** A raw command (for diagnostics and negative tests): the registers to program before COMMAND. */
export interface EpfRawCommand {
  readonly command: number;
  readonly src?: bigint;
  readonly dst?: bigint;
  readonly size?: number;
  readonly checksum?: number;
  /** IRQ_NUMBER (1-based); default 1. */
  readonly number?: number;
  /** FLAGS (EPF_TEST_FLAG); default 0. */
  readonly flags?: number;
}

/** Interrupts received, per type: completions (the eventfd fired with STATUS.IRQ_RAISED) and spurious signals. */
export interface EpfInterruptCounts {
  readonly intx: number;
  readonly msi: number;
  readonly msix: number;
  /** Eventfd signals that came with no IRQ_RAISED (a still-asserted INTx re-sent on unmask, a stale signal). */
  readonly spurious: number;
}

/** A step failed: which one, and the error underneath (a `SysError` keeps its errno). */
export class EpfTestDriverError extends Error {
  readonly step: EpfTestStepId;
  override readonly cause: unknown;
  constructor(step: EpfTestStepId, cause: unknown) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'EpfTestDriverError';
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
const readU32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
const readU16 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(0, true);
const roundUp = (n: bigint, to: bigint): bigint => ((n + to - 1n) / to) * to;
const IRQ_INDEX: Readonly<Record<EpfIrqType, number>> = {
  intx: VFIO_PCI_INTX_IRQ_INDEX,
  msi: VFIO_PCI_MSI_IRQ_INDEX,
  msix: VFIO_PCI_MSIX_IRQ_INDEX,
};
const IRQ_NAME: Readonly<Record<EpfIrqType, string>> = { intx: 'INTx', msi: 'MSI', msix: 'MSI-X' };
const RAISE: Readonly<Record<EpfIrqType, number>> = {
  intx: EPF_TEST_COMMAND.RAISE_INTX_IRQ,
  msi: EPF_TEST_COMMAND.RAISE_MSI_IRQ,
  msix: EPF_TEST_COMMAND.RAISE_MSIX_IRQ,
};
const IRQ_TYPE_VALUE: Readonly<Record<EpfIrqType, number>> = {
  intx: EPF_TEST_IRQ_TYPE.INTX,
  msi: EPF_TEST_IRQ_TYPE.MSI,
  msix: EPF_TEST_IRQ_TYPE.MSIX,
};

/** Names the STATUS bits, for step details. */
export function epfStatusText(status: number): string {
  const names = Object.entries(EPF_TEST_STATUS).filter(([, bit]) => (status & bit) !== 0).map(([n]) => n);
  return `${hex(status, 3)}${names.length ? ` (${names.join('|')})` : ''}`;
}

/** An anonymous buffer mapped for DMA. */
interface DmaBuffer {
  readonly vaddr: bigint;
  readonly iova: bigint;
  readonly length: bigint;
}

/**
 * The pci-epf-test function opened through VFIO. {@link EpfTestVfioDriver.open} does the QEMU-style setup; the
 * methods run pci_endpoint_test's checks; {@link EpfTestVfioDriver.close} undoes everything in reverse.
 *
 * @example
 * const epf = await EpfTestVfioDriver.open(p, { bdf: '0000:01:00.0' });
 * await epf.setIrqType('msi');
 * console.log((await epf.transfer('read', 4097)).ok); // true
 * await epf.close();
 */
export class EpfTestVfioDriver {
  readonly #p: VfioDriverProcess;
  readonly #options: EpfTestDriverOptions;
  readonly #steps: EpfTestStep[] = [];
  #calls: string[] = [];
  #container = -1;
  #group = -1;
  #device = -1;
  #groupNumber = -1;
  #info: VfioDeviceInfoView = { flags: 0, numRegions: 0, numIrqs: 0 };
  #iommu: Type1InfoView = { flags: 0, pgsizes: 0n, iovaRanges: [], caps: [] };
  #regions: (VfioRegionInfoView | { index: number; errno: string })[] = [];
  #irqs: (VfioIrqInfoView | { index: number; errno: string })[] = [];
  #config: VfioRegionInfoView | undefined;
  #bars: (VfioRegionInfoView | undefined)[] = [];
  #barMaps: { bar: number; vaddr: bigint; length: bigint }[] = [];
  #dma: DmaBuffer[] = [];
  #irqType: EpfIrqType | undefined;
  #eventfds: number[] = [];
  #counts = { intx: 0, msi: 0, msix: 0, spurious: 0 };
  #closed = false;

  private constructor(p: VfioDriverProcess, options: EpfTestDriverOptions) {
    this.#p = p;
    this.#options = options;
  }

  /** The steps taken so far. */
  get steps(): readonly EpfTestStep[] {
    return this.#steps;
  }

  /** The IOMMU group number. */
  get group(): number {
    return this.#groupNumber;
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

  /** The BARs the device implements (non-empty BAR regions). */
  get implementedBars(): readonly number[] {
    return this.#bars.flatMap((r, i) => (r ? [i] : []));
  }

  /** The interrupt type bound to eventfds now, if any, and how many vectors. */
  get irqType(): { readonly type: EpfIrqType; readonly vectors: number } | undefined {
    return this.#irqType === undefined ? undefined : { type: this.#irqType, vectors: this.#eventfds.length };
  }

  /** Interrupts received so far. */
  get interruptCounts(): EpfInterruptCounts {
    return { ...this.#counts };
  }

  /** The open fds: container, group, device and the interrupt eventfds. */
  get fds(): { readonly container: number; readonly group: number; readonly device: number; readonly eventfds: readonly number[] } {
    return { container: this.#container, group: this.#group, device: this.#device, eventfds: [...this.#eventfds] };
  }

  // ---- bookkeeping ---------------------------------------------------------------------------------------------

  #call(line: string): void {
    this.#calls.push(line);
  }

  #step(id: EpfTestStepId, title: string, detail: string, ok = true): EpfTestStep {
    const at = this.#options.now?.();
    const base = { id, title, detail, calls: this.#calls, ok };
    const step: EpfTestStep = at === undefined ? base : { ...base, at };
    this.#calls = [];
    this.#steps.push(step);
    this.#options.onStep?.(step);
    return step;
  }

  async #run<T>(id: EpfTestStepId, fn: () => T | Promise<T>): Promise<T> {
    if (this.#closed && id !== 'close') throw new EpfTestDriverError(id, new SysError('EBADF', 'the driver is closed'));
    this.#calls = [];
    try {
      return await fn();
    } catch (e) {
      this.#calls = [];
      throw e instanceof EpfTestDriverError ? e : new EpfTestDriverError(id, e);
    }
  }

  #ioctl(fd: number, name: string, request: number, arg?: number | Uint8Array, show?: string): number {
    const r = this.#p.ioctl(fd, request, arg);
    this.#call(`ioctl(${fd}, ${name}${show === undefined ? '' : `, ${show}`}) = ${r}`);
    return r;
  }

  // ---- open ----------------------------------------------------------------------------------------------------

  /**
   * Opens the endpoint the QEMU way and enables memory decoding and bus mastering. On failure everything opened so
   * far is closed again and an {@link EpfTestDriverError} names the failing step.
   */
  static async open(p: VfioDriverProcess, options: EpfTestDriverOptions): Promise<EpfTestVfioDriver> {
    const alignment = options.alignment ?? 0;
    if (!Number.isInteger(alignment) || alignment < 0 || (alignment & (alignment - 1)) !== 0 || alignment > 1 << 20) {
      throw new EpfTestDriverError('container', new SysError('EINVAL', `alignment ${alignment} is not 0 or a power of two up to 1 MiB`));
    }
    const d = new EpfTestVfioDriver(p, options);
    try {
      await d.#open();
      return d;
    } catch (e) {
      await d.#teardown();
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
      this.#ioctl(this.#group, 'VFIO_GROUP_SET_CONTAINER', VFIO_GROUP_SET_CONTAINER, intArg(this.#container), `&${this.#container}`);
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
      this.#step('device', `Get the device fd for ${bdf}`, `fd ${this.#device}; flags ${hex(this.#info.flags)}; ${this.#info.numRegions} regions, ${this.#info.numIrqs} IRQ indexes`);
    });
    await this.#run('regions', () => {
      for (let i = 0; i < this.#info.numRegions; i++) {
        try {
          this.#regions.push(regionInfo(p, this.#device, i));
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_REGION_INFO, index ${i}) = 0`);
        } catch (e) {
          // VGA (index 8) answers EINVAL on a device that is no VGA device: part of the normal walk.
          if (!isSysError(e)) throw e;
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_REGION_INFO, index ${i}) = -${e.errno}`);
          this.#regions.push({ index: i, errno: e.errno });
        }
      }
      for (let bar = 0; bar < BAR_COUNT; bar++) {
        const r = this.#regions[VFIO_PCI_BAR0_REGION_INDEX + bar];
        this.#bars.push(r && !('errno' in r) && r.size > 0n ? r : undefined);
      }
      const config = this.#regions[VFIO_PCI_CONFIG_REGION_INDEX];
      // pci_endpoint_test's test register BAR is BAR0 for the TI ids (default_data.test_reg_bar).
      const bar0 = this.#bars[0];
      if (!bar0 || bar0.size < 0x40n) throw new SysError('ENODEV', 'BAR0 (the test register BAR) is missing or too small');
      if (!config || 'errno' in config || config.size < 256n) throw new SysError('ENODEV', 'the config region is missing');
      this.#config = config;
      const bars = this.#bars.map((r, i) => (r ? `BAR${i} ${hex(r.size)}` : '')).filter(Boolean).join(', ');
      this.#step('regions', 'Read the region infos', `${bars}; config ${config.size} bytes`);
    });
    await this.#run('irqs', () => {
      for (let i = 0; i < this.#info.numIrqs; i++) {
        try {
          this.#irqs.push(irqInfo(p, this.#device, i));
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_IRQ_INFO, index ${i}) = 0`);
        } catch (e) {
          if (!isSysError(e)) throw e;
          this.#call(`ioctl(${this.#device}, VFIO_DEVICE_GET_IRQ_INFO, index ${i}) = -${e.errno}`);
          this.#irqs.push({ index: i, errno: e.errno });
        }
      }
      const names = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'];
      this.#step('irqs', 'Read the IRQ infos', this.#irqs.map((r) => `${names[r.index] ?? `#${r.index}`} ${'errno' in r ? r.errno : r.count}`).join(', '));
    });
    await this.#run('bus-master', () => {
      const cfg = this.#config!.offset;
      const ids = readU32(p.pread(this.#device, 4, cfg));
      this.#call(`pread(${this.#device}, 4, ${hex(cfg)}) = ${hex(ids, 8)}`);
      const vendor = ids & 0xffff;
      const device = ids >>> 16;
      const known = vendor === EPF_TEST_PCI_ID.VENDOR_TI && (device === EPF_TEST_PCI_ID.DEVICE_DRA74X || device === EPF_TEST_PCI_ID.DEVICE_DRA72X);
      if (!known && this.#options.anyId !== true) throw new SysError('ENODEV', `${bdf} is ${hex(vendor, 4)}:${hex(device, 4)}, not a pci-epf-test endpoint (104c:b500)`);
      // vfio-pci clears bus mastering when the device is opened (§3.1): pci_endpoint_test's probe calls
      // pci_enable_device and pci_set_master; user space does the same through the config region.
      const off = cfg + BigInt(PCI_COMMAND);
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
      this.#step('bus-master', 'Enable memory decoding and bus mastering', `${vendor.toString(16).padStart(4, '0')}:${device.toString(16).padStart(4, '0')}; config COMMAND ${hex(before, 4)} → ${hex(check, 4)} (MEMORY|MASTER)`);
    });
  }

  // ---- BAR access ----------------------------------------------------------------------------------------------

  /** Reads a 32-bit test register (BAR0, through the device fd). */
  readReg(reg: number): number {
    const off = this.#bars[0]!.offset + BigInt(reg);
    const v = readU32(this.#p.pread(this.#device, 4, off));
    this.#call(`pread(${this.#device}, 4, ${hex(off)}) = ${hex(v, 8)}`);
    return v;
  }

  /** Writes a 32-bit test register. */
  writeReg(reg: number, value: number): void {
    const off = this.#bars[0]!.offset + BigInt(reg);
    const n = this.#p.pwrite(this.#device, u32le(value), off);
    this.#call(`pwrite(${this.#device}, ${hex(value >>> 0, 8)}, 4, ${hex(off)}) = ${n}`);
  }

  /**
   * Maps a whole BAR when the region allows it and has no sparse-mmap capability (a BAR holding the MSI-X table is
   * only partly mappable); returns undefined when pread/pwrite must be used.
   */
  #mapBar(bar: number): { vaddr: bigint; length: bigint } | undefined {
    const known = this.#barMaps.find((m) => m.bar === bar);
    if (known) return known;
    const r = this.#bars[bar];
    if (!r || this.#options.mmio === 'pread') return undefined;
    if ((r.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0 || r.caps.some((c) => c.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP)) return undefined;
    const length = roundUp(r.size, PAGE);
    try {
      const vaddr = this.#p.mmap({ length, prot: PROT_READ | PROT_WRITE, shared: true, fd: this.#device, offset: r.offset });
      this.#call(`mmap(NULL, ${hex(length)}, PROT_READ|PROT_WRITE, MAP_SHARED, ${this.#device}, ${hex(r.offset)}) = ${hex(vaddr)}`);
      const m = { bar, vaddr, length };
      this.#barMaps.push(m);
      return m;
    } catch (e) {
      // QEMU too falls back to read/write on the device fd when a BAR cannot be mapped.
      if (!isSysError(e)) throw e;
      this.#call(`mmap(NULL, ${hex(length)}, PROT_READ|PROT_WRITE, MAP_SHARED, ${this.#device}, ${hex(r.offset)}) = -${e.errno}`);
      return undefined;
    }
  }

  #barWrite(bar: number, map: { vaddr: bigint } | undefined, at: number, data: Uint8Array): void {
    if (map) this.#p.memory.write(map.vaddr + BigInt(at), data);
    else this.#p.pwrite(this.#device, data, this.#bars[bar]!.offset + BigInt(at));
  }

  #barRead(bar: number, map: { vaddr: bigint } | undefined, at: number, n: number): Uint8Array {
    return map ? this.#p.memory.read(map.vaddr + BigInt(at), n) : this.#p.pread(this.#device, n, this.#bars[bar]!.offset + BigInt(at));
  }

  // ---- tests ---------------------------------------------------------------------------------------------------

  /**
   * pci_endpoint_test's BAR test: fill the BAR with its pattern (0xA0A0A0A0 + bar·0x01010101), read it back and
   * compare. The test register BAR is tested on its first 4 bytes only (MAGIC), as the kernel does, since the rest
   * are live registers.
   */
  async barTest(bar: number): Promise<EpfBarTestResult> {
    return this.#run('bar-test', () => {
      const r = Number.isInteger(bar) ? this.#bars[bar] : undefined;
      if (!r) throw new SysError('EINVAL', `BAR${bar} is not implemented`);
      const pattern = BAR_TEST_PATTERN(bar);
      const tested = bar === 0 ? 4 : Number(r.size);
      const map = bar === 0 ? undefined : this.#mapBar(bar);
      const chunk = new Uint8Array(Math.min(BAR_CHUNK, tested));
      const view = new DataView(chunk.buffer);
      for (let i = 0; i + 4 <= chunk.length; i += 4) view.setUint32(i, pattern, true);
      for (let at = 0; at < tested; at += chunk.length) this.#barWrite(bar, map, at, chunk.subarray(0, Math.min(chunk.length, tested - at)));
      let ok = true;
      let firstBad = -1;
      for (let at = 0; at < tested && ok; at += chunk.length) {
        const n = Math.min(chunk.length, tested - at);
        const back = this.#barRead(bar, map, at, n);
        for (let i = 0; i < n; i++) {
          if (back[i] !== chunk[i]) {
            ok = false;
            firstBad = at + i;
            break;
          }
        }
      }
      const access = map ? 'mmap' : 'pread';
      this.#call(`${access === 'mmap' ? 'store/load' : 'pwrite/pread'} BAR${bar}[0..${hex(tested)}) pattern ${hex(pattern, 8)}`);
      const detail = ok
        ? `BAR${bar}: ${tested} bytes of ${hex(pattern, 8)} written and read back through ${access}`
        : `BAR${bar}: mismatch at offset ${hex(firstBad)}`;
      this.#step('bar-test', `BAR test, BAR${bar}`, detail, ok);
      return { bar, size: r.size, tested, pattern, access, ok };
    });
  }

  /**
   * Binds eventfds to `type` (pcitest's SET_IRQTYPE): disables the current index, then SET_IRQS ACTION_TRIGGER with
   * one eventfd per vector (`vectors`, default every vector the index reports; INTx has one).
   */
  async setIrqType(type: EpfIrqType, vectors?: number): Promise<number> {
    return this.#run('irq-setup', async () => {
      const p = this.#p;
      const index = IRQ_INDEX[type];
      const info = this.#irqs[index];
      if (!info || 'errno' in info || info.count < 1) throw new SysError('ENODEV', `the device offers no ${IRQ_NAME[type]} interrupt`);
      const n = type === 'intx' ? 1 : (vectors ?? info.count);
      if (!Number.isInteger(n) || n < 1 || n > info.count) throw new SysError('EINVAL', `${IRQ_NAME[type]} has ${info.count} vectors, asked for ${n}`);
      await this.#releaseIrqs();
      const fds: number[] = [];
      try {
        for (let i = 0; i < n; i++) fds.push(p.eventfd(0, EFD_NONBLOCK));
        this.#call(`eventfd(0, EFD_NONBLOCK) × ${n} = [${fds.join(', ')}]`);
        setIrqEventfds(p, this.#device, index, 0, fds);
        this.#call(`ioctl(${this.#device}, VFIO_DEVICE_SET_IRQS, {${IRQ_NAME[type]}, start 0, count ${n}, DATA_EVENTFD|ACTION_TRIGGER}) = 0`);
      } catch (e) {
        for (const fd of fds) p.close(fd);
        throw e;
      }
      this.#eventfds = fds;
      this.#irqType = type;
      this.#step('irq-setup', `Route ${IRQ_NAME[type]} to eventfds`, `${n} vector${n === 1 ? '' : 's'} → eventfd${n === 1 ? '' : 's'} ${fds.length > 4 ? `${fds[0]}..${fds.at(-1)}` : fds.join(', ')}`);
      return n;
    });
  }

  async #releaseIrqs(): Promise<void> {
    if (this.#irqType === undefined) return;
    const type = this.#irqType;
    disableIrqIndex(this.#p, this.#device, IRQ_INDEX[type]);
    this.#call(`ioctl(${this.#device}, VFIO_DEVICE_SET_IRQS, {${IRQ_NAME[type]}, count 0, DATA_NONE|ACTION_TRIGGER}) = 0`);
    for (const fd of this.#eventfds) this.#p.close(fd);
    this.#call(`close(${this.#eventfds.join(', ')}) = 0`);
    this.#eventfds = [];
    this.#irqType = undefined;
    await Promise.resolve();
  }

  /** Reads an eventfd counter without blocking (0 when empty). */
  #drain(fd: number): number {
    try {
      const v = new DataView(this.#p.read(fd, 8).buffer).getBigUint64(0, true);
      this.#call(`read(${fd}, 8) = 8 (counter ${v})`);
      return Number(v);
    } catch (e) {
      if (isSysError(e) && e.errno === 'EAGAIN') return 0;
      throw e;
    }
  }

  /**
   * The INTx end-of-interrupt: endpoint controllers pulse INTx, so wait (host time, 1 ms steps) until the function's
   * Interrupt Status (config STATUS bit 3) drops, then unmask the automasked line. Unmasking while the line is still
   * up would only deliver the same interrupt again (vfio-pci re-sends a pending INTx on unmask, §3.4).
   */
  async #intxEoi(): Promise<void> {
    const p = this.#p;
    const off = this.#config!.offset + BigInt(PCI_STATUS);
    const limit = this.#options.timeoutMs ?? 1000;
    for (let waited = 0; waited < limit; waited++) {
      if ((readU16(p.pread(this.#device, 2, off)) & PCI_STATUS_INTERRUPT) === 0) break;
      await p.sleep(1);
    }
    unmaskIrq(p, this.#device, VFIO_PCI_INTX_IRQ_INDEX);
    this.#call(`ioctl(${this.#device}, VFIO_DEVICE_SET_IRQS, {INTx, ACTION_UNMASK|DATA_NONE}) = 0`);
  }

  /**
   * Programs the registers and COMMAND, then waits for the completion interrupt with poll(2) on every eventfd of
   * the current type (the kernel's wait_for_completion_timeout, 1 s). Returns STATUS and the vector index the
   * interrupt came on (-1: none within the timeout).
   */
  async #issue(cmd: EpfRawCommand): Promise<{ status: number; vector: number }> {
    const p = this.#p;
    const type = this.#irqType;
    if (type === undefined) throw new SysError('EINVAL', 'no interrupt type set (call setIrqType first)');
    // A stale signal (an INTx re-sent on unmask) must not complete this command; a drained INTx needs its EOI.
    let stale = 0;
    for (const fd of this.#eventfds) stale += this.#drain(fd) > 0 ? 1 : 0;
    this.#counts.spurious += stale;
    if (stale > 0 && type === 'intx') await this.#intxEoi();
    const number = type === 'intx' ? 0 : (cmd.number ?? 1);
    if (cmd.checksum !== undefined) this.writeReg(EPF_TEST_REG.CHECKSUM, cmd.checksum);
    if (cmd.src !== undefined) {
      this.writeReg(EPF_TEST_REG.LOWER_SRC_ADDR, Number(cmd.src & 0xffffffffn));
      this.writeReg(EPF_TEST_REG.UPPER_SRC_ADDR, Number(cmd.src >> 32n));
    }
    if (cmd.dst !== undefined) {
      this.writeReg(EPF_TEST_REG.LOWER_DST_ADDR, Number(cmd.dst & 0xffffffffn));
      this.writeReg(EPF_TEST_REG.UPPER_DST_ADDR, Number(cmd.dst >> 32n));
    }
    if (cmd.size !== undefined) this.writeReg(EPF_TEST_REG.SIZE, cmd.size);
    this.writeReg(EPF_TEST_REG.FLAGS, cmd.flags ?? 0);
    this.writeReg(EPF_TEST_REG.IRQ_TYPE, IRQ_TYPE_VALUE[type]);
    this.writeReg(EPF_TEST_REG.IRQ_NUMBER, number);
    this.writeReg(EPF_TEST_REG.COMMAND, cmd.command);
    const timeout = this.#options.timeoutMs ?? 1000;
    // poll(2) with the host's virtual clock: each call waits at most what is left of the timeout. Without a clock
    // the driver counts the waits it made, each at least 1 ms, so it cannot loop forever.
    let left = timeout;
    while (left > 0) {
      const t0 = this.#options.now?.();
      const ready = await p.poll(this.#eventfds.map((fd) => ({ fd, events: POLLIN })), left);
      const t1 = this.#options.now?.();
      left -= t0 === undefined || t1 === undefined ? 1 : Math.max(1, t1 - t0);
      const fired = ready.filter((r) => (r.revents & POLLIN) !== 0).map((r) => r.fd);
      this.#call(`poll([${this.#eventfds.length} eventfds, POLLIN], ${timeout}) = ${fired.length}`);
      if (fired.length === 0) continue;
      // pci_endpoint_test_irqhandler: an interrupt completes the command only with STATUS.IRQ_RAISED, which the
      // handler then clears, so a late duplicate cannot complete the next command.
      const status = this.readReg(EPF_TEST_REG.STATUS);
      if ((status & EPF_TEST_STATUS.IRQ_RAISED) !== 0) this.writeReg(EPF_TEST_REG.STATUS, status & ~EPF_TEST_STATUS.IRQ_RAISED);
      let vector = -1;
      for (const fd of fired) {
        if (this.#drain(fd) > 0 && vector < 0) vector = this.#eventfds.indexOf(fd);
      }
      if (type === 'intx') await this.#intxEoi();
      if ((status & EPF_TEST_STATUS.IRQ_RAISED) === 0 || vector < 0) {
        this.#counts.spurious++;
        continue;
      }
      this.#counts[type]++;
      return { status, vector };
    }
    return { status: this.readReg(EPF_TEST_REG.STATUS), vector: -1 };
  }

  /**
   * A raw command, for diagnostics and negative tests: programs the given registers, writes COMMAND and waits for
   * the completion interrupt. Throws ETIMEDOUT when none arrives.
   */
  async command(cmd: EpfRawCommand): Promise<{ status: number; vector: number }> {
    return this.#run('command', async () => {
      const r = await this.#issue(cmd);
      if (r.vector < 0) throw new SysError('ETIMEDOUT', `no completion interrupt for COMMAND ${hex(cmd.command)}; STATUS ${epfStatusText(r.status)}`);
      this.#step('command', `COMMAND ${hex(cmd.command)}`, `STATUS ${epfStatusText(r.status)} on vector ${r.vector}`, true);
      return r;
    });
  }

  /**
   * pci_endpoint_test's interrupt test: RAISE_<type>_IRQ with IRQ_NUMBER `number` (1-based; INTx ignores it) must
   * arrive on that vector's eventfd and no other (the kernel compares pci_irq_vector with the IRQ it saw).
   */
  async interruptTest(number = 1): Promise<EpfInterruptTestResult> {
    return this.#run('interrupt-test', async () => {
      const type = this.#irqType;
      if (type === undefined) throw new SysError('EINVAL', 'no interrupt type set (call setIrqType first)');
      if (type !== 'intx' && (!Number.isInteger(number) || number < 1 || number > this.#eventfds.length)) {
        throw new SysError('EINVAL', `IRQ number ${number} is outside 1..${this.#eventfds.length}`);
      }
      const r = await this.#issue({ command: RAISE[type], number });
      const want = type === 'intx' ? 0 : number - 1;
      const ok = r.vector === want && (r.status & EPF_TEST_STATUS.IRQ_RAISED) !== 0;
      const n = type === 'intx' ? 0 : number;
      const detail = r.vector < 0
        ? `no ${IRQ_NAME[type]} arrived within ${this.#options.timeoutMs ?? 1000} ms (STATUS ${epfStatusText(r.status)})`
        : `${IRQ_NAME[type]}${type === 'intx' ? '' : ` ${number}`} arrived on eventfd ${this.#eventfds[r.vector]} (vector ${r.vector}${ok ? '' : `, expected ${want}`})`;
      this.#step('interrupt-test', `Raise ${IRQ_NAME[type]}${type === 'intx' ? '' : ` ${number}`}`, detail, ok);
      return { type, number: n, vector: r.vector, status: r.status, ok };
    });
  }

  /** IOVA placement: buffers go upwards from iovaBase, a 2 MiB-aligned slot each, reused once unmapped. */
  #nextIova(): bigint {
    const base = this.#options.iovaBase ?? 0x10000000n;
    const top = this.#dma.reduce((m, b) => (b.iova + b.length > m ? b.iova + b.length : m), base);
    return roundUp(top, 2n << 20n);
  }

  /** mmap anonymous memory and VFIO_IOMMU_MAP_DMA it (dma_map_single's user-space twin). */
  #mapDma(length: bigint): DmaBuffer {
    const p = this.#p;
    const iova = this.#nextIova();
    const vaddr = p.mmap({ length, prot: PROT_READ | PROT_WRITE, shared: false });
    this.#call(`mmap(NULL, ${hex(length)}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = ${hex(vaddr)}`);
    const map = vfioIommuType1DmaMap.encode({ argsz: vfioIommuType1DmaMap.size, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr, iova, size: length });
    try {
      this.#ioctl(this.#container, 'VFIO_IOMMU_MAP_DMA', VFIO_IOMMU_MAP_DMA, map, `{vaddr ${hex(vaddr)}, iova ${hex(iova)}, size ${hex(length)}, READ|WRITE}`);
    } catch (e) {
      p.munmap(vaddr, length);
      throw e;
    }
    const buf = { vaddr, iova, length };
    this.#dma.push(buf);
    return buf;
  }

  /** VFIO_IOMMU_UNMAP_DMA and munmap (dma_unmap_single + kfree). */
  #unmapDma(buf: DmaBuffer): void {
    const unmap = vfioIommuType1DmaUnmap.encode({ argsz: vfioIommuType1DmaUnmap.size, iova: buf.iova, size: buf.length });
    this.#ioctl(this.#container, 'VFIO_IOMMU_UNMAP_DMA', VFIO_IOMMU_UNMAP_DMA, unmap, `{iova ${hex(buf.iova)}, size ${hex(buf.length)}}`);
    this.#p.munmap(buf.vaddr, buf.length);
    this.#call(`munmap(${hex(buf.vaddr)}, ${hex(buf.length)}) = 0`);
    this.#dma = this.#dma.filter((b) => b !== buf);
  }

  #random(n: number): Uint8Array {
    const out = this.#options.randomBytes?.(n) ?? randomFillSync(new Uint8Array(n));
    if (out.length !== n) throw new SysError('EINVAL', `randomBytes returned ${out.length} bytes, asked for ${n}`);
    return out;
  }

  /**
   * One transfer as pci_endpoint_test does it (6.12): allocate `size + alignment` bytes, start the buffer at
   * `allocOffset` into its page (where kmalloc happened to put it), rounded up to the endpoint's alignment.
   * - `read`: random bytes and their crc32_le(~0) in CHECKSUM; the endpoint reads them and checks → READ_SUCCESS.
   * - `write`: the endpoint writes random bytes and their checksum; the host recomputes it → WRITE_SUCCESS.
   * - `copy`: random source, endpoint copies to the destination; the checksums must agree → COPY_SUCCESS.
   */
  async transfer(kind: EpfTransferKind, size: number, allocOffset = 0): Promise<EpfTransferResult> {
    return this.#run(kind, async () => {
      const type = this.#irqType;
      if (type === undefined) throw new SysError('EINVAL', 'no interrupt type set (call setIrqType first)');
      if (!Number.isInteger(size) || size < 1 || size > 0xffffffff) throw new SysError('EINVAL', `bad transfer size ${size}`);
      if (!Number.isInteger(allocOffset) || allocOffset < 0 || allocOffset >= Number(PAGE)) throw new SysError('EINVAL', `bad allocation offset ${allocOffset}`);
      const alignment = this.#options.alignment ?? 0;
      const start = alignment > 0 ? Math.ceil(allocOffset / alignment) * alignment : allocOffset;
      const length = roundUp(BigInt(start + size), PAGE);
      const p = this.#p;
      const bufs: DmaBuffer[] = [];
      try {
        const src = kind === 'write' ? undefined : this.#mapDma(length);
        if (src) bufs.push(src);
        const dst = kind === 'read' ? undefined : this.#mapDma(length);
        if (dst) bufs.push(dst);
        let host = 0;
        const flags = this.#options.useDma === true ? EPF_TEST_FLAG.USE_DMA : 0;
        let cmd: EpfRawCommand;
        if (src) {
          const data = this.#random(size);
          p.memory.write(src.vaddr + BigInt(start), data);
          host = crc32Le(0xffffffff, data);
          this.#call(`get_random_bytes(${hex(src.vaddr + BigInt(start))}, ${size}); crc32_le(~0) = ${hex(host, 8)}`);
        }
        const at = (b: DmaBuffer | undefined): bigint | undefined => (b ? b.iova + BigInt(start) : undefined);
        const srcIova = at(src);
        const dstIova = at(dst);
        if (kind === 'read') cmd = { command: EPF_TEST_COMMAND.READ, src: srcIova!, size, checksum: host, flags };
        else if (kind === 'write') cmd = { command: EPF_TEST_COMMAND.WRITE, dst: dstIova!, size, flags };
        else cmd = { command: EPF_TEST_COMMAND.COPY, src: srcIova!, dst: dstIova!, size, flags };
        const r = await this.#issue(cmd);
        if (r.vector < 0) throw new SysError('ETIMEDOUT', `no ${IRQ_NAME[type]} completion for ${kind.toUpperCase()} of ${size} bytes; STATUS ${epfStatusText(r.status)}`);
        let expected = host;
        if (kind === 'write') {
          expected = this.readReg(EPF_TEST_REG.CHECKSUM);
          host = crc32Le(0xffffffff, p.memory.read(dst!.vaddr + BigInt(start), size));
        } else if (kind === 'copy') {
          expected = host;
          host = crc32Le(0xffffffff, p.memory.read(dst!.vaddr + BigInt(start), size));
        }
        const success = { read: EPF_TEST_STATUS.READ_SUCCESS, write: EPF_TEST_STATUS.WRITE_SUCCESS, copy: EPF_TEST_STATUS.COPY_SUCCESS }[kind];
        const verified = host === expected;
        const ok = verified && (r.status & success) !== 0;
        for (const b of bufs.reverse()) this.#unmapDma(b);
        bufs.length = 0;
        const where = [srcIova === undefined ? '' : `src ${hex(srcIova)}`, dstIova === undefined ? '' : `dst ${hex(dstIova)}`].filter(Boolean).join(', ');
        this.#step(kind, `${kind.toUpperCase()} ${size} bytes with ${IRQ_NAME[type]}`, `${where}; STATUS ${epfStatusText(r.status)}; crc32 host ${hex(host, 8)} vs ${kind === 'copy' ? 'source' : 'CHECKSUM'} ${hex(expected, 8)}${verified ? ' (match)' : ' (MISMATCH)'}`, ok);
        const result: EpfTransferResult = { kind, irq: type, size, pageOffset: start, status: r.status, checksum: { host, expected, verified }, ok };
        return { ...result, ...(srcIova === undefined ? {} : { src: srcIova }), ...(dstIova === undefined ? {} : { dst: dstIova }) };
      } finally {
        for (const b of bufs.reverse()) {
          try {
            this.#unmapDma(b);
          } catch {
            // Best effort: close() unmaps whatever is left.
          }
        }
      }
    });
  }

  /** Disables interrupts, unmaps DMA and BARs, and closes the eventfds, device, group and container, in reverse. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#run('close', async () => {
      await this.#teardown(true);
      this.#step('close', 'Close everything', 'interrupts off, DMA and BARs unmapped, device, group and container closed');
    });
  }

  /** Undoes whatever is set up, newest first; best effort, so one failure does not leave the rest open. */
  async #teardown(record = false): Promise<void> {
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
    if (this.#irqType !== undefined) {
      const type = this.#irqType;
      attempt(`ioctl(${this.#device}, VFIO_DEVICE_SET_IRQS, {${IRQ_NAME[type]}, count 0}) = 0`, () => { disableIrqIndex(p, this.#device, IRQ_INDEX[type]); });
      for (const fd of this.#eventfds) attempt(`close(${fd}) = 0`, () => { p.close(fd); });
      this.#eventfds = [];
      this.#irqType = undefined;
    }
    for (const buf of [...this.#dma].reverse()) {
      const unmap = vfioIommuType1DmaUnmap.encode({ argsz: vfioIommuType1DmaUnmap.size, iova: buf.iova, size: buf.length });
      attempt(`ioctl(${this.#container}, VFIO_IOMMU_UNMAP_DMA, {iova ${hex(buf.iova)}}) = 0`, () => { p.ioctl(this.#container, VFIO_IOMMU_UNMAP_DMA, unmap); });
      attempt(`munmap(${hex(buf.vaddr)}, ${hex(buf.length)}) = 0`, () => { p.munmap(buf.vaddr, buf.length); });
    }
    this.#dma = [];
    for (const m of this.#barMaps.reverse()) attempt(`munmap(${hex(m.vaddr)}, ${hex(m.length)}) = 0`, () => { p.munmap(m.vaddr, m.length); });
    this.#barMaps = [];
    if (this.#device >= 0) attempt(`close(${this.#device}) = 0`, () => { p.close(this.#device); });
    if (this.#group >= 0 && this.#container >= 0) {
      // The device's release may still be finishing on the host (the group is busy meanwhile): retry for a few
      // host milliseconds, as the edu driver does.
      const line = `ioctl(${this.#group}, VFIO_GROUP_UNSET_CONTAINER) = 0`;
      for (let tries = 0; tries < 10; tries++) {
        if (attempt(line, () => { p.ioctl(this.#group, VFIO_GROUP_UNSET_CONTAINER); })) break;
        await p.sleep(1);
      }
    }
    if (this.#group >= 0) attempt(`close(${this.#group}) = 0`, () => { p.close(this.#group); });
    if (this.#container >= 0) attempt(`close(${this.#container}) = 0`, () => { p.close(this.#container); });
    this.#device = -1;
    this.#group = -1;
    this.#container = -1;
  }
}
