/**
 * The data fd as a file: a small adapter from a {@link MigrationDataSession} to the shape of the core's file
 * operations (kind, read/write, ioctl, poll, pollWait, release); the `migration()` plugin installs it with
 * `call.installFile(migrationFile(session), file.openFlags)`.
 * (Inventory §5 "Data fds": saving files are read-only, resuming files write-only, both O_CLOEXEC.)
 */
import {
  O_CLOEXEC,
  O_RDONLY,
  O_WRONLY,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  POLLRDNORM,
  POLLWRNORM,
  SysError,
  VFIO_MIG_GET_PRECOPY_INFO,
  vfioPrecopyInfo,
} from '@vfio-ts/uapi';
import type { UserMemory } from './features.js';
import type { MigrationDataSession } from './sessions.js';

/** An ioctl argument as the core passes it: the struct bytes in place, or a pointer into the caller's memory. */
export type MigrationIoctlArg = number | bigint | Uint8Array | undefined;

/** The part of a system-call context the file needs: the caller's memory for pointer arguments. */
export interface MigrationCallContext {
  readonly task: { readonly mm: UserMemory };
}

/** File operations of a migration data fd (structurally compatible with the core's `FileOps`). */
export interface MigrationFileOps {
  readonly kind: 'vfio-migration';
  /** Flags to open it with: O_RDONLY (saving) or O_WRONLY (resuming), plus O_CLOEXEC. */
  readonly openFlags: number;
  /** Stream files have no position semantics (no pread/pwrite). */
  readonly seekable: false;
  /** Present on saving files: read(2). */
  readonly read?: (length: number) => Uint8Array;
  /** Present on resuming files: write(2). */
  readonly write?: (data: Uint8Array) => number;
  ioctl(request: number, arg: MigrationIoctlArg, call?: MigrationCallContext): number;
  /** POLL* readiness. */
  poll(): number;
  pollWait(wake: () => void): () => void;
  release(): void;
}

/** Wraps a data session as file operations for the core's file table. */
export function migrationFile(session: MigrationDataSession): MigrationFileOps {
  if (session.kind === 'resuming') {
    return {
      kind: 'vfio-migration',
      openFlags: O_WRONLY | O_CLOEXEC,
      seekable: false,
      write: (data) => session.write(data),
      ioctl: (request) => session.ioctl(request, new Uint8Array(0)),
      // Linux's resuming files have no poll op: the VFS default mask applies.
      poll: () => POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM,
      pollWait: () => () => undefined,
      release: () => {
        session.release();
      },
    };
  }
  return {
    kind: 'vfio-migration',
    openFlags: O_RDONLY | O_CLOEXEC,
    seekable: false,
    read: (length) => session.read(length),
    ioctl(request, arg, call) {
      if (arg instanceof Uint8Array) return session.ioctl(request, arg);
      // The command is checked before user memory is touched (as mlx5's precopy ioctl does).
      if (request !== VFIO_MIG_GET_PRECOPY_INFO) return session.ioctl(request, new Uint8Array(0));
      if (arg === undefined || !call) throw new SysError('EFAULT', 'NULL vfio_precopy_info pointer');
      const addr = BigInt.asUintN(64, BigInt(arg));
      const bytes = call.task.mm.read(addr, vfioPrecopyInfo.minsz);
      const ret = session.ioctl(request, bytes);
      call.task.mm.write(addr, bytes);
      return ret;
    },
    poll: () => (session.isEnded ? POLLIN | POLLRDNORM | POLLRDHUP : session.readable() ? POLLIN | POLLRDNORM : 0),
    pollWait: (wake) => session.subscribe(wake),
    release: () => {
      session.release();
    },
  };
}
