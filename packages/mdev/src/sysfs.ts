/**
 * Small sysfs building blocks for the mdev tree: attribute files with show/store text, computed directories,
 * symlinks with Linux-style relative targets, and the kernel's text parsers (guid_parse, kstrtoul).
 */
import type { VfsDir, VfsFile, VfsNode, VfsSymlink } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A root-owned attribute file. `show` produces the text (absent: write-only, reads are EACCES as kernfs answers
 * an attribute without show); `store` consumes it (absent: read-only). A zero-length write never reaches
 * `store` (sysfs_kf_write returns 0 for it).
 */
export function attribute(
  mode: number,
  show: (() => string) | undefined,
  store?: (text: string, bytes: Uint8Array) => void | Promise<void>,
): VfsFile {
  const file: VfsFile = {
    kind: 'file',
    mode,
    uid: 0,
    gid: 0,
    read: () => {
      if (!show) throw new SysError('EACCES', 'attribute is write-only');
      return encoder.encode(show());
    },
  };
  if (!store) return file;
  return {
    ...file,
    write: (data: Uint8Array) => {
      if (data.length === 0) return undefined;
      return store(decoder.decode(data), data);
    },
  };
}

/** A directory whose entries are computed on every lookup, so it never goes stale. */
export function directory(entries: () => Iterable<readonly [string, VfsNode]>, mode = 0o755): VfsDir {
  return {
    kind: 'dir',
    mode,
    uid: 0,
    gid: 0,
    entries: () => new Map<string, VfsNode>(entries()),
  };
}

/** A symlink. */
export function symlink(target: string): VfsSymlink {
  return { kind: 'symlink', target };
}

function parts(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

/**
 * The relative target sysfs writes for a link living in directory `fromDir` that points at `to` (both absolute):
 * `relativeLink('/sys/bus/mdev/devices', '/sys/devices/virtual/mtty/mtty/<uuid>')` is
 * `../../../devices/virtual/mtty/mtty/<uuid>`.
 */
export function relativeLink(fromDir: string, to: string): string {
  const a = parts(fromDir);
  const b = parts(to);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...Array<string>(a.length - i).fill('..'), ...b.slice(i)].join('/');
}

/** `UUID_STRING_LEN`: the 36 characters of `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
export const UUID_STRING_LEN = 36;

const HYPHENS = new Set([8, 13, 18, 23]);

/**
 * guid_parse (lib/uuid.c): the first 36 characters must be hex digits with hyphens at 8, 13, 18 and 23; the
 * result is the device name as `%pUl` prints it (lower case). Undefined for a malformed string (the caller maps
 * it to EINVAL).
 */
export function parseGuid(text: string): string | undefined {
  if (text.length < UUID_STRING_LEN) return undefined;
  for (let i = 0; i < UUID_STRING_LEN; i++) {
    const c = text.charCodeAt(i);
    if (HYPHENS.has(i)) {
      if (c !== 0x2d) return undefined;
    } else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66))) {
      return undefined;
    }
  }
  return text.slice(0, UUID_STRING_LEN).toLowerCase();
}

/**
 * kstrtoul(buf, 0): an optional '+', then decimal, `0x` hex or leading-0 octal digits, one trailing newline
 * allowed; anything else (or a value above 2^64-1) is undefined (the callers answer EINVAL).
 */
export function parseUlong(text: string): bigint | undefined {
  let t = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (t.startsWith('+')) t = t.slice(1);
  let digits: string;
  let radix: number;
  if (/^0[xX]/.test(t)) {
    digits = t.slice(2);
    radix = 16;
  } else if (t.startsWith('0') && t.length > 1) {
    digits = t.slice(1);
    radix = 8;
  } else {
    digits = t;
    radix = 10;
  }
  const valid = radix === 16 ? /^[0-9a-fA-F]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return undefined;
  const prefix = radix === 16 ? '0x' : radix === 8 ? '0o' : '';
  const v = BigInt(prefix + digits);
  return v > 0xffff_ffff_ffff_ffffn ? undefined : v;
}
