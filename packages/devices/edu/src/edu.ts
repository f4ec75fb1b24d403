/**
 * The model of QEMU's educational PCI device ("edu", 1234:11e8) as hardware: raw config space with an MSI
 * capability, a 1 MiB MMIO BAR with the registers of docs/specs/edu.rst, a factorial unit, a one-buffer DMA
 * engine, and INTx / MSI delivery. Behaviour follows hw/misc/edu.c; the few places where this model differs are
 * documented on {@link EduOptions} and in the README.
 */
import type { Clock, PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import {
  PCI_BASE_ADDRESS_0,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_ID_MSI,
  PCI_CAPABILITY_LIST,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
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
  PCI_REVISION_ID,
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
import { ConfigSpace } from './config-space.js';
import type { ConfigAccessSize } from './config-space.js';
import {
  EDU_BAR0_SIZE,
  EDU_DEFAULT_DMA_MASK,
  EDU_DMA_BUFFER_ADDR,
  EDU_DMA_BUFFER_SIZE,
  EDU_DMA_CMD,
  EDU_ID_VALUE,
  EDU_IRQ,
  EDU_MSI_CAP_OFFSET,
  EDU_PCI_ID,
  EDU_REG,
  EDU_STATUS,
} from './regs.js';

/** Options of {@link eduFunction}. */
export interface EduOptions {
  /**
   * DMA mask applied to the RAM-side address of a transfer (QEMU's `-device edu,dma_mask=`). Addresses are
   * clamped (`addr & mask`), exactly as edu.c does, so a driver that forgets to restrict its DMA addresses to
   * 28 bits reads or writes the wrong IOVA. Default `(1n << 28n) - 1n`.
   */
  readonly dmaMask?: bigint;
  /**
   * Simulated milliseconds between writing the factorial register and the result (QEMU computes in a thread
   * "so that students are forced to check the status properly"). Default 1.
   */
  readonly factorialDelayMs?: number;
  /** Simulated milliseconds a DMA transfer takes. QEMU arms a 100 ms virtual timer; default 1 (see README). */
  readonly dmaDelayMs?: number;
  /**
   * Also decode the 4 KiB DMA buffer at BAR0 offset 0x40000 for MMIO (any access size). QEMU's edu does not:
   * its buffer is reachable by DMA only, and MMIO there reads all-ones. Default false (as QEMU).
   */
  readonly mmioDmaBuffer?: boolean;
  /** Receives the device's diagnostics (QEMU's LOG_GUEST_ERROR messages: bad DMA ranges, clamped addresses). */
  readonly log?: (message: string) => void;
}

/** The edu model: a {@link PciFunction} with every optional member present, plus a little introspection. */
export interface EduFunction extends PciFunction {
  /** Conventional PCI: 256 bytes of config space (reads above return all-ones). */
  readonly configSize: 256;
  barRead(bar: number, offset: bigint, length: number): Uint8Array;
  barWrite(bar: number, offset: bigint, data: Uint8Array): void;
  /**
   * The little-endian value of `size` bytes at `offset` of BAR `bar`: exactly what {@link barRead} returns for the
   * same access, without a temporary array or bigint offset (vfio-pci uses it for register-sized accesses).
   */
  barReadValue(bar: number, offset: number, size: 1 | 2 | 4): number;
  /** Writes the low `size` bytes of `value` (little-endian) at `offset`: exactly {@link barWrite} of those bytes. */
  barWriteValue(bar: number, offset: number, size: 1 | 2 | 4, value: number): void;
  attach(ctx: PciFunctionContext): void;
  reset(kind: 'flr' | 'pm' | 'bus'): void;
  /** A copy of the device's 4 KiB DMA buffer (debugging aid; not visible to the bus). */
  dmaBuffer(): Uint8Array;
}

const U64 = (1n << 64n) - 1n;
const U32 = 0xffff_ffffn;
const MSI = EDU_MSI_CAP_OFFSET;
const BAR0_BYTES = Number(EDU_BAR0_SIZE);
const DMA_BUFFER_START = Number(EDU_DMA_BUFFER_ADDR);
const DMA_BUFFER_END = DMA_BUFFER_START + EDU_DMA_BUFFER_SIZE;
/**
 * The register offsets {@link EduDevice.mmioRead32} switches on, as module constants: a `case` on a property of
 * the imported EDU_REG object is a module-variable and a property load per comparison on every read.
 */
const R32_ID = EDU_REG.ID;
const R32_LIVENESS = EDU_REG.LIVENESS;
const R32_FACTORIAL = EDU_REG.FACTORIAL;
const R32_STATUS = EDU_REG.STATUS;
const R32_IRQ_STATUS = EDU_REG.IRQ_STATUS;
const R32_DMA_SRC = EDU_REG.DMA_SRC;
const R32_DMA_DST = EDU_REG.DMA_DST;
const R32_DMA_COUNT = EDU_REG.DMA_COUNT;
const R32_DMA_CMD = EDU_REG.DMA_CMD;
/** The same kind of module copies for the other values on the BAR read path. */
const COMMAND = PCI_COMMAND;
const COMMAND_MEMORY = PCI_COMMAND_MEMORY;
const ID_VALUE = EDU_ID_VALUE;
/** Which 32-bit half of a 64-bit array element holds the low bits (host byte order). */
const LO_HALF = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

function checkDelay(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw sysError('EINVAL', `edu: ${name} must be a finite number >= 0`);
  return value;
}

class EduDevice implements EduFunction {
  readonly configSize = 256 as const;
  readonly bars: readonly PciBarInfo[];
  readonly romSize = 0n;

  private readonly cfg = new ConfigSpace(256);
  private readonly dmaMask: bigint;
  private readonly factorialDelayMs: number;
  private readonly dmaDelayMs: number;
  private readonly mmioDmaBuffer: boolean;
  private readonly log: (message: string) => void;
  private ctx: PciFunctionContext | undefined;

  // Device state (edu.c EduState).
  private liveness = 0;
  private factorial = 0;
  private status = 0;
  private irqStatus = 0;
  private dmaSrc = 0n;
  private dmaDst = 0n;
  private dmaCount = 0n;
  private dmaCmd = 0n;
  private readonly buffer = new Uint8Array(EDU_DMA_BUFFER_SIZE);
  /** Scratch to read a (range-checked) bigint BAR offset as a number without bigint arithmetic. */
  private readonly offScratch = new BigUint64Array(1);
  private readonly offHalves = new Uint32Array(this.offScratch.buffer);
  private factorialTimer: { cancel(): void } | undefined;
  private dmaTimer: { cancel(): void } | undefined;
  /** Level the device drives internally; the pin itself is gated by COMMAND.INTX_DISABLE. */
  private intxAsserted = false;
  /** Level last reported on the pin through ctx.setIntx. */
  private intxLine = false;

  constructor(options: EduOptions) {
    const mask = options.dmaMask ?? EDU_DEFAULT_DMA_MASK;
    if (mask < 0n || mask > U64) throw sysError('EINVAL', 'edu: dmaMask must fit in 64 bits');
    this.dmaMask = mask;
    this.factorialDelayMs = checkDelay('factorialDelayMs', options.factorialDelayMs, 1);
    this.dmaDelayMs = checkDelay('dmaDelayMs', options.dmaDelayMs, 1);
    this.mmioDmaBuffer = options.mmioDmaBuffer ?? false;
    this.log = options.log ?? (() => undefined);
    this.bars = [0, 1, 2, 3, 4, 5].map((index) => ({
      index,
      type: 'mem32' as const,
      prefetchable: false,
      size: index === 0 ? EDU_BAR0_SIZE : 0n,
    }));
    this.buildConfig();
  }

  /** The power-on config image: hw/misc/edu.c realize + QEMU's generic PCI defaults (pci_init_wmask). */
  private buildConfig(): void {
    const c = this.cfg;
    c.set16(PCI_VENDOR_ID, EDU_PCI_ID.VENDOR);
    c.set16(PCI_DEVICE_ID, EDU_PCI_ID.DEVICE);
    c.setWmask(
      PCI_COMMAND,
      2,
      PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE,
    );
    c.set16(PCI_STATUS, PCI_STATUS_CAP_LIST);
    c.setW1cmask(PCI_STATUS, 2, PCI_STATUS_W1C);
    c.set8(PCI_REVISION_ID, EDU_PCI_ID.REVISION);
    c.set8(PCI_CLASS_PROG, EDU_PCI_ID.CLASS & 0xff);
    c.set16(PCI_CLASS_PROG + 1, EDU_PCI_ID.CLASS >>> 8);
    c.setWmask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    // BAR0: 1 MiB, memory, 32-bit, non-prefetchable: the low 20 address bits read as 0, so sizing works.
    c.setWmask(PCI_BASE_ADDRESS_0, 4, ~(Number(EDU_BAR0_SIZE) - 1) >>> 0);
    c.set16(PCI_SUBSYSTEM_VENDOR_ID, EDU_PCI_ID.SUBSYSTEM_VENDOR);
    c.set16(PCI_SUBSYSTEM_ID, EDU_PCI_ID.SUBSYSTEM);
    c.set8(PCI_CAPABILITY_LIST, MSI);
    c.setWmask(PCI_INTERRUPT_LINE, 1, 0xff);
    c.set8(PCI_INTERRUPT_PIN, 1);
    // MSI: msi_init(pdev, 0, 1 vector, 64-bit, no per-vector masking) → 14 bytes at 0x40.
    c.set8(MSI, PCI_CAP_ID_MSI);
    c.set8(MSI + 1, 0);
    c.set16(MSI + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT);
    c.setWmask(MSI + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    c.setWmask(MSI + PCI_MSI_ADDRESS_LO, 4, 0xfffffffc);
    c.setWmask(MSI + PCI_MSI_ADDRESS_HI, 4, 0xffffffff);
    c.setWmask(MSI + PCI_MSI_DATA_64, 2, 0xffff);
    c.seal();
  }

  // ---- config space -------------------------------------------------------------------------------------------

  configRead(offset: number, size: ConfigAccessSize): number {
    return this.cfg.read(offset, size);
  }

  configWrite(offset: number, size: ConfigAccessSize, value: number): void {
    const msiWasEnabled = this.msiEnabled();
    this.cfg.write(offset, size, value);
    // Multiple Message Enable above Multiple Message Capable is clamped, as QEMU's msi_write_config does.
    const flags = this.cfg.u16(MSI + PCI_MSI_FLAGS);
    const qmask = (flags & PCI_MSI_FLAGS_QMASK) >>> 1;
    if ((flags & PCI_MSI_FLAGS_QSIZE) >>> 4 > qmask) {
      this.cfg.set16(MSI + PCI_MSI_FLAGS, (flags & ~PCI_MSI_FLAGS_QSIZE) | (qmask << 4));
    }
    // "When MSI is enabled, INTx is disabled" (PCI 3.0 §6.8.1.3): the device drops its pin.
    if (!msiWasEnabled && this.msiEnabled()) this.setIntxLevel(false);
    // INTX_DISABLE may have changed: the pin follows (status.INTERRUPT keeps the internal level).
    this.updateIntxLine();
  }

  private command(): number {
    return this.cfg.u16(COMMAND);
  }

  private msiEnabled(): boolean {
    return (this.cfg.u16(MSI + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  // ---- BAR0 -------------------------------------------------------------------------------------------------

  private checkBarAccess(bar: number, offset: bigint, length: number): number {
    if (bar !== 0) throw sysError('EINVAL', `edu: BAR${bar} is not implemented`);
    if (!Number.isInteger(length) || length < 0) throw sysError('EINVAL', `edu: bad access length ${length}`);
    // Two comparisons and one 64-bit store instead of bigint arithmetic: a valid offset is below 1 MiB, so its
    // low 32-bit half is the whole value.
    if (offset < 0n || offset > EDU_BAR0_SIZE) throw this.outsideBar0(offset, length);
    this.offScratch[0] = offset;
    const base = this.offHalves[LO_HALF]!;
    if (base + length > BAR0_BYTES) throw this.outsideBar0(offset, length);
    return base;
  }

  private outsideBar0(offset: bigint, length: number): Error {
    return sysError('EINVAL', `edu: access 0x${offset.toString(16)}+${length} outside BAR0`);
  }

  /**
   * Splits an access the way a CPU (or vfio-pci's `do_io_rw`) issues it: the widest naturally aligned chunk of
   * 8, 4, 2 or 1 bytes at each position.
   */
  private static chunk(at: number, remaining: number): 1 | 2 | 4 | 8 {
    if (at % 8 === 0 && remaining >= 8) return 8;
    if (at % 4 === 0 && remaining >= 4) return 4;
    if (at % 2 === 0 && remaining >= 2) return 2;
    return 1;
  }

  barRead(bar: number, offset: bigint, length: number): Uint8Array {
    const base = this.checkBarAccess(bar, offset, length);
    const out = new Uint8Array(length);
    // A function with memory decoding off does not claim the access: the host reads all-ones.
    if ((this.command() & PCI_COMMAND_MEMORY) === 0) return out.fill(0xff);
    for (let pos = 0; pos < length; ) {
      const size = EduDevice.chunk(base + pos, length - pos);
      const at = base + pos;
      if (this.inMmioBuffer(at, size)) {
        // Byte copies: the pieces are at most 8 bytes, not worth a subarray and a bulk copy.
        const from = at - DMA_BUFFER_START;
        for (let i = 0; i < size; i++) out[pos + i] = this.buffer[from + i]!;
      } else if (size === 8) {
        let v = this.mmioRead64(at);
        for (let i = 0; i < 8; i++) {
          out[pos + i] = Number(v & 0xffn);
          v >>= 8n;
        }
      } else {
        let v = this.mmioRead(at, size);
        for (let i = 0; i < size; i++) {
          out[pos + i] = v & 0xff;
          v >>>= 8;
        }
      }
      pos += size;
    }
    return out;
  }

  barWrite(bar: number, offset: bigint, data: Uint8Array): void {
    const base = this.checkBarAccess(bar, offset, data.length);
    if ((this.command() & PCI_COMMAND_MEMORY) === 0) return;
    for (let pos = 0; pos < data.length; ) {
      const size = EduDevice.chunk(base + pos, data.length - pos);
      const at = base + pos;
      if (this.inMmioBuffer(at, size)) {
        const to = at - DMA_BUFFER_START;
        for (let i = 0; i < size; i++) this.buffer[to + i] = data[pos + i]!;
      } else {
        // Little-endian halves as numbers; only the 64-bit DMA registers need a bigint.
        let lo = 0;
        let hi = 0;
        for (let i = Math.min(size, 4) - 1; i >= 0; i--) lo = lo * 256 + data[pos + i]!;
        for (let i = size - 1; i >= 4; i--) hi = hi * 256 + data[pos + i]!;
        this.mmioWrite(at, size, lo, hi);
      }
      pos += size;
    }
  }

  barReadValue(bar: number, offset: number, size: 1 | 2 | 4): number {
    // The usual register read first: an aligned dword of BAR0 outside the DMA buffer (offset a non-negative
    // integer below 2^32 and a multiple of 4 below BAR0_BYTES, so the dword is inside BAR0) — the same answer as
    // the general path below, without re-deriving what these few comparisons already establish.
    if (bar === 0 && size === 4 && offset >>> 0 === offset && (offset & 3) === 0 && offset < BAR0_BYTES && !this.inMmioBuffer(offset, 4)) {
      if ((this.command() & COMMAND_MEMORY) === 0) return 0xffffffff;
      return this.mmioRead32(offset);
    }
    return this.barReadValueAny(bar, offset, size);
  }

  /** {@link barReadValue} of any access (kept out of its small, inlinable common case). */
  private barReadValueAny(bar: number, offset: number, size: 1 | 2 | 4): number {
    if (!Number.isInteger(offset)) throw sysError('EINVAL', `edu: bad BAR offset ${offset}`);
    if (!EduDevice.simpleAccess(bar, offset, size)) {
      // Anything but one aligned in-range piece: barRead's own answer (or error).
      const bytes = this.barRead(bar, BigInt(offset), size);
      let v = 0;
      for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
      return v;
    }
    if ((this.command() & PCI_COMMAND_MEMORY) === 0) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    if (this.inMmioBuffer(offset, size)) {
      const from = offset - DMA_BUFFER_START;
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + this.buffer[from + i]!;
      return v;
    }
    return this.mmioRead(offset, size);
  }

  barWriteValue(bar: number, offset: number, size: 1 | 2 | 4, value: number): void {
    if (!Number.isInteger(offset)) throw sysError('EINVAL', `edu: bad BAR offset ${offset}`);
    const lo = size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
    if (!EduDevice.simpleAccess(bar, offset, size)) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = (lo >>> (8 * i)) & 0xff;
      this.barWrite(bar, BigInt(offset), bytes);
      return;
    }
    if ((this.command() & PCI_COMMAND_MEMORY) === 0) return;
    if (this.inMmioBuffer(offset, size)) {
      const to = offset - DMA_BUFFER_START;
      for (let i = 0; i < size; i++) this.buffer[to + i] = (lo >>> (8 * i)) & 0xff;
      return;
    }
    this.mmioWrite(offset, size, lo, 0);
  }

  /** One naturally aligned 1/2/4-byte piece inside BAR0: what barRead/barWrite would issue as a single chunk. */
  private static simpleAccess(bar: number, offset: number, size: number): boolean {
    return (
      bar === 0 &&
      (size === 4 || size === 2 || size === 1) &&
      offset >= 0 &&
      offset + size <= BAR0_BYTES &&
      (offset & (size - 1)) === 0
    );
  }

  private inMmioBuffer(at: number, size: number): boolean {
    return this.mmioDmaBuffer && at >= DMA_BUFFER_START && at + size <= DMA_BUFFER_END;
  }

  /** edu.c's access rules: 4 bytes below 0x80, 4 or 8 from 0x80; anything else reads all-ones. */
  private static validAccess(addr: number, size: number): boolean {
    if (size !== 4 && size !== 8) return false;
    // addr < 1 MiB and size a power of two: the bit test is the alignment check without a division.
    if ((addr & (size - 1)) !== 0) return false;
    return addr >= 0x80 || size === 4;
  }

  /** A 1-, 2- or 4-byte register read (only 4-byte ones are valid), as an unsigned number. */
  private mmioRead(addr: number, size: 1 | 2 | 4): number {
    if (size !== 4 || !EduDevice.validAccess(addr, size)) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.mmioRead32(addr);
  }

  /** A valid 4-byte register read (`addr` dword-aligned inside BAR0), as an unsigned number. */
  private mmioRead32(addr: number): number {
    switch (addr) {
      case R32_ID:
        return ID_VALUE;
      case R32_LIVENESS:
        return this.liveness >>> 0;
      case R32_FACTORIAL:
        return this.factorial >>> 0;
      case R32_STATUS:
        return this.status >>> 0;
      case R32_IRQ_STATUS:
        return this.irqStatus >>> 0;
      // The low halves of the 64-bit DMA registers.
      case R32_DMA_SRC:
        return Number(this.dmaSrc & U32);
      case R32_DMA_DST:
        return Number(this.dmaDst & U32);
      case R32_DMA_COUNT:
        return Number(this.dmaCount & U32);
      case R32_DMA_CMD:
        return Number(this.dmaCmd & U32);
      default:
        // Unimplemented offsets, write-only registers and the upper halves of the 64-bit registers.
        return 0xffffffff;
    }
  }

  /** An 8-byte register read (valid from 0x80 on). */
  private mmioRead64(addr: number): bigint {
    if (!EduDevice.validAccess(addr, 8)) return U64;
    let v: bigint;
    switch (addr) {
      case EDU_REG.ID:
        v = BigInt(EDU_ID_VALUE);
        break;
      case EDU_REG.LIVENESS:
        v = BigInt(this.liveness);
        break;
      case EDU_REG.FACTORIAL:
        v = BigInt(this.factorial);
        break;
      case EDU_REG.STATUS:
        v = BigInt(this.status);
        break;
      case EDU_REG.IRQ_STATUS:
        v = BigInt(this.irqStatus);
        break;
      case EDU_REG.DMA_SRC:
        v = this.dmaSrc;
        break;
      case EDU_REG.DMA_DST:
        v = this.dmaDst;
        break;
      case EDU_REG.DMA_COUNT:
        v = this.dmaCount;
        break;
      case EDU_REG.DMA_CMD:
        v = this.dmaCmd;
        break;
      default:
        return U64;
    }
    return v & U64;
  }

  /** A register write of `size` bytes whose value is `hi * 2^32 + lo` (hi is 0 below 8 bytes). */
  private mmioWrite(addr: number, size: 1 | 2 | 4 | 8, lo: number, hi: number): void {
    if (!EduDevice.validAccess(addr, size)) return;
    const v32 = lo;
    switch (addr) {
      case EDU_REG.LIVENESS:
        this.liveness = ~v32 >>> 0;
        break;
      case EDU_REG.FACTORIAL:
        // Ignored while a computation is under way (edu.c checks EDU_STATUS_COMPUTING).
        if (this.status & EDU_STATUS.COMPUTING) break;
        this.factorial = v32;
        this.status |= EDU_STATUS.COMPUTING;
        this.scheduleFactorial();
        break;
      case EDU_REG.STATUS:
        // Only IRQ_FACT is writable; COMPUTING is the device's.
        if (v32 & EDU_STATUS.IRQ_FACT) this.status |= EDU_STATUS.IRQ_FACT;
        else this.status &= ~EDU_STATUS.IRQ_FACT;
        break;
      case EDU_REG.IRQ_RAISE:
        this.raiseIrq(v32);
        break;
      case EDU_REG.IRQ_ACK:
        this.lowerIrq(v32);
        break;
      case EDU_REG.DMA_SRC:
      case EDU_REG.DMA_DST:
      case EDU_REG.DMA_COUNT: {
        // The DMA registers are frozen while a transfer runs (edu.c dma_rw). A 4-byte write stores the
        // zero-extended value: the upper half of a 64-bit register is not separately addressable.
        if (this.dmaCmd & BigInt(EDU_DMA_CMD.START)) break;
        const value = (BigInt(hi) << 32n) | BigInt(lo);
        if (addr === EDU_REG.DMA_SRC) this.dmaSrc = value;
        else if (addr === EDU_REG.DMA_DST) this.dmaDst = value;
        else this.dmaCount = value;
        break;
      }
      case EDU_REG.DMA_CMD:
        if (!(lo & EDU_DMA_CMD.START)) break;
        if (this.dmaCmd & BigInt(EDU_DMA_CMD.START)) break;
        this.dmaCmd = (BigInt(hi) << 32n) | BigInt(lo);
        this.scheduleDma();
        break;
      default:
        break;
    }
  }

  // ---- work that takes time ---------------------------------------------------------------------------------

  private get clock(): Clock | undefined {
    return this.ctx?.clock;
  }

  private scheduleFactorial(): void {
    const clock = this.clock;
    if (!clock || this.factorialTimer) return; // attach() starts pending work
    this.factorialTimer = clock.setTimeout(() => {
      this.factorialTimer = undefined;
      this.finishFactorial();
    }, this.factorialDelayMs);
  }

  private finishFactorial(): void {
    // n! modulo 2^32, as edu.c's uint32_t loop; once the product reaches 0 (n ≥ 34) it stays 0.
    let result = 1;
    for (let n = this.factorial; n > 0 && result !== 0; n--) result = Math.imul(result, n) >>> 0;
    this.factorial = result;
    this.status &= ~EDU_STATUS.COMPUTING;
    if (this.status & EDU_STATUS.IRQ_FACT) this.raiseIrq(EDU_IRQ.FACTORIAL);
  }

  private scheduleDma(): void {
    const clock = this.clock;
    if (!clock) return;
    // timer_mod semantics: a (re)start re-arms the timer.
    this.dmaTimer?.cancel();
    this.dmaTimer = clock.setTimeout(() => {
      this.dmaTimer = undefined;
      this.runDma();
    }, this.dmaDelayMs);
  }

  private runDma(): void {
    const start = BigInt(EDU_DMA_CMD.START);
    if (!(this.dmaCmd & start)) return;
    const toRam = (this.dmaCmd & BigInt(EDU_DMA_CMD.TO_RAM)) !== 0n;
    const deviceAddr = toRam ? this.dmaSrc : this.dmaDst;
    const ramAddr = toRam ? this.dmaDst : this.dmaSrc;
    const count = this.dmaCount;
    const bufEnd = EDU_DMA_BUFFER_ADDR + BigInt(EDU_DMA_BUFFER_SIZE);
    if (deviceAddr < EDU_DMA_BUFFER_ADDR || deviceAddr + count > bufEnd) {
      // edu.c logs this and then copies anyway (overrunning its buffer); the model refuses the transfer.
      this.log(
        `EDU: DMA range 0x${deviceAddr.toString(16)}+0x${count.toString(16)} out of bounds ` +
          `(0x${EDU_DMA_BUFFER_ADDR.toString(16)}-0x${(bufEnd - 1n).toString(16)})!`,
      );
    } else if (count > 0n) {
      this.transfer(toRam, Number(deviceAddr - EDU_DMA_BUFFER_ADDR), this.clampAddr(ramAddr), Number(count));
    }
    this.dmaCmd &= ~start;
    if (this.dmaCmd & BigInt(EDU_DMA_CMD.IRQ)) this.raiseIrq(EDU_IRQ.DMA);
  }

  private clampAddr(addr: bigint): bigint {
    const res = addr & this.dmaMask;
    if (res !== addr) this.log(`EDU: clamping DMA 0x${addr.toString(16)} to 0x${res.toString(16)}!`);
    return res;
  }

  private transfer(toRam: boolean, bufOffset: number, iova: bigint, length: number): void {
    const ctx = this.ctx;
    // Without bus mastering the function issues no memory requests at all.
    if (!ctx || (this.command() & PCI_COMMAND_MASTER) === 0) {
      this.log('EDU: DMA with bus mastering disabled, transfer dropped');
      return;
    }
    try {
      if (toRam) ctx.dma.write(iova, this.buffer.slice(bufOffset, bufOffset + length));
      else this.buffer.set(ctx.dma.read(iova, length), bufOffset);
    } catch (e) {
      // An IOMMU fault: a read completes with Unsupported Request, which the requester records as a received
      // master abort; a posted write is dropped without a completion.
      if (!toRam) this.cfg.set16(PCI_STATUS, this.cfg.u16(PCI_STATUS) | PCI_STATUS_REC_MASTER_ABORT);
      this.log(`EDU: DMA ${toRam ? 'write' : 'read'} at 0x${iova.toString(16)} faulted: ${String(e)}`);
    }
  }

  // ---- interrupts -------------------------------------------------------------------------------------------

  private raiseIrq(value: number): void {
    this.irqStatus = (this.irqStatus | value) >>> 0;
    if (this.irqStatus === 0) return;
    if (this.msiEnabled()) this.sendMsi();
    else this.setIntxLevel(true);
  }

  private lowerIrq(value: number): void {
    this.irqStatus = (this.irqStatus & ~value) >>> 0;
    if (this.irqStatus === 0 && !this.msiEnabled()) this.setIntxLevel(false);
  }

  private sendMsi(): void {
    // An MSI is a memory write: it needs bus mastering like any other DMA.
    if ((this.command() & PCI_COMMAND_MASTER) === 0) {
      this.log('EDU: MSI with bus mastering disabled, dropped');
      return;
    }
    this.ctx?.msiNotify(0);
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

  // ---- life cycle -------------------------------------------------------------------------------------------

  attach(ctx: PciFunctionContext): void {
    this.ctx = ctx;
    if (this.intxLine) ctx.setIntx(true);
    if (this.status & EDU_STATUS.COMPUTING) this.scheduleFactorial();
    if (this.dmaCmd & BigInt(EDU_DMA_CMD.START)) this.scheduleDma();
  }

  reset(_kind: 'flr' | 'pm' | 'bus'): void {
    this.factorialTimer?.cancel();
    this.factorialTimer = undefined;
    this.dmaTimer?.cancel();
    this.dmaTimer = undefined;
    this.liveness = 0;
    this.factorial = 0;
    this.status = 0;
    this.irqStatus = 0;
    this.dmaSrc = 0n;
    this.dmaDst = 0n;
    this.dmaCount = 0n;
    this.dmaCmd = 0n;
    this.buffer.fill(0);
    this.cfg.reset();
    this.intxAsserted = false;
    this.updateIntxLine();
  }

  dmaBuffer(): Uint8Array {
    return this.buffer.slice();
  }
}

/**
 * Creates a QEMU edu device model. Plug it into a simulated host as a PCI function; drive it through config
 * space and BAR0 exactly as a driver drives the QEMU device.
 */
export function eduFunction(options: EduOptions = {}): EduFunction {
  return new EduDevice(options);
}
