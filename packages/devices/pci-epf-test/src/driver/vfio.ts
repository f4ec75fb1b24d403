/**
 * The VFIO calls a user-space driver makes, as thin typed wrappers over `ioctl(2)` and the binary structs of
 * `@vfio-ts/uapi`: the same bytes QEMU's hw/vfio/ passes to Linux.
 */
import {
  REGION_INFO_CAP_SIZES,
  TYPE1_INFO_CAP_SIZES,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GROUP_GET_STATUS,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_FLAG_CAPS,
  decodeIovaRangeCap,
  findCap,
  parseCapChain,
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioIommuType1Info,
  vfioIrqInfo,
  vfioIrqSet,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import type { IovaRange } from '@vfio-ts/uapi';
import type { EpfTestDriverProcess } from './process.js';

/** VFIO_DEVICE_GET_INFO, decoded. */
export interface VfioDeviceInfoView {
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
}

/** One capability header of an INFO chain. */
export interface VfioCapView {
  readonly id: number;
  readonly version: number;
}

/** VFIO_DEVICE_GET_REGION_INFO, decoded. */
export interface VfioRegionInfoView {
  readonly index: number;
  readonly flags: number;
  readonly size: bigint;
  /** The fd offset of the region for pread/pwrite/mmap. */
  readonly offset: bigint;
  readonly caps: readonly VfioCapView[];
}

/** VFIO_DEVICE_GET_IRQ_INFO, decoded. */
export interface VfioIrqInfoView {
  readonly index: number;
  readonly flags: number;
  readonly count: number;
}

/** VFIO_IOMMU_GET_INFO (type1), decoded. */
export interface Type1InfoView {
  readonly flags: number;
  /** Supported IOMMU page sizes, one bit per size. */
  readonly pgsizes: bigint;
  /** Usable IOVA ranges (the IOVA_RANGE capability); empty when the backend reports none. */
  readonly iovaRanges: readonly IovaRange[];
}

/** VFIO_GROUP_GET_STATUS: the group's flags (VIABLE 1, CONTAINER_SET 2). */
export function groupStatusFlags(p: EpfTestDriverProcess, groupFd: number): number {
  const st = vfioGroupStatus.encode({ argsz: vfioGroupStatus.size });
  p.ioctl(groupFd, VFIO_GROUP_GET_STATUS, st);
  return vfioGroupStatus.decode(st).flags;
}

/** VFIO_DEVICE_GET_INFO with the fixed struct (the capability chain is not needed here). */
export function deviceInfo(p: EpfTestDriverProcess, deviceFd: number): VfioDeviceInfoView {
  const buf = vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size });
  p.ioctl(deviceFd, VFIO_DEVICE_GET_INFO, buf);
  const info = vfioDeviceInfo.decode(buf);
  return { flags: info.flags, numRegions: info.num_regions, numIrqs: info.num_irqs };
}

/**
 * An INFO ioctl whose struct may be followed by a capability chain: ask with the fixed size, and when the kernel
 * answers with a larger `argsz` (§1.0: it reports the size it needs), ask again with a buffer that large — the
 * two-call pattern QEMU uses.
 */
function infoWithChain(p: EpfTestDriverProcess, fd: number, request: number, first: Uint8Array): Uint8Array {
  p.ioctl(fd, request, first);
  const need = new DataView(first.buffer, first.byteOffset, first.byteLength).getUint32(0, true);
  if (need <= first.length) return first;
  const again = new Uint8Array(need);
  again.set(first);
  new DataView(again.buffer).setUint32(0, need, true);
  p.ioctl(fd, request, again);
  return again;
}

/** VFIO_DEVICE_GET_REGION_INFO for one index, with its capability headers. */
export function regionInfo(p: EpfTestDriverProcess, deviceFd: number, index: number): VfioRegionInfoView {
  const buf = infoWithChain(p, deviceFd, VFIO_DEVICE_GET_REGION_INFO, vfioRegionInfo.encode({ argsz: vfioRegionInfo.size, index }));
  const info = vfioRegionInfo.decode(buf);
  const caps = (info.flags & VFIO_REGION_INFO_FLAG_CAPS) !== 0 && info.cap_offset !== 0
    ? parseCapChain(buf, info.cap_offset, { minOffset: vfioRegionInfo.size, limit: Math.min(info.argsz, buf.length), minSizes: REGION_INFO_CAP_SIZES })
    : [];
  return { index, flags: info.flags, size: info.size, offset: info.offset, caps: caps.map((c) => ({ id: c.id, version: c.version })) };
}

/** VFIO_DEVICE_GET_IRQ_INFO for one index. */
export function irqInfo(p: EpfTestDriverProcess, deviceFd: number, index: number): VfioIrqInfoView {
  const buf = vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, index });
  p.ioctl(deviceFd, VFIO_DEVICE_GET_IRQ_INFO, buf);
  const info = vfioIrqInfo.decode(buf);
  return { index, flags: info.flags, count: info.count };
}

/** VFIO_IOMMU_GET_INFO on a type1 container, with its IOVA ranges. */
export function type1Info(p: EpfTestDriverProcess, containerFd: number): Type1InfoView {
  const buf = infoWithChain(p, containerFd, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: vfioIommuType1Info.size }));
  const info = vfioIommuType1Info.decode(buf);
  const chain = (info.flags & VFIO_IOMMU_INFO_CAPS) !== 0 && info.cap_offset !== 0
    ? parseCapChain(buf, info.cap_offset, { minOffset: vfioIommuType1Info.size, limit: Math.min(info.argsz, buf.length), minSizes: TYPE1_INFO_CAP_SIZES })
    : [];
  const range = findCap(chain, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
  return { flags: info.flags, pgsizes: info.iova_pgsizes, iovaRanges: range ? decodeIovaRangeCap(range).ranges : [] };
}

/** VFIO_DEVICE_SET_IRQS, ACTION_TRIGGER | DATA_EVENTFD: bind `eventfds` to vectors `start..` of `index`. */
export function setIrqEventfds(p: EpfTestDriverProcess, deviceFd: number, index: number, start: number, eventfds: readonly number[]): void {
  const buf = new Uint8Array(vfioIrqSet.size + 4 * eventfds.length);
  vfioIrqSet.write(buf, {
    argsz: buf.length,
    flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
    index,
    start,
    count: eventfds.length,
  });
  const view = new DataView(buf.buffer);
  eventfds.forEach((fd, i) => { view.setInt32(vfioIrqSet.size + 4 * i, fd, true); });
  p.ioctl(deviceFd, VFIO_DEVICE_SET_IRQS, buf);
}

/** VFIO_DEVICE_SET_IRQS, ACTION_TRIGGER | DATA_NONE with count 0: disable the whole index (§1.4.2). */
export function disableIrqIndex(p: EpfTestDriverProcess, deviceFd: number, index: number): void {
  const buf = vfioIrqSet.encode({ argsz: vfioIrqSet.size, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 0 });
  p.ioctl(deviceFd, VFIO_DEVICE_SET_IRQS, buf);
}

/**
 * VFIO_DEVICE_SET_IRQS, ACTION_UNMASK | DATA_NONE: unmask vectors `start..start+count-1` of `index`. For INTx this is
 * the end-of-interrupt of an automasked line (§3.4): vfio-pci masked it when it signalled the eventfd.
 */
export function unmaskIrq(p: EpfTestDriverProcess, deviceFd: number, index: number, start = 0, count = 1): void {
  const buf = vfioIrqSet.encode({ argsz: vfioIrqSet.size, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, index, start, count });
  p.ioctl(deviceFd, VFIO_DEVICE_SET_IRQS, buf);
}
