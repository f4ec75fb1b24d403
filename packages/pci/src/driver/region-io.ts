/**
 * The fast path of region reads and writes (pread/pwrite on the device fd, inventory §3.3): the same rules as
 * regionRw in regs-access.ts, with everything that does not change between accesses worked out once at open.
 *
 * Why it exists: a 4-byte register access is the most frequent thing a user driver does, and the general path
 * spent most of its time on bigint arithmetic, closures created per call and copies between temporary arrays.
 * Here the fd offset is split into region index and offset with one 64-bit store into a scratch array (no bigint
 * arithmetic: region offsets stay below 2^40, exact in a double), the region's handler comes from a small array
 * indexed by region index, and the result is the one array the user gets.
 *
 * Only the common, valid case is taken: anything the fast path does not handle (closed device, runtime-suspended
 * device, ROM, VGA, device-specific regions, offsets outside a region, memory decoding off, long accesses)
 * returns `undefined` before any side effect, and the caller runs the general path, which produces the errors.
 */
import type { PciFunction } from '@vfio-ts/platform';
import { SysError, VFIO_PCI_BAR5_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_OFFSET_SHIFT } from '@vfio-ts/uapi';
import type { VfioPciConfig } from '../config/index.js';
import type { VfioPciMsixInfo } from './device.js';

/** Longest access the fast path takes; longer ones are rare and go the general way. */
const FAST_MAX = 64;
/** Region index = the high 32-bit half of the offset shifted right by this. */
const HI_SHIFT = VFIO_PCI_OFFSET_SHIFT - 32;
/** Bits of the high half that still belong to the offset within the region. */
const HI_POS_MASK = (1 << HI_SHIFT) - 1;
/**
 * Module copies of the imported constants the fast paths compare with: a use of an imported binding is a
 * module-variable load and check on every call, a module constant folds into the compiled code.
 */
const BAR5 = VFIO_PCI_BAR5_REGION_INDEX;
/** The high 32-bit half of a CONFIG-region offset below 4 GiB. */
const CONFIG_HI = VFIO_PCI_CONFIG_REGION_INDEX << HI_SHIFT;
/** Which 32-bit half of a 64-bit scratch element holds the low bits (host byte order). */
const LO_HALF = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

/**
 * Optional model methods for register-sized BAR accesses without a temporary array or bigint offset (duck-typed,
 * like the VGA model methods in regs-access.ts): the little-endian value of `size` bytes at a naturally aligned
 * `offset`, exactly what barRead returns / barWrite does for the same access. Models without them use barRead and
 * barWrite.
 */
interface BarValueFunction {
  barReadValue?(bar: number, offset: number, size: 1 | 2 | 4): number;
  barWriteValue?(bar: number, offset: number, size: 1 | 2 | 4, value: number): void;
}

/** One BAR as the fast path sees it: decoded once at open. */
class BarIo {
  constructor(
    readonly fn: PciFunction & BarValueFunction,
    /** The model offers barReadValue / barWriteValue. */
    readonly readValue: boolean,
    readonly writeValue: boolean,
    readonly bar: number,
    /** BAR size, clipped to 2^52 (offsets within a region are below 2^40, so the clip never matters). */
    readonly size: number,
    /** Memory BAR: every piece needs memory decoding on (I/O BARs do not). */
    readonly mem: boolean,
    /** The MSI-X table window [xs, xe) on this BAR (reads all-ones, drops writes); empty otherwise. */
    readonly xs: number,
    readonly xe: number,
    readonly bdf: string,
  ) {}
}

/**
 * Per-open fast path of vfio-pci region accesses; built by vfio_pci_core_enable's equivalent once the config
 * virtualization and the MSI-X location are known.
 */
export class VfioPciRegionIo {
  readonly #config: VfioPciConfig;
  /** BAR0–5 by region index (undefined: not implemented → general path, which answers EINVAL). */
  readonly #bars: (BarIo | undefined)[] = [];
  /** Scratch for splitting an fd offset into 32-bit halves (ToBigUint64 = Linux's unsigned loff_t). */
  readonly #off64 = new BigUint64Array(1);
  readonly #off32 = new Uint32Array(this.#off64.buffer);

  constructor(fn: PciFunction, config: VfioPciConfig, msix: VfioPciMsixInfo | undefined, bdf: string) {
    this.#config = config;
    for (let i = 0; i <= VFIO_PCI_BAR5_REGION_INDEX; i++) {
      const b = fn.bars.find((x) => x.index === i);
      if (!b || b.size <= 0n) {
        this.#bars.push(undefined);
        continue;
      }
      const size = b.size > 1n << 52n ? 2 ** 52 : Number(b.size);
      const x = msix?.bar === i ? [Number(msix.offset), Number(msix.offset + msix.size)] : [0, 0];
      const vfn = fn as PciFunction & BarValueFunction;
      // Only alongside barRead / barWrite, whose absence means all-ones reads and dropped writes.
      const readValue = typeof vfn.barReadValue === 'function' && typeof vfn.barRead === 'function';
      const writeValue = typeof vfn.barWriteValue === 'function' && typeof vfn.barWrite === 'function';
      this.#bars.push(new BarIo(vfn, readValue, writeValue, i, size, b.type !== 'io', x[0]!, x[1]!, bdf));
    }
  }

  /**
   * pread of `length` (> 0) bytes at fd `offset` when the fast path applies, else `undefined` (nothing happened).
   * Config reads go straight to the virtualization; BAR reads check memory decoding (__vfio_pci_memory_enabled)
   * and clip at the BAR end like vfio_pci_bar_rw.
   */
  read(length: number, offset: bigint): Uint8Array | undefined {
    if (!(length > 0 && length <= FAST_MAX) || !Number.isInteger(length)) return undefined;
    this.#off64[0] = offset;
    const hi = this.#off32[1 - LO_HALF]!;
    const index = hi >>> HI_SHIFT;
    const posHi = hi & HI_POS_MASK;
    // Below 4 GiB (nearly always) the offset stays a small integer: doubles make BigInt() and indexing slow.
    const pos = posHi === 0 ? this.#off32[LO_HALF]! : posHi * 0x1_0000_0000 + this.#off32[LO_HALF]!;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      const cfg = this.#config;
      // Out of range is EFAULT, raised by the general path.
      if (pos + length > cfg.size) return undefined;
      return cfg.readBytes(pos, length);
    }
    if (index > VFIO_PCI_BAR5_REGION_INDEX) return undefined;
    const b = this.#bars[index];
    if (b === undefined || pos >= b.size) return undefined;
    if (b.mem && !this.#config.memoryEnabled) return undefined;
    const count = length < b.size - pos ? length : b.size - pos;
    const out = new Uint8Array(count);
    // The usual register access is one naturally aligned piece outside the MSI-X window: one model call.
    if (
      (count === 4 ? (pos & 3) === 0 : count === 2 ? (pos & 1) === 0 : count === 1) &&
      (pos >= b.xe || pos + count <= b.xs)
    ) {
      const fn = b.fn;
      if (b.readValue) {
        let v = fn.barReadValue!(b.bar, pos, count as 1 | 2 | 4);
        for (let i = 0; i < count; i++) {
          out[i] = v & 0xff;
          v >>>= 8;
        }
      } else if (fn.barRead) {
        const r = fn.barRead(b.bar, BigInt(pos), count);
        const m = r.length < count ? r.length : count;
        for (let i = 0; i < m; i++) out[i] = r[i]!;
      } else {
        out.fill(0xff);
      }
      return out;
    }
    barPieces(b, this.#config, pos, count, out, false);
    return out;
  }

  /**
   * pread into the caller's `buf` (non-empty) at fd `offset` when the allocation-free path applies: returns the
   * count, else `undefined` (nothing happened, the caller takes the general path). Config reads of up to
   * {@link FAST_MAX} bytes go straight into `buf`; BAR reads only for one naturally aligned 1/2/4/8-byte access
   * inside the BAR and outside the MSI-X window (8 bytes as two dwords, like do_io_rw without ioread64).
   */
  readInto(buf: Uint8Array, offset: bigint): number | undefined {
    // The usual register read — 4 bytes below 4 GiB of the config region or of a BAR — in a body small enough for
    // the JIT to inline into the device op; everything else (and every case it declines) takes #readIntoAny, which
    // applies all the rules again, so this only ever answers as #readIntoAny would.
    if (buf.length === 4) {
      this.#off64[0] = offset;
      const hi = this.#off32[1 - LO_HALF]!;
      const pos = this.#off32[LO_HALF]!;
      if (hi === CONFIG_HI) {
        const cfg = this.#config;
        if (pos + 4 <= cfg.size) {
          cfg.readInto(pos, buf, 4);
          return 4;
        }
      } else if ((hi & HI_POS_MASK) === 0 && hi >>> HI_SHIFT <= BAR5 && (pos & 3) === 0) {
        const b = this.#bars[hi >>> HI_SHIFT];
        if (
          b !== undefined &&
          b.readValue &&
          pos + 4 <= b.size &&
          (pos >= b.xe || pos + 4 <= b.xs) &&
          (!b.mem || this.#config.memoryEnabled)
        ) {
          const v = b.fn.barReadValue!(b.bar, pos, 4);
          buf[0] = v;
          buf[1] = v >>> 8;
          buf[2] = v >>> 16;
          buf[3] = v >>> 24;
          return 4;
        }
      }
    }
    return this.#readIntoAny(buf, offset);
  }

  /** {@link readInto} for any length. */
  #readIntoAny(buf: Uint8Array, offset: bigint): number | undefined {
    const length = buf.length;
    if (!(length > 0 && length <= FAST_MAX)) return undefined;
    this.#off64[0] = offset;
    const hi = this.#off32[1 - LO_HALF]!;
    const index = hi >>> HI_SHIFT;
    const posHi = hi & HI_POS_MASK;
    const pos = posHi === 0 ? this.#off32[LO_HALF]! : posHi * 0x1_0000_0000 + this.#off32[LO_HALF]!;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      const cfg = this.#config;
      if (pos + length > cfg.size) return undefined;
      cfg.readInto(pos, buf, length);
      return length;
    }
    // pos is an integer below 2^41: its low bits survive the int32 conversion of `&`.
    if (index > VFIO_PCI_BAR5_REGION_INDEX || length > 8 || (length & (length - 1)) !== 0 || (pos & (length - 1)) !== 0) {
      return undefined;
    }
    const b = this.#bars[index];
    if (b === undefined || pos + length > b.size || !b.readValue) return undefined;
    if (b.mem && !this.#config.memoryEnabled) return undefined;
    if (pos < b.xe && pos + length > b.xs) return undefined;
    const fn = b.fn;
    if (length === 4) {
      // The usual register read: the size is known, so four byte stores instead of writeLE's loop.
      const v = fn.barReadValue!(b.bar, pos, 4);
      buf[0] = v;
      buf[1] = v >>> 8;
      buf[2] = v >>> 16;
      buf[3] = v >>> 24;
      return 4;
    }
    if (length === 8) {
      // Two dwords (do_io_rw's pieces); decoding is checked again before the second, as barPieces does.
      writeLE(buf, 0, fn.barReadValue!(b.bar, pos, 4), 4);
      if (b.mem && !this.#config.memoryEnabled) throw new SysError('EIO', `memory decoding of ${b.bdf} is disabled`);
      writeLE(buf, 4, fn.barReadValue!(b.bar, pos + 4, 4), 4);
      return 8;
    }
    writeLE(buf, 0, fn.barReadValue!(b.bar, pos, length as 1 | 2 | 4), length);
    return length;
  }

  /** pwrite of `data` (non-empty) at fd `offset` when the fast path applies (returns the count), else `undefined`. */
  write(data: Uint8Array, offset: bigint): number | undefined {
    const length = data.length;
    if (length > FAST_MAX) return undefined;
    this.#off64[0] = offset;
    const hi = this.#off32[1 - LO_HALF]!;
    const index = hi >>> HI_SHIFT;
    const posHi = hi & HI_POS_MASK;
    // Below 4 GiB (nearly always) the offset stays a small integer: doubles make BigInt() and indexing slow.
    const pos = posHi === 0 ? this.#off32[LO_HALF]! : posHi * 0x1_0000_0000 + this.#off32[LO_HALF]!;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      const cfg = this.#config;
      if (pos + length > cfg.size) return undefined;
      // The virtualization reads each piece's value out of `data` before acting on it, so no private copy.
      return cfg.writeBytes(pos, data);
    }
    if (index > VFIO_PCI_BAR5_REGION_INDEX) return undefined;
    const b = this.#bars[index];
    if (b === undefined || pos >= b.size) return undefined;
    if (b.mem && !this.#config.memoryEnabled) return undefined;
    const count = length < b.size - pos ? length : b.size - pos;
    if (
      (count === 4 ? (pos & 3) === 0 : count === 2 ? (pos & 1) === 0 : count === 1) &&
      (pos >= b.xe || pos + count <= b.xs)
    ) {
      if (b.writeValue) {
        let v = 0;
        for (let i = count - 1; i >= 0; i--) v = v * 256 + data[i]!;
        b.fn.barWriteValue!(b.bar, pos, count as 1 | 2 | 4, v);
        return count;
      }
      // One piece, handed to the model as its own copy (as the general path does).
      const piece = new Uint8Array(count);
      for (let i = 0; i < count; i++) piece[i] = data[i]!;
      b.fn.barWrite?.(b.bar, BigInt(pos), piece);
      return count;
    }
    barPieces(b, this.#config, pos, count, data, true);
    return count;
  }
}

/** Stores the low `size` bytes of `value` little-endian at `buf[at]`. */
function writeLE(buf: Uint8Array, at: number, value: number, size: number): void {
  for (let i = 0; i < size; i++) {
    buf[at + i] = value & 0xff;
    value >>>= 8;
  }
}

/**
 * do_io_rw on one BAR (vfio_pci_rdwr.c): naturally aligned 4/2/1-byte pieces; the MSI-X window reads all-ones
 * and drops writes; a memory BAR checks decoding before every piece (the first check happened in the caller).
 * On read, `buf` is the caller's fresh zeroed array of `count` bytes; on write, the user's data (each piece goes to
 * the model as its own copy, so a model that keeps it never sees the user change it).
 */
function barPieces(b: BarIo, config: VfioPciConfig, pos: number, count: number, buf: Uint8Array, write: boolean): void {
  const fn = b.fn;
  let done = 0;
  while (done < count) {
    const p = pos + done;
    const left = count - done;
    let fillable: number;
    if (p < b.xs) fillable = left < b.xs - p ? left : b.xs - p;
    else if (p >= b.xe) fillable = left;
    else fillable = 0;
    if (fillable === 0) {
      const n = left < b.xe - p ? left : b.xe - p;
      if (!write) buf.fill(0xff, done, done + n);
      done += n;
      continue;
    }
    // p is an integer below 2^41: the low bits survive the int32 conversion of `&`.
    const n = fillable >= 4 && (p & 3) === 0 ? 4 : fillable >= 2 && (p & 1) === 0 ? 2 : 1;
    if (done > 0 && b.mem && !config.memoryEnabled) throw new SysError('EIO', `memory decoding of ${b.bdf} is disabled`);
    if (write) {
      const piece = new Uint8Array(n);
      for (let i = 0; i < n; i++) piece[i] = buf[done + i]!;
      fn.barWrite?.(b.bar, BigInt(p), piece);
    } else if (fn.barRead) {
      const r = fn.barRead(b.bar, BigInt(p), n);
      const m = r.length < n ? r.length : n;
      for (let i = 0; i < m; i++) buf[done + i] = r[i]!;
    } else {
      for (let i = 0; i < n; i++) buf[done + i] = 0xff;
    }
    done += n;
  }
}
