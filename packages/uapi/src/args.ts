/**
 * The kernel's rules for ioctl argument structs (inventory §1.0, §1.9): VFIO's argsz (read minsz, reject a short
 * argsz, copy back `min(argsz, sizeof)`), iommufd's size (reject short, a non-zero unknown tail is E2BIG), and
 * unknown flag bits.
 */
import { SysError } from './errno.js';
import { checkArgsz } from './struct.js';
import type { StructCodec } from './struct.js';

/** The bits of `flags` outside `known` (0 when every bit is known). Works on u32 numbers and u64 bigints. */
export function unknownFlags(flags: number, known: number): number;
export function unknownFlags(flags: bigint, known: bigint): bigint;
export function unknownFlags(flags: number | bigint, known: number | bigint): number | bigint {
  if (typeof flags === 'bigint') return BigInt.asUintN(64, flags & ~BigInt(known));
  return (flags & ~Number(known)) >>> 0;
}

/** The result of reading a VFIO argument struct: the decoded value and the caller's argsz. */
export interface VfioArg<T> {
  /** The struct, decoded from the first `min(argsz, sizeof)` bytes (the rest read as zero). */
  readonly value: T;
  /** The caller's argsz (at least minsz; may exceed sizeof). */
  readonly argsz: number;
}

/**
 * Reads a VFIO argument struct the way the kernel does: `argsz < minsz` (or a buffer shorter than minsz) is
 * `EINVAL`; fields at or beyond `min(argsz, buffer)` read as zero, so an older, shorter caller sees defaults.
 */
export function readVfioArg<T>(bytes: Uint8Array, codec: StructCodec<T>): VfioArg<T> {
  const argsz = checkArgsz(bytes, codec.minsz, `${codec.name}.argsz`);
  const n = Math.min(argsz, codec.size, bytes.length);
  return { value: codec.decode(bytes.subarray(0, n)), argsz };
}

/**
 * Writes `value` back into the user buffer as the kernel's `copy_to_user(arg, &info, min(argsz, sizeof))` does:
 * only the first `min(argsz, codec.size)` bytes change (missing fields are written as zero). A buffer too short
 * for those bytes is `EFAULT`, as a copy to an unmapped user page would be. Returns the number of bytes written.
 */
export function copyOut<T>(bytes: Uint8Array, codec: StructCodec<T>, value: Partial<T>, argsz: number, offset = 0): number {
  const n = Math.max(0, Math.min(argsz, codec.size));
  if (offset < 0 || offset + n > bytes.length) {
    throw new SysError('EFAULT', `${codec.name}: ${n} bytes at ${offset} do not fit a ${bytes.length}-byte buffer`);
  }
  bytes.set(codec.encode(value).subarray(0, n), offset);
  return n;
}

/**
 * Reads an iommufd argument struct (inventory §1.9): `size` (the first u32) below minsz is `EINVAL`; a buffer
 * shorter than `size` is `EFAULT`; any non-zero byte between `codec.size` and `size` is `E2BIG` (the caller knows
 * a newer layout). Returns the decoded value (fields beyond `size` read as zero) and the user's size.
 */
export function readIommufdArg<T>(bytes: Uint8Array, codec: StructCodec<T>): { readonly value: T; readonly size: number } {
  if (bytes.length < 4) throw new SysError('EFAULT', `${codec.name}: no size field`);
  const size = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (size < codec.minsz) throw new SysError('EINVAL', `${codec.name}: size ${size} is below minsz ${codec.minsz}`);
  if (size > bytes.length) throw new SysError('EFAULT', `${codec.name}: size ${size} exceeds the ${bytes.length}-byte buffer`);
  for (let i = codec.size; i < size; i++) {
    if (bytes[i] !== 0) throw new SysError('E2BIG', `${codec.name}: non-zero byte ${i} past the known ${codec.size} bytes`);
  }
  return { value: codec.decode(bytes.subarray(0, Math.min(size, codec.size))), size };
}

/**
 * Writes an iommufd response: the kernel's `iommufd_ucmd_respond` copies `min(user size, sizeof)` bytes.
 * Returns the number of bytes written; `EFAULT` when the buffer is shorter than that.
 */
export function copyOutIommufd<T>(bytes: Uint8Array, codec: StructCodec<T>, value: Partial<T>, size: number): number {
  return copyOut(bytes, codec, value, size);
}
