/**
 * The model of the ACCES PCI-IDIO-16 (494f:0dc8) as hardware: 16 optically isolated inputs with change-of-state
 * interrupts and optional 5 ms filters, 16 FET outputs, behind a PLX 9052-family target bridge that forwards the
 * card's interrupt to INTA#. Register behaviour follows the ACCES manual's programming table and what Linux 6.12's
 * drivers/gpio/gpio-pci-idio-16.c + gpio-idio-16.c expect; choices the public sources leave open are documented on
 * the constants in `regs.ts` and in the README.
 */
import type { Clock, PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_DEVSEL_MEDIUM,
  PCI_STATUS_FAST_BACK,
  PCI_STATUS_ERROR_BITS as PCI_STATUS_W1C,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  sysError,
} from '@vfio-ts/uapi';
import { ConfigSpace } from './config-space.js';
import type { ConfigAccessSize } from './config-space.js';
import {
  IDIO16_BAR,
  IDIO16_BRIDGE_BAR_SIZE,
  IDIO16_BRIDGE_INTCSR,
  IDIO16_FILTER_MS,
  IDIO16_INTCSR,
  IDIO16_INTCSR_POWER_ON,
  IDIO16_IRQ_STATUS,
  IDIO16_LINES,
  IDIO16_PCI_ID,
  IDIO16_REG,
  IDIO16_REGISTERS_BAR_SIZE,
} from './regs.js';

/** Options of {@link idio16Function}. */
export interface Idio16Options {
  /** Initial levels of the 16 input lines in the field (bit n = input n energized). Default 0. */
  readonly inputs?: number;
  /**
   * Simulated milliseconds an input must hold a new level before a filtered input reports it. Default
   * {@link IDIO16_FILTER_MS} (5). Filters act only once the function is attached (they need the host clock).
   */
  readonly filterMs?: number;
  /**
   * Implement COMMAND.INTX_DISABLE and STATUS.INTERRUPT (PCI 2.3 interrupt masking). The card's bridge predates PCI
   * 2.3, so the default is false: the bit is read-only zero and vfio-pci must fall back to masking the host IRQ line,
   * as it does for such devices (inventory §3.4). Set true to exercise the DisINTx path with this card.
   */
  readonly intxDisable?: boolean;
}

/** The card as a {@link PciFunction}, with every optional member present. */
export interface Idio16Function extends PciFunction {
  /** Conventional PCI: 256 bytes of config space (reads above return all-ones). */
  readonly configSize: 256;
  barRead(bar: number, offset: bigint, length: number): Uint8Array;
  barWrite(bar: number, offset: bigint, data: Uint8Array): void;
  attach(ctx: PciFunctionContext): void;
  reset(kind: 'flr' | 'pm' | 'bus'): void;
}

/**
 * The field side of the 16 isolated inputs: what a test or demo wires to the connector. The members are plain
 * functions (no `this`), safe to destructure.
 */
export interface Idio16Inputs {
  /** Drives input `line` (0..15) to `level` (true = energized). EINVAL for anything else. */
  readonly set: (line: number, level: boolean) => void;
  /** Drives all 16 inputs at once (bit n = input n); changes land together. EINVAL unless 0..0xffff. */
  readonly setAll: (mask: number) => void;
  /** The levels in the field (what was last driven). */
  readonly get: () => number;
  /** What the card reports in IN0_7 / IN8_15 now (differs from {@link Idio16Inputs.get} while a filter settles). */
  readonly reported: () => number;
}

/** A snapshot of the card's internal state, for tests and demos. */
export interface Idio16State {
  /** The change-of-state interrupt is enabled (a read of ENABLE_IRQ, until a write to DISABLE_IRQ). */
  readonly irqEnabled: boolean;
  /** The IRQ_STATUS register. */
  readonly irqStatus: number;
  /** Inputs whose 5 ms filter is active (bit n = input n). */
  readonly filters: number;
  /** Level on INTA# as the bus sees it. */
  readonly intx: boolean;
}

/** What {@link idio16Function} returns: the function to plug into a host, plus the field wiring. */
export interface Idio16Simulation {
  readonly fn: Idio16Function;
  readonly inputs: Idio16Inputs;
  /** The FET output latch (bit n = output n on). A plain function: safe to destructure. */
  readonly outputs: () => number;
  /** A snapshot of the card's interrupt and filter state. */
  readonly state: () => Idio16State;
}

const ALL_LINES = (1 << IDIO16_LINES) - 1;
/** INTCSR bits software may write (the status bits are the bridge's). */
const INTCSR_WRITABLE =
  IDIO16_INTCSR.LINT1_ENABLE |
  IDIO16_INTCSR.LINT1_POLARITY |
  IDIO16_INTCSR.LINT2_ENABLE |
  IDIO16_INTCSR.LINT2_POLARITY |
  IDIO16_INTCSR.PCI_INT_ENABLE |
  IDIO16_INTCSR.SOFTWARE_INT;

function checkLevelMask(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > ALL_LINES) {
    throw sysError('EINVAL', `pci-idio-16: ${name} must be an integer in 0..0xffff`);
  }
  return value;
}

class Idio16Device implements Idio16Function {
  readonly configSize = 256 as const;
  readonly bars: readonly PciBarInfo[];
  readonly romSize = 0n;

  private readonly cfg = new ConfigSpace();
  private readonly filterMs: number;
  private readonly intxDisable: boolean;
  private ctx: PciFunctionContext | undefined;

  // The card (CPLD) state.
  private out = 0;
  /** Input levels in the field. Not device state: a reset leaves the wiring alone. */
  private field: number;
  /** Input levels the card reports (the field, delayed by active filters). */
  private reported: number;
  private irqEnabled = false;
  private irqStatus = 0;
  /** Global filter enable (read of FILTER_CTL) and the individual enables of inputs 0-7 (FILTER_STATUS writes). */
  private filterAll = false;
  private filterLow = 0;
  private readonly filterTimers: ({ cancel(): void } | undefined)[] = new Array<undefined>(IDIO16_LINES).fill(undefined);

  // The bridge.
  private intcsr = IDIO16_INTCSR_POWER_ON;
  /** Level last reported through ctx.setIntx. */
  private intxLine = false;

  constructor(options: Idio16Options) {
    this.field = checkLevelMask('inputs', options.inputs ?? 0);
    this.reported = this.field;
    const filterMs = options.filterMs ?? IDIO16_FILTER_MS;
    if (typeof filterMs !== 'number' || !Number.isFinite(filterMs) || filterMs < 0) {
      throw sysError('EINVAL', 'pci-idio-16: filterMs must be a finite number >= 0');
    }
    this.filterMs = filterMs;
    const intxDisable = options.intxDisable ?? false;
    if (typeof intxDisable !== 'boolean') throw sysError('EINVAL', 'pci-idio-16: intxDisable must be a boolean');
    this.intxDisable = intxDisable;
    const sizes = [IDIO16_BRIDGE_BAR_SIZE, IDIO16_BRIDGE_BAR_SIZE, IDIO16_REGISTERS_BAR_SIZE, 0n, 0n, 0n];
    this.bars = sizes.map((size, index) => ({
      index,
      type: index === IDIO16_BAR.BRIDGE_MEM || size === 0n ? ('mem32' as const) : ('io' as const),
      prefetchable: false,
      size,
    }));
    this.buildConfig();
  }

  /** The power-on config image: a PLX 9052-style conventional target with the card's identity. */
  private buildConfig(): void {
    const c = this.cfg;
    c.set16(PCI_VENDOR_ID, IDIO16_PCI_ID.VENDOR);
    c.set16(PCI_DEVICE_ID, IDIO16_PCI_ID.DEVICE);
    // A target-only bridge: no bus mastering, no memory-write-invalidate, no VGA snooping.
    const command = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_PARITY | PCI_COMMAND_SERR;
    c.setWmask(PCI_COMMAND, 2, this.intxDisable ? command | PCI_COMMAND_INTX_DISABLE : command);
    c.set16(PCI_STATUS, PCI_STATUS_FAST_BACK | PCI_STATUS_DEVSEL_MEDIUM);
    c.setW1cmask(PCI_STATUS, 2, PCI_STATUS_W1C);
    c.set8(PCI_REVISION_ID, IDIO16_PCI_ID.REVISION);
    c.set8(PCI_CLASS_PROG, IDIO16_PCI_ID.CLASS & 0xff);
    c.set16(PCI_CLASS_PROG + 1, IDIO16_PCI_ID.CLASS >>> 8);
    c.setWmask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    // Header type 0, single function, no BIST: bytes 0x0d-0x0f stay zero and read-only.
    for (const bar of this.bars) {
      if (bar.size === 0n) continue;
      const reg = PCI_BASE_ADDRESS_0 + 4 * bar.index;
      // The low address bits inside the BAR read as zero: writing all-ones reads back the size mask.
      const addressMask = ~(Number(bar.size) - 1) >>> 0;
      if (bar.type === 'io') {
        c.set32(reg, PCI_BASE_ADDRESS_SPACE_IO);
        c.setWmask(reg, 4, addressMask & 0xfffffffc);
      } else {
        c.setWmask(reg, 4, addressMask & 0xfffffff0);
      }
    }
    c.set16(PCI_SUBSYSTEM_VENDOR_ID, IDIO16_PCI_ID.SUBSYSTEM_VENDOR);
    c.set16(PCI_SUBSYSTEM_ID, IDIO16_PCI_ID.SUBSYSTEM);
    // No expansion ROM, no capabilities (STATUS.CAP_LIST clear).
    c.setWmask(PCI_INTERRUPT_LINE, 1, 0xff);
    c.set8(PCI_INTERRUPT_PIN, 1); // INTA#; the bridge has no MSI.
    c.seal();
  }

  // ---- config space -------------------------------------------------------------------------------------------

  configRead(offset: number, size: ConfigAccessSize): number {
    return this.cfg.read(offset, size);
  }

  configWrite(offset: number, size: ConfigAccessSize, value: number): void {
    this.cfg.write(offset, size, value);
    // COMMAND.INTX_DISABLE may have changed: the pin follows.
    this.updateIrq();
  }

  private command(): number {
    return this.cfg.u16(PCI_COMMAND);
  }

  // ---- BARs ---------------------------------------------------------------------------------------------------

  private checkBarAccess(bar: number, offset: bigint, length: number): number {
    const info = Number.isInteger(bar) ? this.bars[bar] : undefined;
    if (!info || info.size === 0n) throw sysError('EINVAL', `pci-idio-16: BAR${bar} is not implemented`);
    if (!Number.isInteger(length) || length < 0) throw sysError('EINVAL', `pci-idio-16: bad access length ${length}`);
    if (typeof offset !== 'bigint') throw sysError('EINVAL', 'pci-idio-16: BAR offset must be a bigint');
    if (offset < 0n || offset + BigInt(length) > info.size) {
      throw sysError('EINVAL', `pci-idio-16: access 0x${offset.toString(16)}+${length} outside BAR${bar}`);
    }
    return Number(offset);
  }

  /** A BAR decodes only while its space is enabled in COMMAND; otherwise the access is not claimed. */
  private decodes(bar: number): boolean {
    const enable = this.bars[bar]?.type === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    return (this.command() & enable) !== 0;
  }

  barRead(bar: number, offset: bigint, length: number): Uint8Array {
    const base = this.checkBarAccess(bar, offset, length);
    const out = new Uint8Array(length).fill(0xff);
    if (!this.decodes(bar)) return out;
    // The local bus is 8 bits wide: the bridge splits a wider access into byte cycles in ascending address order,
    // so a 16-bit read at base+0 reads OUT0_7 and then IN0_7 (and each byte's side effect happens once).
    for (let i = 0; i < length; i++) {
      out[i] = bar === IDIO16_BAR.REGISTERS ? this.regRead(base + i) : this.bridgeRead(base + i);
    }
    return out;
  }

  barWrite(bar: number, offset: bigint, data: Uint8Array): void {
    const base = this.checkBarAccess(bar, offset, data.length);
    if (!this.decodes(bar)) return;
    for (let i = 0; i < data.length; i++) {
      if (bar === IDIO16_BAR.REGISTERS) this.regWrite(base + i, data[i]!);
      else this.bridgeWrite(base + i, data[i]!);
    }
  }

  // ---- the card's registers (BAR2) ------------------------------------------------------------------------------

  private regRead(reg: number): number {
    switch (reg) {
      case IDIO16_REG.OUT0_7:
        return this.out & 0xff;
      case IDIO16_REG.IN0_7:
        return this.reported & 0xff;
      case IDIO16_REG.ENABLE_IRQ:
        // The read is the command. Enabling does not clear a latched interrupt: that is why Linux's
        // idio_16_handle_mask_sync writes CLEAR_INTERRUPT before it reads ENABLE_IRQ.
        this.irqEnabled = true;
        this.updateIrq();
        return 0xff; // strobe-only register: nothing drives the data lines
      case IDIO16_REG.FILTER_CTL:
        this.setFilters(true, 0);
        return 0xff;
      case IDIO16_REG.OUT8_15:
        return this.out >>> 8;
      case IDIO16_REG.IN8_15:
        return this.reported >>> 8;
      case IDIO16_REG.IRQ_STATUS:
        // No side effect (Linux's regmap marks only ENABLE_IRQ precious).
        return this.irqStatus;
      default: // IDIO16_REG.FILTER_STATUS
        return this.activeFilters() & 0xff;
    }
  }

  private regWrite(reg: number, value: number): void {
    switch (reg) {
      case IDIO16_REG.OUT0_7:
        this.out = (this.out & 0xff00) | value;
        break;
      case IDIO16_REG.CLEAR_INTERRUPT:
        this.irqStatus = 0;
        this.updateIrq();
        break;
      case IDIO16_REG.DISABLE_IRQ:
        // Disabling stops new latches and drops the line; a latched interrupt stays latched until cleared.
        this.irqEnabled = false;
        this.updateIrq();
        break;
      case IDIO16_REG.FILTER_CTL:
        // "Deactivate Input Filters 0-15": the individual enables of inputs 0-7 go too.
        this.setFilters(false, 0);
        break;
      case IDIO16_REG.OUT8_15:
        this.out = (this.out & 0x00ff) | (value << 8);
        break;
      case IDIO16_REG.FILTER_STATUS:
        // Individual filters 0-7 are programmable only while the global enable has not been given.
        if (!this.filterAll) this.setFilters(false, value);
        break;
      default: // IN8_15, IRQ_STATUS: unused on write
        break;
    }
  }

  // ---- inputs, filters and the change-of-state latch ------------------------------------------------------------

  private activeFilters(): number {
    return this.filterAll ? ALL_LINES : this.filterLow;
  }

  private setFilters(all: boolean, low: number): void {
    this.filterAll = all;
    this.filterLow = low & 0xff;
    // Inputs whose filter just went away report their field level at once.
    const active = this.activeFilters();
    let settle = 0;
    for (let line = 0; line < IDIO16_LINES; line++) {
      if (active & (1 << line) || !this.filterTimers[line]) continue;
      this.cancelFilter(line);
      settle |= 1 << line;
    }
    this.commit(settle & (this.field ^ this.reported));
  }

  private cancelFilter(line: number): void {
    this.filterTimers[line]?.cancel();
    this.filterTimers[line] = undefined;
  }

  private get clock(): Clock | undefined {
    return this.ctx?.clock;
  }

  /** The field changed to `levels`: unfiltered inputs report at once, filtered ones after holding for filterMs. */
  driveInputs(levels: number): void {
    const changed = this.field ^ levels;
    this.field = levels;
    if (changed === 0) return;
    const clock = this.clock;
    const filtered = clock ? this.activeFilters() : 0;
    for (let line = 0; line < IDIO16_LINES; line++) {
      const bit = 1 << line;
      if (!(changed & bit) || !(filtered & bit)) continue;
      // A new edge restarts the filter; a glitch shorter than the filter time never reaches the register.
      this.cancelFilter(line);
      if ((this.field ^ this.reported) & bit) {
        this.filterTimers[line] = clock?.setTimeout(() => {
          this.filterTimers[line] = undefined;
          this.commit((this.field ^ this.reported) & bit);
        }, this.filterMs);
      }
    }
    this.commit(changed & ~filtered);
  }

  /** Inputs in `mask` now report their field level; a change latches an interrupt while the interrupt is enabled. */
  private commit(mask: number): void {
    if (mask === 0) return;
    this.reported ^= mask;
    if (!this.irqEnabled) return;
    this.irqStatus |= IDIO16_IRQ_STATUS.PENDING;
    if (mask & 0x00ff) this.irqStatus |= IDIO16_IRQ_STATUS.INPUTS_0_7;
    if (mask & 0xff00) this.irqStatus |= IDIO16_IRQ_STATUS.INPUTS_8_15;
    this.updateIrq();
  }

  fieldLevels(): number {
    return this.field;
  }

  reportedLevels(): number {
    return this.reported;
  }

  outputs(): number {
    return this.out;
  }

  snapshot(): Idio16State {
    return {
      irqEnabled: this.irqEnabled,
      irqStatus: this.irqStatus,
      filters: this.activeFilters(),
      intx: this.pinLevel(),
    };
  }

  // ---- the bridge (BAR0 / BAR1) and INTA# -----------------------------------------------------------------------

  private bridgeRead(offset: number): number {
    // Only INTCSR's low byte is modelled; the other local configuration registers read as zero.
    if (offset !== IDIO16_BRIDGE_INTCSR) return 0;
    return this.intcsr | (this.lint1Active() ? IDIO16_INTCSR.LINT1_STATUS : 0);
  }

  private bridgeWrite(offset: number, value: number): void {
    if (offset !== IDIO16_BRIDGE_INTCSR) return;
    this.intcsr = value & INTCSR_WRITABLE;
    this.updateIrq();
  }

  /** The card drives local interrupt 1 high while its interrupt is enabled and latched. */
  private cardIrq(): boolean {
    return this.irqEnabled && (this.irqStatus & IDIO16_IRQ_STATUS.PENDING) !== 0;
  }

  private lint1Active(): boolean {
    const activeHigh = (this.intcsr & IDIO16_INTCSR.LINT1_POLARITY) !== 0;
    return this.cardIrq() === activeHigh;
  }

  /** INTA# as the bridge drives it, before COMMAND.INTX_DISABLE. */
  private bridgeIntx(): boolean {
    if (!(this.intcsr & IDIO16_INTCSR.PCI_INT_ENABLE)) return false;
    if (this.intcsr & IDIO16_INTCSR.SOFTWARE_INT) return true;
    return (this.intcsr & IDIO16_INTCSR.LINT1_ENABLE) !== 0 && this.lint1Active();
  }

  private pinLevel(): boolean {
    const masked = this.intxDisable && (this.command() & PCI_COMMAND_INTX_DISABLE) !== 0;
    return this.bridgeIntx() && !masked;
  }

  private updateIrq(): void {
    if (this.intxDisable) {
      const status = this.cfg.u16(PCI_STATUS);
      const interrupt = this.bridgeIntx() ? PCI_STATUS_INTERRUPT : 0;
      this.cfg.set16(PCI_STATUS, (status & ~PCI_STATUS_INTERRUPT) | interrupt);
    }
    const level = this.pinLevel();
    if (!this.ctx || level === this.intxLine) return;
    this.intxLine = level;
    this.ctx.setIntx(level);
  }

  // ---- lifecycle ----------------------------------------------------------------------------------------------

  attach(ctx: PciFunctionContext): void {
    for (let line = 0; line < IDIO16_LINES; line++) this.cancelFilter(line);
    this.reported = this.field;
    this.ctx = ctx;
    this.intxLine = false;
    this.updateIrq();
  }

  /**
   * Any reset returns the card to power-on: outputs off, interrupt disabled and unlatched, filters off, bridge
   * routing and config space as loaded at power-up. The field wiring is not the card's: inputs report it at once.
   */
  reset(kind: 'flr' | 'pm' | 'bus'): void {
    if (kind !== 'flr' && kind !== 'pm' && kind !== 'bus') throw sysError('EINVAL', `pci-idio-16: reset ${String(kind)}`);
    this.cfg.reset();
    for (let line = 0; line < IDIO16_LINES; line++) this.cancelFilter(line);
    this.out = 0;
    this.reported = this.field;
    this.irqEnabled = false;
    this.irqStatus = 0;
    this.filterAll = false;
    this.filterLow = 0;
    this.intcsr = IDIO16_INTCSR_POWER_ON;
    this.updateIrq();
  }
}

/**
 * Creates an ACCES PCI-IDIO-16 with its field wiring. Plug `fn` into a host (or call `fn.attach(ctx)` in a test),
 * drive inputs through `inputs`, and watch the FET outputs with `outputs()`.
 *
 * @throws SysError EINVAL on invalid options.
 */
export function idio16Function(options: Idio16Options = {}): Idio16Simulation {
  const dev = new Idio16Device(options);
  return {
    fn: dev,
    inputs: {
      set: (line: number, level: boolean): void => {
        if (!Number.isInteger(line) || line < 0 || line >= IDIO16_LINES) {
          throw sysError('EINVAL', `pci-idio-16: input line ${line} (0..15)`);
        }
        if (typeof level !== 'boolean') throw sysError('EINVAL', 'pci-idio-16: input level must be a boolean');
        const bit = 1 << line;
        dev.driveInputs(level ? dev.fieldLevels() | bit : dev.fieldLevels() & ~bit);
      },
      setAll: (mask: number): void => {
        dev.driveInputs(checkLevelMask('input mask', mask));
      },
      get: () => dev.fieldLevels(),
      reported: () => dev.reportedLevels(),
    },
    outputs: () => dev.outputs(),
    state: () => dev.snapshot(),
  };
}
