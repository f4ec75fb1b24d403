/**
 * The hardware model of the sample migratable device: a {@link PciFunction} with BAR0 registers (see regs.ts),
 * BAR2 memory (sparse 4 KiB pages), an interrupt block with MSI and INTx, and a DMA engine that moves data
 * between BAR2 and host RAM one chunk per clock tick, so a transfer is visibly "under way" for a while.
 *
 * For migration the model exposes what a vendor's firmware would: quiesce/resume (no DMA, no interrupts while
 * quiesced), a register snapshot ({@link MigratableFunction.saveRegisters}), copy-on-write page snapshots of its
 * memory, page-granular write tracking of that memory, a DMA-write hook (the device's dirty tracker) and an
 * all-or-nothing {@link MigratableFunction.loadState}.
 */
import type { PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_PM,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CLASS_DEVICE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_PM_CTRL,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_PMC,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  SysError,
} from '@vfio-ts/uapi';
import {
  MIGRATABLE_ID_VALUE,
  MIGRATABLE_PCI_ID,
  MIG_BAR0_SIZE,
  MIG_DMA_CMD,
  MIG_DMA_STATUS,
  MIG_IRQ,
  MIG_MSI_CAP,
  MIG_PAGE_SIZE,
  MIG_REG,
} from './regs.js';

/** Options of {@link migratableFunction}. */
export interface MigratableOptions {
  /** Size of BAR2 memory: a power of two from 4 KiB to 2 GiB (default 64 KiB). */
  readonly memorySize?: number;
  /** Bytes the DMA engine moves per tick (default 4096). */
  readonly dmaChunkBytes?: number;
  /** Simulated milliseconds per DMA tick (default 1). */
  readonly dmaTickMs?: number;
}

/** The model as the driver sees it. */
export interface MigratableFunction extends PciFunction {
  readonly memorySize: number;
  barRead(bar: number, offset: bigint, length: number): Uint8Array;
  barWrite(bar: number, offset: bigint, data: Uint8Array): void;
  attach(ctx: PciFunctionContext): void;
  reset(kind: 'flr' | 'pm' | 'bus'): void;
  /** Called for every DMA write to host RAM (the device's dirty tracker listens here). */
  onDmaWrite: ((iova: bigint, length: bigint) => void) | undefined;
  /** Called with the first page and page count of every write to BAR2 memory (pre-copy dirty tracking). */
  onMemoryWrite: ((firstPage: number, count: number) => void) | undefined;
  /** Stops DMA and interrupt delivery (the STOP side of the migration states); idempotent. */
  quiesce(): void;
  /** Undoes {@link quiesce}: the DMA clock resumes where it stopped, held-back interrupts are delivered. */
  resume(): void;
  readonly quiesced: boolean;
  /** Indexes of the populated pages of BAR2 memory, ascending. */
  pageIndexes(): number[];
  /** Page `index` of BAR2 memory (a view; undefined when never written). */
  page(index: number): Uint8Array | undefined;
  /**
   * Marks the current pages (all, or those of `indexes`) as shared with a saving snapshot: a later write to one
   * of them copies it first, so the snapshot's views never change. Returns the snapshot as `[index, page]` pairs,
   * ascending; with `indexes`, pages never written are left out.
   */
  snapshotPages(indexes?: Iterable<number>): [number, Uint8Array][];
  /** Drops the copy-on-write marks of {@link snapshotPages}. */
  releaseSnapshot(): void;
  /** The device's registers, DMA engine and interrupt state as bytes (see {@link STATE_BLOB_SIZE}). */
  saveRegisters(): Uint8Array;
  /**
   * Replaces the whole device state with `registers` (from {@link saveRegisters}) and `pages`; validates first
   * (EINVAL) and changes nothing on failure. A `Map` given as `pages` is taken over, not copied (the caller
   * must not use it afterwards). The device stays quiesced; {@link resume} starts it.
   */
  loadState(registers: Uint8Array, pages: ReadonlyMap<number, Uint8Array>): void;
}

/** Offset of the power-management capability (its PM reset is the device's function reset). */
const MIG_PM_CAP = 0x50;
/** Config offsets of the BAR0 register and of the 64-bit BAR2/3 pair. */
const BAR0 = PCI_BASE_ADDRESS_0;
const BAR2 = PCI_BASE_ADDRESS_0 + 8;
const MSI_FLAGS = MIG_MSI_CAP + PCI_MSI_FLAGS;
const MSI_ADDR_LO = MIG_MSI_CAP + PCI_MSI_ADDRESS_LO;
const MSI_ADDR_HI = MIG_MSI_CAP + PCI_MSI_ADDRESS_HI;
const MSI_DATA = MIG_MSI_CAP + PCI_MSI_DATA_64;

/** Magic of a register blob ("MSTA"). */
const STATE_MAGIC = 0x4154534d;
const STATE_VERSION = 1;
/**
 * Bytes of {@link MigratableFunction.saveRegisters}. Config space is not in it: as on Linux, the VMM owns the
 * PCI configuration (it restores it through vfio-pci's config region and SET_IRQS at the destination).
 */
export const STATE_BLOB_SIZE = 72;

function checkOption(name: string, v: number, ok: boolean): number {
  if (!ok) throw new SysError('EINVAL', `migratable: bad ${name} ${v}`);
  return v;
}

class Model implements MigratableFunction {
  readonly bars: readonly PciBarInfo[];
  readonly romSize = 0n;
  readonly memorySize: number;
  onDmaWrite: ((iova: bigint, length: bigint) => void) | undefined;
  onMemoryWrite: ((firstPage: number, count: number) => void) | undefined;

  private readonly cfg = new Uint8Array(256);
  private readonly wmask = new Uint8Array(256);
  private readonly powerOn: Uint8Array;
  private readonly chunk: number;
  private readonly tickMs: number;
  private ctx: PciFunctionContext | undefined;

  // Registers.
  private scratch = 0;
  private counter = 0;
  private irqStatus = 0;
  private irqEnable = 0;
  private dmaBarOffset = 0;
  private dmaIova = 0n;
  private dmaLength = 0;
  private dmaCmd = 0;
  private dmaDone = 0;
  private dmaStatus = 0;
  /** An MSI held back while quiesced. */
  private msiPending = false;
  /** The DMA tick: its deadline while running, its remaining time while quiesced. */
  private timer: { cancel(): void } | undefined;
  private deadline = 0;
  private remaining = -1;
  private stopped = false;
  private intxLine = false;

  private pages = new Map<number, Uint8Array>();
  private readonly shared = new Set<Uint8Array>();

  constructor(options: MigratableOptions) {
    const size = options.memorySize ?? 0x10000;
    this.memorySize = checkOption('memorySize', size, Number.isInteger(size) && size >= MIG_PAGE_SIZE && size <= 2 ** 31 && (size & (size - 1)) === 0);
    const chunk = options.dmaChunkBytes ?? 4096;
    this.chunk = checkOption('dmaChunkBytes', chunk, Number.isInteger(chunk) && chunk > 0);
    const tick = options.dmaTickMs ?? 1;
    this.tickMs = checkOption('dmaTickMs', tick, Number.isFinite(tick) && tick >= 0);
    this.bars = [0, 1, 2, 3, 4, 5].map((index) => ({
      index,
      type: index === 2 ? ('mem64' as const) : ('mem32' as const),
      prefetchable: index === 2,
      size: index === 0 ? BigInt(MIG_BAR0_SIZE) : index === 2 ? BigInt(size) : 0n,
    }));
    this.buildConfig();
    this.powerOn = this.cfg.slice();
  }

  private set16(off: number, v: number): void {
    this.cfg[off] = v & 0xff;
    this.cfg[off + 1] = (v >>> 8) & 0xff;
  }

  private setMask(off: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[off + i] = (mask >>> (8 * i)) & 0xff;
  }

  private buildConfig(): void {
    this.set16(PCI_VENDOR_ID, MIGRATABLE_PCI_ID.VENDOR);
    this.set16(PCI_DEVICE_ID, MIGRATABLE_PCI_ID.DEVICE);
    this.setMask(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    this.set16(PCI_STATUS, PCI_STATUS_CAP_LIST);
    this.cfg[PCI_REVISION_ID] = MIGRATABLE_PCI_ID.REVISION;
    this.cfg[PCI_CLASS_PROG] = MIGRATABLE_PCI_ID.CLASS & 0xff;
    this.set16(PCI_CLASS_DEVICE, MIGRATABLE_PCI_ID.CLASS >>> 8);
    // BAR0: 4 KiB mem32; BAR2/3: a 64-bit prefetchable memory BAR (type bits 0b1100).
    this.setMask(BAR0, 4, ~(MIG_BAR0_SIZE - 1) >>> 0);
    this.cfg[BAR2] = PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH;
    this.setMask(BAR2, 4, ~(this.memorySize - 1) >>> 0 & 0xfffffff0);
    this.setMask(BAR2 + 4, 4, 0xffffffff);
    this.set16(PCI_SUBSYSTEM_VENDOR_ID, MIGRATABLE_PCI_ID.VENDOR);
    this.set16(PCI_SUBSYSTEM_ID, 0x0001);
    this.cfg[PCI_CAPABILITY_LIST] = MIG_MSI_CAP;
    this.setMask(PCI_INTERRUPT_LINE, 1, 0xff);
    this.cfg[PCI_INTERRUPT_PIN] = 1;
    // MSI: one vector, 64-bit, no masking; then power management (PM reset: NoSoftReset clear).
    this.cfg[MIG_MSI_CAP + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSI;
    this.cfg[MIG_MSI_CAP + PCI_CAP_LIST_NEXT] = MIG_PM_CAP;
    this.cfg[MIG_PM_CAP + PCI_CAP_LIST_ID] = PCI_CAP_ID_PM;
    this.set16(MIG_PM_CAP + PCI_PM_PMC, 0x0003);
    this.setMask(MIG_PM_CAP + PCI_PM_CTRL, 2, PCI_PM_CTRL_STATE_MASK);
    this.set16(MSI_FLAGS, PCI_MSI_FLAGS_64BIT);
    this.setMask(MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
    this.setMask(MSI_ADDR_LO, 4, 0xfffffffc);
    this.setMask(MSI_ADDR_HI, 4, 0xffffffff);
    this.setMask(MSI_DATA, 2, 0xffff);
  }

  // ---- config space --------------------------------------------------------------------------------------------

  configRead(offset: number, size: 1 | 2 | 4): number {
    if (offset < 0 || offset + size > 256) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      let b = this.cfg[offset + i]!;
      if (offset + i === PCI_STATUS && this.intxAsserted()) b |= PCI_STATUS_INTERRUPT;
      v = v * 256 + b;
    }
    return v >>> 0;
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset < 0 || offset + size > 256) return;
    for (let i = 0; i < size; i++) {
      const m = this.wmask[offset + i]!;
      const b = (value >>> (8 * i)) & 0xff;
      this.cfg[offset + i] = (this.cfg[offset + i]! & ~m) | (b & m);
    }
    this.updateIntx();
  }

  private cfg16(off: number): number {
    return this.cfg[off]! | (this.cfg[off + 1]! << 8);
  }

  private msiEnabled(): boolean {
    return (this.cfg16(MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  // ---- BARs ------------------------------------------------------------------------------------------------------

  barRead(bar: number, offset: bigint, length: number): Uint8Array {
    if (bar === 0) {
      const out = new Uint8Array(length).fill(0xff);
      if (length === 4 && offset % 4n === 0n && offset + 4n <= BigInt(MIG_BAR0_SIZE)) {
        new DataView(out.buffer).setUint32(0, this.reg(Number(offset)), true);
      }
      return out;
    }
    if (bar === 2) return this.memRead(this.memOffset(offset, length), length);
    throw new SysError('EINVAL', `migratable: BAR${bar} is not implemented`);
  }

  barWrite(bar: number, offset: bigint, data: Uint8Array): void {
    if (bar === 0) {
      // 32-bit registers: other access sizes are dropped, as the hardware ignores them.
      if (data.length === 4 && offset % 4n === 0n && offset + 4n <= BigInt(MIG_BAR0_SIZE)) {
        this.setReg(Number(offset), new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
      }
      return;
    }
    if (bar === 2) {
      this.memWrite(this.memOffset(offset, data.length), data);
      return;
    }
    throw new SysError('EINVAL', `migratable: BAR${bar} is not implemented`);
  }

  private memOffset(offset: bigint, length: number): number {
    if (offset < 0n || offset + BigInt(length) > BigInt(this.memorySize)) {
      throw new SysError('EINVAL', `migratable: BAR2 access at ${offset}+${length} out of range`);
    }
    return Number(offset);
  }

  private memRead(at: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const index = Math.floor((at + done) / MIG_PAGE_SIZE);
      const off = (at + done) % MIG_PAGE_SIZE;
      const n = Math.min(length - done, MIG_PAGE_SIZE - off);
      const page = this.pages.get(index);
      if (page) out.set(page.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  private memWrite(at: number, data: Uint8Array): void {
    if (data.length === 0) return;
    for (let done = 0; done < data.length; ) {
      const index = Math.floor((at + done) / MIG_PAGE_SIZE);
      const off = (at + done) % MIG_PAGE_SIZE;
      const n = Math.min(data.length - done, MIG_PAGE_SIZE - off);
      let page = this.pages.get(index);
      if (!page) {
        page = new Uint8Array(MIG_PAGE_SIZE);
        this.pages.set(index, page);
      } else if (this.shared.has(page)) {
        // Copy-on-write: a saving snapshot still reads the old page.
        this.shared.delete(page);
        page = page.slice();
        this.pages.set(index, page);
      }
      page.set(data.subarray(done, done + n), off);
      done += n;
    }
    const first = Math.floor(at / MIG_PAGE_SIZE);
    this.onMemoryWrite?.(first, Math.floor((at + data.length - 1) / MIG_PAGE_SIZE) - first + 1);
  }

  // ---- registers ------------------------------------------------------------------------------------------------

  private reg(offset: number): number {
    switch (offset) {
      case MIG_REG.ID: return MIGRATABLE_ID_VALUE;
      case MIG_REG.SCRATCH: return this.scratch;
      case MIG_REG.COUNTER: return this.counter;
      case MIG_REG.IRQ_STATUS: return this.irqStatus;
      case MIG_REG.IRQ_ENABLE: return this.irqEnable;
      case MIG_REG.DMA_BAR_OFFSET: return this.dmaBarOffset;
      case MIG_REG.DMA_IOVA_LO: return Number(this.dmaIova & 0xffffffffn);
      case MIG_REG.DMA_IOVA_HI: return Number(this.dmaIova >> 32n);
      case MIG_REG.DMA_LENGTH: return this.dmaLength;
      case MIG_REG.DMA_CMD: return this.dmaCmd;
      case MIG_REG.DMA_DONE: return this.dmaDone;
      case MIG_REG.DMA_STATUS: return this.dmaStatus;
      default: return 0;
    }
  }

  private busy(): boolean {
    return (this.dmaStatus & MIG_DMA_STATUS.BUSY) !== 0;
  }

  private setReg(offset: number, v: number): void {
    switch (offset) {
      case MIG_REG.SCRATCH: this.scratch = v; return;
      case MIG_REG.IRQ_RAISE: this.raise(v); return;
      case MIG_REG.IRQ_ACK:
        this.irqStatus = (this.irqStatus & ~v) >>> 0;
        this.updateIntx();
        return;
      case MIG_REG.IRQ_ENABLE:
        this.irqEnable = v >>> 0;
        this.updateIntx();
        return;
      default: break;
    }
    // The transfer registers are frozen while a transfer runs.
    if (this.busy()) return;
    switch (offset) {
      case MIG_REG.DMA_BAR_OFFSET: this.dmaBarOffset = v; return;
      case MIG_REG.DMA_IOVA_LO: this.dmaIova = (this.dmaIova & ~0xffffffffn) | BigInt(v >>> 0); return;
      case MIG_REG.DMA_IOVA_HI: this.dmaIova = (this.dmaIova & 0xffffffffn) | (BigInt(v >>> 0) << 32n); return;
      case MIG_REG.DMA_LENGTH: this.dmaLength = v >>> 0; return;
      case MIG_REG.DMA_CMD:
        this.dmaCmd = v & (MIG_DMA_CMD.START | MIG_DMA_CMD.TO_RAM | MIG_DMA_CMD.IRQ);
        if ((this.dmaCmd & MIG_DMA_CMD.START) !== 0) this.startDma();
        return;
      default: return;
    }
  }

  // ---- interrupts -----------------------------------------------------------------------------------------------

  private raise(bits: number): void {
    const fresh = bits & ~this.irqStatus;
    this.irqStatus = (this.irqStatus | bits) >>> 0;
    if ((fresh & this.irqEnable) !== 0 && this.msiEnabled()) {
      if (this.stopped) this.msiPending = true;
      else this.ctx?.msiNotify(0);
    }
    this.updateIntx();
  }

  private intxAsserted(): boolean {
    return (this.irqStatus & this.irqEnable) !== 0 && !this.msiEnabled();
  }

  private updateIntx(): void {
    if (this.stopped) return;
    const level = this.intxAsserted() && (this.cfg16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) === 0;
    if (level !== this.intxLine) {
      this.intxLine = level;
      this.ctx?.setIntx(level);
    }
  }

  // ---- DMA engine -----------------------------------------------------------------------------------------------

  private startDma(): void {
    this.dmaDone = 0;
    this.dmaStatus = MIG_DMA_STATUS.BUSY;
    if (this.dmaLength === 0) {
      this.finishDma(false);
      return;
    }
    if (this.stopped) this.remaining = this.tickMs;
    else this.schedule(this.tickMs);
  }

  private schedule(ms: number): void {
    const clock = this.ctx?.clock;
    if (!clock) return;
    this.deadline = clock.now() + ms;
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      this.tick();
    }, ms);
  }

  private tick(): void {
    if (!this.busy() || this.stopped) return;
    const n = Math.min(this.chunk, this.dmaLength - this.dmaDone);
    const barAt = this.dmaBarOffset + this.dmaDone;
    const iova = this.dmaIova + BigInt(this.dmaDone);
    try {
      if (barAt + n > this.memorySize || (this.cfg16(PCI_COMMAND) & PCI_COMMAND_MASTER) === 0 || !this.ctx) {
        throw new SysError('EFAULT', 'DMA outside BAR2 or without bus mastering');
      }
      if ((this.dmaCmd & MIG_DMA_CMD.TO_RAM) !== 0) {
        this.ctx.dma.write(iova, this.memRead(barAt, n));
        this.onDmaWrite?.(iova, BigInt(n));
      } else {
        this.memWrite(barAt, this.ctx.dma.read(iova, n));
      }
    } catch {
      this.finishDma(true);
      return;
    }
    this.dmaDone += n;
    if (this.dmaDone >= this.dmaLength) this.finishDma(false);
    else this.schedule(this.tickMs);
  }

  private finishDma(error: boolean): void {
    this.dmaStatus = error ? MIG_DMA_STATUS.ERROR : 0;
    this.dmaCmd &= ~MIG_DMA_CMD.START;
    if (!error) this.counter = (this.counter + 1) >>> 0;
    if (error) this.raise(MIG_IRQ.DMA_ERROR);
    else if ((this.dmaCmd & MIG_DMA_CMD.IRQ) !== 0) this.raise(MIG_IRQ.DMA_DONE);
  }

  // ---- life cycle -----------------------------------------------------------------------------------------------

  attach(ctx: PciFunctionContext): void {
    this.ctx = ctx;
  }

  reset(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.remaining = -1;
    this.scratch = this.counter = this.irqStatus = this.irqEnable = 0;
    this.dmaBarOffset = this.dmaLength = this.dmaCmd = this.dmaDone = this.dmaStatus = 0;
    this.dmaIova = 0n;
    this.msiPending = false;
    this.pages = new Map();
    this.shared.clear();
    this.cfg.set(this.powerOn);
    this.stopped = false;
    this.updateIntx();
  }

  get quiesced(): boolean {
    return this.stopped;
  }

  quiesce(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) {
      this.timer.cancel();
      this.timer = undefined;
      this.remaining = Math.max(0, this.deadline - (this.ctx?.clock.now() ?? this.deadline));
    }
  }

  resume(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.msiPending) {
      this.msiPending = false;
      if (this.msiEnabled()) this.ctx?.msiNotify(0);
    }
    this.updateIntx();
    if (this.remaining >= 0 && this.busy()) this.schedule(this.remaining);
    this.remaining = -1;
  }

  // ---- migration support ----------------------------------------------------------------------------------------

  pageIndexes(): number[] {
    return [...this.pages.keys()].sort((a, b) => a - b);
  }

  page(index: number): Uint8Array | undefined {
    return this.pages.get(index);
  }

  snapshotPages(indexes?: Iterable<number>): [number, Uint8Array][] {
    const out: [number, Uint8Array][] = [];
    const wanted = indexes ? [...new Set(indexes)].sort((a, b) => a - b) : this.pageIndexes();
    for (const index of wanted) {
      const page = this.pages.get(index);
      if (!page) continue;
      this.shared.add(page);
      out.push([index, page]);
    }
    return out;
  }

  releaseSnapshot(): void {
    this.shared.clear();
  }

  saveRegisters(): Uint8Array {
    const out = new Uint8Array(STATE_BLOB_SIZE);
    const dv = new DataView(out.buffer);
    const words = [
      STATE_MAGIC, STATE_VERSION, this.scratch, this.counter, this.irqStatus, this.irqEnable, this.dmaBarOffset,
      this.dmaLength, this.dmaCmd, this.dmaDone, this.dmaStatus, this.msiPending ? 1 : 0,
    ];
    words.forEach((w, i) => {
      dv.setUint32(4 * i, w >>> 0, true);
    });
    dv.setBigUint64(48, this.dmaIova, true);
    // The DMA tick still to wait: while running, what is left of the deadline.
    const left = this.timer ? Math.max(0, this.deadline - (this.ctx?.clock.now() ?? this.deadline)) : this.remaining;
    dv.setFloat64(56, left, true);
    dv.setBigUint64(64, BigInt(this.memorySize), true);
    return out;
  }

  loadState(registers: Uint8Array, pages: ReadonlyMap<number, Uint8Array>): void {
    if (registers.length !== STATE_BLOB_SIZE) throw new SysError('EINVAL', `register blob of ${registers.length} bytes`);
    const dv = new DataView(registers.buffer, registers.byteOffset, registers.length);
    if (dv.getUint32(0, true) !== STATE_MAGIC || dv.getUint32(4, true) !== STATE_VERSION) {
      throw new SysError('EINVAL', 'register blob has a bad magic or version');
    }
    if (dv.getBigUint64(64, true) !== BigInt(this.memorySize)) throw new SysError('EINVAL', 'register blob from a device of another BAR2 size');
    const left = dv.getFloat64(56, true);
    if (!Number.isFinite(left) || left < -1) throw new SysError('EINVAL', 'bad DMA timer in register blob');
    const maxPage = this.memorySize / MIG_PAGE_SIZE;
    for (const [index, page] of pages) {
      if (!Number.isInteger(index) || index < 0 || index >= maxPage || page.length !== MIG_PAGE_SIZE) {
        throw new SysError('EINVAL', `page ${index} outside BAR2`);
      }
    }
    // Validated: commit everything at once.
    this.timer?.cancel();
    this.timer = undefined;
    this.stopped = true;
    const u = (i: number): number => dv.getUint32(4 * i, true);
    this.scratch = u(2);
    this.counter = u(3);
    this.irqStatus = u(4);
    this.irqEnable = u(5);
    this.dmaBarOffset = u(6);
    this.dmaLength = u(7);
    this.dmaCmd = u(8);
    this.dmaDone = u(9);
    this.dmaStatus = u(10);
    this.msiPending = (u(11) & 1) !== 0;
    this.dmaIova = dv.getBigUint64(48, true);
    this.remaining = left;
    this.pages = pages instanceof Map ? (pages as Map<number, Uint8Array>) : new Map(pages);
    this.shared.clear();
  }
}

/** Creates the sample migratable device model. */
export function migratableFunction(options: MigratableOptions = {}): MigratableFunction {
  return new Model(options);
}
