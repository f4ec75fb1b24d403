/**
 * The model bench for this card: @vfio-ts/sim's `ModelTestContext` with INTx levels recorded in order, no DMA (the card
 * never masters the bus), and a manual clock that only moves when the test says so; plus register access helpers.
 */
import { ModelTestContext } from '@vfio-ts/sim';
import { IDIO16_BAR, idio16Function } from '../src/index.js';
import type { Idio16Function, Idio16Options, Idio16Simulation } from '../src/index.js';

/** The model bench from @vfio-ts/sim at this card's address, with DMA refused: the card never masters the bus. */
export class FakeHost extends ModelTestContext {
  constructor() {
    super({ bdf: '0000:00:05.0', dma: false, noDmaReason: 'the PCI-IDIO-16 is a target-only device' });
  }
}

/** COMMAND bits firmware sets for this card: I/O and memory decoding. */
export const CMD_IO = 0x1;
export const CMD_MEM = 0x2;

/** A card plugged into a fake host with its BARs decoding. */
export function setup(
  options: Idio16Options = {},
  command = CMD_IO | CMD_MEM,
): Idio16Simulation & { dev: Idio16Function; host: FakeHost } {
  const sim = idio16Function(options);
  const host = new FakeHost();
  sim.fn.attach(host);
  sim.fn.configWrite(0x04, 2, command);
  return { ...sim, dev: sim.fn, host };
}

/** Byte access to BAR2, as Linux's regmap does it (ioread8 / iowrite8 on the port cookie). */
export function inb(dev: Idio16Function, reg: number): number {
  return dev.barRead(IDIO16_BAR.REGISTERS, BigInt(reg), 1)[0]!;
}

export function outb(dev: Idio16Function, reg: number, value: number): void {
  dev.barWrite(IDIO16_BAR.REGISTERS, BigInt(reg), Uint8Array.of(value));
}

/** Little-endian helpers for wider accesses. */
export function le(value: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  return out;
}

export function fromLe(bytes: Uint8Array): number {
  let v = 0;
  for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
  return v;
}
