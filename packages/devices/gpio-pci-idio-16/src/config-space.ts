/**
 * A raw 256-byte conventional PCI configuration space as silicon implements it: the current bytes, which bits software
 * may write, which bits are write-one-to-clear, and the power-on image a reset returns to. Internal to this package:
 * every sample device carries its own copy so that each stays self-contained for copying.
 */
import { sysError } from '@vfio-ts/uapi';

/** Config-space accesses are 1, 2 or 4 bytes (PCI Local Bus 3.0 §3.2.2.3.2). */
export type ConfigAccessSize = 1 | 2 | 4;

/** Size of a conventional (non-PCIe) configuration space. */
export const CONFIG_SIZE = 256;

export class ConfigSpace {
  /** Current register contents. */
  readonly bytes = new Uint8Array(CONFIG_SIZE);
  /** Bits software may change (1 = writable). */
  readonly wmask = new Uint8Array(CONFIG_SIZE);
  /** Bits software clears by writing 1 (status error bits). */
  readonly w1cmask = new Uint8Array(CONFIG_SIZE);
  private readonly powerOn = new Uint8Array(CONFIG_SIZE);

  /** Records the current bytes as the power-on image (call once the layout is built). */
  seal(): void {
    this.powerOn.set(this.bytes);
  }

  /** Returns every register to its power-on value. */
  reset(): void {
    this.bytes.set(this.powerOn);
  }

  /**
   * Checks an access from the bus: offset within 0..4095, size 1/2/4, not crossing a dword (hardware decodes a dword
   * address plus byte enables, so one access never spans two dwords).
   */
  static check(offset: number, size: number): asserts size is ConfigAccessSize {
    if (size !== 1 && size !== 2 && size !== 4) throw sysError('EINVAL', `config access size ${size}`);
    if (!Number.isInteger(offset) || offset < 0 || offset + size > 4096) {
      throw sysError('EINVAL', `config offset ${offset}`);
    }
    if ((offset & 3) + size > 4) throw sysError('EINVAL', `config access crosses a dword at ${offset}`);
  }

  /**
   * Reads `size` bytes little-endian. Above 0xff a conventional function does not claim the access, and the host
   * completes it with all-ones.
   */
  read(offset: number, size: ConfigAccessSize): number {
    ConfigSpace.check(offset, size);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      value = value * 256 + (at < CONFIG_SIZE ? this.bytes[at]! : 0xff);
    }
    return value;
  }

  /** Applies a write through the write and write-one-to-clear masks; above 0xff the write is dropped. */
  write(offset: number, size: ConfigAccessSize, value: number): void {
    ConfigSpace.check(offset, size);
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at >= CONFIG_SIZE) break;
      const v = Math.floor(value / 2 ** (8 * i)) & 0xff;
      const w = this.wmask[at]!;
      const c = this.w1cmask[at]!;
      const old = this.bytes[at]!;
      this.bytes[at] = ((old & ~w) | (v & w)) & ~(v & c);
    }
  }

  u16(offset: number): number {
    return this.bytes[offset]! | (this.bytes[offset + 1]! << 8);
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
  setWmask(offset: number, size: ConfigAccessSize, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  /** Sets the write-one-to-clear bits of a register of `size` bytes. */
  setW1cmask(offset: number, size: ConfigAccessSize, mask: number): void {
    for (let i = 0; i < size; i++) this.w1cmask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }
}
