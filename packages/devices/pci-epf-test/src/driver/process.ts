/**
 * The system calls the pci-epf-test driver makes, declared structurally so this package does not pull `@vfio-ts/core` in at
 * run time: a `Process` of `@vfio-ts/core` (DESIGN.md, "The system-call surface") satisfies it, and so would any
 * other object that speaks the same calls (a vfio-user client, a recorder that logs a trace).
 */

/** `mmap(2)` options, the subset of the system-call surface's `MmapOptions` the driver uses. */
export interface EpfTestMmapOptions {
  readonly length: bigint | number;
  readonly prot?: number;
  readonly shared?: boolean;
  readonly fd?: number;
  readonly offset?: bigint;
}

/** One entry of `poll(2)`. */
export interface EpfTestPollFd {
  readonly fd: number;
  readonly events: number;
}

/** A process that can drive a VFIO device: the calls of DESIGN.md's system-call surface the pci-epf-test driver needs. */
export interface EpfTestDriverProcess {
  /** open(2): returns the lowest free fd. */
  open(path: string, flags?: number): number;
  /** close(2). */
  close(fd: number): void;
  /** ioctl(2): `arg` is a number (by value) or the struct bytes, updated in place like a user pointer. */
  ioctl(fd: number, request: number, arg?: number | Uint8Array): number;
  /** read(2) (eventfd counters). */
  read(fd: number, length: number): Uint8Array;
  /** pread(2): device regions live at the offset their region info reports. */
  pread(fd: number, length: number, offset: bigint): Uint8Array;
  /** pwrite(2). */
  pwrite(fd: number, data: Uint8Array, offset: bigint): number;
  /** mmap(2): anonymous memory, or part of a device region when `fd` is given. */
  mmap(options: EpfTestMmapOptions): bigint;
  /** munmap(2). */
  munmap(vaddr: bigint, length: bigint | number): void;
  /** Loads and stores in the process's own memory. */
  readonly memory: {
    read(vaddr: bigint, length: number): Uint8Array;
    write(vaddr: bigint, data: Uint8Array): void;
  };
  /** eventfd(2). */
  eventfd(initval?: number | bigint, flags?: number): number;
  /** poll(2): resolves once an entry is ready or `timeoutMs` of host time passed. */
  poll(fds: readonly EpfTestPollFd[], timeoutMs: number): Promise<readonly { readonly fd: number; readonly revents: number }[]>;
  /** Sleeps `ms` of host time. */
  sleep(ms: number): Promise<void>;
  /** readlink(2) (the device's `iommu_group` link in sysfs). */
  readlink(path: string): string;
}
