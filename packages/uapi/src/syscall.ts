/**
 * Flags of the system calls around VFIO (x86_64 values): open(2), poll(2), eventfd(2) and mmap(2). Users pass them
 * to the system-call surface (`p.open(path, O_RDWR)`, `p.eventfd(0, EFD_NONBLOCK)`, `p.mmap({ prot })`).
 */

/** open(2): read only. */
export const O_RDONLY = 0;
/** open(2): write only. */
export const O_WRONLY = 1;
/** open(2): read and write. */
export const O_RDWR = 2;
/** open(2): mask of the access-mode bits. */
export const O_ACCMODE = 3;
/** open(2): non-blocking I/O (an empty eventfd read answers EAGAIN). */
export const O_NONBLOCK = 0o4000;
/** open(2): close on exec (set on device and migration fds, as Linux does). */
export const O_CLOEXEC = 0o2000000;

/** poll(2): data to read. */
export const POLLIN = 0x1;
/** poll(2): urgent data. */
export const POLLPRI = 0x2;
/** poll(2): writing will not block. */
export const POLLOUT = 0x4;
/** poll(2): error condition (always reported). */
export const POLLERR = 0x8;
/** poll(2): hang-up (always reported). */
export const POLLHUP = 0x10;
/** poll(2): the fd is not open (always reported). */
export const POLLNVAL = 0x20;
/** poll(2): normal data to read. */
export const POLLRDNORM = 0x40;
/** poll(2): normal data may be written. */
export const POLLWRNORM = 0x100;
/** poll(2): the peer closed its end (a drained migration data stream reports it). */
export const POLLRDHUP = 0x2000;

/** eventfd(2): semaphore-like reads (each read takes 1). */
export const EFD_SEMAPHORE = 1;
/** eventfd(2): close on exec. */
export const EFD_CLOEXEC = 0o2000000;
/** eventfd(2): non-blocking reads. */
export const EFD_NONBLOCK = 0o4000;

/** mmap(2): no access. */
export const PROT_NONE = 0;
/** mmap(2): readable. */
export const PROT_READ = 1;
/** mmap(2): writable. */
export const PROT_WRITE = 2;
/** mmap(2): executable. */
export const PROT_EXEC = 4;
