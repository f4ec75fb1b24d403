/** Shared test helpers for @vfio-ts/sim. */
import { readFileSync } from 'node:fs';
import { SysError } from '@vfio-ts/uapi';
import { expect } from 'vitest';
import { pciFunctionFromConfig, type ConfigSpaceFunction, type SimPlatform } from '../src/index.js';
import type { VfsFile } from '@vfio-ts/platform';

/** A captured config space from test/fixtures. */
export function fixture(name: 'edu' | 'e1000e'): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`./fixtures/${name}.config.bin`, import.meta.url)));
}

/** A 256-byte (or 4096 with `pcie`) type-0 config space with the given ids. */
export function config(vendor: number, device: number, opts: { multifunction?: boolean; pcie?: number; acs?: boolean } = {}): Uint8Array {
  const c = new Uint8Array(opts.pcie !== undefined ? 4096 : 256);
  const dv = new DataView(c.buffer);
  dv.setUint16(0x00, vendor, true);
  dv.setUint16(0x02, device, true);
  dv.setUint32(0x08, 0x02000000, true);
  c[0x0e] = opts.multifunction ? 0x80 : 0;
  if (opts.pcie !== undefined) {
    dv.setUint16(0x06, 0x0010, true);
    c[0x34] = 0x40;
    c[0x40] = 0x10;
    dv.setUint16(0x42, 0x0002 | (opts.pcie << 4), true);
    dv.setUint32(0x44, 1 << 28, true); // DevCap: FLR
    if (opts.acs) {
      dv.setUint32(0x100, (1 << 16) | 0x000d, true);
      dv.setUint16(0x104, 0x001d, true);
    }
  }
  return c;
}

/** A passive function with one 4 KiB BAR. */
export function fn(vendor = 0x1234, device = 0x1111, opts: Parameters<typeof config>[2] = {}): ConfigSpaceFunction {
  return pciFunctionFromConfig({ config: config(vendor, device, opts), bars: '0:mem32:0x1000' });
}

/** Expects `f` to throw a SysError with `errno`. */
export function expectErrno(f: () => unknown, errno: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${errno}`).toBeInstanceOf(SysError);
  expect((err as SysError).errno).toBe(errno);
}

/** Expects a promise to reject with a SysError with `errno`. */
export async function expectErrnoAsync(p: Promise<unknown> | void, errno: string): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${errno}`).toBeInstanceOf(SysError);
  expect((err as SysError).errno).toBe(errno);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Reads a sysfs text file. */
export function cat(p: SimPlatform, path: string): string {
  const { node } = p.lookupSysfs(path);
  if (node.kind !== 'file') throw new Error(`${path} is not a file`);
  return dec.decode(node.read());
}

/** Writes a sysfs file (echo text > path); returns what the write returned. */
export function echo(p: SimPlatform, path: string, text: string): void | Promise<void> {
  const { node } = p.lookupSysfs(path);
  if (node.kind !== 'file' || !node.write) throw new Error(`${path} is not writable`);
  return node.write(enc.encode(text));
}

/** readlink(2). */
export function readlink(p: SimPlatform, path: string): string {
  const { node } = p.lookupSysfs(path, false);
  if (node.kind !== 'symlink') throw new Error(`${path} is not a symlink`);
  return node.target;
}

/** readdir(2), sorted. */
export function ls(p: SimPlatform, path: string): string[] {
  const { node } = p.lookupSysfs(path);
  if (node.kind !== 'dir') throw new Error(`${path} is not a directory`);
  return [...node.entries().keys()].sort();
}

/** The file node at `path`. */
export function file(p: SimPlatform, path: string): VfsFile {
  const { node } = p.lookupSysfs(path);
  if (node.kind !== 'file') throw new Error(`${path} is not a file`);
  return node;
}
