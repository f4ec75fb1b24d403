/**
 * A tiny PciFunctionContext for model tests: INTx levels recorded in order, no DMA (the card never masters the bus),
 * and a manual clock that only moves when the test says so.
 */
import type { Clock, PciFunctionContext } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import { IDIO16_BAR, idio16Function } from '../src/index.js';
import type { Idio16Function, Idio16Options, Idio16Simulation } from '../src/index.js';

/** Simulated time that advances only through {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  private time = 0;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void; live: boolean }[] = [];

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const t = { at: this.time + ms, seq: this.seq++, fn, live: true };
    this.timers.push(t);
    return {
      cancel: () => {
        t.live = false;
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  /** Number of timers still armed. */
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers
        .filter((t) => t.live && t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      due.live = false;
      this.time = due.at;
      due.fn();
    }
    this.timers = this.timers.filter((t) => t.live);
    this.time = end;
  }
}

/** Records what the card does to the outside world. */
export class FakeHost implements PciFunctionContext {
  readonly bdf = '0000:00:05.0';
  readonly clock = new ManualClock();
  /** INTx levels in the order the card drove them. */
  readonly intx: boolean[] = [];
  readonly msi: number[] = [];
  readonly dma = {
    read: (): Uint8Array => {
      throw sysError('EFAULT', 'the PCI-IDIO-16 is a target-only device');
    },
    write: (): void => {
      throw sysError('EFAULT', 'the PCI-IDIO-16 is a target-only device');
    },
  };

  /** Current INTx level (last value driven, false initially). */
  get intxLevel(): boolean {
    return this.intx.at(-1) ?? false;
  }

  setIntx(level: boolean): void {
    this.intx.push(level);
  }

  msiNotify(vector: number): void {
    this.msi.push(vector);
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
