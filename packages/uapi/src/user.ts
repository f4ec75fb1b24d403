/**
 * Typed system calls for VFIO users: thin wrappers over `ioctl(2)` that build the binary structs of this package,
 * pass them to a process and decode the answer — the same bytes QEMU's hw/vfio/ passes to Linux.
 *
 * The process is declared structurally ({@link VfioUserProcess}, {@link VfioDriverProcess}) so a device package or a
 * tool can drive VFIO without importing `@vfio-ts/core` at run time: a core `Process` satisfies both interfaces as
 * is, and so does any other object that speaks the same calls (a vfio-user client, a recorder that logs a trace,
 * a scripted fake in a test).
 */
import { SysError } from './errno.js';
import {
  REGION_INFO_CAP_SIZES,
  TYPE1_INFO_CAP_SIZES,
  decodeDmaAvailCap,
  decodeIovaRangeCap,
  decodeRegionTypeCap,
  decodeSparseMmapCap,
  findCap,
  parseCapChain,
} from './caps.js';
import type { CapEntry, IovaRange, SparseMmapArea } from './caps.js';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
} from './ioctl.js';
import {
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
  vfioIrqInfo,
  vfioIrqSet,
  vfioRegionInfo,
} from './structs.js';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
} from './vfio.js';

/* ------------------------------------------------------------------------------------------------------------ */
/* The process                                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * The calls every helper of this module needs: open(2), close(2) and ioctl(2) of DESIGN.md's system-call surface.
 * A `Process` of `@vfio-ts/core` satisfies it as is.
 */
export interface VfioUserProcess {
  /** open(2): returns the lowest free fd. */
  open(path: string, flags?: number): number;
  /** close(2). */
  close(fd: number): void;
  /** ioctl(2): `arg` is a number (by value) or the struct bytes, read and written in place like a user pointer. */
  ioctl(fd: number, request: number, arg?: number | Uint8Array): number;
}

/** `mmap(2)` options: the subset of the system-call surface's `MmapOptions` a user-space driver needs. */
export interface VfioMmapOptions {
  /** Bytes to map. */
  readonly length: bigint | number;
  /** PROT_* bits (default PROT_READ | PROT_WRITE). */
  readonly prot?: number;
  /** MAP_SHARED (the default for a file mapping). */
  readonly shared?: boolean;
  /** Map this file (a device fd) instead of anonymous memory. */
  readonly fd?: number;
  /** File offset: for vfio-pci, the offset the region info reports. */
  readonly offset?: bigint;
}

/** One entry of `poll(2)`. */
export interface VfioPollFd {
  /** The fd to watch. */
  readonly fd: number;
  /** POLL* bits to wait for. */
  readonly events: number;
}

/** One answer of `poll(2)`: the fd and the events that are ready (0 when none). */
export interface VfioPollResult {
  /** The fd asked about. */
  readonly fd: number;
  /** POLL* bits that are ready. */
  readonly revents: number;
}

/**
 * A process that can run a whole user-space VFIO driver: {@link VfioUserProcess} plus region access, DMA memory,
 * eventfds and the wait for an interrupt (DESIGN.md, "The system-call surface"). A core `Process` satisfies it.
 */
export interface VfioDriverProcess extends VfioUserProcess {
  /** read(2) (eventfd counters, sysfs text). */
  read(fd: number, length: number): Uint8Array;
  /** pread(2): device regions live at the offset their region info reports. */
  pread(fd: number, length: number, offset: bigint): Uint8Array;
  /** pwrite(2). */
  pwrite(fd: number, data: Uint8Array, offset: bigint): number;
  /** mmap(2): anonymous memory, or part of a device region when `fd` is given. */
  mmap(options: VfioMmapOptions): bigint;
  /** munmap(2). */
  munmap(vaddr: bigint, length: bigint | number): void;
  /** Loads and stores in the process's own memory. */
  readonly memory: {
    read(vaddr: bigint, length: number): Uint8Array;
    write(vaddr: bigint, data: Uint8Array): void;
  };
  /** eventfd(2). */
  eventfd(initval?: number | bigint, flags?: number): number;
  /** poll(2): resolves once an entry is ready or `timeoutMs` of host time passed. */
  poll(fds: readonly VfioPollFd[], timeoutMs: number): Promise<readonly VfioPollResult[]>;
  /** Sleeps `ms` of host time. */
  sleep(ms: number): Promise<void>;
  /** readlink(2) (the device's `iommu_group` link in sysfs). */
  readlink(path: string): string;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Argument builders                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

const encoder = new TextEncoder();

/**
 * A NUL-terminated string argument, as `VFIO_GROUP_GET_DEVICE_FD` takes the device name. Like a C string, the
 * kernel reads up to the first NUL, so a name with an embedded NUL is cut there.
 */
export function cString(s: string): Uint8Array {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/**
 * A pointer-to-int argument: `VFIO_GROUP_SET_CONTAINER` takes the container fd this way (an `int32_t *`).
 * @throws RangeError when `v` is not a 32-bit signed integer (it could not be a C `int`).
 */
export function intArg(v: number): Uint8Array {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`${v} is not a 32-bit int`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, v, true);
  return out;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Group, container and the QEMU open flow                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

/** `VFIO_GROUP_GET_STATUS`: the group's flags (`VFIO_GROUP_FLAGS_VIABLE` 1, `VFIO_GROUP_FLAGS_CONTAINER_SET` 2). */
export function groupStatus(p: VfioUserProcess, groupFd: number): number {
  const st = vfioGroupStatus.encode({ argsz: vfioGroupStatus.size });
  p.ioctl(groupFd, VFIO_GROUP_GET_STATUS, st);
  return vfioGroupStatus.decode(st).flags;
}

/** The same call as {@link groupStatus}, under the name the sample drivers use. */
export const groupStatusFlags: (p: VfioUserProcess, groupFd: number) => number = groupStatus;

/** Options of {@link openVfioDevice}. */
export interface OpenVfioDeviceOptions {
  /** The group number (the N of /dev/vfio/N) or its node path. */
  readonly group: number | string;
  /** The device name (a PCI BDF). */
  readonly device: string;
  /** The `VFIO_SET_IOMMU` type (e.g. `VFIO_TYPE1v2_IOMMU`). */
  readonly iommuType: number;
  /** An already open container fd to join; by default /dev/vfio/vfio is opened and SET_IOMMU done. */
  readonly container?: number;
}

/** The fds of an opened device. */
export interface OpenedVfioDevice {
  /** The container fd (the given one, or the one opened). */
  readonly container: number;
  /** The group fd. */
  readonly group: number;
  /** The device fd from `VFIO_GROUP_GET_DEVICE_FD`. */
  readonly device: number;
}

/**
 * The QEMU flow: open the container (unless given), open the group, `VFIO_GROUP_SET_CONTAINER`, `VFIO_SET_IOMMU`
 * (for a new container only: a container joined later already has its IOMMU), `VFIO_GROUP_GET_DEVICE_FD`.
 *
 * Throws the first failing call's error after closing, newest first, every fd it opened: closing the group undoes
 * SET_CONTAINER (and the last group out of a container releases its IOMMU, inventory §2.8), so the process is left
 * as it was. A given container is never closed.
 */
export function openVfioDevice(p: VfioUserProcess, options: OpenVfioDeviceOptions): OpenedVfioDevice {
  const opened: number[] = [];
  try {
    const container = options.container ?? p.open('/dev/vfio/vfio');
    if (options.container === undefined) opened.push(container);
    const path = typeof options.group === 'number' ? `/dev/vfio/${options.group}` : options.group;
    const group = p.open(path);
    opened.push(group);
    p.ioctl(group, VFIO_GROUP_SET_CONTAINER, intArg(container));
    if (options.container === undefined) p.ioctl(container, VFIO_SET_IOMMU, options.iommuType);
    const device = p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, cString(options.device));
    return { container, group, device };
  } catch (e) {
    for (const fd of opened.reverse()) {
      try {
        p.close(fd);
      } catch {
        // The first failure is the one worth reporting; a close that fails too changes nothing about it.
      }
    }
    throw e;
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* INFO ioctls                                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

/** `VFIO_DEVICE_GET_INFO`, decoded. */
export interface VfioDeviceInfoView {
  /** `VFIO_DEVICE_FLAGS_*` (PCI, RESET, CAPS, ...). */
  readonly flags: number;
  /** Number of region indexes (`num_regions`). */
  readonly numRegions: number;
  /** Number of IRQ indexes (`num_irqs`). */
  readonly numIrqs: number;
}

/** One capability header of an INFO chain. */
export interface VfioCapView {
  /** Capability id (per ioctl). */
  readonly id: number;
  /** Layout version. */
  readonly version: number;
}

/** `VFIO_DEVICE_GET_REGION_INFO`, decoded. */
export interface VfioRegionInfoView {
  /** The region index asked for. */
  readonly index: number;
  /** `VFIO_REGION_INFO_FLAG_*` (READ, WRITE, MMAP, CAPS). */
  readonly flags: number;
  /** Region size in bytes (0: not implemented). */
  readonly size: bigint;
  /** The fd offset of the region for pread/pwrite/mmap. */
  readonly offset: bigint;
  /** Every capability of the chain, in order. */
  readonly caps: readonly VfioCapView[];
  /** The mmap-able areas (the SPARSE_MMAP capability), when the region has one: only these may be mapped. */
  readonly sparseMmap?: readonly SparseMmapArea[];
  /** The region's type and subtype (the TYPE capability), for device-specific regions past the fixed indexes. */
  readonly type?: { readonly type: number; readonly subtype: number };
}

/** `VFIO_DEVICE_GET_IRQ_INFO`, decoded. */
export interface VfioIrqInfoView {
  /** The IRQ index asked for. */
  readonly index: number;
  /** `VFIO_IRQ_INFO_*` (EVENTFD, MASKABLE, AUTOMASKED, NORESIZE). */
  readonly flags: number;
  /** Number of vectors (0: the index is not supported by the device). */
  readonly count: number;
}

/** `VFIO_IOMMU_GET_INFO` on a type1 container, decoded. */
export interface Type1InfoView {
  /** `VFIO_IOMMU_INFO_*` (PGSIZES, CAPS). */
  readonly flags: number;
  /** Supported IOMMU page sizes, one bit per size. */
  readonly pgsizes: bigint;
  /** Usable IOVA ranges (the IOVA_RANGE capability); empty when the backend reports none. */
  readonly iovaRanges: readonly IovaRange[];
  /** Every capability of the chain, in order. */
  readonly caps: readonly VfioCapView[];
  /** How many more DMA mappings the container accepts (the DMA_AVAIL capability), when reported. */
  readonly dmaAvail?: number;
}

/** The first u32 of an INFO struct: argsz. */
function argszOf(buf: Uint8Array): number {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0, true);
}

/** Far more than any Linux INFO chain: an answer asking for more is malformed, not something to allocate. */
const MAX_INFO_BYTES = 1 << 20;
/** A chain can grow between two calls (a region added); QEMU asks again each time, this many times at most. */
const MAX_INFO_TRIES = 4;

/**
 * An INFO ioctl whose struct may be followed by a capability chain: ask with the fixed size, and when the kernel
 * answers with a larger `argsz` (§1.0: the call succeeds, `cap_offset` stays 0 and argsz says the size needed),
 * ask again with a buffer that large — the retry loop of QEMU's `vfio_get_region_info`.
 */
function infoWithChain(p: VfioUserProcess, fd: number, request: number, first: Uint8Array): Uint8Array {
  let buf = first;
  for (let tries = 1; ; tries++) {
    p.ioctl(fd, request, buf);
    const need = argszOf(buf);
    if (need <= buf.length || tries === MAX_INFO_TRIES) return buf;
    if (need > MAX_INFO_BYTES) throw new SysError('EINVAL', `INFO answer asks for ${need} bytes`);
    const again = new Uint8Array(need);
    again.set(buf.subarray(0, first.length));
    new DataView(again.buffer).setUint32(0, need, true);
    buf = again;
  }
}

/** Parses the chain of an INFO answer when the CAPS flag is set and the chain was written (cap_offset != 0). */
function chainOf(
  buf: Uint8Array,
  info: { readonly argsz: number; readonly flags: number; readonly cap_offset: number },
  capsFlag: number,
  fixedSize: number,
  minSizes: Readonly<Record<number, number>>,
): CapEntry[] {
  if ((info.flags & capsFlag) === 0 || info.cap_offset === 0) return [];
  return parseCapChain(buf, info.cap_offset, { minOffset: fixedSize, limit: Math.min(info.argsz, buf.length), minSizes });
}

const capViews = (chain: readonly CapEntry[]): VfioCapView[] => chain.map((c) => ({ id: c.id, version: c.version }));

/** `VFIO_DEVICE_GET_INFO` with the fixed struct (its capability chain, if any, is not fetched). */
export function deviceInfo(p: VfioUserProcess, deviceFd: number): VfioDeviceInfoView {
  const buf = vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size });
  p.ioctl(deviceFd, VFIO_DEVICE_GET_INFO, buf);
  const info = vfioDeviceInfo.decode(buf);
  return { flags: info.flags, numRegions: info.num_regions, numIrqs: info.num_irqs };
}

/**
 * `VFIO_DEVICE_GET_REGION_INFO` for one index, with its capability chain (fetched with a second call when it does
 * not fit the fixed struct). SPARSE_MMAP and TYPE are decoded; a malformed chain is `EINVAL`.
 */
export function regionInfo(p: VfioUserProcess, deviceFd: number, index: number): VfioRegionInfoView {
  const buf = infoWithChain(p, deviceFd, VFIO_DEVICE_GET_REGION_INFO, vfioRegionInfo.encode({ argsz: vfioRegionInfo.size, index }));
  const info = vfioRegionInfo.decode(buf);
  const chain = chainOf(buf, info, VFIO_REGION_INFO_FLAG_CAPS, vfioRegionInfo.size, REGION_INFO_CAP_SIZES);
  const sparse = findCap(chain, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
  const type = findCap(chain, VFIO_REGION_INFO_CAP_TYPE);
  return {
    index,
    flags: info.flags,
    size: info.size,
    offset: info.offset,
    caps: capViews(chain),
    ...(sparse ? { sparseMmap: decodeSparseMmapCap(sparse).areas } : {}),
    ...(type ? { type: decodeRegionTypeCap(type) } : {}),
  };
}

/** `VFIO_DEVICE_GET_IRQ_INFO` for one index. */
export function irqInfo(p: VfioUserProcess, deviceFd: number, index: number): VfioIrqInfoView {
  const buf = vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, index });
  p.ioctl(deviceFd, VFIO_DEVICE_GET_IRQ_INFO, buf);
  const info = vfioIrqInfo.decode(buf);
  return { index, flags: info.flags, count: info.count };
}

/**
 * `VFIO_IOMMU_GET_INFO` on a type1 container (after SET_IOMMU), with its capability chain: the IOVA ranges
 * (IOVA_RANGE) and the DMA mappings left (DMA_AVAIL) are decoded (inventory §1.7).
 */
export function type1Info(p: VfioUserProcess, containerFd: number): Type1InfoView {
  const buf = infoWithChain(p, containerFd, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: vfioIommuType1Info.size }));
  const info = vfioIommuType1Info.decode(buf);
  const chain = chainOf(buf, info, VFIO_IOMMU_INFO_CAPS, vfioIommuType1Info.size, TYPE1_INFO_CAP_SIZES);
  const range = findCap(chain, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
  const avail = findCap(chain, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
  return {
    flags: info.flags,
    pgsizes: info.iova_pgsizes,
    iovaRanges: range ? decodeIovaRangeCap(range).ranges : [],
    caps: capViews(chain),
    ...(avail ? { dmaAvail: decodeDmaAvailCap(avail).avail } : {}),
  };
}

/* ------------------------------------------------------------------------------------------------------------ */
/* DMA mappings (type1)                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

/** One `VFIO_IOMMU_MAP_DMA` request. */
export interface MapDmaRequest {
  /** Start of the process memory to map (its own virtual address). */
  readonly vaddr: bigint;
  /** Device address it appears at. */
  readonly iova: bigint;
  /** Bytes to map. */
  readonly size: bigint;
  /** `VFIO_DMA_MAP_FLAG_*`; default READ | WRITE. */
  readonly flags?: number;
}

/** `VFIO_IOMMU_MAP_DMA` on a type1 container: pins `size` bytes at `vaddr` and maps them at `iova`. */
export function mapDma(p: VfioUserProcess, containerFd: number, request: MapDmaRequest): void {
  const map = vfioIommuType1DmaMap.encode({
    argsz: vfioIommuType1DmaMap.size,
    flags: request.flags ?? VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    vaddr: request.vaddr,
    iova: request.iova,
    size: request.size,
  });
  p.ioctl(containerFd, VFIO_IOMMU_MAP_DMA, map);
}

/** One `VFIO_IOMMU_UNMAP_DMA` request. */
export interface UnmapDmaRequest {
  /** First IOVA to unmap (0 with `VFIO_DMA_UNMAP_FLAG_ALL`). */
  readonly iova: bigint;
  /** Bytes to unmap (0 with `VFIO_DMA_UNMAP_FLAG_ALL`). */
  readonly size: bigint;
  /** `VFIO_DMA_UNMAP_FLAG_*`; default 0. */
  readonly flags?: number;
}

/**
 * `VFIO_IOMMU_UNMAP_DMA` on a type1 container. Returns the bytes unmapped, which the kernel writes back into the
 * struct's `size` (it can differ from the request: type1v2 unmaps whole mappings only, `UNMAP_FLAG_ALL` everything).
 */
export function unmapDma(p: VfioUserProcess, containerFd: number, request: UnmapDmaRequest): bigint {
  const unmap = vfioIommuType1DmaUnmap.encode({
    argsz: vfioIommuType1DmaUnmap.size,
    flags: request.flags ?? 0,
    iova: request.iova,
    size: request.size,
  });
  p.ioctl(containerFd, VFIO_IOMMU_UNMAP_DMA, unmap);
  return vfioIommuType1DmaUnmap.decode(unmap).size;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Interrupts                                                                                                    */
/* ------------------------------------------------------------------------------------------------------------ */

/** A `VFIO_DEVICE_SET_IRQS` header with no data (DATA_NONE). */
function irqSetNone(action: number, index: number, start: number, count: number): Uint8Array {
  return vfioIrqSet.encode({ argsz: vfioIrqSet.size, flags: VFIO_IRQ_SET_DATA_NONE | action, index, start, count });
}

/**
 * `VFIO_DEVICE_SET_IRQS`, ACTION_TRIGGER | DATA_EVENTFD: binds `eventfds` to vectors `start..` of `index` (an fd of
 * -1 unbinds that vector, inventory §1.4.2). Enabling MSI/MSI-X this way sizes the vector set.
 */
export function setIrqEventfds(p: VfioUserProcess, deviceFd: number, index: number, start: number, eventfds: readonly number[]): void {
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

/** `VFIO_DEVICE_SET_IRQS`, ACTION_TRIGGER | DATA_NONE with count 0: disables the whole index (inventory §1.4.2). */
export function disableIrqIndex(p: VfioUserProcess, deviceFd: number, index: number): void {
  p.ioctl(deviceFd, VFIO_DEVICE_SET_IRQS, irqSetNone(VFIO_IRQ_SET_ACTION_TRIGGER, index, 0, 0));
}

/**
 * `VFIO_DEVICE_SET_IRQS`, ACTION_UNMASK | DATA_NONE: unmasks vectors `start..start+count-1` of `index`. For INTx
 * this is the end of interrupt of an automasked line (inventory §3.4): vfio-pci masked it when it signalled.
 */
export function unmaskIrq(p: VfioUserProcess, deviceFd: number, index: number, start = 0, count = 1): void {
  p.ioctl(deviceFd, VFIO_DEVICE_SET_IRQS, irqSetNone(VFIO_IRQ_SET_ACTION_UNMASK, index, start, count));
}

/** `VFIO_DEVICE_SET_IRQS`, ACTION_MASK | DATA_NONE: masks vectors `start..start+count-1` of `index` (INTx only on vfio-pci). */
export function maskIrq(p: VfioUserProcess, deviceFd: number, index: number, start = 0, count = 1): void {
  p.ioctl(deviceFd, VFIO_DEVICE_SET_IRQS, irqSetNone(VFIO_IRQ_SET_ACTION_MASK, index, start, count));
}
