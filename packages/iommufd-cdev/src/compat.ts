/**
 * The VFIO type1 container ABI on an iommufd (inventory §1.9.4, Linux vfio_compat.c): GET_API_VERSION,
 * CHECK_EXTENSION, SET_IOMMU, IOMMU_GET_INFO, MAP_DMA and UNMAP_DMA against the compat IOAS chosen with
 * IOMMU_VFIO_IOAS. Anything else in VFIO's number range is ENOTTY.
 */
import type { CallContext, IoctlArg } from '@vfio-ts/core';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  isSysError,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
  vfioIommuType1InfoCapIovaRange,
  vfioIommuType1InfoDmaAvail,
  vfioIovaRange,
} from '@vfio-ts/uapi';
import type { IommufdContext } from './context.js';
import { U64_MAX } from './ioas.js';

/** `VFIO_IOMMU_INFO_PGSIZES`. */
const INFO_PGSIZES = 1 << 0;
/** `VFIO_IOMMU_INFO_CAPS`. */
const INFO_CAPS = 1 << 1;
/** `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`. */
const CAP_IOVA_RANGE = 1;
/** `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`. */
const CAP_DMA_AVAIL = 3;

/** Reads and writes the user's argument at byte offsets (struct bytes or a user pointer). */
interface ArgIo {
  read(off: number, n: number): Uint8Array;
  write(off: number, data: Uint8Array): void;
}

function argIo(arg: IoctlArg, call: CallContext): ArgIo {
  if (arg instanceof Uint8Array) {
    return {
      read: (off, n) => {
        if (off + n > arg.length) throw new SysError('EFAULT', 'argument too short');
        return arg.subarray(off, off + n);
      },
      write: (off, data) => {
        if (off + data.length > arg.length) throw new SysError('EFAULT', 'argument too short');
        arg.set(data, off);
      },
    };
  }
  if (arg === undefined || BigInt(arg) === 0n) throw new SysError('EFAULT', 'NULL argument');
  const base = BigInt.asUintN(64, BigInt(arg));
  return {
    read: (off, n) => call.task.mm.read(base + BigInt(off), n),
    write: (off, data) => {
      call.task.mm.write(base + BigInt(off), data);
    },
  };
}

function byValue(arg: IoctlArg): bigint {
  if (arg === undefined) return 0n;
  if (arg instanceof Uint8Array) return -1n;
  return BigInt.asUintN(64, BigInt(arg));
}

/** iommufd_vfio_ioctl. */
export function vfioCompatIoctl(ctx: IommufdContext, request: number, arg: IoctlArg, call: CallContext): number {
  switch (request) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
      return checkExtension(ctx, byValue(arg));
    case VFIO_SET_IOMMU:
      return setIommu(ctx, byValue(arg), call);
    case VFIO_IOMMU_GET_INFO:
      return getInfo(ctx, argIo(arg, call));
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(ctx, argIo(arg, call), call);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(ctx, argIo(arg, call));
    default:
      throw new SysError('ENOTTY', `unknown ioctl 0x${request.toString(16)} on /dev/iommu`);
  }
}

function checkExtension(ctx: IommufdContext, ext: bigint): number {
  switch (ext) {
    case BigInt(VFIO_TYPE1_IOMMU):
    case BigInt(VFIO_TYPE1v2_IOMMU):
    case BigInt(VFIO_UNMAP_ALL):
      return 1;
    case BigInt(VFIO_NOIOMMU_IOMMU):
      // IS_ENABLED(CONFIG_VFIO_NOIOMMU): the core implements no-IOMMU mode.
      return 1;
    case BigInt(VFIO_DMA_CC_IOMMU): {
      // iommufd_vfio_cc_iommu: ENODEV without a compat IOAS; 0 if any of its HWPTs lacks enforced coherency.
      const ioas = ctx.compatIoas();
      return [...ioas.hwpts].every((h) => h.domain.enforceCacheCoherency) ? 1 : 0;
    }
    default:
      return 0;
  }
}

function setIommu(ctx: IommufdContext, type: bigint, call: CallContext): number {
  // No-IOMMU groups on an iommufd: VFIO blocks most other ioctls; SET_IOMMU(NOIOMMU) needs CAP_SYS_RAWIO.
  if (type === BigInt(VFIO_NOIOMMU_IOMMU) && ctx.noIommuMode) {
    if (!call.task.capable('CAP_SYS_RAWIO')) throw new SysError('EPERM', 'no-IOMMU needs CAP_SYS_RAWIO');
    return 0;
  }
  if ((type !== BigInt(VFIO_TYPE1_IOMMU) && type !== BigInt(VFIO_TYPE1v2_IOMMU)) || ctx.noIommuMode) {
    throw new SysError('EINVAL', 'only type1 is emulated');
  }
  const ioas = ctx.compatIoas();
  // TYPE1 (v1) may unmap inside a mapping: emulate it by never using large IOPTEs, so any page can be cut.
  if (type === BigInt(VFIO_TYPE1_IOMMU)) ioas.iopt.disableLargePages();
  return 0;
}

function getInfo(ctx: IommufdContext, io: ArgIo): number {
  const minsz = vfioIommuType1Info.minsz;
  const head = vfioIommuType1Info.decode(io.read(0, minsz));
  if (head.argsz < minsz) throw new SysError('EINVAL', 'argsz below minsz');
  const copy = Math.min(head.argsz, vfioIommuType1Info.size);
  const ioas = ctx.compatIoas();
  const info = { argsz: head.argsz, flags: INFO_PGSIZES, iova_pgsizes: ioas.iopt.iovaAlignment, cap_offset: 0, pad: 0 };
  const ranges = ioas.iopt.usableRanges();
  // The capability chain starts right after the fixed struct; a capability is written only if it fits whole.
  const caps: Uint8Array[] = [];
  const dma = vfioIommuType1InfoDmaAvail.encode({ header_id: CAP_DMA_AVAIL, header_version: 1, header_next: 0, avail: 0xffffffff });
  caps.push(dma);
  const iov = new Uint8Array(16 + 16 * ranges.length);
  iov.set(vfioIommuType1InfoCapIovaRange.encode({ header_id: CAP_IOVA_RANGE, header_version: 1, header_next: 0, nr_iovas: ranges.length, reserved: 0 }));
  ranges.forEach((r, i) => {
    iov.set(vfioIovaRange.encode({ start: r.start, end: r.last }), 16 + 16 * i);
  });
  caps.push(iov);
  let total = vfioIommuType1Info.size;
  let lastAt = -1;
  for (const cap of caps) {
    const size = Math.ceil(cap.length / 8) * 8;
    if (head.argsz > total && head.argsz - total >= cap.length) io.write(total, cap);
    if (lastAt >= 0 && head.argsz >= total) {
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, total, true);
      io.write(lastAt + 4, next);
    }
    lastAt = total;
    total += size;
  }
  if (head.argsz >= total) info.cap_offset = vfioIommuType1Info.size;
  info.argsz = total;
  info.flags |= INFO_CAPS;
  io.write(0, vfioIommuType1Info.encode(info).subarray(0, copy));
  return 0;
}

function mapDma(ctx: IommufdContext, io: ArgIo, call: CallContext): number {
  const minsz = vfioIommuType1DmaMap.minsz;
  const map = vfioIommuType1DmaMap.decode(io.read(0, minsz));
  if (map.argsz < minsz || (map.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0) {
    throw new SysError('EINVAL', 'bad argsz or flags');
  }
  let prot = IOMMU_CACHE;
  if ((map.flags & VFIO_DMA_MAP_FLAG_READ) !== 0) prot |= IOMMU_READ;
  if ((map.flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0) prot |= IOMMU_WRITE;
  const ioas = ctx.compatIoas();
  ctx.mapUser(ioas.iopt, call.task, map.vaddr, map.size, map.iova, prot);
  return 0;
}

function unmapDma(ctx: IommufdContext, io: ArgIo): number {
  const minsz = vfioIommuType1DmaUnmap.minsz;
  const unmap = vfioIommuType1DmaUnmap.decode(io.read(0, minsz));
  if (unmap.argsz < minsz || (unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) !== 0) throw new SysError('EINVAL', 'bad argsz or flags');
  const ioas = ctx.compatIoas();
  let unmapped = 0n;
  let error: Error | undefined;
  try {
    if ((unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0) {
      if (unmap.iova !== 0n || unmap.size !== 0n) throw new SysError('EINVAL', 'UNMAP_ALL needs iova = size = 0');
      unmapped = ioas.iopt.unmapAll();
    } else {
      if (unmap.size === 0n) throw new SysError('EINVAL', 'zero size');
      const last = unmap.iova + unmap.size - 1n;
      if (last > U64_MAX) throw new SysError('EOVERFLOW', 'range overflows');
      if (ioas.iopt.largePagesDisabled) ioas.iopt.cut(unmap.iova === 0n ? [last] : [last, unmap.iova - 1n]);
      unmapped = ioas.iopt.unmapRange(unmap.iova, last);
    }
  } catch (e) {
    if (isSysError(e, 'EINVAL') && (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0) throw e;
    error = e instanceof Error ? e : new Error(String(e));
  }
  // The size is copied back even when the unmap failed (Linux writes `unmapped` before returning rc).
  io.write(0, vfioIommuType1DmaUnmap.encode({ ...unmap, size: unmapped }).subarray(0, minsz));
  if (error !== undefined) throw error;
  return 0;
}
