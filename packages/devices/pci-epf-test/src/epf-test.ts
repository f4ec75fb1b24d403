/**
 * The Linux PCI endpoint test function as the host sees it: a PCIe endpoint whose BAR0 holds the
 * pci-epf-test registers (and the MSI-X table), BAR1..5 plain test memory, and firmware on the endpoint that polls
 * COMMAND, moves data by DMA, checksums it with crc32_le, and raises INTx, MSI or MSI-X (Linux 6.12,
 * drivers/pci/endpoint/functions/pci-epf-test.c). Config space is a DesignWare-style endpoint: PM, MSI (multiple
 * message), PCIe (with FLR) and MSI-X capabilities.
 */
import { randomFillSync } from 'node:crypto';
import type { PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import {
  PCI_BASE_ADDRESS_0,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAPABILITY_LIST,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP2,
  PCI_EXP_DEVCAP_FLR,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL2,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_DEVSTA,
  PCI_EXP_FLAGS,
  PCI_EXP_LNKCAP,
  PCI_EXP_LNKCAP2,
  PCI_EXP_LNKCTL,
  PCI_EXP_LNKCTL2,
  PCI_EXP_LNKSTA,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_PM_CTRL,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_PMC,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_ERROR_BITS as PCI_STATUS_W1C,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  sysError,
} from '@vfio-ts/uapi';
import { SparseMemory } from './bar-memory.js';
import { ConfigSpace } from './config-space.js';
import type { ConfigAccessSize } from './config-space.js';
import { crc32Le } from './crc32.js';
import {
  EPF_TEST_CAP_OFFSET,
  EPF_TEST_COMMAND,
  EPF_TEST_DEFAULT_BAR_SIZES,
  EPF_TEST_FLAG,
  EPF_TEST_IRQ_TYPE,
  EPF_TEST_MSIX_TABLE_OFFSET,
  EPF_TEST_PCI_ID,
  EPF_TEST_REG,
  EPF_TEST_STATUS,
} from './regs.js';

/** Options of {@link pciEpfTestFunction} (the endpoint's configfs attributes and controller features). */
export interface PciEpfTestOptions {
  /** configfs `vendorid`; default 0x104c (TI), as Documentation/PCI/endpoint/pci-test-function.rst. */
  readonly vendorId?: number;
  /** configfs `deviceid`; default 0xb500 (DRA74x), an id pci_endpoint_test binds to. */
  readonly deviceId?: number;
  /** configfs `subsys_vendor_id` ("don't care" in the howto); default 0. */
  readonly subsystemVendorId?: number;
  /** configfs `subsys_id`; default 0. */
  readonly subsystemId?: number;
  /** configfs `msi_interrupts`: 0 (no MSI capability) or a power of two up to 32. Default 32. */
  readonly msiVectors?: number;
  /** configfs `msix_interrupts`: 0 (no MSI-X capability) to 2048. Default 32. */
  readonly msixVectors?: number;
  /**
   * BAR sizes in bytes, index = BAR; 0 leaves a BAR out (BAR0 must exist). Powers of two from 128. BAR0 defaults to
   * the register block plus MSI-X table and PBA rounded up to a power of two (1 KiB with 32 MSI-X vectors); BAR1..5
   * default to pci-epf-test's `bar_size[]` (512, 1 KiB, 16 KiB, 128 KiB, 1 MiB).
   */
  readonly barSizes?: readonly number[];
  /** Whether the endpoint has a DMA channel (FLAG_USE_DMA accepted). Default true. */
  readonly dmaChannel?: boolean;
  /** Largest transfer the endpoint's outbound window can map; larger SIZE fails as an invalid address. 4 MiB. */
  readonly maxTransferSize?: number;
  /** Simulated milliseconds until the endpoint's command poll picks up COMMAND (the kernel polls every 1 ms). */
  readonly commandDelayMs?: number;
  /** How long a raised INTx stays asserted before the endpoint controller deasserts it. Default 1 ms. */
  readonly intxPulseMs?: number;
  /** Value of the CAPS register (0x30) at power-on: 0 as Linux 6.12; set bits to imitate 6.14+. */
  readonly caps?: number;
  /** PMCSR No_Soft_Reset: when false, a D3hot→D0 transition resets the function. Default true. */
  readonly noSoftReset?: boolean;
  /** Source of the random payload of WRITE (default node:crypto). */
  readonly randomBytes?: (length: number) => Uint8Array;
  /** Receives the endpoint's diagnostics (its dev_err messages). */
  readonly log?: (message: string) => void;
}

/** The pci-epf-test model: a {@link PciFunction} with every optional member present. */
export interface PciEpfTestFunction extends PciFunction {
  /** PCIe: 4096 bytes of config space. */
  readonly configSize: 4096;
  barRead(bar: number, offset: bigint, length: number): Uint8Array;
  barWrite(bar: number, offset: bigint, data: Uint8Array): void;
  attach(ctx: PciFunctionContext): void;
  reset(kind: 'flr' | 'pm' | 'bus'): void;
}

const PM = EPF_TEST_CAP_OFFSET.PM;
const MSI = EPF_TEST_CAP_OFFSET.MSI;
const EXP = EPF_TEST_CAP_OFFSET.EXP;
const MSIX = EPF_TEST_CAP_OFFSET.MSIX;
const MAX_TRANSFER_DEFAULT = 4 << 20;

const isPow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
const roundUpPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(n));

function num(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw sysError('EINVAL', `pci-epf-test: ${name} must be within ${min}..${max}`);
  }
  return value;
}

function int(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = num(name, value, fallback, min, max);
  if (!Number.isInteger(v)) throw sysError('EINVAL', `pci-epf-test: ${name} must be an integer`);
  return v;
}

/** A DMA the endpoint could not complete: which side failed. */
class TransferError extends Error {
  constructor(readonly side: 'src' | 'dst') {
    super(side);
  }
}

class EpfTestDevice implements PciEpfTestFunction {
  readonly configSize = 4096 as const;
  readonly bars: readonly PciBarInfo[];
  readonly romSize = 0n;

  private readonly cfg = new ConfigSpace(4096);
  private readonly mem: readonly SparseMemory[];
  private readonly msiVectors: number;
  private readonly msixVectors: number;
  private readonly pbaOffset: number;
  private readonly dmaChannel: boolean;
  private readonly maxTransfer: number;
  private readonly commandDelayMs: number;
  private readonly intxPulseMs: number;
  private readonly caps: number;
  private readonly noSoftReset: boolean;
  private readonly randomBytes: (length: number) => Uint8Array;
  private readonly log: (message: string) => void;
  private ctx: PciFunctionContext | undefined;

  private commandTimer: { cancel(): void } | undefined;
  private intxTimer: { cancel(): void } | undefined;
  private intxAsserted = false;
  private intxLine = false;

  constructor(options: PciEpfTestOptions) {
    this.msiVectors = int('msiVectors', options.msiVectors, 32, 0, 32);
    if (this.msiVectors !== 0 && !isPow2(this.msiVectors)) {
      throw sysError('EINVAL', 'pci-epf-test: msiVectors must be 0 or a power of two');
    }
    this.msixVectors = int('msixVectors', options.msixVectors, 32, 0, 2048);
    this.dmaChannel = options.dmaChannel ?? true;
    this.maxTransfer = int('maxTransferSize', options.maxTransferSize, MAX_TRANSFER_DEFAULT, 0, 2 ** 32 - 1);
    this.commandDelayMs = num('commandDelayMs', options.commandDelayMs, 1, 0, Number.MAX_SAFE_INTEGER);
    this.intxPulseMs = num('intxPulseMs', options.intxPulseMs, 1, 0, Number.MAX_SAFE_INTEGER);
    this.caps = int('caps', options.caps, 0, 0, 0xffffffff);
    this.noSoftReset = options.noSoftReset ?? true;
    this.randomBytes = options.randomBytes ?? ((n) => randomFillSync(new Uint8Array(n)));
    this.log = options.log ?? (() => undefined);

    // BAR0: registers (128 bytes), then the MSI-X table, then the PBA (pci_epf_test_alloc_space).
    const tableSize = PCI_MSIX_ENTRY_SIZE * this.msixVectors;
    this.pbaOffset = EPF_TEST_MSIX_TABLE_OFFSET + tableSize;
    const pbaSize = Math.ceil(Math.ceil(this.msixVectors / 8) / 8) * 8;
    const regBarNeed = roundUpPow2(Math.max(128, this.pbaOffset + pbaSize));
    const sizes = [regBarNeed, ...EPF_TEST_DEFAULT_BAR_SIZES.slice(1)];
    if (options.barSizes !== undefined) {
      if (options.barSizes.length > 6) throw sysError('EINVAL', 'pci-epf-test: at most 6 BARs');
      options.barSizes.forEach((s, i) => (sizes[i] = s));
    }
    sizes.forEach((s, i) => {
      const ok = (s === 0 && i !== 0) || (isPow2(s) && s >= 128 && s <= 2 ** 31);
      if (!ok) throw sysError('EINVAL', `pci-epf-test: BAR${i} size ${s} is not a power of two in 128..2^31`);
    });
    if (sizes[0]! < regBarNeed) throw sysError('EINVAL', `pci-epf-test: BAR0 needs at least ${regBarNeed} bytes`);
    this.bars = sizes.map((s, index) => ({ index, type: 'mem32' as const, prefetchable: false, size: BigInt(s) }));
    this.mem = sizes.map((s) => new SparseMemory(s));
    this.buildConfig(options, sizes);
    this.powerOnRegisters();
  }

  // ---- config space -------------------------------------------------------------------------------------------

  private buildConfig(options: PciEpfTestOptions, sizes: readonly number[]): void {
    const c = this.cfg;
    c.set16(PCI_VENDOR_ID, int('vendorId', options.vendorId, EPF_TEST_PCI_ID.VENDOR_TI, 0, 0xffff));
    c.set16(PCI_DEVICE_ID, int('deviceId', options.deviceId, EPF_TEST_PCI_ID.DEVICE_DRA74X, 0, 0xffff));
    // No I/O BARs, so I/O Space Enable is hardwired to 0 (PCIe 6.0 §7.5.1.1.3).
    c.setWmask(
      PCI_COMMAND,
      2,
      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE,
    );
    c.set16(PCI_STATUS, PCI_STATUS_CAP_LIST);
    c.setW1cmask(PCI_STATUS, 2, PCI_STATUS_W1C);
    c.set8(PCI_CLASS_PROG, EPF_TEST_PCI_ID.CLASS & 0xff);
    c.set16(PCI_CLASS_PROG + 1, EPF_TEST_PCI_ID.CLASS >>> 8);
    c.setWmask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    sizes.forEach((s, i) => {
      if (s > 0) c.setWmask(PCI_BASE_ADDRESS_0 + 4 * i, 4, ~(s - 1) & 0xfffffff0);
    });
    c.set16(PCI_SUBSYSTEM_VENDOR_ID, int('subsystemVendorId', options.subsystemVendorId, 0, 0, 0xffff));
    c.set16(PCI_SUBSYSTEM_ID, int('subsystemId', options.subsystemId, 0, 0, 0xffff));
    c.setWmask(PCI_INTERRUPT_LINE, 1, 0xff);
    c.set8(PCI_INTERRUPT_PIN, 1);

    const chain: number[] = [PM];
    if (this.msiVectors > 0) chain.push(MSI);
    chain.push(EXP);
    if (this.msixVectors > 0) chain.push(MSIX);
    c.set8(PCI_CAPABILITY_LIST, PM);
    chain.forEach((at, i) => {
      c.set8(at + 1, chain[i + 1] ?? 0);
    });

    // Power management 1.2: D0 and D3hot only, no PME; PowerState is the one writable field.
    c.set8(PM, PCI_CAP_ID_PM);
    c.set16(PM + PCI_PM_PMC, 0x0003);
    c.set16(PM + PCI_PM_CTRL, this.noSoftReset ? PCI_PM_CTRL_NO_SOFT_RESET : 0);
    c.setWmask(PM + PCI_PM_CTRL, 2, PCI_PM_CTRL_STATE_MASK);

    if (this.msiVectors > 0) {
      // 64-bit MSI, Multiple Message Capable = log2(msi_interrupts), no per-vector masking.
      c.set8(MSI, PCI_CAP_ID_MSI);
      c.set16(MSI + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT | (Math.log2(this.msiVectors) << 1));
      c.setWmask(MSI + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
      c.setWmask(MSI + PCI_MSI_ADDRESS_LO, 4, 0xfffffffc);
      c.setWmask(MSI + PCI_MSI_ADDRESS_HI, 4, 0xffffffff);
      c.setWmask(MSI + PCI_MSI_DATA_64, 2, 0xffff);
    }

    // PCI Express v2, endpoint, 256-byte max payload, role-based error reporting, FLR, Gen3 x1 link.
    c.set8(EXP, PCI_CAP_ID_EXP);
    c.set16(EXP + PCI_EXP_FLAGS, 0x0002);
    c.set32(EXP + PCI_EXP_DEVCAP, PCI_EXP_DEVCAP_FLR | 0x8000 | 0x1);
    c.set16(EXP + PCI_EXP_DEVCTL, 0x2810); // relaxed ordering, no snoop, MRRS 512 (spec defaults)
    c.setWmask(EXP + PCI_EXP_DEVCTL, 2, 0xf9ff);
    c.setW1cmask(EXP + PCI_EXP_DEVSTA, 2, 0x000f);
    c.set32(EXP + PCI_EXP_LNKCAP, 0x00400813);
    c.setWmask(EXP + PCI_EXP_LNKCTL, 2, 0x00cb);
    c.set16(EXP + PCI_EXP_LNKSTA, 0x1013);
    c.set32(EXP + PCI_EXP_DEVCAP2, 0x0000001f);
    c.setWmask(EXP + PCI_EXP_DEVCTL2, 2, 0x001f);
    c.set32(EXP + PCI_EXP_LNKCAP2, 0x0000000e);
    c.set16(EXP + PCI_EXP_LNKCTL2, 0x0003);
    c.setWmask(EXP + PCI_EXP_LNKCTL2, 2, 0x000f);

    if (this.msixVectors > 0) {
      c.set8(MSIX, PCI_CAP_ID_MSIX);
      c.set16(MSIX + PCI_MSIX_FLAGS, this.msixVectors - 1);
      c.setWmask(MSIX + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
      c.set32(MSIX + PCI_MSIX_TABLE, EPF_TEST_MSIX_TABLE_OFFSET); // BIR 0
      c.set32(MSIX + PCI_MSIX_PBA, this.pbaOffset); // BIR 0
    }
    // Extended space (0x100..): no extended capabilities, an all-zero header.
    c.seal();
  }

  configRead(offset: number, size: ConfigAccessSize): number {
    return this.cfg.read(offset, size);
  }

  configWrite(offset: number, size: ConfigAccessSize, value: number): void {
    const msiWas = this.msiEnabled();
    const msixWas = this.msixEnabled();
    const powerWas = this.powerState();
    this.cfg.write(offset, size, value);

    if (this.msiVectors > 0) {
      const flags = this.cfg.u16(MSI + PCI_MSI_FLAGS);
      const qmask = (flags & PCI_MSI_FLAGS_QMASK) >>> 1;
      if ((flags & PCI_MSI_FLAGS_QSIZE) >>> 4 > qmask) {
        this.cfg.set16(MSI + PCI_MSI_FLAGS, (flags & ~PCI_MSI_FLAGS_QSIZE) | (qmask << 4));
      }
    }
    // D1/D2 are not supported: such a write leaves the power state unchanged (PCI PM 1.2 §5.4.1).
    const power = this.powerState();
    if (power === 1 || power === 2) {
      const pmcsr = this.cfg.u16(PM + PCI_PM_CTRL);
      this.cfg.set16(PM + PCI_PM_CTRL, (pmcsr & ~PCI_PM_CTRL_STATE_MASK) | powerWas);
    } else if (powerWas === 3 && power === 0 && !this.noSoftReset) {
      this.reset('pm');
      return;
    }
    // Initiate Function Level Reset: the function resets; the bit always reads 0.
    if (this.cfg.u16(EXP + PCI_EXP_DEVCTL) & PCI_EXP_DEVCTL_BCR_FLR) {
      this.reset('flr');
      return;
    }
    // MSI or MSI-X enabled: the function stops using INTx (PCIe 6.0 §6.1.4.3).
    if ((!msiWas && this.msiEnabled()) || (!msixWas && this.msixEnabled())) this.setIntxLevel(false);
    this.updateIntxLine();
    this.flushMsixPending();
  }

  private command(): number {
    return this.cfg.u16(PCI_COMMAND);
  }

  private powerState(): number {
    return this.cfg.u16(PM + PCI_PM_CTRL) & PCI_PM_CTRL_STATE_MASK;
  }

  private msiEnabled(): boolean {
    return this.msiVectors > 0 && (this.cfg.u16(MSI + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  private msixEnabled(): boolean {
    return this.msixVectors > 0 && (this.cfg.u16(MSIX + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  /** Bus mastering (DMA and message interrupts) needs BME and the function in D0. */
  private canMaster(): boolean {
    return (this.command() & PCI_COMMAND_MASTER) !== 0 && this.powerState() === 0;
  }

  // ---- BARs ---------------------------------------------------------------------------------------------------

  private checkBar(bar: number, offset: bigint, length: number): SparseMemory {
    const mem = Number.isInteger(bar) ? this.mem[bar] : undefined;
    if (!mem || mem.size === 0) throw sysError('EINVAL', `pci-epf-test: BAR${bar} is not implemented`);
    if (!Number.isInteger(length) || length < 0) throw sysError('EINVAL', `pci-epf-test: bad length ${length}`);
    if (offset < 0n || offset + BigInt(length) > BigInt(mem.size)) {
      throw sysError('EINVAL', `pci-epf-test: access 0x${offset.toString(16)}+${length} outside BAR${bar}`);
    }
    return mem;
  }

  /** Memory decoding needs COMMAND.MEMORY and D0; otherwise the access is not claimed (reads all-ones). */
  private decodes(): boolean {
    return (this.command() & PCI_COMMAND_MEMORY) !== 0 && this.powerState() === 0;
  }

  barRead(bar: number, offset: bigint, length: number): Uint8Array {
    const mem = this.checkBar(bar, offset, length);
    if (!this.decodes()) return new Uint8Array(length).fill(0xff);
    return mem.read(Number(offset), length);
  }

  barWrite(bar: number, offset: bigint, data: Uint8Array): void {
    const mem = this.checkBar(bar, offset, data.length);
    if (!this.decodes()) return;
    const at = Number(offset);
    if (bar !== 0) {
      mem.write(at, data);
      return;
    }
    // BAR0 is endpoint RAM too, except the PBA, which only the function updates.
    const pbaStart = this.pbaOffset;
    const pbaEnd = this.msixVectors > 0 ? pbaStart + Math.ceil(this.msixVectors / 64) * 8 : pbaStart;
    for (let i = 0; i < data.length; ) {
      const pos = at + i;
      if (pos >= pbaStart && pos < pbaEnd) {
        i++;
        continue;
      }
      const stop = pos < pbaStart ? Math.min(data.length, pbaStart - at) : data.length;
      mem.write(pos, data.subarray(i, stop));
      i = stop;
    }
    const end = at + data.length;
    if (at < 8 && end > EPF_TEST_REG.COMMAND) this.commandWritten();
    if (end > EPF_TEST_MSIX_TABLE_OFFSET && at < this.pbaOffset) this.flushMsixPending();
  }

  private reg(offset: number): number {
    return this.mem[0]!.u32(offset);
  }

  private setReg(offset: number, value: number): void {
    this.mem[0]!.setU32(offset, value >>> 0);
  }

  private reg64(lowOffset: number): bigint {
    return (BigInt(this.reg(lowOffset + 4)) << 32n) | BigInt(this.reg(lowOffset));
  }

  private powerOnRegisters(): void {
    for (const m of this.mem) m.clear();
    if (this.caps !== 0) this.setReg(EPF_TEST_REG.CAPS, this.caps);
  }

  // ---- the endpoint firmware ----------------------------------------------------------------------------------

  /** The endpoint polls COMMAND every millisecond; a write makes the next poll find it. */
  private commandWritten(): void {
    if (this.reg(EPF_TEST_REG.COMMAND) === 0 || this.commandTimer || !this.ctx) return;
    this.commandTimer = this.ctx.clock.setTimeout(() => {
      this.commandTimer = undefined;
      this.runCommand();
    }, this.commandDelayMs);
  }

  private runCommand(): void {
    const command = this.reg(EPF_TEST_REG.COMMAND);
    if (command === 0) return;
    this.setReg(EPF_TEST_REG.COMMAND, 0);
    this.setReg(EPF_TEST_REG.STATUS, 0);
    if (this.reg(EPF_TEST_REG.FLAGS) & EPF_TEST_FLAG.USE_DMA && !this.dmaChannel) {
      this.log('pci-epf-test: Cannot transfer data using DMA');
      return;
    }
    if (this.reg(EPF_TEST_REG.IRQ_TYPE) > EPF_TEST_IRQ_TYPE.MSIX) {
      this.log('pci-epf-test: Failed to detect IRQ type');
      return;
    }
    switch (command) {
      case EPF_TEST_COMMAND.RAISE_INTX_IRQ:
      case EPF_TEST_COMMAND.RAISE_MSI_IRQ:
      case EPF_TEST_COMMAND.RAISE_MSIX_IRQ:
        break;
      case EPF_TEST_COMMAND.WRITE:
        this.doWrite();
        break;
      case EPF_TEST_COMMAND.READ:
        this.doRead();
        break;
      case EPF_TEST_COMMAND.COPY:
        this.doCopy();
        break;
      default:
        this.log(`pci-epf-test: Invalid command 0x${command.toString(16)}`);
        return;
    }
    this.raiseIrq();
  }

  private orStatus(bits: number): void {
    this.setReg(EPF_TEST_REG.STATUS, this.reg(EPF_TEST_REG.STATUS) | bits);
  }

  private dmaRead(iova: bigint, length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    const ctx = this.ctx;
    if (!ctx || !this.canMaster()) throw new TransferError('src');
    try {
      return ctx.dma.read(iova, length);
    } catch (e) {
      // The read completed with Unsupported Request: the requester logs a received master abort.
      this.cfg.set16(PCI_STATUS, this.cfg.u16(PCI_STATUS) | PCI_STATUS_REC_MASTER_ABORT);
      this.log(`pci-epf-test: DMA read at 0x${iova.toString(16)} failed: ${String(e)}`);
      throw new TransferError('src');
    }
  }

  private dmaWrite(iova: bigint, data: Uint8Array): void {
    if (data.length === 0) return;
    const ctx = this.ctx;
    if (!ctx || !this.canMaster()) throw new TransferError('dst');
    try {
      ctx.dma.write(iova, data);
    } catch (e) {
      this.log(`pci-epf-test: DMA write at 0x${iova.toString(16)} failed: ${String(e)}`);
      throw new TransferError('dst');
    }
  }

  /**
   * Runs one transfer: a SIZE beyond the outbound window fails like pci_epc_mem_alloc_addr (source side first), and
   * a DMA fault marks the side that faulted. Returns false after recording the invalid address.
   */
  private transfer(firstSide: 'src' | 'dst', body: () => void): boolean {
    const invalid = (side: 'src' | 'dst'): number =>
      side === 'src' ? EPF_TEST_STATUS.SRC_ADDR_INVALID : EPF_TEST_STATUS.DST_ADDR_INVALID;
    if (this.reg(EPF_TEST_REG.SIZE) > this.maxTransfer) {
      this.log('pci-epf-test: Failed to allocate address');
      this.setReg(EPF_TEST_REG.STATUS, invalid(firstSide));
      return false;
    }
    try {
      body();
      return true;
    } catch (e) {
      if (!(e instanceof TransferError)) throw e;
      this.setReg(EPF_TEST_REG.STATUS, invalid(e.side));
      return false;
    }
  }

  private doRead(): void {
    const size = this.reg(EPF_TEST_REG.SIZE);
    let ok = false;
    this.transfer('src', () => {
      const data = this.dmaRead(this.reg64(EPF_TEST_REG.LOWER_SRC_ADDR), size);
      ok = crc32Le(0xffffffff, data) === this.reg(EPF_TEST_REG.CHECKSUM);
    });
    this.orStatus(ok ? EPF_TEST_STATUS.READ_SUCCESS : EPF_TEST_STATUS.READ_FAIL);
  }

  private doWrite(): void {
    const size = this.reg(EPF_TEST_REG.SIZE);
    const ok = this.transfer('dst', () => {
      const data = this.randomBytes(size);
      if (data.length !== size) throw new Error('pci-epf-test: randomBytes returned the wrong length');
      this.setReg(EPF_TEST_REG.CHECKSUM, crc32Le(0xffffffff, data));
      this.dmaWrite(this.reg64(EPF_TEST_REG.LOWER_DST_ADDR), data);
    });
    this.orStatus(ok ? EPF_TEST_STATUS.WRITE_SUCCESS : EPF_TEST_STATUS.WRITE_FAIL);
  }

  private doCopy(): void {
    const size = this.reg(EPF_TEST_REG.SIZE);
    const ok = this.transfer('src', () => {
      const data = this.dmaRead(this.reg64(EPF_TEST_REG.LOWER_SRC_ADDR), size);
      this.dmaWrite(this.reg64(EPF_TEST_REG.LOWER_DST_ADDR), data);
    });
    this.orStatus(ok ? EPF_TEST_STATUS.COPY_SUCCESS : EPF_TEST_STATUS.COPY_FAIL);
  }

  // ---- interrupts ---------------------------------------------------------------------------------------------

  /** pci_epf_test_raise_irq: STATUS.IRQ_RAISED is set first, then the interrupt of IRQ_TYPE / IRQ_NUMBER. */
  private raiseIrq(): void {
    this.orStatus(EPF_TEST_STATUS.IRQ_RAISED);
    const type = this.reg(EPF_TEST_REG.IRQ_TYPE);
    const number = this.reg(EPF_TEST_REG.IRQ_NUMBER);
    if (type === EPF_TEST_IRQ_TYPE.INTX) {
      this.pulseIntx();
      return;
    }
    const msi = type === EPF_TEST_IRQ_TYPE.MSI;
    // pci_epc_get_msi / get_msix: the vectors the host enabled, or an error when the capability is disabled.
    const count = msi
      ? this.msiEnabled()
        ? 1 << ((this.cfg.u16(MSI + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_QSIZE) >>> 4)
        : 0
      : this.msixEnabled()
        ? this.msixVectors
        : 0;
    // IRQ_NUMBER is 1-based; 0 would underflow in the endpoint controller, so it is refused here too.
    if (count <= 0 || number === 0 || number > count) {
      this.log(`pci-epf-test: Invalid ${msi ? 'MSI' : 'MSIX'} IRQ number ${number} / ${count}`);
      return;
    }
    if (msi) this.sendMessage(number - 1);
    else this.raiseMsix(number - 1);
  }

  private sendMessage(vector: number): void {
    if (!this.canMaster()) {
      this.log('pci-epf-test: interrupt message dropped, bus mastering disabled');
      return;
    }
    this.ctx?.msiNotify(vector);
  }

  private msixMasked(vector: number): boolean {
    const fnMask = (this.cfg.u16(MSIX + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_MASKALL) !== 0;
    const ctrl = this.reg(EPF_TEST_MSIX_TABLE_OFFSET + vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL);
    return fnMask || (ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }

  private pendingByte(vector: number): { at: number; bit: number } {
    return { at: this.pbaOffset + (vector >>> 3), bit: 1 << (vector & 7) };
  }

  /** A masked MSI-X vector sets its pending bit and is sent when unmasked (PCIe 6.0 §6.1.4.5). */
  private raiseMsix(vector: number): void {
    if (!this.msixMasked(vector)) {
      this.sendMessage(vector);
      return;
    }
    const { at, bit } = this.pendingByte(vector);
    const mem = this.mem[0]!;
    mem.write(at, new Uint8Array([mem.read(at, 1)[0]! | bit]));
  }

  private flushMsixPending(): void {
    if (!this.msixEnabled()) return;
    const mem = this.mem[0]!;
    for (let v = 0; v < this.msixVectors; v++) {
      const { at, bit } = this.pendingByte(v);
      const byte = mem.read(at, 1)[0]!;
      if (!(byte & bit) || this.msixMasked(v)) continue;
      mem.write(at, new Uint8Array([byte & ~bit]));
      this.sendMessage(v);
    }
  }

  /** Endpoint controllers assert INTx and deassert it shortly after (e.g. Cadence, DRA7xx: about 1 ms). */
  private pulseIntx(): void {
    if (this.msiEnabled() || this.msixEnabled()) {
      this.log('pci-epf-test: INTx not sent, MSI or MSI-X is enabled');
      return;
    }
    this.setIntxLevel(true);
    this.intxTimer?.cancel();
    this.intxTimer = this.ctx?.clock.setTimeout(() => {
      this.intxTimer = undefined;
      this.setIntxLevel(false);
    }, this.intxPulseMs);
  }

  private setIntxLevel(level: boolean): void {
    this.intxAsserted = level;
    const status = this.cfg.u16(PCI_STATUS);
    this.cfg.set16(PCI_STATUS, level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
    this.updateIntxLine();
  }

  private updateIntxLine(): void {
    const line = this.intxAsserted && (this.command() & PCI_COMMAND_INTX_DISABLE) === 0;
    if (line === this.intxLine) return;
    this.intxLine = line;
    this.ctx?.setIntx(line);
  }

  // ---- life cycle ---------------------------------------------------------------------------------------------

  attach(ctx: PciFunctionContext): void {
    this.ctx = ctx;
    if (this.intxLine) ctx.setIntx(true);
    this.commandWritten();
  }

  reset(_kind: 'flr' | 'pm' | 'bus'): void {
    this.commandTimer?.cancel();
    this.commandTimer = undefined;
    this.intxTimer?.cancel();
    this.intxTimer = undefined;
    this.cfg.reset();
    this.powerOnRegisters();
    this.intxAsserted = false;
    this.updateIntxLine();
  }
}

/**
 * Creates a pci-epf-test endpoint model as seen from the host (the device drivers/misc/pci_endpoint_test.c
 * drives). Defaults: 104c:b500, 32 MSI and 32 MSI-X vectors, BAR0 registers + MSI-X table, BAR1..5 test memory.
 */
export function pciEpfTestFunction(options: PciEpfTestOptions = {}): PciEpfTestFunction {
  return new EpfTestDevice(options);
}
