/**
 * copy_from_user / copy_to_user for driver ioctls: an ioctl argument is either the struct bytes themselves (read
 * and written in place) or a pointer into the caller's memory, as the system-call surface defines it.
 */
import type { CallContext, IoctlArg } from '@vfio-ts/core';
import { SysError } from '@vfio-ts/uapi';

function pointer(arg: IoctlArg): bigint {
  if (arg === undefined || arg instanceof Uint8Array) throw new SysError('EFAULT', 'NULL argument');
  const addr = BigInt(arg);
  if (addr <= 0n) throw new SysError('EFAULT', 'bad user pointer');
  return addr;
}

/** A private copy of the first `length` bytes of the user's argument; EFAULT when they are not there. */
export function copyFromUser(arg: IoctlArg, call: CallContext, length: number): Uint8Array {
  if (arg instanceof Uint8Array) {
    if (arg.length < length) throw new SysError('EFAULT', `argument of ${arg.length} bytes, ${length} needed`);
    return arg.slice(0, length);
  }
  return call.task.mm.read(pointer(arg), length).slice();
}

/** Writes `bytes` back to the start of the user's argument; EFAULT when it is too short. */
export function copyToUser(arg: IoctlArg, call: CallContext, bytes: Uint8Array): void {
  if (arg instanceof Uint8Array) {
    if (arg.length < bytes.length) throw new SysError('EFAULT', `argument of ${arg.length} bytes, ${bytes.length} needed`);
    arg.set(bytes);
    return;
  }
  call.task.mm.write(pointer(arg), bytes);
}
