/**
 * Path resolution over the host's file tree: the platform's sysfs plus the nodes the core owns (/dev,
 * /sys/module). Symlinks resolve relative to the directory holding them, as on Linux.
 */
import type { NodeMode, VfsDir, VfsNode } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';

/** A resolved path: the node and its canonical absolute path. */
export interface Resolved {
  readonly node: VfsNode;
  readonly path: string;
}

const MAX_SYMLINKS = 40;

/** Splits an absolute path into components (EINVAL for a relative one). */
export function splitPath(path: string): string[] {
  if (!path.startsWith('/')) throw new SysError('ENOENT', `path ${path} is not absolute`);
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** Resolves `path` from `root`; the last component is followed when it is a symlink and `follow` is set. */
export function resolvePath(root: VfsDir, path: string, follow = true): Resolved {
  let links = 0;
  const walk = (parts: string[], followLast: boolean): Resolved => {
    const stack: { node: VfsNode; name: string }[] = [];
    let current: VfsNode = root;
    const queue = [...parts];
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (name === '..') {
        stack.pop();
        current = stack.length > 0 ? stack[stack.length - 1]!.node : root;
        continue;
      }
      if (current.kind !== 'dir') throw new SysError('ENOTDIR', `${name}: not a directory`);
      const next: VfsNode | undefined = current.entries().get(name);
      if (!next) throw new SysError('ENOENT', `no such file or directory: ${path}`);
      if (next.kind === 'symlink' && (queue.length > 0 || followLast)) {
        if (++links > MAX_SYMLINKS) throw new SysError('ELOOP', `too many symlinks in ${path}`);
        const base = next.target.startsWith('/') ? [] : stack.map((s) => s.name);
        const target = [...base, ...next.target.split('/').filter((c) => c !== '' && c !== '.'), ...queue];
        return walk(target, followLast);
      }
      stack.push({ node: next, name });
      current = next;
    }
    return { node: current, path: '/' + stack.map((s) => s.name).join('/') };
  };
  return walk(splitPath(path), follow);
}

/* access(2) modes. */
/** Read permission. */
export const R_OK = 4;
/** Write permission. */
export const W_OK = 2;
/** Execute/search permission. */
export const X_OK = 1;
/** Existence only. */
export const F_OK = 0;

/** Who is asking: enough of a task for DAC checks. */
export interface Credentials {
  readonly uid: number;
  readonly gid: number;
  capable(cap: 'CAP_DAC_OVERRIDE'): boolean;
}

/** The DAC check of Linux generic_permission: owner, group or other bits; CAP_DAC_OVERRIDE bypasses rw. */
export function permitted(cred: Credentials, node: NodeMode, want: number): boolean {
  const bits = cred.uid === node.uid ? (node.mode >> 6) & 7 : cred.gid === node.gid ? (node.mode >> 3) & 7 : node.mode & 7;
  if ((bits & want) === want) return true;
  if (cred.capable('CAP_DAC_OVERRIDE')) {
    // Override grants read and write always, execute only when some execute bit is set.
    return (want & X_OK) === 0 || (node.mode & 0o111) !== 0;
  }
  return false;
}

/** A directory whose entries come from a function. */
export function dir(entries: () => ReadonlyMap<string, VfsNode>, mode = 0o755): VfsDir {
  return { kind: 'dir', mode, uid: 0, gid: 0, entries };
}
