/**
 * A test bench for device models: a {@link PciFunctionContext} that a vendor attaches a `PciFunction` to in a unit
 * test, without a whole simulated platform. Time is a manual {@link SimClock} (it moves only when the test calls
 * `advance(ms)`), DMA goes to sparse fake RAM reachable only through IOVA windows the test maps (anything else
 * faults with `EFAULT` and is recorded), and interrupts are recorded in the order the model raised them.
 */
import type { PciDma, PciFunctionContext } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import { SimClock } from './clock.js';

const PAGE = 4096;
const PAGE_N = 4096n;

/** A {@link SimClock} in `'manual'` mode: time moves only with `advance(ms)`, firing due timers in order. */
export class ManualClock extends SimClock {
  constructor() {
    super('manual');
  }

  /** Timers still armed (the same as `pendingTimers`). */
  get pending(): number {
    return this.pendingTimers;
  }
}

/** Options of {@link modelTestContext}. */
export interface ModelTestOptions {
  /** The function's address as the model sees it; default `'0000:00:03.0'`. */
  readonly bdf?: string;
  /**
   * Whether the model may master the bus. With `false` (a target-only device) every DMA access throws `EFAULT`
   * with `noDmaReason` as its message and the access is not recorded as a fault. Default `true`.
   */
  readonly dma?: boolean;
  /** Message of the `EFAULT` a target-only device gets from a DMA access. */
  readonly noDmaReason?: string;
}

/**
 * The context {@link modelTestContext} returns: pass it to `fn.attach(ctx)`, then drive the model through its
 * config/BAR accessors and look at what it did here.
 */
export class ModelTestContext implements PciFunctionContext {
  readonly bdf: string;
  /** Manual time: `clock.advance(ms)` fires the model's timers; `clock.pending` counts the armed ones. */
  readonly clock = new ManualClock();
  /** INTx levels in the order the model drove them. */
  readonly intx: boolean[] = [];
  /** MSI / MSI-X vectors in the order the model sent them. */
  readonly msi: number[] = [];
  /** IOVAs of DMA accesses that hit no mapped window, in order. */
  readonly faults: bigint[] = [];
  /** The model's DMA port: fake RAM through the mapped IOVA windows (identity-mapped: IOVA = RAM address). */
  readonly dma: PciDma;
  private readonly pages = new Map<bigint, Uint8Array>();
  private readonly windows: { start: bigint; end: bigint }[] = [];

  constructor(options: ModelTestOptions = {}) {
    this.bdf = options.bdf ?? '0000:00:03.0';
    if (options.dma === false) {
      const reason = options.noDmaReason ?? 'this device does not master the bus';
      this.dma = {
        read: (): Uint8Array => {
          throw sysError('EFAULT', reason);
        },
        write: (): void => {
          throw sysError('EFAULT', reason);
        },
      };
    } else {
      this.dma = {
        read: (iova: bigint, length: number): Uint8Array => {
          this.check(iova, length);
          return this.peek(iova, length);
        },
        write: (iova: bigint, data: Uint8Array): void => {
          this.check(iova, data.length);
          this.poke(iova, data);
        },
      };
    }
  }

  /** Maps the IOVA window [start, start + length) in the fake IOMMU. */
  map(start: bigint, length: bigint): void {
    this.windows.push({ start, end: start + length });
  }

  /** The current INTx level (the last one driven; false initially). */
  get intxLevel(): boolean {
    return this.intx.at(-1) ?? false;
  }

  /** Records an INTx level. */
  setIntx(level: boolean): void {
    this.intx.push(level);
  }

  /** Records an MSI / MSI-X vector. */
  msiNotify(vector: number): void {
    this.msi.push(vector);
  }

  /** Host-side read of fake RAM (ignores the IOMMU windows); untouched bytes read as zero. */
  peek(addr: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.eachPage(addr, length, (page, off, done, n) => {
      const p = this.pages.get(page);
      if (p) out.set(p.subarray(off, off + n), done);
    });
    return out;
  }

  /** Host-side write of fake RAM (ignores the IOMMU windows). */
  poke(addr: bigint, data: Uint8Array): void {
    this.eachPage(addr, data.length, (page, off, done, n) => {
      let p = this.pages.get(page);
      if (!p) {
        p = new Uint8Array(PAGE);
        this.pages.set(page, p);
      }
      p.set(data.subarray(done, done + n), off);
    });
  }

  /** Calls `fn` for each page-sized piece of [addr, addr + length): page number, offset in it, bytes before, size. */
  private eachPage(addr: bigint, length: number, fn: (page: bigint, off: number, done: number, n: number) => void): void {
    let done = 0;
    while (done < length) {
      const at = addr + BigInt(done);
      const off = Number(at % PAGE_N);
      const n = Math.min(length - done, PAGE - off);
      fn(at / PAGE_N, off, done, n);
      done += n;
    }
  }

  private check(iova: bigint, length: number): void {
    const end = iova + BigInt(length);
    if (!this.windows.some((w) => iova >= w.start && end <= w.end)) {
      this.faults.push(iova);
      throw sysError('EFAULT', `IOMMU fault at 0x${iova.toString(16)}`);
    }
  }
}

/**
 * A context to unit-test a device model with: manual time, fake RAM behind explicit IOVA windows, recorded
 * INTx levels and MSI vectors.
 *
 * @example
 * ```ts
 * const ctx = modelTestContext();
 * fn.attach(ctx);
 * ctx.map(0x1000n, 0x1000n);   // the model may DMA to [0x1000, 0x2000)
 * ctx.clock.advance(10);       // fire the model's timers due in the next 10 ms
 * expect(ctx.msi).toEqual([0]);
 * ```
 */
export function modelTestContext(options: ModelTestOptions = {}): ModelTestContext {
  return new ModelTestContext(options);
}

/** `value` as `size` little-endian bytes (the low bytes; for building BAR and config writes in tests). */
export function toLe(value: bigint | number, size: number): Uint8Array {
  let v = BigInt(value);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The unsigned little-endian value of `bytes` (for reading BAR and DMA results in tests). */
export function fromLe(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
