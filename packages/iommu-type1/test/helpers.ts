/** A harness that drives the backend through its ioctl op with real struct bytes. */
import type { CallContext, VfioGroupRef } from '@vfio-ts/core';
import type { Capability } from '@vfio-ts/platform';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  isSysError,
  vfioBitmap,
  vfioIommuType1DirtyBitmap,
  vfioIommuType1DirtyBitmapGet,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import { type1DriverOps } from '../src/index.js';
import type { Type1Container } from '../src/index.js';
import { FakeEnv, FakeGroup, FakeMm, FakePhys, FakeTask, groupRef } from './fakes.js';
import type { DomainOptions } from './fakes.js';

export const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
export const MiB = 1n << 20n;
export const GiB = 1n << 30n;

export interface HarnessOptions {
  type?: number;
  caps?: Capability[];
  memlockLimit?: bigint | null;
  params?: Record<string, string>;
  /** Attach one IOMMU group (default true). */
  group?: boolean | DomainOptions;
}

export function harness(opts: HarnessOptions = {}) {
  const phys = new FakePhys();
  const mm = new FakeMm(phys);
  const task = new FakeTask(mm, opts.caps ?? [], opts.memlockLimit === undefined ? null : opts.memlockLimit);
  const env = new FakeEnv();
  for (const [k, v] of Object.entries(opts.params ?? {})) env.params.set(k, v);
  const ops = type1DriverOps();
  const call: CallContext = { task };
  const c: Type1Container = ops.open(opts.type ?? 3, env, call);
  const groups: FakeGroup[] = [];
  const attach = (g: FakeGroup, ref: VfioGroupRef = groupRef(g, g.id)): void => {
    ops.attachGroup(c, ref, call);
    groups.push(g);
  };
  if (opts.group !== false) attach(new FakeGroup(1, typeof opts.group === 'object' ? opts.group : {}));
  const ioctl = (cmd: number, arg: Uint8Array | number): number => ops.ioctl(c, cmd, arg, call);
  const map = (iova: bigint, vaddr: bigint, size: bigint, flags = RW): number =>
    ioctl(VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags, vaddr, iova, size }));
  const unmap = (iova: bigint, size: bigint, flags = 0): bigint => {
    const b = vfioIommuType1DmaUnmap.encode({ argsz: 24, flags, iova, size });
    ioctl(VFIO_IOMMU_UNMAP_DMA, b);
    return vfioIommuType1DmaUnmap.decode(b).size;
  };
  const dirty = (flags: number): number => ioctl(VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags }));
  const start = (): number => dirty(VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
  const stop = (): number => dirty(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
  /** GET_BITMAP into a fresh user buffer; returns the bitmap bytes. */
  const getBitmap = (iova: bigint, size: bigint, pgsize = 4096n, bytes?: bigint): Uint8Array => {
    const nbytes = bytes ?? (((size / pgsize + 63n) / 64n) * 8n);
    const data = mm.add(Number((nbytes + 4095n) / 4096n));
    const b = new Uint8Array(48);
    vfioIommuType1DirtyBitmap.write(b, { argsz: 48, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP });
    vfioIommuType1DirtyBitmapGet.write(b, { iova, size, bitmap_pgsize: pgsize, bitmap_size: nbytes, bitmap_data: data }, 8);
    ioctl(VFIO_IOMMU_DIRTY_PAGES, b);
    return mm.read(data, Number(nbytes));
  };
  /** UNMAP with GET_DIRTY_BITMAP; returns [unmapped size, bitmap bytes]. */
  const unmapDirty = (iova: bigint, size: bigint, pgsize = 4096n): [bigint, Uint8Array] => {
    const nbytes = ((size / pgsize + 63n) / 64n) * 8n;
    const data = mm.add(Number((nbytes + 4095n) / 4096n));
    const b = new Uint8Array(48);
    vfioIommuType1DmaUnmap.write(b, { argsz: 48, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, iova, size });
    vfioBitmap.write(b, { pgsize, size: nbytes, data }, 24);
    ioctl(VFIO_IOMMU_UNMAP_DMA, b);
    return [vfioIommuType1DmaUnmap.decode(b).size, mm.read(data, Number(nbytes))];
  };
  return { phys, mm, task, env, ops, call, c, groups, attach, ioctl, map, unmap, dirty, start, stop, getBitmap, unmapDirty };
}

/** Runs `fn` and returns the errno it threw (fails the test when it does not throw a SysError). */
export function errnoOf(fn: () => unknown): ErrnoName {
  try {
    fn();
  } catch (e) {
    if (isSysError(e)) return e.errno;
    throw e;
  }
  throw new Error('expected a SysError');
}

/** Bit n of a little-endian bitmap. */
export function bit(bm: Uint8Array, n: number): boolean {
  return ((bm[n >> 3]! >> (n & 7)) & 1) === 1;
}

/** Number of set bits. */
export function popcount(bm: Uint8Array): number {
  let n = 0;
  for (const b of bm) for (let x = b; x; x &= x - 1) n++;
  return n;
}
