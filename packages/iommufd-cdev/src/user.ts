/**
 * iommufd argument handling (inventory §1.9, Linux main.c `iommufd_fops_ioctl` + `copy_struct_from_user`): the
 * first u32 is the caller's size; below the struct's minimum it is EINVAL, bytes the kernel does not know must
 * be zero (E2BIG), and a response copies back `min(size, sizeof)` bytes. The argument is either the struct bytes
 * (a Uint8Array, read and written in place) or a pointer into the caller's memory.
 */
import type { CallContext, IoctlArg } from '@vfio-ts/core';
import { SysError, readIommufdArg } from '@vfio-ts/uapi';
import type { StructCodec } from '@vfio-ts/uapi';

/** A decoded command and the way to answer it. */
export interface UserCmd<T> {
  readonly value: T;
  /** The caller's size. */
  readonly size: number;
  /**
   * iommufd_ucmd_respond: copies the command back (first `min(size, sizeof)` bytes). Only `changes` differ from
   * what the caller passed in, so only they are rewritten when the argument is the struct bytes themselves.
   */
  respond(changes: Partial<T>): void;
}

/** A user pointer from an ioctl argument (EFAULT for NULL). */
function pointer(arg: IoctlArg): bigint {
  if (arg === undefined) throw new SysError('EFAULT', 'NULL argument');
  const p = BigInt.asUintN(64, BigInt(arg as number | bigint));
  if (p === 0n) throw new SysError('EFAULT', 'NULL argument');
  return p;
}

/** get_user(size): the first u32 of the argument. */
export function userSize(arg: IoctlArg, call: CallContext): number {
  if (arg instanceof Uint8Array) {
    if (arg.length < 4) throw new SysError('EFAULT', 'argument shorter than its size field');
    return (arg[0]! | (arg[1]! << 8) | (arg[2]! << 16) | (arg[3]! << 24)) >>> 0;
  }
  const b = call.task.mm.read(pointer(arg), 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

/**
 * A command read from the struct bytes themselves: the response is written in place. A class rather than a
 * closure per call, since every IOAS_MAP/UNMAP makes one.
 */
class BufferCmd<T> implements UserCmd<T> {
  constructor(
    readonly value: T,
    readonly size: number,
    readonly bytes: Uint8Array,
    readonly codec: StructCodec<T>,
  ) {}
  respond(changes: Partial<T>): void {
    this.codec.write(this.bytes, changes, 0, Math.min(this.size, this.codec.size));
  }
}

/** A command read from user memory at `addr`: the response is copied back there. */
class PointerCmd<T> implements UserCmd<T> {
  constructor(
    readonly value: T,
    readonly size: number,
    readonly addr: bigint,
    readonly call: CallContext,
    readonly codec: StructCodec<T>,
  ) {}
  respond(changes: Partial<T>): void {
    const known = Math.min(this.size, this.codec.size);
    this.call.task.mm.write(this.addr, this.codec.encode({ ...this.value, ...changes }).subarray(0, known));
  }
}

/** Reads a command struct with the size/E2BIG rules. */
export function readCmd<T>(arg: IoctlArg, call: CallContext, codec: StructCodec<T>): UserCmd<T> {
  if (arg instanceof Uint8Array) {
    const { value, size } = readIommufdArg(arg, codec);
    return new BufferCmd(value, size, arg, codec);
  }
  const addr = pointer(arg);
  const size = userSize(arg, call);
  if (size < codec.minsz) throw new SysError('EINVAL', `${codec.name}: size ${size} is below ${codec.minsz}`);
  const known = Math.min(size, codec.size);
  const head = call.task.mm.read(addr, known);
  // copy_struct_from_user: a larger struct from a newer caller is fine only if the unknown tail is all zero.
  for (let off = codec.size; off < size; ) {
    const n = Math.min(4096, size - off);
    const chunk = call.task.mm.read(addr + BigInt(off), n);
    if (chunk.some((b) => b !== 0)) throw new SysError('E2BIG', `${codec.name}: non-zero bytes past the known struct`);
    off += n;
  }
  return new PointerCmd(codec.decode(head), size, addr, call, codec);
}

/** Reads `length` bytes of user memory at `ptr` (copy_from_user): EFAULT when absent. */
export function readUser(call: CallContext, ptr: bigint, length: number): Uint8Array {
  if (length === 0) return new Uint8Array(0);
  if (ptr === 0n) throw new SysError('EFAULT', 'NULL user pointer');
  return call.task.mm.read(ptr, length);
}

/** Writes user memory at `ptr` (copy_to_user): EFAULT when absent. */
export function writeUser(call: CallContext, ptr: bigint, data: Uint8Array): void {
  if (data.length === 0) return;
  if (ptr === 0n) throw new SysError('EFAULT', 'NULL user pointer');
  call.task.mm.write(ptr, data);
}
