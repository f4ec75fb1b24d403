/**
 * Reading ioctl arguments "from user space": an argument is either the struct bytes themselves (a Uint8Array the
 * kernel reads and writes in place) or a number/bigint that is a pointer into the caller's memory.
 */
import { PAGE_SIZE } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import type { CallContext, IoctlArg } from './iommu-driver.js';

const decoder = new TextDecoder();

/** An ioctl argument passed by value (CHECK_EXTENSION, SET_IOMMU): a struct buffer is a pointer, never a match. */
export function argValue(arg: IoctlArg): number {
  if (arg === undefined) return 0;
  if (typeof arg === 'number') return arg;
  if (typeof arg === 'bigint') return Number(BigInt.asUintN(64, arg));
  return -1;
}

/** `length` bytes at the user pointer `arg` (copy_from_user): EFAULT when they are not there. */
export function userBytes(arg: IoctlArg, call: CallContext, length: number): Uint8Array {
  if (arg instanceof Uint8Array) {
    if (arg.length < length) throw new SysError('EFAULT', `argument of ${arg.length} bytes, ${length} needed`);
    return arg;
  }
  if (arg === undefined) throw new SysError('EFAULT', 'NULL argument');
  const addr = BigInt(arg);
  if (addr <= 0n) throw new SysError('EFAULT', 'bad user pointer');
  return call.task.mm.read(addr, length);
}

/** The s32 at the user pointer `arg` (get_user of an int). */
export function readUserS32(arg: IoctlArg, call: CallContext): number {
  const b = userBytes(arg, call, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
}

/**
 * A NUL-terminated string at the user pointer `arg` (strndup_user(arg, PAGE_SIZE)): EINVAL when no NUL occurs in
 * the first PAGE_SIZE bytes, EFAULT when the memory ends before a NUL.
 */
export function readUserString(arg: IoctlArg, call: CallContext): string {
  if (arg instanceof Uint8Array) {
    const limit = Math.min(arg.length, PAGE_SIZE);
    const nul = arg.subarray(0, limit).indexOf(0);
    if (nul >= 0) return decoder.decode(arg.subarray(0, nul));
    if (arg.length >= PAGE_SIZE) throw new SysError('EINVAL', 'string longer than PAGE_SIZE');
    throw new SysError('EFAULT', 'string not NUL-terminated within the buffer');
  }
  if (arg === undefined) throw new SysError('EFAULT', 'NULL argument');
  let addr = BigInt(arg);
  if (addr <= 0n) throw new SysError('EFAULT', 'bad user pointer');
  const parts: Uint8Array[] = [];
  let total = 0;
  while (total < PAGE_SIZE) {
    const toPage = PAGE_SIZE - Number(addr % BigInt(PAGE_SIZE));
    const n = Math.min(toPage, PAGE_SIZE - total);
    const chunk = call.task.mm.read(addr, n);
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      parts.push(chunk.subarray(0, nul));
      const out = new Uint8Array(total + nul);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return decoder.decode(out);
    }
    parts.push(chunk);
    total += n;
    addr += BigInt(n);
  }
  throw new SysError('EINVAL', 'string longer than PAGE_SIZE');
}

/** True when `v` is a thenable (an async driver op returned a promise). */
export function isPromise(v: unknown): v is Promise<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Lowest-free id allocator (Linux ida / the fd table's lowest-free rule) with O(log n) operations. */
export class IdAllocator {
  #next: number;
  readonly #free: number[] = []; // min-heap of released ids below #next
  readonly #used = new Set<number>();
  constructor(readonly first: number) {
    this.#next = first;
  }

  /** An allocator with exactly `used` taken (fork copies an fd table). */
  static withUsed(first: number, used: Iterable<number>): IdAllocator {
    const a = new IdAllocator(first);
    const ids = new Set(used);
    let max = first - 1;
    for (const id of ids) if (id > max) max = id;
    for (let i = first; i <= max; i++) {
      if (ids.has(i)) a.#used.add(i);
      else a.#push(i);
    }
    a.#next = max + 1;
    return a;
  }

  /** The lowest id not in use. */
  alloc(): number {
    const id = this.#free.length > 0 ? this.#popMin() : this.#next++;
    this.#used.add(id);
    return id;
  }

  /** Returns an id. */
  free(id: number): void {
    if (!this.#used.delete(id)) return;
    this.#push(id);
  }

  #push(v: number): void {
    const h = this.#free;
    h.push(v);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= h[i]!) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  #popMin(): number {
    const h = this.#free;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length === 0) return top;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]! < h[m]!) m = l;
      if (r < h.length && h[r]! < h[m]!) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
    return top;
  }
}
