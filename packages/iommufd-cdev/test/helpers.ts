/** Test harness: a simulated host with the iommufd plugin, one process and an open /dev/iommu. */
import { createHost } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import type { Capability } from '@vfio-ts/platform';
import { SimIommuGroup, simPlatform } from '@vfio-ts/sim';
import type { SimPlatform } from '@vfio-ts/sim';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  iommuDestroy,
  iommuIoasAlloc,
  iommuIoasAllowIovas,
  iommuIoasCopy,
  iommuIoasIovaRanges,
  iommuIoasMap,
  iommuIoasUnmap,
  iommuIovaRange,
  iommuOption,
  isSysError,
} from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import { iommufd, iommufdContextOf } from '../src/index.js';
import type { IommufdContext, IommufdSubsystem } from '../src/index.js';

export const PAGE = 4096n;
export const MiB = 1n << 20n;
export const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
export const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA;

/** Runs `fn` and returns the errno it threw (fails when it does not throw a SysError). */
export function errnoOf(fn: () => unknown): ErrnoName {
  try {
    fn();
  } catch (e) {
    if (isSysError(e)) return e.errno;
    throw e;
  }
  throw new Error('expected a SysError');
}

export interface SetupOptions {
  uid?: number;
  caps?: Capability[];
  memlockLimit?: bigint | null;
}

export interface Fixture {
  platform: SimPlatform;
  p: Process;
  fd: number;
  ctx: IommufdContext;
  sub: IommufdSubsystem;
  ioasAlloc(): number;
  map(ioas: number, va: bigint, length: bigint, opts?: { iova?: bigint; flags?: number }): bigint;
  unmap(ioas: number, iova: bigint, length: bigint): bigint;
  copy(dst: number, src: number, srcIova: bigint, length: bigint, opts?: { dstIova?: bigint; flags?: number }): bigint;
  ranges(ioas: number, room?: number): { ranges: { start: bigint; last: bigint }[]; num: number; alignment: bigint };
  allow(ioas: number, ranges: { start: bigint; last: bigint }[]): void;
  option(optionId: number, objectId: number, val?: bigint): bigint;
  destroy(id: number): void;
  /** A user buffer of `length` bytes (anonymous memory). */
  buffer(length: bigint, hugepage?: '2M'): bigint;
  /** Binds a fresh device in its own IOMMU group and attaches it to `pt` (IOAS or HWPT); returns ids. */
  device(pt?: number): { devId: number; hwptId: number | undefined; group: SimIommuGroup };
}

export function setup(opts: SetupOptions = {}): Fixture {
  const plugin = iommufd();
  const platform = simPlatform({ iommu: 'vtd' });
  const host = createHost({ platform, plugins: [plugin] });
  const p = host.spawn({
    uid: opts.uid ?? 1000,
    capabilities: opts.caps ?? [],
    memlockLimit: opts.memlockLimit === undefined ? 64n * MiB : opts.memlockLimit,
  });
  const fd = p.open('/dev/iommu');
  const ctx = iommufdContextOf(p.file(fd))!;
  let nextGroup = 100;
  const f: Fixture = {
    platform,
    p,
    fd,
    ctx,
    sub: plugin.subsystem!,
    ioasAlloc() {
      const b = iommuIoasAlloc.encode({ size: 12 });
      p.ioctl(fd, IOMMU_IOAS_ALLOC, b);
      return iommuIoasAlloc.decode(b).out_ioas_id;
    },
    map(ioas, va, length, o = {}) {
      const flags = o.flags ?? (RW | (o.iova !== undefined ? FIXED : 0));
      const b = iommuIoasMap.encode({ size: 40, flags, ioas_id: ioas, user_va: va, length, iova: o.iova ?? 0n });
      p.ioctl(fd, IOMMU_IOAS_MAP, b);
      return iommuIoasMap.decode(b).iova;
    },
    unmap(ioas, iova, length) {
      const b = iommuIoasUnmap.encode({ size: 24, ioas_id: ioas, iova, length });
      p.ioctl(fd, IOMMU_IOAS_UNMAP, b);
      return iommuIoasUnmap.decode(b).length;
    },
    copy(dst, src, srcIova, length, o = {}) {
      const flags = o.flags ?? (RW | (o.dstIova !== undefined ? FIXED : 0));
      const b = iommuIoasCopy.encode({ size: 40, flags, dst_ioas_id: dst, src_ioas_id: src, length, dst_iova: o.dstIova ?? 0n, src_iova: srcIova });
      p.ioctl(fd, IOMMU_IOAS_COPY, b);
      return iommuIoasCopy.decode(b).dst_iova;
    },
    ranges(ioas, room = 8) {
      const arr = room > 0 ? p.mmap({ length: BigInt(Math.max(4096, room * 16)) }) : 0n;
      const b = iommuIoasIovaRanges.encode({ size: 32, ioas_id: ioas, num_iovas: room, allowed_iovas: arr });
      let num: number;
      try {
        p.ioctl(fd, IOMMU_IOAS_IOVA_RANGES, b);
      } finally {
        num = iommuIoasIovaRanges.decode(b).num_iovas;
      }
      const out = iommuIoasIovaRanges.decode(b);
      const ranges = [];
      for (let i = 0; i < Math.min(num, room); i++) ranges.push(iommuIovaRange.decode(p.memory.read(arr + BigInt(16 * i), 16)));
      return { ranges, num, alignment: out.out_iova_alignment };
    },
    allow(ioas, ranges) {
      const arr = p.mmap({ length: BigInt(Math.max(4096, ranges.length * 16)) });
      ranges.forEach((r, i) => {
        p.memory.write(arr + BigInt(16 * i), iommuIovaRange.encode(r));
      });
      p.ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, iommuIoasAllowIovas.encode({ size: 24, ioas_id: ioas, num_iovas: ranges.length, allowed_iovas: arr }));
    },
    option(optionId, objectId, val) {
      const b = iommuOption.encode({
        size: 24,
        option_id: optionId,
        op: val === undefined ? IOMMU_OPTION_OP_GET : IOMMU_OPTION_OP_SET,
        object_id: objectId,
        val64: val ?? 0n,
      });
      p.ioctl(fd, IOMMU_OPTION, b);
      return iommuOption.decode(b).val64;
    },
    destroy(id) {
      p.ioctl(fd, IOMMU_DESTROY, iommuDestroy.encode({ size: 8, id }));
    },
    buffer(length, hugepage) {
      const va = p.mmap({ length, ...(hugepage ? { hugepage } : {}) });
      return va;
    },
    device(pt) {
      const group = new SimIommuGroup(nextGroup++, platform.iommu, undefined);
      const devId = ctx.bindDevice({ name: `0000:00:${group.id.toString(16)}.0`, iommuGroup: group });
      const hwptId = pt === undefined ? undefined : ctx.attach(devId, pt);
      return { devId, hwptId, group };
    },
  };
  return f;
}
