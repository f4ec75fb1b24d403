import { describe, expect, it } from 'vitest';
import { isSysError } from '@vfio-ts/uapi';
import {
  IDIO16_BAR,
  IDIO16_BRIDGE_INTCSR,
  IDIO16_INTCSR,
  IDIO16_INTCSR_POWER_ON,
  IDIO16_IRQ_STATUS,
  IDIO16_PCI_ID,
  IDIO16_REG,
  idio16Function,
} from '../src/index.js';
import type { Idio16Function } from '../src/index.js';
import { CMD_IO, CMD_MEM, FakeHost, fromLe, inb, le, outb, setup } from './helpers.js';

const REG = IDIO16_REG;
const PENDING = IDIO16_IRQ_STATUS.PENDING;
const CMD_INTX_DISABLE = 0x400;
const STATUS_INTERRUPT = 0x8;

function config(dev: Idio16Function): Uint8Array {
  const out = new Uint8Array(256);
  for (let i = 0; i < 256; i += 4) out.set(le(dev.configRead(i, 4), 4), i);
  return out;
}

function expectSysError(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    expect(isSysError(e)).toBe(true);
    expect((e as { errno: string }).errno).toBe(errno);
    return;
  }
  throw new Error(`expected ${errno}`);
}

/**
 * Linux 6.12's driver as the card sees it: drivers/gpio/gpio-pci-idio-16.c registering through gpio-idio-16.c
 * (devm_idio_16_regmap_register) with a regmap-irq chip: status_base 6, mask_base 2 driven by
 * idio_16_handle_mask_sync, ack_base 1, every input's interrupt on status bit 2.
 */
class LinuxIdio16Driver {
  private irqMask = 0; // struct idio_16_data.irq_mask (kzalloc'ed)
  private unmasked = new Set<number>();
  readonly handled: number[][] = [];

  constructor(private readonly dev: Idio16Function) {}

  probe(): void {
    // "Disable IRQ to prevent spurious interrupts before we're ready"
    outb(this.dev, REG.DISABLE_IRQ, 0);
    // regmap_add_irq_chip: initial mask sync with everything masked, then ack whatever is pending.
    this.maskSync();
    const status = inb(this.dev, REG.IRQ_STATUS);
    if (status & PENDING) outb(this.dev, REG.CLEAR_INTERRUPT, status & PENDING);
    // config->filters: "Deactivate input filters"
    outb(this.dev, REG.FILTER_CTL, 0);
  }

  /** gpio_regmap get for GPIO 0..31 (outputs 0-15 at 0/4, inputs 16-31 at 1/5: IDIO_16_REG_STRIDE 4). */
  get(offset: number): boolean {
    const stride = Math.floor((offset % 16) / 8) * 4;
    const reg = (offset < 16 ? 0 : 1) + stride;
    return (inb(this.dev, reg) & (1 << (offset % 8))) !== 0;
  }

  /** gpio_regmap set: read-modify-write of the output register (regmap_update_bits). */
  set(offset: number, value: boolean): void {
    const reg = Math.floor(offset / 8) * 4;
    const bit = 1 << (offset % 8);
    const old = inb(this.dev, reg);
    outb(this.dev, reg, value ? old | bit : old & ~bit);
  }

  enableIrq(input: number): void {
    this.unmasked.add(input);
    this.maskSync();
  }

  disableIrq(input: number): void {
    this.unmasked.delete(input);
    this.maskSync();
  }

  /** idio_16_handle_mask_sync with mask_buf_def = BIT(2). */
  private maskSync(): void {
    const maskBuf = this.unmasked.size === 0 ? PENDING : 0;
    const prev = this.irqMask;
    if (maskBuf === prev) return;
    this.irqMask = maskBuf;
    if (prev === PENDING) {
      outb(this.dev, REG.CLEAR_INTERRUPT, 0);
      inb(this.dev, REG.ENABLE_IRQ);
      return;
    }
    if (maskBuf === PENDING) outb(this.dev, REG.DISABLE_IRQ, 0);
  }

  /** regmap_irq_thread: read status, dispatch the unmasked inputs, ack on ack_base. Returns IRQ_HANDLED. */
  interrupt(): boolean {
    const status = inb(this.dev, REG.IRQ_STATUS) & ~this.irqMask & PENDING;
    if (!status) return false;
    this.handled.push([...this.unmasked].sort((a, b) => a - b));
    outb(this.dev, REG.CLEAR_INTERRUPT, status);
    return true;
  }
}

describe('config space', () => {
  it('identifies as the PCI-IDIO-16 with a conventional type 0 header', () => {
    const { fn } = idio16Function();
    expect(fn.configRead(0x00, 2)).toBe(0x494f);
    expect(fn.configRead(0x02, 2)).toBe(0x0dc8);
    expect(fn.configRead(0x08, 4) >>> 8).toBe(IDIO16_PCI_ID.CLASS);
    expect(fn.configRead(0x0e, 1)).toBe(0);
    expect(fn.configRead(0x2c, 4)).toBe(0x0dc8494f);
    expect(fn.configRead(0x3d, 1)).toBe(1); // INTA#
    expect(fn.configRead(0x34, 1)).toBe(0);
    // No capability list, medium DEVSEL, fast back-to-back capable.
    expect(fn.configRead(0x06, 2)).toBe(0x0280);
    expect(fn.configSize).toBe(256);
    expect(fn.configRead(0x100, 4)).toBe(0xffffffff);
    expect(fn.romSize).toBe(0n);
  });

  it('describes BAR0 mem 128 B, BAR1 I/O 128 B, BAR2 I/O 8 B and nothing else', () => {
    const { fn } = idio16Function();
    expect(fn.bars.map((b) => [b.index, b.type, b.size])).toEqual([
      [0, 'mem32', 128n],
      [1, 'io', 128n],
      [2, 'io', 8n],
      [3, 'mem32', 0n],
      [4, 'mem32', 0n],
      [5, 'mem32', 0n],
    ]);
    expect(fn.bars.every((b) => !b.prefetchable)).toBe(true);
  });

  it('sizes every BAR by writing all-ones, then takes an address', () => {
    const { fn } = idio16Function();
    expect([0x10, 0x14, 0x18].map((r) => fn.configRead(r, 4))).toEqual([0x0, 0x1, 0x1]);
    for (let r = 0x10; r <= 0x24; r += 4) fn.configWrite(r, 4, 0xffffffff);
    fn.configWrite(0x30, 4, 0xffffffff);
    expect([0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30].map((r) => fn.configRead(r, 4) >>> 0)).toEqual([
      0xffffff80, 0xffffff81, 0xfffffff9, 0, 0, 0, 0,
    ]);
    // Firmware then assigns addresses; the low bits inside the BAR stay zero, the type bits stay.
    fn.configWrite(0x10, 4, 0xfebf1000);
    fn.configWrite(0x14, 4, 0x0000e0ff);
    fn.configWrite(0x18, 2, 0xe0ff);
    expect(fn.configRead(0x10, 4)).toBe(0xfebf1000);
    expect(fn.configRead(0x14, 4)).toBe(0xe081);
    expect(fn.configRead(0x18, 4) & 0xffff).toBe(0xe0f9);
  });

  it('has a small writable mask: command, cache line, BARs, interrupt line', () => {
    const { fn } = idio16Function();
    const before = config(fn);
    for (let off = 0; off < 256; off += 4) fn.configWrite(off, 4, 0xffffffff);
    const after = config(fn);
    const changed = [...after.keys()].filter((i) => after[i] !== before[i]);
    expect(changed).toEqual([
      0x04, 0x05, 0x0c, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x3c,
    ]);
    // Target only: no bus master, no INTx disable (pre-PCI 2.3 bridge).
    expect(fn.configRead(0x04, 2)).toBe(0x0143);
    expect(fn.configRead(0x06, 2)).toBe(0x0280);
  });

  it('implements COMMAND.INTX_DISABLE only when asked to', () => {
    const { fn } = idio16Function({ intxDisable: true });
    fn.configWrite(0x04, 2, 0xffff);
    expect(fn.configRead(0x04, 2)).toBe(0x0543);
  });

  it('status error bits are RW1C: writes never set them', () => {
    const { fn } = idio16Function();
    fn.configWrite(0x04, 4, 0xffff0000);
    expect(fn.configRead(0x06, 2)).toBe(0x0280);
  });

  it('rejects malformed config accesses with EINVAL and changes nothing', () => {
    const { fn } = idio16Function();
    const before = config(fn);
    expectSysError(() => fn.configRead(-1, 4), 'EINVAL');
    expectSysError(() => fn.configRead(0x3e, 4), 'EINVAL');
    expectSysError(() => { fn.configWrite(0x3, 2, 0xffff); }, 'EINVAL');
    expectSysError(() => { fn.configWrite(0x10, 3 as 4, 0xffffffff); }, 'EINVAL');
    expectSysError(() => { fn.configWrite(4096, 1, 0); }, 'EINVAL');
    expect(config(fn)).toEqual(before);
  });
});

describe('outputs and inputs', () => {
  it('latches the FET outputs at base+0 and base+4 and reads them back', () => {
    const sim = setup();
    outb(sim.dev, REG.OUT0_7, 0xa5);
    outb(sim.dev, REG.OUT8_15, 0x3c);
    expect(inb(sim.dev, REG.OUT0_7)).toBe(0xa5);
    expect(inb(sim.dev, REG.OUT8_15)).toBe(0x3c);
    expect(sim.outputs()).toBe(0x3ca5);
    // Writing one half leaves the other alone; inputs are unaffected.
    outb(sim.dev, REG.OUT0_7, 0x01);
    expect(sim.outputs()).toBe(0x3c01);
    expect(inb(sim.dev, REG.IN0_7)).toBe(0);
  });

  it('reads the isolated inputs at base+1 and base+5; writes there do not change them', () => {
    const sim = setup({ inputs: 0x8001 });
    expect(inb(sim.dev, REG.IN0_7)).toBe(0x01);
    expect(inb(sim.dev, REG.IN8_15)).toBe(0x80);
    sim.inputs.setAll(0xa55a);
    expect([inb(sim.dev, REG.IN0_7), inb(sim.dev, REG.IN8_15)]).toEqual([0x5a, 0xa5]);
    sim.inputs.set(0, true);
    sim.inputs.set(15, false);
    expect(sim.inputs.get()).toBe(0x255b);
    outb(sim.dev, REG.IN8_15, 0xff);
    outb(sim.dev, REG.IN0_7, 0xff); // clear interrupt: not an input write
    expect(sim.inputs.reported()).toBe(0x255b);
    expect(sim.outputs()).toBe(0);
  });

  it('splits wider accesses into ascending byte cycles', () => {
    const sim = setup({ inputs: 0x1234 });
    outb(sim.dev, REG.OUT0_7, 0x77);
    expect(fromLe(sim.dev.barRead(IDIO16_BAR.REGISTERS, 0n, 2))).toBe(0x3477);
    // A dword write at base+4 sets OUT8_15 and ignores the unused bytes.
    sim.dev.barWrite(IDIO16_BAR.REGISTERS, 4n, le(0xffffff66, 4));
    expect(sim.outputs()).toBe(0x6677);
    // A dword read at base+0 enables the interrupt (base+2) and activates filters (base+3), in that order.
    sim.dev.barRead(IDIO16_BAR.REGISTERS, 0n, 4);
    expect(sim.state()).toMatchObject({ irqEnabled: true, filters: 0xffff });
  });

  it('decodes BAR2 only while COMMAND.IO is set and the bridge BAR0 only with COMMAND.MEMORY', () => {
    const sim = setup({}, 0);
    outb(sim.dev, REG.OUT0_7, 0xff);
    expect(sim.outputs()).toBe(0);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(0xff);
    expect(sim.dev.barRead(IDIO16_BAR.BRIDGE_MEM, BigInt(IDIO16_BRIDGE_INTCSR), 1)[0]).toBe(0xff);
    sim.dev.configWrite(0x04, 2, CMD_MEM);
    expect(sim.dev.barRead(IDIO16_BAR.BRIDGE_MEM, BigInt(IDIO16_BRIDGE_INTCSR), 1)[0]).toBe(IDIO16_INTCSR_POWER_ON);
    expect(sim.dev.barRead(IDIO16_BAR.BRIDGE_IO, BigInt(IDIO16_BRIDGE_INTCSR), 1)[0]).toBe(0xff);
    sim.dev.configWrite(0x04, 2, CMD_IO);
    outb(sim.dev, REG.OUT8_15, 0x80);
    expect(sim.outputs()).toBe(0x8000);
  });

  it('rejects bad BAR accesses and bad input lines with EINVAL and changes nothing', () => {
    const sim = setup({ inputs: 0x00f0 });
    outb(sim.dev, REG.OUT0_7, 0x42);
    expectSysError(() => sim.dev.barRead(3, 0n, 1), 'EINVAL');
    expectSysError(() => sim.dev.barRead(6, 0n, 1), 'EINVAL');
    expectSysError(() => sim.dev.barRead(1.5, 0n, 1), 'EINVAL');
    expectSysError(() => sim.dev.barRead(IDIO16_BAR.REGISTERS, 7n, 2), 'EINVAL');
    expectSysError(() => sim.dev.barRead(IDIO16_BAR.REGISTERS, -1n, 1), 'EINVAL');
    expectSysError(() => { sim.dev.barWrite(IDIO16_BAR.REGISTERS, 0n, new Uint8Array(9)); }, 'EINVAL');
    expectSysError(() => { sim.dev.barWrite(IDIO16_BAR.BRIDGE_MEM, 127n, new Uint8Array(2)); }, 'EINVAL');
    expectSysError(() => { sim.inputs.set(16, true); }, 'EINVAL');
    expectSysError(() => { sim.inputs.set(-1, true); }, 'EINVAL');
    expectSysError(() => { sim.inputs.set(0.5, true); }, 'EINVAL');
    expectSysError(() => { sim.inputs.set(0, 1 as unknown as boolean); }, 'EINVAL');
    expectSysError(() => { sim.inputs.setAll(0x10000); }, 'EINVAL');
    expectSysError(() => { sim.inputs.setAll(-1); }, 'EINVAL');
    expectSysError(() => { sim.inputs.setAll(Number.NaN); }, 'EINVAL');
    expect(sim.outputs()).toBe(0x42);
    expect(sim.inputs.get()).toBe(0x00f0);
    expect(sim.state()).toEqual({ irqEnabled: false, irqStatus: 0, filters: 0, intx: false });
  });

  it('rejects invalid options with EINVAL', () => {
    expectSysError(() => idio16Function({ inputs: 0x1ffff }), 'EINVAL');
    expectSysError(() => idio16Function({ filterMs: -1 }), 'EINVAL');
    expectSysError(() => idio16Function({ filterMs: Number.POSITIVE_INFINITY }), 'EINVAL');
    expectSysError(() => idio16Function({ intxDisable: 'yes' as unknown as boolean }), 'EINVAL');
  });
});

describe('change-of-state interrupts', () => {
  it('raises nothing while the interrupt is disabled (the power-on state)', () => {
    const sim = setup();
    sim.inputs.set(3, true);
    sim.inputs.setAll(0xffff);
    expect(sim.host.intx).toEqual([]);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(0);
  });

  it('a read of base+2 enables it: a change latches status and asserts INTx until base+1 is written', () => {
    const sim = setup();
    inb(sim.dev, REG.ENABLE_IRQ);
    expect(sim.host.intx).toEqual([]);
    sim.inputs.set(9, true);
    expect(sim.host.intx).toEqual([true]);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(PENDING | IDIO16_IRQ_STATUS.INPUTS_8_15);
    // Reading the status (or the inputs) does not clear it.
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(PENDING | IDIO16_IRQ_STATUS.INPUTS_8_15);
    expect(inb(sim.dev, REG.IN8_15)).toBe(0x02);
    sim.inputs.set(1, true);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(PENDING | 0x3);
    expect(sim.host.intx).toEqual([true]);
    outb(sim.dev, REG.CLEAR_INTERRUPT, 0);
    expect(sim.host.intx).toEqual([true, false]);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(0);
    // Both edges count.
    sim.inputs.set(9, false);
    expect(sim.host.intxLevel).toBe(true);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(PENDING | IDIO16_IRQ_STATUS.INPUTS_8_15);
  });

  it('a write of base+2 disables it: the line drops, the latch stays until cleared', () => {
    const sim = setup();
    inb(sim.dev, REG.ENABLE_IRQ);
    sim.inputs.set(0, true);
    outb(sim.dev, REG.DISABLE_IRQ, 0);
    expect(sim.host.intx).toEqual([true, false]);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(PENDING | 1);
    // Re-enabling without clearing asserts again, which is why Linux clears before enabling.
    inb(sim.dev, REG.ENABLE_IRQ);
    expect(sim.host.intx).toEqual([true, false, true]);
    outb(sim.dev, REG.DISABLE_IRQ, 0);
    outb(sim.dev, REG.CLEAR_INTERRUPT, 0);
    inb(sim.dev, REG.ENABLE_IRQ);
    expect(sim.host.intx).toEqual([true, false, true, false]);
    // Changes while disabled were not latched.
    outb(sim.dev, REG.DISABLE_IRQ, 0);
    sim.inputs.set(0, false);
    inb(sim.dev, REG.ENABLE_IRQ);
    expect(sim.host.intxLevel).toBe(false);
    expect(inb(sim.dev, REG.IRQ_STATUS)).toBe(0);
  });

  it("works with Linux 6.12's driver: probe, unmask, handle, ack, mask", () => {
    const sim = setup({ inputs: 0x0001 });
    // A latch left from before the driver loaded (e.g. firmware played with the card).
    inb(sim.dev, REG.ENABLE_IRQ);
    sim.inputs.set(5, true);
    expect(sim.host.intxLevel).toBe(true);
    const drv = new LinuxIdio16Driver(sim.dev);
    drv.probe();
    expect(sim.host.intxLevel).toBe(false);
    expect(sim.state()).toMatchObject({ irqEnabled: false, irqStatus: 0, filters: 0 });
    // GPIO lines: OUT0..15 then IIN0..15.
    drv.set(3, true);
    drv.set(12, true);
    expect(sim.outputs()).toBe(0x1008);
    expect(drv.get(3)).toBe(true);
    expect(drv.get(12)).toBe(true);
    expect(drv.get(16)).toBe(true);
    expect(drv.get(21)).toBe(true);
    expect(drv.get(31)).toBe(false);
    // Changes while every input is masked are not seen.
    sim.inputs.set(31 - 16, true);
    expect(sim.host.intx.at(-1)).toBe(false);
    drv.enableIrq(16 + 2);
    drv.enableIrq(16 + 7);
    expect(sim.host.intxLevel).toBe(false);
    sim.inputs.set(2, true);
    expect(sim.host.intxLevel).toBe(true);
    expect(drv.interrupt()).toBe(true);
    expect(drv.handled).toEqual([[18, 23]]);
    expect(sim.host.intxLevel).toBe(false);
    // A spurious call (shared line) is not ours.
    expect(drv.interrupt()).toBe(false);
    drv.disableIrq(18);
    drv.disableIrq(23);
    expect(sim.state().irqEnabled).toBe(false);
    sim.inputs.set(2, false);
    expect(sim.host.intxLevel).toBe(false);
  });

  it("satisfies the pre-regmap driver's ownership check: (status & 3) && (status & 4)", () => {
    const sim = setup();
    const ours = (): boolean => {
      const s = inb(sim.dev, REG.IRQ_STATUS);
      return (s & 0x3) !== 0 && (s & 0x4) !== 0;
    };
    outb(sim.dev, REG.DISABLE_IRQ, 0);
    outb(sim.dev, REG.CLEAR_INTERRUPT, 0);
    inb(sim.dev, REG.ENABLE_IRQ);
    expect(ours()).toBe(false);
    sim.inputs.set(14, true);
    expect(sim.host.intxLevel).toBe(true);
    expect(ours()).toBe(true);
    outb(sim.dev, REG.CLEAR_INTERRUPT, 0);
    expect(ours()).toBe(false);
    expect(sim.host.intxLevel).toBe(false);
  });

  it('forwards the interrupt through the bridge INTCSR, which ACCES’s driver polls', () => {
    const sim = setup();
    const intcsr = (): number => sim.dev.barRead(IDIO16_BAR.BRIDGE_IO, BigInt(IDIO16_BRIDGE_INTCSR), 1)[0]!;
    const setIntcsr = (v: number): void => {
      sim.dev.barWrite(IDIO16_BAR.BRIDGE_MEM, BigInt(IDIO16_BRIDGE_INTCSR), Uint8Array.of(v));
    };
    expect(intcsr()).toBe(0x43);
    inb(sim.dev, REG.ENABLE_IRQ);
    sim.inputs.set(0, true);
    expect(intcsr() & IDIO16_INTCSR.LINT1_STATUS).not.toBe(0);
    // Turning off PCI interrupt forwarding drops INTA# but not the local status.
    setIntcsr(0x03);
    expect(sim.host.intx).toEqual([true, false]);
    expect(intcsr()).toBe(0x07);
    setIntcsr(0x43);
    expect(sim.host.intxLevel).toBe(true);
    outb(sim.dev, REG.CLEAR_INTERRUPT, 0);
    expect(intcsr()).toBe(0x43);
    // The software interrupt asserts INTA# on its own; status bits are read-only.
    setIntcsr(0xc2 | IDIO16_INTCSR.LINT1_STATUS | IDIO16_INTCSR.LINT2_STATUS);
    expect(sim.host.intxLevel).toBe(true);
    expect(intcsr()).toBe(0xc2);
    setIntcsr(0x43);
    expect(sim.host.intxLevel).toBe(false);
    // Active-low polarity sees the idle (low) card line as an interrupt.
    setIntcsr(0x41);
    expect(sim.host.intxLevel).toBe(true);
    expect(intcsr()).toBe(0x45);
    setIntcsr(0x43);
    expect(sim.host.intxLevel).toBe(false);
    // Other bridge registers read as zero.
    sim.dev.barWrite(IDIO16_BAR.BRIDGE_MEM, 0n, le(0xffffffff, 4));
    expect(fromLe(sim.dev.barRead(IDIO16_BAR.BRIDGE_MEM, 0n, 4))).toBe(0);
  });

  it('gates the pin with COMMAND.INTX_DISABLE and shows STATUS.INTERRUPT when built with intxDisable', () => {
    const sim = setup({ intxDisable: true });
    inb(sim.dev, REG.ENABLE_IRQ);
    sim.inputs.set(4, true);
    expect(sim.dev.configRead(0x06, 2) & STATUS_INTERRUPT).toBe(STATUS_INTERRUPT);
    sim.dev.configWrite(0x04, 2, CMD_IO | CMD_MEM | CMD_INTX_DISABLE);
    expect(sim.host.intx).toEqual([true, false]);
    expect(sim.dev.configRead(0x06, 2) & STATUS_INTERRUPT).toBe(STATUS_INTERRUPT);
    sim.dev.configWrite(0x04, 2, CMD_IO | CMD_MEM);
    expect(sim.host.intx).toEqual([true, false, true]);
    outb(sim.dev, REG.CLEAR_INTERRUPT, 0);
    expect(sim.dev.configRead(0x06, 2) & STATUS_INTERRUPT).toBe(0);
  });

  it('without intxDisable, COMMAND bit 10 stays clear and the pin is not masked', () => {
    const sim = setup();
    sim.dev.configWrite(0x04, 2, CMD_IO | CMD_INTX_DISABLE);
    inb(sim.dev, REG.ENABLE_IRQ);
    sim.inputs.set(4, true);
    expect(sim.host.intxLevel).toBe(true);
    expect(sim.dev.configRead(0x06, 2) & STATUS_INTERRUPT).toBe(0);
  });

  it('drives a level already asserted when it is attached', () => {
    const { fn, inputs } = idio16Function();
    fn.configWrite(0x04, 2, CMD_IO);
    inb(fn, REG.ENABLE_IRQ);
    inputs.set(0, true);
    const host = new FakeHost();
    fn.attach(host);
    expect(host.intx).toEqual([true]);
  });
});

describe('input filters', () => {
  it('a read of base+3 activates all filters: changes show after 5 ms, glitches never', () => {
    const sim = setup();
    inb(sim.dev, REG.ENABLE_IRQ);
    inb(sim.dev, REG.FILTER_CTL);
    expect(inb(sim.dev, REG.FILTER_STATUS)).toBe(0xff);
    sim.inputs.set(6, true);
    sim.host.clock.advance(4);
    expect(inb(sim.dev, REG.IN0_7)).toBe(0);
    expect(sim.host.intx).toEqual([]);
    sim.host.clock.advance(1);
    expect(inb(sim.dev, REG.IN0_7)).toBe(0x40);
    expect(sim.host.intx).toEqual([true]);
    outb(sim.dev, REG.CLEAR_INTERRUPT, 0);
    // A 3 ms glitch is filtered out; an edge restarts the filter.
    sim.inputs.set(6, false);
    sim.host.clock.advance(3);
    sim.inputs.set(6, true);
    sim.host.clock.advance(10);
    expect(inb(sim.dev, REG.IN0_7)).toBe(0x40);
    expect(sim.host.intx).toEqual([true, false]);
    sim.inputs.set(10, true);
    sim.host.clock.advance(2);
    sim.inputs.set(10, false);
    sim.inputs.set(10, true);
    sim.host.clock.advance(4);
    expect(inb(sim.dev, REG.IN8_15)).toBe(0);
    sim.host.clock.advance(1);
    expect(inb(sim.dev, REG.IN8_15)).toBe(0x04);
    expect(sim.host.clock.pending).toBe(0);
  });

  it('a write of base+3 deactivates them: pending inputs report at once', () => {
    const sim = setup();
    inb(sim.dev, REG.FILTER_CTL);
    sim.inputs.setAll(0x0f0f);
    expect(sim.inputs.reported()).toBe(0);
    outb(sim.dev, REG.FILTER_CTL, 0);
    expect(sim.inputs.reported()).toBe(0x0f0f);
    expect(sim.state().filters).toBe(0);
    expect(sim.host.clock.pending).toBe(0);
  });

  it('base+7 programs filters 0-7 individually, unless the global enable was given', () => {
    const sim = setup({ filterMs: 2 });
    outb(sim.dev, REG.FILTER_STATUS, 0x81);
    expect(inb(sim.dev, REG.FILTER_STATUS)).toBe(0x81);
    sim.inputs.setAll(0x0183);
    expect(sim.inputs.reported()).toBe(0x0102);
    sim.host.clock.advance(2);
    expect(sim.inputs.reported()).toBe(0x0183);
    inb(sim.dev, REG.FILTER_CTL);
    outb(sim.dev, REG.FILTER_STATUS, 0x00);
    expect(sim.state().filters).toBe(0xffff);
    outb(sim.dev, REG.FILTER_CTL, 0);
    expect(inb(sim.dev, REG.FILTER_STATUS)).toBe(0);
  });

  it('without a host clock (not attached) inputs report at once', () => {
    const { fn, inputs } = idio16Function();
    fn.configWrite(0x04, 2, CMD_IO);
    inb(fn, REG.FILTER_CTL);
    inputs.set(1, true);
    expect(inb(fn, REG.IN0_7)).toBe(0x02);
  });
});

describe('reset', () => {
  it('returns the card, the bridge and config space to power-on; the field wiring stays', () => {
    const sim = setup({ intxDisable: true });
    const powerOn = config(idio16Function({ intxDisable: true }).fn);
    sim.dev.configWrite(0x10, 4, 0xfebf1000);
    sim.dev.configWrite(0x18, 4, 0xe000);
    sim.dev.configWrite(0x3c, 1, 11);
    outb(sim.dev, REG.OUT0_7, 0xff);
    outb(sim.dev, REG.OUT8_15, 0xff);
    inb(sim.dev, REG.ENABLE_IRQ);
    sim.dev.barWrite(IDIO16_BAR.BRIDGE_MEM, BigInt(IDIO16_BRIDGE_INTCSR), Uint8Array.of(0x4b));
    sim.inputs.set(2, true); // latched: INTx asserted
    outb(sim.dev, REG.FILTER_STATUS, 0x0f);
    sim.inputs.set(0, true); // filtered: still settling
    expect(sim.host.intx).toEqual([true]);
    expect(sim.host.clock.pending).toBe(1);
    for (const kind of ['flr', 'pm', 'bus'] as const) {
      sim.dev.reset(kind);
      expect(config(sim.dev)).toEqual(powerOn);
      expect(sim.outputs()).toBe(0);
      expect(sim.state()).toEqual({ irqEnabled: false, irqStatus: 0, filters: 0, intx: false });
      expect(sim.inputs.get()).toBe(0x0005);
      expect(sim.inputs.reported()).toBe(0x0005);
      expect(sim.host.clock.pending).toBe(0);
    }
    expect(sim.host.intx).toEqual([true, false]);
    // Decoding is off after reset, as at power-on.
    expect(inb(sim.dev, REG.OUT0_7)).toBe(0xff);
    sim.dev.configWrite(0x04, 2, CMD_IO | CMD_MEM);
    expect(inb(sim.dev, REG.OUT0_7)).toBe(0);
    expect(sim.dev.barRead(IDIO16_BAR.BRIDGE_MEM, BigInt(IDIO16_BRIDGE_INTCSR), 1)[0]).toBe(0x43);
    expectSysError(() => { sim.dev.reset('cold' as 'bus'); }, 'EINVAL');
  });
});
