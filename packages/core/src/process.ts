/**
 * A simulated process: the system-call surface of DESIGN.md ("The system-call surface"). Each method is the
 * Linux call of the same name, synchronous unless Linux would sleep (poll, sleep).
 */
import type { AddressSpace, Capability, EventFdContext, HugepageSize, Task } from '@vfio-ts/platform';
import { EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE, PAGE_SIZE_N, PROT_READ, PROT_WRITE } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import {
  DEFAULT_POLLMASK,
  O_ACCMODE,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  OpenFile,
  POLLERR,
  POLLHUP,
  POLLNVAL,
} from './file.js';
import type { FileOps, SyscallContext } from './file.js';
import { DirFileOps, EventFdFileOps, SysfsFileOps } from './files.js';
import type { IoctlArg } from './iommu-driver.js';
import { F_OK, permitted, R_OK, resolvePath, W_OK, X_OK } from './vfs.js';
import type { Credentials } from './vfs.js';
import type { VfsDir, VfsCharDev } from '@vfio-ts/platform';
import { IdAllocator } from './user.js';

/** What a process needs from its host. */
export interface ProcessHost {
  readonly root: VfsDir;
  readonly clock: { now(): number; setTimeout(fn: () => void, ms: number): { cancel(): void }; sleep(ms: number): Promise<void> };
  openCharDev(node: VfsCharDev, flags: number, proc: Process): OpenFile;
  createEventFd(initval: bigint, semaphore: boolean): EventFdContext;
  newPid(): number;
  log(text: string): void;
  processExited(p: Process): void;
  processCreated(p: Process): void;
}

/** Options of `host.spawn`. */
export interface SpawnOptions {
  readonly uid: number;
  /** Defaults to `uid`. */
  readonly gid?: number;
  /** The effective capability set. */
  readonly capabilities?: readonly Capability[];
  /** RLIMIT_MEMLOCK in bytes (`null` = unlimited). Default 8 MiB, as most distributions set. */
  readonly memlockLimit?: bigint | number | null;
}

/** Options of `Process.mmap`. */
export interface MmapOptions {
  readonly length: bigint | number;
  /** PROT_* bits; default PROT_READ | PROT_WRITE. */
  readonly prot?: number;
  /** MAP_SHARED; default true for a file mapping, false for anonymous memory. */
  readonly shared?: boolean;
  /** Back anonymous memory with contiguous 2 MiB or 1 GiB pages. */
  readonly hugepage?: HugepageSize;
  /** Map this file (a device fd) instead of anonymous memory. */
  readonly fd?: number;
  /** File offset (page aligned); for vfio-pci, region `index << 40`. */
  readonly offset?: bigint;
}

/** One entry of `poll`. */
export interface PollFd {
  readonly fd: number;
  readonly events: number;
}

/** One result of `poll`: the fd and the events that are ready (0 when none). */
export interface PollResult {
  readonly fd: number;
  readonly revents: number;
}

interface Mapping {
  file: OpenFile;
  released: boolean;
  release(): void;
}

/** Process state shared nowhere: the fd table, memory, credentials and limits. */
interface ProcessInit {
  pid: number;
  uid: number;
  gid: number;
  capabilities: Set<Capability>;
  memlockLimit: bigint | null;
  memlockHard: bigint | null;
  mm: AddressSpace;
  files?: Map<number, OpenFile>;
}

const DEFAULT_MEMLOCK = 8n << 20n;

/** A process on a simulated host (implements the platform's `Task`). */
export class Process implements Task, Credentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly mm: AddressSpace;
  #caps: Set<Capability>;
  #memlock: bigint | null;
  #memlockHard: bigint | null;
  readonly #files: Map<number, OpenFile>;
  /** The same table indexed by fd (Linux's fdtable is an array): the hot lookup of every system call. */
  readonly #byFd: (OpenFile | undefined)[] = [];
  readonly #fds: IdAllocator;
  readonly #cloexec = new Set<number>();
  readonly #mappings = new Set<Mapping>();
  #exited: number | undefined;
  readonly #call: SyscallContext;

  /** @internal use `host.spawn` */
  constructor(
    readonly host: ProcessHost,
    init: ProcessInit,
  ) {
    this.pid = init.pid;
    this.uid = init.uid;
    this.gid = init.gid;
    this.#caps = init.capabilities;
    this.#memlock = init.memlockLimit;
    this.#memlockHard = init.memlockHard;
    this.mm = init.mm;
    this.#files = init.files ?? new Map<number, OpenFile>();
    this.#fds = IdAllocator.withUsed(3, this.#files.keys());
    for (const [fd, f] of this.#files) this.#byFd[fd] = f;
    this.#call = {
      task: this,
      eventfd: (fd: number): EventFdContext => {
        const f = this.#file(fd);
        if (!(f.ops instanceof EventFdFileOps)) throw new SysError('EINVAL', `fd ${fd} is not an eventfd`);
        return f.ops.ctx;
      },
      file: (fd: number) => this.#file(fd),
      installFile: (ops: FileOps, flags = O_RDWR) => this.#install(new OpenFile(ops, flags)),
    };
  }

  /** @internal spawn */
  static spawn(host: ProcessHost, mm: AddressSpace, opts: SpawnOptions): Process {
    const limit = opts.memlockLimit === undefined ? DEFAULT_MEMLOCK : opts.memlockLimit === null ? null : BigInt(opts.memlockLimit);
    if (limit !== null && limit < 0n) throw new SysError('EINVAL', 'negative memlock limit');
    const p = new Process(host, {
      pid: host.newPid(),
      uid: opts.uid,
      gid: opts.gid ?? opts.uid,
      capabilities: new Set(opts.capabilities ?? []),
      memlockLimit: limit,
      memlockHard: limit,
      mm,
    });
    host.processCreated(p);
    return p;
  }

  /* ---------------------------------------------------------------- Task */

  capable(cap: Capability): boolean {
    return this.#caps.has(cap);
  }

  /** RLIMIT_MEMLOCK (soft) in bytes; `null` when unlimited. */
  get memlockLimit(): bigint | null {
    return this.#memlock;
  }

  log(text: string): void {
    this.host.log(text);
  }

  /** The effective capabilities. */
  get capabilities(): readonly Capability[] {
    return [...this.#caps];
  }

  /** The syscall context drivers receive for calls made by this process. */
  get callContext(): SyscallContext {
    return this.#call;
  }

  /** Exit status once the process exited. */
  get exitStatus(): number | undefined {
    return this.#exited;
  }

  #alive(): void {
    if (this.#exited !== undefined) throw new SysError('ESRCH', `process ${this.pid} has exited`);
  }

  #file(fd: number): OpenFile {
    this.#alive();
    // A non-negative integer below 2^32 indexes the table; anything else is no fd.
    const f = fd >>> 0 === fd ? this.#byFd[fd] : undefined;
    if (!f) throw new SysError('EBADF', `bad file descriptor ${fd}`);
    return f;
  }

  #install(file: OpenFile): number {
    const fd = this.#fds.alloc();
    this.#files.set(fd, file);
    this.#byFd[fd] = file;
    if ((file.flags & O_CLOEXEC) !== 0) this.#cloexec.add(fd);
    return fd;
  }

  /** The open file behind `fd` (EBADF), for kernel-side helpers. */
  file(fd: number): OpenFile {
    return this.#file(fd);
  }

  /** Open file descriptors, ascending. */
  fds(): number[] {
    return [...this.#files.keys()].sort((a, b) => a - b);
  }

  /* ---------------------------------------------------------------- files */

  /**
   * open(2): `/dev/vfio/vfio`, `/dev/vfio/<group>`, `/dev/vfio/noiommu-<n>`, `/dev/vfio/devices/vfioN` (with an
   * iommufd plugin), plugin nodes such as `/dev/iommu`, `/dev/null`, sysfs attributes and directories. `flags`
   * default O_RDWR. EACCES when the mode bits refuse the caller.
   */
  open(path: string, flags: number = O_RDWR): number {
    this.#alive();
    const acc = flags & O_ACCMODE;
    if (acc === O_ACCMODE) throw new SysError('EINVAL', 'bad access mode');
    const want = acc === O_RDONLY ? R_OK : acc === O_WRONLY ? W_OK : R_OK | W_OK;
    const { node } = resolvePath(this.host.root, path);
    let file: OpenFile;
    switch (node.kind) {
      case 'dir':
        if (acc !== O_RDONLY) throw new SysError('EISDIR', `${path} is a directory`);
        if (!permitted(this, node, R_OK)) throw new SysError('EACCES', `permission denied: ${path}`);
        file = new OpenFile(new DirFileOps(), flags);
        break;
      case 'file':
        if (!permitted(this, node, want)) throw new SysError('EACCES', `permission denied: ${path}`);
        // kernfs refuses a write open of an attribute without write bits or store method, even for root.
        if ((want & W_OK) !== 0 && ((node.mode & 0o222) === 0 || (!node.write && !node.pwrite))) {
          throw new SysError('EACCES', `${path} is read-only`);
        }
        file = new OpenFile(new SysfsFileOps(node, (t) => { this.host.log(t); }), flags);
        break;
      case 'chardev':
        if (!permitted(this, node, want)) throw new SysError('EACCES', `permission denied: ${path}`);
        file = this.host.openCharDev(node, flags, this);
        break;
      case 'symlink':
        throw new SysError('ELOOP', `${path} is a dangling symlink`);
    }
    return this.#install(file);
  }

  /** close(2). */
  close(fd: number): void {
    const f = this.#file(fd);
    this.#files.delete(fd);
    this.#byFd[fd] = undefined;
    this.#cloexec.delete(fd);
    this.#fds.free(fd);
    f.put();
  }

  /** ioctl(2): `arg` is a number (by value or a pointer into this process's memory) or the struct bytes. */
  ioctl(fd: number, request: number, arg?: IoctlArg): number {
    const f = this.#file(fd);
    if (!f.ops.ioctl) throw new SysError('ENOTTY', `fd ${fd} has no ioctls`);
    return f.ops.ioctl(request >>> 0, arg, this.#call);
  }

  /**
   * ioctl(2) for a caller that can wait: where Linux would sleep on a lock held by an asynchronous operation
   * (a device set busy with an async open_device), this waits instead of answering EBUSY.
   */
  async ioctlAsync(fd: number, request: number, arg?: IoctlArg): Promise<number> {
    const f = this.#file(fd);
    if (f.ops.ioctlAsync) return f.ops.ioctlAsync(request >>> 0, arg, this.#call);
    return this.ioctl(fd, request, arg);
  }

  /** read(2) at the file position (advanced by the bytes read). */
  read(fd: number, length: number): Uint8Array {
    const f = this.#file(fd);
    if (!f.readable) throw new SysError('EBADF', `fd ${fd} is not open for reading`);
    if (!f.ops.read) throw new SysError('EINVAL', `fd ${fd} cannot be read`);
    if (!Number.isInteger(length) || length < 0) throw new SysError('EINVAL', 'bad length');
    const out = f.ops.read(length, f.pos, this.#call, f);
    f.pos += BigInt(out.length);
    return out;
  }

  /** write(2) at the file position. A sysfs write that waits (unbind) continues in the background; see writeAsync. */
  write(fd: number, data: Uint8Array): number {
    const f = this.#file(fd);
    if (!f.writable) throw new SysError('EBADF', `fd ${fd} is not open for writing`);
    if (!f.ops.write) throw new SysError('EINVAL', `fd ${fd} cannot be written`);
    const n = f.ops.write(data, f.pos, this.#call, f);
    f.pos += BigInt(n);
    return n;
  }

  /** write(2) that waits as long as Linux would block (a sysfs unbind until the driver's remove returned). */
  async writeAsync(fd: number, data: Uint8Array): Promise<number> {
    const f = this.#file(fd);
    if (!f.writable) throw new SysError('EBADF', `fd ${fd} is not open for writing`);
    const n = f.ops.writeAsync ? await f.ops.writeAsync(data, f.pos, this.#call, f) : this.write(fd, data);
    if (f.ops.writeAsync) f.pos += BigInt(n);
    return n;
  }

  /** pread(2): `offset` is a bigint (device regions live at `index << 40`). ESPIPE on unseekable files. */
  pread(fd: number, length: number, offset: bigint): Uint8Array {
    const f = this.#file(fd);
    if (!f.readable) throw new SysError('EBADF', `fd ${fd} is not open for reading`);
    if (f.ops.seekable !== true) throw new SysError('ESPIPE', `fd ${fd} is not seekable`);
    if (offset < 0n) throw new SysError('EINVAL', 'negative offset');
    if (!f.ops.read) throw new SysError('EINVAL', `fd ${fd} cannot be read`);
    if (!Number.isInteger(length) || length < 0) throw new SysError('EINVAL', 'bad length');
    return f.ops.read(length, offset, this.#call, f);
  }

  /**
   * pread(2) into a caller-supplied buffer, as the C call fills `buf`: reads up to `buf.length` bytes at `offset`
   * and returns how many it read. Same errno as {@link pread}; a file with a `readInto` op fills `buf` without
   * allocating (vfio-pci's small aligned region accesses), others are read and copied. An extension of the
   * DESIGN system-call surface (JavaScript has no caller-owned `void *`).
   */
  preadInto(fd: number, buf: Uint8Array, offset: bigint): number {
    const f = this.#file(fd);
    const ops = f.ops;
    // The common case (every check passes and the file reads into buffers) in few enough bytecodes for the JIT
    // to inline the file's op here; anything else goes through #preadChecked, which checks in read(2)'s order.
    if (f.readable && ops.seekable === true && offset >= 0n && ops.readInto !== undefined && buf instanceof Uint8Array) {
      return ops.readInto(buf, offset, this.#call, f);
    }
    return this.#preadChecked(fd, f, buf, offset);
  }

  /** {@link preadInto} with each check raising its own error, and files without `readInto` (read and copy). */
  #preadChecked(fd: number, f: OpenFile, buf: Uint8Array, offset: bigint): number {
    const ops = f.ops;
    if (!f.readable) throw new SysError('EBADF', `fd ${fd} is not open for reading`);
    if (ops.seekable !== true) throw new SysError('ESPIPE', `fd ${fd} is not seekable`);
    if (offset < 0n) throw new SysError('EINVAL', 'negative offset');
    if (!ops.read && !ops.readInto) throw new SysError('EINVAL', `fd ${fd} cannot be read`);
    // vfs_read checks the buffer (access_ok) after the file's mode.
    if (!(buf instanceof Uint8Array)) throw new SysError('EFAULT', 'buffer is not a Uint8Array');
    if (ops.readInto) return ops.readInto(buf, offset, this.#call, f);
    if (!ops.read) throw new SysError('EINVAL', `fd ${fd} cannot be read`);
    const out = ops.read(buf.length, offset, this.#call, f);
    const n = Math.min(out.length, buf.length);
    buf.set(n === out.length ? out : out.subarray(0, n));
    return n;
  }

  /** pwrite(2). */
  pwrite(fd: number, data: Uint8Array, offset: bigint): number {
    const f = this.#file(fd);
    if (!f.writable) throw new SysError('EBADF', `fd ${fd} is not open for writing`);
    if (f.ops.seekable !== true) throw new SysError('ESPIPE', `fd ${fd} is not seekable`);
    if (offset < 0n) throw new SysError('EINVAL', 'negative offset');
    if (!f.ops.write) throw new SysError('EINVAL', `fd ${fd} cannot be written`);
    return f.ops.write(data, offset, this.#call, f);
  }

  /* ---------------------------------------------------------------- memory */

  /**
   * mmap(2): anonymous memory through the address space, or part of a file through its mmap op (a device region);
   * a file mapping holds a reference on the file until unmapped.
   */
  mmap(opts: MmapOptions): bigint {
    this.#alive();
    const raw = BigInt(opts.length);
    if (raw <= 0n) throw new SysError('EINVAL', 'mmap length must be positive');
    const length = ((raw + PAGE_SIZE_N - 1n) / PAGE_SIZE_N) * PAGE_SIZE_N;
    const prot = opts.prot ?? PROT_READ | PROT_WRITE;
    if (opts.fd === undefined) {
      return this.mm.mmapAnonymous(length, {
        prot,
        shared: opts.shared ?? false,
        ...(opts.hugepage !== undefined ? { hugepage: opts.hugepage } : {}),
      });
    }
    const f = this.#file(opts.fd);
    const offset = opts.offset ?? 0n;
    if (offset < 0n || offset % PAGE_SIZE_N !== 0n) throw new SysError('EINVAL', 'mmap offset must be page aligned');
    const shared = opts.shared ?? true;
    if (!f.readable) throw new SysError('EACCES', 'file not open for reading');
    if (shared && (prot & PROT_WRITE) !== 0 && !f.writable) throw new SysError('EACCES', 'file not open for writing');
    if (!f.ops.mmap) throw new SysError('ENODEV', `fd ${opts.fd} cannot be mapped`);
    const handler = f.ops.mmap({ offset, length, prot, shared }, this.#call);
    const release = (): void => {
      if (m.released) return;
      m.released = true;
      this.#mappings.delete(m);
      handler.unmapped?.();
      m.file.put();
    };
    const m: Mapping = { file: f.get(), released: false, release };
    try {
      const vaddr = this.mm.mmapDevice(length, handler, { prot, onUnmap: release });
      this.#mappings.add(m);
      return vaddr;
    } catch (e) {
      release();
      throw e;
    }
  }

  /** munmap(2). */
  munmap(vaddr: bigint, length: bigint | number): void {
    this.#alive();
    this.mm.munmap(vaddr, BigInt(length));
  }

  /** Loads and stores in this process's memory (EFAULT on unmapped or protected addresses). */
  readonly memory = {
    read: (vaddr: bigint, length: number): Uint8Array => {
      this.#alive();
      return this.mm.read(vaddr, length);
    },
    write: (vaddr: bigint, data: Uint8Array): void => {
      this.#alive();
      this.mm.write(vaddr, data);
    },
  };

  /* ---------------------------------------------------------------- eventfd, poll, sleep */

  /** eventfd(2): flags from EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC (others EINVAL). */
  eventfd(initval: number | bigint = 0, flags = 0): number {
    this.#alive();
    if ((flags & ~(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC)) !== 0) throw new SysError('EINVAL', 'unknown eventfd flags');
    const init = BigInt(initval);
    if (init < 0n || init > 0xffffffffn) throw new SysError('EINVAL', 'eventfd initval is an unsigned int');
    const ctx = this.host.createEventFd(init, (flags & EFD_SEMAPHORE) !== 0);
    const oflags = O_RDWR | (flags & EFD_NONBLOCK ? O_NONBLOCK : 0) | (flags & EFD_CLOEXEC ? O_CLOEXEC : 0);
    return this.#install(new OpenFile(new EventFdFileOps(ctx, (file) => (file.flags & O_NONBLOCK) !== 0), oflags));
  }

  /**
   * poll(2): resolves with every entry's ready events (revents) once any is ready or `timeoutMs` of host time
   * passed (negative = no timeout, 0 = just look). Bad fds report POLLNVAL; negative fds are ignored.
   */
  async poll(fds: readonly PollFd[], timeoutMs: number): Promise<PollResult[]> {
    this.#alive();
    const look = (): PollResult[] =>
      fds.map(({ fd, events }) => {
        if (fd < 0) return { fd, revents: 0 };
        const f = this.#files.get(fd);
        if (!f) return { fd, revents: POLLNVAL };
        const mask = f.ops.poll ? f.ops.poll() : DEFAULT_POLLMASK;
        return { fd, revents: mask & (events | POLLERR | POLLHUP) };
      });
    const clock = this.host.clock;
    const deadline = timeoutMs >= 0 ? clock.now() + timeoutMs : Infinity;
    for (;;) {
      const res = look();
      if (res.some((r) => r.revents !== 0) || timeoutMs === 0) return res;
      const remaining = deadline - clock.now();
      if (remaining <= 0) return res;
      await new Promise<void>((resolve) => {
        const undo: (() => void)[] = [];
        let done = false;
        const wake = (): void => {
          if (done) return;
          done = true;
          for (const u of undo) u();
          resolve();
        };
        for (const { fd } of fds) {
          const f = this.#files.get(fd);
          if (f?.ops.pollWait) undo.push(f.ops.pollWait(wake));
        }
        if (Number.isFinite(remaining)) {
          const t = clock.setTimeout(wake, remaining);
          undo.push(() => { t.cancel(); });
        }
      });
      this.#alive();
    }
  }

  /** Sleeps `ms` of host time. */
  sleep(ms: number): Promise<void> {
    return this.host.clock.sleep(ms);
  }

  /* ---------------------------------------------------------------- file system queries */

  /** readdir(3): entry names, sorted. */
  readdir(path: string): string[] {
    this.#alive();
    const { node } = resolvePath(this.host.root, path);
    if (node.kind !== 'dir') throw new SysError('ENOTDIR', `${path} is not a directory`);
    if (!permitted(this, node, R_OK)) throw new SysError('EACCES', `permission denied: ${path}`);
    return [...node.entries().keys()].sort();
  }

  /** readlink(2): EINVAL when `path` is not a symlink. */
  readlink(path: string): string {
    this.#alive();
    const { node } = resolvePath(this.host.root, path, false);
    if (node.kind !== 'symlink') throw new SysError('EINVAL', `${path} is not a symlink`);
    return node.target;
  }

  /** access(2): returns 0 or throws ENOENT / EACCES. `mode` is F_OK or a mix of R_OK, W_OK, X_OK. */
  access(path: string, mode: number = F_OK): number {
    this.#alive();
    if ((mode & ~(R_OK | W_OK | X_OK)) !== 0) throw new SysError('EINVAL', 'bad access mode');
    const { node } = resolvePath(this.host.root, path);
    if (mode === F_OK || node.kind === 'symlink') return 0;
    if (!permitted(this, node, mode)) throw new SysError('EACCES', `permission denied: ${path}`);
    return 0;
  }

  /* ---------------------------------------------------------------- credentials and limits */

  /** setrlimit(2) of RLIMIT_MEMLOCK (both limits); raising it above the hard limit needs CAP_SYS_RESOURCE. */
  setrlimit(resource: 'memlock', bytes: bigint | number | null): void {
    this.#alive();
    if (resource !== 'memlock') throw new SysError('EINVAL', `unknown resource ${String(resource)}`);
    const v = bytes === null ? null : BigInt(bytes);
    if (v !== null && v < 0n) throw new SysError('EINVAL', 'negative limit');
    const raises = this.#memlockHard !== null && (v === null || v > this.#memlockHard);
    if (raises && !this.capable('CAP_SYS_RESOURCE')) throw new SysError('EPERM', 'raising RLIMIT_MEMLOCK needs CAP_SYS_RESOURCE');
    this.#memlock = v;
    this.#memlockHard = v;
  }

  /** capset(2) of the effective set: capabilities can only be dropped (EPERM to add one). */
  capset(caps: { effective: readonly Capability[] }): void {
    this.#alive();
    for (const c of caps.effective) {
      if (!this.#caps.has(c)) throw new SysError('EPERM', `cannot raise ${c}`);
    }
    this.#caps = new Set(caps.effective);
  }

  /* ---------------------------------------------------------------- fork / exit */

  /** fork(2): the child shares every open file, gets a copy of memory, credentials and limits. */
  fork(): Process {
    this.#alive();
    const files = new Map<number, OpenFile>();
    for (const [fd, f] of this.#files) files.set(fd, f.get());
    const child = new Process(this.host, {
      pid: this.host.newPid(),
      uid: this.uid,
      gid: this.gid,
      capabilities: new Set(this.#caps),
      memlockLimit: this.#memlock,
      memlockHard: this.#memlockHard,
      mm: this.mm.fork(),
      files,
    });
    for (const fd of this.#cloexec) child.#cloexec.add(fd);
    this.host.processCreated(child);
    return child;
  }

  /** exit(2): closes every fd, tears down memory (device mappings drop their files). */
  exit(status = 0): void {
    this.#alive();
    for (const fd of this.fds()) this.close(fd);
    this.mm.destroy();
    for (const m of [...this.#mappings]) m.release();
    this.#mappings.clear();
    this.#exited = status;
    this.host.processExited(this);
  }
}
