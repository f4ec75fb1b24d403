/**
 * A small virtual file system for sysfs and device nodes: text attribute files, directories and symlinks.
 * The platform fills /sys/bus/pci and /sys/kernel/iommu_groups; the core adds /dev/vfio, /sys/module and vfio-dev.
 */

/** A node's permission bits and owner, as stat(2) reports them. */
export interface NodeMode {
  mode: number;
  uid: number;
  gid: number;
}

/** A file whose contents are produced on read and consumed on write (a sysfs attribute). */
export interface VfsFile extends NodeMode {
  readonly kind: 'file';
  /** Current contents (sysfs text or binary like `config`). EIO/EINVAL etc. as SysError. */
  read(): Uint8Array;
  /** Absent = read-only. May return a promise for writes that wait (unbind). */
  write?(data: Uint8Array): void | Promise<void>;
  /** Positional access for binary attributes (config): read/write at an offset. */
  pread?(length: number, offset: number): Uint8Array;
  pwrite?(data: Uint8Array, offset: number): number;
}

/** A directory: its entries are computed on demand, so a tree never goes stale. */
export interface VfsDir extends NodeMode {
  readonly kind: 'dir';
  entries(): ReadonlyMap<string, VfsNode>;
}

export interface VfsSymlink {
  readonly kind: 'symlink';
  readonly target: string;
}

/** A character device node: opening it is handled by whoever registered it (the core for /dev/vfio). */
export interface VfsCharDev extends NodeMode {
  readonly kind: 'chardev';
  /** Opaque tag the opener dispatches on (e.g. 'vfio-container', 'vfio-group:12'). */
  readonly tag: string;
}

export type VfsNode = VfsFile | VfsDir | VfsSymlink | VfsCharDev;
