/**
 * Open files: what a file descriptor points at (Linux struct file). A file is refcounted — dup'ed by fork, held by
 * a mapping, pinned by a device that keeps its group file alive — and its `release` runs once, when the last
 * reference goes away.
 */
import type { EventFdContext, MmioHandler } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import type { CallContext, IoctlArg } from './iommu-driver.js';

// open(2) and poll(2) flags live in @vfio-ts/uapi with the rest of the ABI; re-exported here for convenience.
import { O_ACCMODE, O_RDONLY, O_WRONLY, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM } from '@vfio-ts/uapi';
export {
  O_ACCMODE,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLPRI,
  POLLRDNORM,
  POLLWRNORM,
} from '@vfio-ts/uapi';

/** What poll reports for a file that has no poll method (Linux DEFAULT_POLLMASK). */
export const DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

/** A device-memory mapping request, as the file's mmap op receives it (Linux vm_area_struct essentials). */
export interface MmapRequest {
  /** File offset of the mapping (page aligned). */
  readonly offset: bigint;
  /** Length in bytes (page aligned, > 0). */
  readonly length: bigint;
  /** PROT_* bits. */
  readonly prot: number;
  /** MAP_SHARED (true) or MAP_PRIVATE. */
  readonly shared: boolean;
}

/** What a file's mmap op returns: the MMIO handler, told when the mapping goes away. */
export interface FileMapping extends MmioHandler {
  /** The mapping was unmapped (munmap, exit); called once. */
  unmapped?(): void;
}

/**
 * The context of a system call as a file operation sees it: the calling task plus the few fd-table services
 * drivers need (eventfd_ctx_fdget, fdget, fd_install).
 */
export interface SyscallContext extends CallContext {
  /** The eventfd behind `fd` (eventfd_ctx_fdget): EBADF for a bad fd, EINVAL when it is no eventfd. */
  eventfd(fd: number): EventFdContext;
  /** The open file behind `fd` (fdget): EBADF for a bad fd. */
  file(fd: number): OpenFile;
  /** Installs a new open file in the caller's table and returns its fd (lowest free from 3). */
  installFile(ops: FileOps, flags?: number): number;
}

/**
 * The operations of an open file (Linux struct file_operations). Every member is optional, as in the kernel:
 * the system-call layer answers for an absent one (ENOTTY for ioctl, EINVAL for read/write, ENODEV for mmap).
 */
export interface FileOps {
  /** A short type tag, e.g. 'vfio-container', 'vfio-group', 'vfio-device', 'eventfd', 'sysfs'. */
  readonly kind: string;
  ioctl?(request: number, arg: IoctlArg, call: SyscallContext): number;
  /** The same ioctl for a caller that can wait where Linux would sleep on a lock (see `Process.ioctlAsync`). */
  ioctlAsync?(request: number, arg: IoctlArg, call: SyscallContext): Promise<number>;
  /** read(2) at the file position `pos`; the caller advances the position by the returned length. */
  read?(length: number, pos: bigint, call: SyscallContext, file: OpenFile): Uint8Array;
  /**
   * pread(2) into the caller's buffer: fills `buf` from `pos` (up to `buf.length` bytes) and returns the count,
   * without allocating where the file can. Optional: `Process.preadInto` falls back to `read` and a copy.
   */
  readInto?(buf: Uint8Array, pos: bigint, call: SyscallContext, file: OpenFile): number;
  /** write(2) at `pos`; returns bytes written. */
  write?(data: Uint8Array, pos: bigint, call: SyscallContext, file: OpenFile): number;
  /** Writes that must wait (a sysfs unbind); when present, `writeAsync` is preferred by `Process.writeAsync`. */
  writeAsync?(data: Uint8Array, pos: bigint, call: SyscallContext, file: OpenFile): Promise<number>;
  /** Whether pread/pwrite are allowed (FMODE_PREAD); default true when read/write exist. */
  readonly seekable?: boolean;
  /** Maps part of the file; returns the MMIO handler backing it. */
  mmap?(req: MmapRequest, call: SyscallContext): FileMapping;
  /** Current readiness (POLL* bits). */
  poll?(): number;
  /** Registers a wake-up callback for readiness changes; returns its removal. */
  pollWait?(wake: () => void): () => void;
  /** The last reference went away. */
  release?(): void;
}

/** An open file: refcounted, with its flags and position. */
export class OpenFile {
  #refs = 1;
  /** File position for read/write (f_pos). */
  pos = 0n;
  constructor(
    readonly ops: FileOps,
    /** open flags (O_ACCMODE bits, O_NONBLOCK...). */
    public flags: number,
  ) {}

  /** Type tag of the file's operations. */
  get kind(): string {
    return this.ops.kind;
  }

  /** Number of references (fds, mappings, internal holders). */
  get refs(): number {
    return this.#refs;
  }

  /** True once the last reference was dropped. */
  get released(): boolean {
    return this.#refs === 0;
  }

  /** Takes a reference (get_file). */
  get(): this {
    if (this.#refs === 0) throw new SysError('EBADF', 'file already released');
    this.#refs++;
    return this;
  }

  /** Drops a reference (fput); the last one runs `release`. */
  put(): void {
    if (this.#refs === 0) return;
    this.#refs--;
    if (this.#refs === 0) this.ops.release?.();
  }

  /** True when opened for reading. */
  get readable(): boolean {
    return (this.flags & O_ACCMODE) !== O_WRONLY;
  }

  /** True when opened for writing. */
  get writable(): boolean {
    return (this.flags & O_ACCMODE) !== O_RDONLY;
  }
}
