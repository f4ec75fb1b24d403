/**
 * A raw PCI configuration space as the silicon implements it: the bytes, which bits software may write, which
 * bits are write-one-to-clear, and the power-on image to return to on reset. Internal to this package (the
 * pci-epf-test package carries its own copy so both sample devices stay self-contained for copying).
 */
import { sysError } from '@vfio-ts/uapi';

/** Config-space accesses are 1, 2 or 4 bytes (PCI Local Bus 3.0 §3.2.2.3.2). */
export type ConfigAccessSize = 1 | 2 | 4;

export class ConfigSpace {
  /** Current register contents. */
  readonly bytes: Uint8Array;
  /** Bits software may change (1 = writable). */
  readonly wmask: Uint8Array;
  /** Bits software clears by writing 1 (status registers). */
  readonly w1cmask: Uint8Array;
  private readonly powerOn: Uint8Array;

  constructor(readonly size: 256 | 4096) {
    this.bytes = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
    this.powerOn = new Uint8Array(size);
  }

  /** Records the current bytes as the power-on image (call once the layout is built). */
  seal(): void {
    this.powerOn.set(this.bytes);
  }

  /** Returns every register to its power-on value. */
  reset(): void {
    this.bytes.set(this.powerOn);
  }

  /**
   * Checks an access: offset within 0..4095 and size 1/2/4. An unaligned access is served byte by byte (the bus
   * would split it into aligned ones; the result is the same since config reads have no side effects).
   */
  static check(offset: number, size: number): void {
    if (size !== 1 && size !== 2 && size !== 4) throw sysError('EINVAL', `config access size ${size}`);
    if (!Number.isInteger(offset) || offset < 0 || offset + size > 4096) {
      throw sysError('EINVAL', `config offset ${offset}`);
    }
  }

  /**
   * Reads `size` bytes little-endian. Beyond the implemented space a conventional function returns all-ones, as
   * an unclaimed configuration read completes on a PCIe host.
   */
  read(offset: number, size: ConfigAccessSize): number {
    const b = this.bytes;
    // The usual dword inside the implemented space (an integer offset with offset + 4 <= size <= 4096 passes
    // every check below): straight to the bytes.
    if (size === 4 && offset >>> 0 === offset && offset + 4 <= this.size) {
      return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0;
    }
    ConfigSpace.check(offset, size);
    // Inside the implemented space: the bytes themselves (alignment does not matter, reads have no side effects).
    if (offset + size <= this.size) {
      if (size === 4) return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0;
      if (size === 2) return b[offset]! | (b[offset + 1]! << 8);
      return b[offset]!;
    }
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      value = value * 256 + (at < this.size ? this.bytes[at]! : 0xff);
    }
    return value;
  }

  /** Applies a write through the write and write-one-to-clear masks. Beyond the implemented space: dropped. */
  write(offset: number, size: ConfigAccessSize, value: number): void {
    ConfigSpace.check(offset, size);
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at >= this.size) break;
      // A uint32 (the usual value) shifts; anything else takes the exact arithmetic.
      const v = (value >>> 0 === value ? value >>> (8 * i) : Math.floor(value / 2 ** (8 * i))) & 0xff;
      const w = this.wmask[at]!;
      const c = this.w1cmask[at]!;
      const old = this.bytes[at]!;
      this.bytes[at] = ((old & ~w) | (v & w)) & ~(v & c);
    }
  }

  u8(offset: number): number {
    return this.bytes[offset]!;
  }

  u16(offset: number): number {
    return this.bytes[offset]! | (this.bytes[offset + 1]! << 8);
  }

  u32(offset: number): number {
    return (this.u16(offset) | (this.u16(offset + 2) << 16)) >>> 0;
  }

  /** Sets a register's value directly (device side: hardware-owned bits). */
  set8(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
  }

  set16(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
    this.bytes[offset + 1] = (value >>> 8) & 0xff;
  }

  set32(offset: number, value: number): void {
    this.set16(offset, value & 0xffff);
    this.set16(offset + 2, (value >>> 16) & 0xffff);
  }

  /** Sets the writable bits of a register of `size` bytes. */
  setWmask(offset: number, size: 1 | 2 | 4, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  setW1cmask(offset: number, size: 1 | 2 | 4, mask: number): void {
    for (let i = 0; i < size; i++) this.w1cmask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }
}
