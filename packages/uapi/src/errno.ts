/**
 * Linux errno values (x86_64, asm-generic) and the one error type every vfio-ts system call throws.
 */

/** errno names and numbers as glibc spells them on Linux x86_64. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  EIDRM: 43,
  ENODATA: 61,
  ETIME: 62,
  ENOLINK: 67,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EBADFD: 77,
  EILSEQ: 84,
  EUSERS: 87,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EALREADY: 114,
  EINPROGRESS: 115,
  ECANCELED: 125,
  EOWNERDEAD: 130,
  ERFKILL: 132,
  EHWPOISON: 133,
} as const;

/** An errno name such as `'EINVAL'`. */
export type ErrnoName = keyof typeof ERRNO;

const NAME_BY_CODE = new Map<number, ErrnoName>(
  (Object.entries(ERRNO) as [ErrnoName, number][]).map(([name, code]) => [code, name]),
);

/** The errno name for a number, or `undefined` when Linux x86_64 has none. */
export function errnoName(code: number): ErrnoName | undefined {
  return NAME_BY_CODE.get(code);
}

/**
 * The error a failing system call throws: the Linux errno by name (`errno`) and number (`code`), plus a message
 * that says what was wrong. Nothing else is ever thrown across the uAPI.
 */
export class SysError extends Error {
  readonly errno: ErrnoName;
  readonly code: number;
  constructor(errno: ErrnoName, message?: string) {
    super(message ? `${errno}: ${message}` : errno);
    this.name = 'SysError';
    this.errno = errno;
    this.code = ERRNO[errno];
  }
}

/** Creates a {@link SysError}; handy in `throw sysError('EINVAL', 'why')`. */
export function sysError(errno: ErrnoName, message?: string): SysError {
  return new SysError(errno, message);
}

/** True when `e` is a {@link SysError}, optionally with the given errno. */
export function isSysError(e: unknown, errno?: ErrnoName): e is SysError {
  return e instanceof SysError && (errno === undefined || e.errno === errno);
}
