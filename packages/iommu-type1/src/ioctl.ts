/**
 * Container ioctls of the type1 backend (inventory §1.7): decode the user struct with the uapi codecs, apply the
 * argsz/flag rules Linux applies before taking the lock, call the container, copy results back.
 */
import type { CallContext, IoctlArg } from '@vfio-ts/core';
import {
  CapChainBuilder,
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  copyOut,
  dmaAvailCapPayload,
  iovaRangeCapPayload,
  migrationCapPayload,
  readVfioArg,
  unknownFlags,
  vfioBitmap,
  vfioIommuType1DirtyBitmap,
  vfioIommuType1DirtyBitmapGet,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
  writeInfoWithCaps,
} from '@vfio-ts/uapi';
import { DIRTY_BITMAP_SIZE_MAX } from './bitmap.js';
import { Type1Container } from './container.js';

/**
 * A struct argument: anything but bytes is a bad user pointer, and so is a buffer shorter than the fixed header,
 * because Linux copies `minsz` bytes in before it looks at argsz (copy_from_user fails → EFAULT, not EINVAL).
 */
function structArg(arg: IoctlArg, what: string, minsz: number): Uint8Array {
  if (!(arg instanceof Uint8Array)) throw new SysError('EFAULT', `${what} needs a struct argument`);
  if (arg.length < minsz) throw new SysError('EFAULT', `${what}: ${arg.length}-byte buffer ends inside the ${minsz}-byte header`);
  return arg;
}

/** VFIO_CHECK_EXTENSION as type1 answers it (§1.1); `c` is null before SET_IOMMU. */
export function checkExtension(c: Type1Container | null, arg: IoctlArg): number {
  const ext = typeof arg === 'number' || typeof arg === 'bigint' ? Number(arg) : -1;
  switch (ext) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return 1;
    case VFIO_UPDATE_VADDR:
      // Emulated devices cannot safely pin or copy while a vaddr is being replaced.
      return c !== null && !c.hasEmulatedGroups ? 1 : 0;
    case VFIO_DMA_CC_IOMMU:
      return c !== null && c.allDomainsCoherent ? 1 : 0;
    default:
      // Includes 6 (the reserved nesting type): never offered, so SET_IOMMU never selects it.
      return 0;
  }
}

function getInfo(c: Type1Container, bytes: Uint8Array): number {
  const { argsz } = readVfioArg(bytes, vfioIommuType1Info);
  const pgsizes = c.pgsizeBitmap;
  // Kernel order: MIGRATION, DMA_AVAIL, IOVA_RANGE (the last only with a non-empty list).
  const caps = new CapChainBuilder()
    .add(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, migrationCapPayload({ flags: 0, pgsizeBitmap: pgsizes & -pgsizes, maxDirtyBitmapSize: DIRTY_BITMAP_SIZE_MAX }))
    .add(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, dmaAvailCapPayload(c.dmaAvail));
  if (c.iovaRanges.length > 0) caps.add(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, iovaRangeCapPayload(c.iovaRanges));
  writeInfoWithCaps(bytes, vfioIommuType1Info, { argsz, flags: VFIO_IOMMU_INFO_PGSIZES, iova_pgsizes: pgsizes, cap_offset: 0, pad: 0 }, VFIO_IOMMU_INFO_CAPS, caps);
  return 0;
}

function mapDma(c: Type1Container, bytes: Uint8Array, call: CallContext): number {
  const { value } = readVfioArg(bytes, vfioIommuType1DmaMap);
  if (unknownFlags(value.flags, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR) !== 0) {
    throw new SysError('EINVAL', `unknown MAP_DMA flags 0x${value.flags.toString(16)}`);
  }
  c.map(value, call.task);
  return 0;
}

function unmapDma(c: Type1Container, bytes: Uint8Array, call: CallContext): number {
  const { value, argsz } = readVfioArg(bytes, vfioIommuType1DmaUnmap);
  const known = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR;
  if (unknownFlags(value.flags, known) !== 0) throw new SysError('EINVAL', `unknown UNMAP_DMA flags 0x${value.flags.toString(16)}`);
  const getDirty = (value.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
  if (getDirty && (value.flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)) !== 0) {
    throw new SysError('EINVAL', 'GET_DIRTY_BITMAP cannot be combined with ALL or VADDR');
  }
  let bitmap: { pgsize: bigint; size: bigint; data: bigint } | undefined;
  if (getDirty) {
    const at = vfioIommuType1DmaUnmap.size;
    if (argsz < at + vfioBitmap.size) throw new SysError('EINVAL', 'argsz too small for the vfio_bitmap');
    if (bytes.length < at + vfioBitmap.size) throw new SysError('EFAULT', 'vfio_bitmap past the end of the buffer');
    bitmap = vfioBitmap.decode(bytes, at);
    Type1Container.checkUnmapBitmap(value, bitmap);
  }
  const unmapped = c.unmap(value, bitmap, call.task.mm);
  copyOut(bytes, vfioIommuType1DmaUnmap, { ...value, size: unmapped }, vfioIommuType1DmaUnmap.minsz);
  return 0;
}

function dirtyPages(c: Type1Container, bytes: Uint8Array, call: CallContext): number {
  if (!c.v2) throw new SysError('EACCES', 'dirty tracking needs a type1v2 container');
  const { value, argsz } = readVfioArg(bytes, vfioIommuType1DirtyBitmap);
  const known = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP | VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  if (unknownFlags(value.flags, known) !== 0) throw new SysError('EINVAL', `unknown DIRTY_PAGES flags 0x${value.flags.toString(16)}`);
  switch (value.flags) {
    case VFIO_IOMMU_DIRTY_PAGES_FLAG_START:
      c.dirtyStart();
      return 0;
    case VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP:
      c.dirtyStop();
      return 0;
    case VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP: {
      const at = vfioIommuType1DirtyBitmap.size;
      if (argsz - at < vfioIommuType1DirtyBitmapGet.size) throw new SysError('EINVAL', 'argsz too small for the bitmap range');
      if (bytes.length < at + vfioIommuType1DirtyBitmapGet.size) throw new SysError('EFAULT', 'range past the end of the buffer');
      const r = vfioIommuType1DirtyBitmapGet.decode(bytes, at);
      c.dirtyGetBitmap(r.iova, r.size, { pgsize: r.bitmap_pgsize, size: r.bitmap_size, data: r.bitmap_data }, call.task.mm);
      return 0;
    }
    default:
      throw new SysError('EINVAL', 'exactly one DIRTY_PAGES flag must be set');
  }
}

/** The backend's ioctl op (inventory §2.5): CHECK_EXTENSION with or without a container, then §1.7's commands. */
export function type1Ioctl(c: Type1Container | null, cmd: number, arg: IoctlArg, call: CallContext): number {
  if (cmd === VFIO_CHECK_EXTENSION) return checkExtension(c, arg);
  if (!c) throw new SysError('ENOTTY', 'no type1 container');
  switch (cmd) {
    case VFIO_IOMMU_GET_INFO:
      return getInfo(c, structArg(arg, 'VFIO_IOMMU_GET_INFO', vfioIommuType1Info.minsz));
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(c, structArg(arg, 'VFIO_IOMMU_MAP_DMA', vfioIommuType1DmaMap.minsz), call);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(c, structArg(arg, 'VFIO_IOMMU_UNMAP_DMA', vfioIommuType1DmaUnmap.minsz), call);
    case VFIO_IOMMU_DIRTY_PAGES:
      return dirtyPages(c, structArg(arg, 'VFIO_IOMMU_DIRTY_PAGES', vfioIommuType1DirtyBitmap.minsz), call);
    default:
      throw new SysError('ENOTTY', `ioctl 0x${cmd.toString(16)} is not a type1 container ioctl`);
  }
}
