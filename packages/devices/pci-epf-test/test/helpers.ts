/**
 * A tiny PciFunctionContext for model tests: sparse fake RAM behind an IOMMU with explicit mapped windows,
 * recorded interrupts, and a manual clock that only moves when the test says so.
 */
import type { Clock, PciFunctionContext } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';

const PAGE = 4096n;

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

  /** Moves time forward by `ms`, firing due timers in order (timers they arm fire too when due). */
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

/** A fake host: RAM reachable through mapped IOVA windows, interrupt recording, a manual clock. */
export class FakeHost implements PciFunctionContext {
  readonly bdf = '0000:00:03.0';
  readonly clock = new ManualClock();
  /** INTx levels in the order the device drove them. */
  readonly intx: boolean[] = [];
  /** MSI / MSI-X vectors in the order the device sent them. */
  readonly msi: number[] = [];
  /** DMA faults seen (IOVA of the access). */
  readonly faults: bigint[] = [];
  private readonly pages = new Map<bigint, Uint8Array>();
  private readonly windows: { start: bigint; end: bigint }[] = [];

  readonly dma = {
    read: (iova: bigint, length: number): Uint8Array => {
      this.check(iova, length);
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = this.byte(iova + BigInt(i));
      return out;
    },
    write: (iova: bigint, data: Uint8Array): void => {
      this.check(iova, data.length);
      for (let i = 0; i < data.length; i++) this.setByte(iova + BigInt(i), data[i]!);
    },
  };

  /** Maps an IOVA window [start, start+length) in the fake IOMMU. */
  map(start: bigint, length: bigint): void {
    this.windows.push({ start, end: start + length });
  }

  /** The current INTx level (last value driven, false initially). */
  get intxLevel(): boolean {
    return this.intx.at(-1) ?? false;
  }

  setIntx(level: boolean): void {
    this.intx.push(level);
  }

  msiNotify(vector: number): void {
    this.msi.push(vector);
  }

  /** Host-side access to RAM (ignores the IOMMU). */
  peek(addr: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.byte(addr + BigInt(i));
    return out;
  }

  poke(addr: bigint, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.setByte(addr + BigInt(i), data[i]!);
  }

  private check(iova: bigint, length: number): void {
    const end = iova + BigInt(length);
    if (!this.windows.some((w) => iova >= w.start && end <= w.end)) {
      this.faults.push(iova);
      throw sysError('EFAULT', `IOMMU fault at 0x${iova.toString(16)}`);
    }
  }

  private byte(addr: bigint): number {
    return this.pages.get(addr / PAGE)?.[Number(addr % PAGE)] ?? 0;
  }

  private setByte(addr: bigint, v: number): void {
    let page = this.pages.get(addr / PAGE);
    if (!page) {
      page = new Uint8Array(Number(PAGE));
      this.pages.set(addr / PAGE, page);
    }
    page[Number(addr % PAGE)] = v;
  }
}

/** Little-endian helpers for BAR accesses. */
export function le(value: bigint | number, size: number): Uint8Array {
  let v = BigInt(value);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function fromLe(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
