/**
 * Capability chains of the VFIO INFO ioctls (inventory §1.0, §1.4.1, §1.7): a builder that lays a chain out after
 * the fixed struct the way the kernel does, the whole "write info + caps into the user buffer" step with Linux's
 * too-small-argsz rule, a defensive parser, and a decoder/encoder for every known capability payload.
 */
import { SysError } from './errno.js';
import { copyOut } from './args.js';
import type { StructCodec } from './struct.js';
import {
  VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD,
  VFIO_REGION_INFO_CAP_NVLINK2_SSATGT,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
} from './vfio.js';

/** Size of `struct vfio_info_cap_header`. */
export const CAP_HEADER_SIZE = 8;
/** The kernel rounds every capability up to 8 bytes so the next header is aligned (`vfio_info_cap_add`). */
export const CAP_ALIGN = 8;

function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function align8(n: number): number {
  return (n + CAP_ALIGN - 1) & ~(CAP_ALIGN - 1);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Building                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * Collects capabilities and lays them out as a chain. Each capability takes `8 + payload` bytes rounded up to 8;
 * `next` fields are offsets from the start of the INFO buffer, as in Linux after `vfio_info_cap_shift`.
 */
export class CapChainBuilder {
  readonly #caps: { id: number; version: number; payload: Uint8Array }[] = [];

  /** Appends a capability; `payload` is what follows the 8-byte header. Returns `this`. */
  add(id: number, version: number, payload: Uint8Array = new Uint8Array(0)): this {
    if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new RangeError(`capability id ${id} is not a u16`);
    if (!Number.isInteger(version) || version < 0 || version > 0xffff) throw new RangeError(`capability version ${version} is not a u16`);
    this.#caps.push({ id, version, payload: payload.slice() });
    return this;
  }

  /** How many capabilities were added. */
  get count(): number {
    return this.#caps.length;
  }

  /** Bytes the chain occupies (the kernel's `caps.size`). */
  get size(): number {
    let n = 0;
    for (const c of this.#caps) n += align8(CAP_HEADER_SIZE + c.payload.length);
    return n;
  }

  /** The chain bytes for placement at `base` in the INFO buffer (the last `next` is 0). */
  build(base: number): Uint8Array {
    const out = new Uint8Array(this.size);
    const view = dv(out);
    let at = 0;
    this.#caps.forEach((c, i) => {
      const len = align8(CAP_HEADER_SIZE + c.payload.length);
      view.setUint16(at, c.id, true);
      view.setUint16(at + 2, c.version, true);
      view.setUint32(at + 4, i === this.#caps.length - 1 ? 0 : base + at + len, true);
      out.set(c.payload, at + CAP_HEADER_SIZE);
      at += len;
    });
    return out;
  }
}

/** The fields an INFO struct with a capability chain has (`vfio_device_info`, `vfio_region_info`, type1 info). */
export interface InfoWithCaps {
  /** The caller's argsz on input; rewritten to the size needed when the chain does not fit. */
  argsz: number;
  /** Gets the struct's CAPS bit when there are capabilities. */
  flags: number;
  /** `sizeof(info)` when the chain was written, else 0. */
  cap_offset: number;
}

/**
 * Writes an INFO ioctl's answer into the user buffer the way Linux does (inventory §1.0): with capabilities, the
 * `capsFlag` bit is set; if `value.argsz` (the caller's argsz) has room for struct + chain, the chain goes right
 * after the fixed struct and `cap_offset = codec.size`; otherwise the call still succeeds, `cap_offset` stays 0
 * and `argsz` is rewritten to the size needed. Only `min(argsz, codec.size)` bytes of the struct are written.
 * Throws `EFAULT` (writing nothing) when the buffer cannot hold what would be written. Returns the struct written.
 */
export function writeInfoWithCaps<T extends InfoWithCaps>(
  bytes: Uint8Array,
  codec: StructCodec<T>,
  value: T,
  capsFlag: number,
  caps: CapChainBuilder,
): T {
  const argsz = value.argsz;
  const out: T = { ...value };
  let chain: Uint8Array | undefined;
  if (caps.count > 0) {
    out.flags = (out.flags | capsFlag) >>> 0;
    const needed = codec.size + caps.size;
    if (argsz < needed) {
      out.argsz = needed;
      out.cap_offset = 0;
    } else {
      chain = caps.build(codec.size);
      out.cap_offset = codec.size;
    }
  }
  const n = Math.min(argsz, codec.size);
  const end = chain ? codec.size + chain.length : n;
  if (end > bytes.length) throw new SysError('EFAULT', `${codec.name}: ${end} bytes do not fit a ${bytes.length}-byte buffer`);
  if (chain) bytes.set(chain, codec.size);
  copyOut(bytes, codec, out, argsz);
  return out;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Parsing                                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

/** One capability found in a chain. */
export interface CapEntry {
  /** Capability id (a per-ioctl namespace). */
  readonly id: number;
  /** Per-id layout version. */
  readonly version: number;
  /** Offset of the header in the INFO buffer. */
  readonly offset: number;
  /** The header's `next` (0 for the last). */
  readonly next: number;
  /** The bytes from the header up to the next capability (or the end of the parsed area), header included. */
  readonly bytes: Uint8Array;
}

/** Options of {@link parseCapChain}. */
export interface ParseCapChainOptions {
  /** Lowest legal capability offset, normally `sizeof` the fixed INFO struct (default 8). */
  readonly minOffset?: number;
  /** Alignment every offset must have (default 8, as the kernel lays chains out; 1 disables the check). */
  readonly align?: number;
  /** Parse only the first `limit` bytes, e.g. the argsz the kernel filled (default: the whole buffer). */
  readonly limit?: number;
  /** Minimum size, header included, of known capability ids; a capability cut shorter than that is EINVAL. */
  readonly minSizes?: Readonly<Record<number, number>>;
}

/** Minimum sizes of the type1 INFO capabilities (§1.7). */
export const TYPE1_INFO_CAP_SIZES: Readonly<Record<number, number>> = Object.freeze({
  [VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE]: 16,
  [VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION]: 32,
  [VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL]: 12,
});
/** Minimum sizes of the region INFO capabilities (§1.4.1). */
export const REGION_INFO_CAP_SIZES: Readonly<Record<number, number>> = Object.freeze({
  [VFIO_REGION_INFO_CAP_SPARSE_MMAP]: 16,
  [VFIO_REGION_INFO_CAP_TYPE]: 16,
  [VFIO_REGION_INFO_CAP_MSIX_MAPPABLE]: 8,
  [VFIO_REGION_INFO_CAP_NVLINK2_SSATGT]: 16,
  [VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD]: 16,
});
/** Minimum sizes of the device INFO capabilities (§1.4.1). */
export const DEVICE_INFO_CAP_SIZES: Readonly<Record<number, number>> = Object.freeze({
  [VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP]: 16,
});

function bad(message: string): SysError {
  return new SysError('EINVAL', `capability chain: ${message}`);
}

/**
 * Walks the capability chain of an INFO buffer starting at `firstOffset` (the struct's `cap_offset`; 0 = none).
 *
 * Linux always appends capabilities in increasing order (`vfio_info_cap_add`), so every `next` must point past the
 * current capability: that one rule rejects loops and overlapping headers and bounds the walk to `limit / 8`
 * steps. Offsets below `minOffset`, misaligned, or with a header (or a known capability's fixed part) past `limit`
 * are rejected too. Every failure is a `SysError` with `EINVAL`; nothing else is thrown.
 */
export function parseCapChain(bytes: Uint8Array, firstOffset: number, options: ParseCapChainOptions = {}): CapEntry[] {
  const minOffset = options.minOffset ?? 8;
  const align = options.align ?? CAP_ALIGN;
  const limit = Math.min(options.limit ?? bytes.length, bytes.length);
  const view = dv(bytes);
  const found: { id: number; version: number; offset: number; next: number }[] = [];
  let floor = Math.max(minOffset, 1);
  let offset = firstOffset;
  while (offset !== 0) {
    if (!Number.isSafeInteger(offset) || offset < 0) throw bad(`offset ${offset} is not a valid u32`);
    if (offset < floor) {
      throw bad(found.length === 0 ? `offset ${offset} lies inside the fixed struct (< ${minOffset})` : `next ${offset} loops back or overlaps the previous capability`);
    }
    if (align > 1 && offset % align !== 0) throw bad(`offset ${offset} is not ${align}-byte aligned`);
    if (offset + CAP_HEADER_SIZE > limit) throw bad(`header at ${offset} runs past the end (${limit})`);
    const id = view.getUint16(offset, true);
    const version = view.getUint16(offset + 2, true);
    const next = view.getUint32(offset + 4, true);
    const min = Math.max(CAP_HEADER_SIZE, options.minSizes?.[id] ?? CAP_HEADER_SIZE);
    if (offset + min > limit) throw bad(`capability ${id} at ${offset} needs ${min} bytes, runs past ${limit}`);
    found.push({ id, version, offset, next });
    floor = offset + min;
    offset = next;
  }
  return found.map((c, i) => {
    const end = found[i + 1]?.offset ?? limit;
    return { ...c, bytes: bytes.subarray(c.offset, end) };
  });
}

/** The first capability with `id` in a parsed chain, or `undefined`. */
export function findCap(chain: readonly CapEntry[], id: number): CapEntry | undefined {
  return chain.find((c) => c.id === id);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Payload decoders and encoders                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

function expect(cap: CapEntry, id: number, min: number, what: string): DataView {
  if (cap.id !== id) throw bad(`${what}: capability id ${cap.id} is not ${id}`);
  if (cap.bytes.length < min) throw bad(`${what}: ${cap.bytes.length} bytes, needs ${min}`);
  return dv(cap.bytes);
}

function payload(size: number, fill: (view: DataView) => void): Uint8Array {
  const out = new Uint8Array(size);
  fill(dv(out));
  return out;
}

/** An inclusive IOVA range. */
export interface IovaRange {
  /** First IOVA. */
  readonly start: bigint;
  /** Inclusive. */
  readonly end: bigint;
}

/** Decodes type1 `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE` (`nr_iovas` ranges must fit the capability's bytes). */
export function decodeIovaRangeCap(cap: CapEntry): { readonly ranges: IovaRange[] } {
  const v = expect(cap, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 16, 'IOVA_RANGE');
  const nr = v.getUint32(8, true);
  if (16 + nr * 16 > cap.bytes.length) throw bad(`IOVA_RANGE: ${nr} ranges do not fit ${cap.bytes.length} bytes`);
  const ranges: IovaRange[] = [];
  for (let i = 0; i < nr; i++) ranges.push({ start: v.getBigUint64(16 + i * 16, true), end: v.getBigUint64(24 + i * 16, true) });
  return { ranges };
}

/** Payload (after the header) of an IOVA_RANGE capability. */
export function iovaRangeCapPayload(ranges: readonly IovaRange[]): Uint8Array {
  return payload(8 + ranges.length * 16, (v) => {
    v.setUint32(0, ranges.length, true);
    ranges.forEach((r, i) => {
      v.setBigUint64(8 + i * 16, BigInt.asUintN(64, r.start), true);
      v.setBigUint64(16 + i * 16, BigInt.asUintN(64, r.end), true);
    });
  });
}

/** The type1 MIGRATION capability. */
export interface MigrationCap {
  /** Reserved (0). */
  readonly flags: number;
  /** Page sizes the dirty bitmap may use (type1 reports only the smallest). */
  readonly pgsizeBitmap: bigint;
  /** Largest bitmap, in bytes, one GET_BITMAP/unmap may ask for. */
  readonly maxDirtyBitmapSize: bigint;
}

/** Decodes type1 `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`. */
export function decodeMigrationCap(cap: CapEntry): MigrationCap {
  const v = expect(cap, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 32, 'MIGRATION');
  return { flags: v.getUint32(8, true), pgsizeBitmap: v.getBigUint64(16, true), maxDirtyBitmapSize: v.getBigUint64(24, true) };
}

/** Payload of a type1 MIGRATION capability (LP64 layout: u32 flags, 4 bytes padding, two u64). */
export function migrationCapPayload(cap: MigrationCap): Uint8Array {
  return payload(24, (v) => {
    v.setUint32(0, cap.flags >>> 0, true);
    v.setBigUint64(8, BigInt.asUintN(64, cap.pgsizeBitmap), true);
    v.setBigUint64(16, BigInt.asUintN(64, cap.maxDirtyBitmapSize), true);
  });
}

/** Decodes type1 `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`. */
export function decodeDmaAvailCap(cap: CapEntry): { readonly avail: number } {
  const v = expect(cap, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 12, 'DMA_AVAIL');
  return { avail: v.getUint32(8, true) };
}

/** Payload of a type1 DMA_AVAIL capability. */
export function dmaAvailCapPayload(avail: number): Uint8Array {
  return payload(4, (v) => {
    v.setUint32(0, avail >>> 0, true);
  });
}

/** One mmap-able area of a region. */
export interface SparseMmapArea {
  /** Offset within the region. */
  readonly offset: bigint;
  /** Length in bytes. */
  readonly size: bigint;
}

/** Decodes region `VFIO_REGION_INFO_CAP_SPARSE_MMAP` (`nr_areas` areas must fit the capability's bytes). */
export function decodeSparseMmapCap(cap: CapEntry): { readonly areas: SparseMmapArea[] } {
  const v = expect(cap, VFIO_REGION_INFO_CAP_SPARSE_MMAP, 16, 'SPARSE_MMAP');
  const nr = v.getUint32(8, true);
  if (16 + nr * 16 > cap.bytes.length) throw bad(`SPARSE_MMAP: ${nr} areas do not fit ${cap.bytes.length} bytes`);
  const areas: SparseMmapArea[] = [];
  for (let i = 0; i < nr; i++) areas.push({ offset: v.getBigUint64(16 + i * 16, true), size: v.getBigUint64(24 + i * 16, true) });
  return { areas };
}

/** Payload of a SPARSE_MMAP capability. */
export function sparseMmapCapPayload(areas: readonly SparseMmapArea[]): Uint8Array {
  return payload(8 + areas.length * 16, (v) => {
    v.setUint32(0, areas.length, true);
    areas.forEach((a, i) => {
      v.setBigUint64(8 + i * 16, BigInt.asUintN(64, a.offset), true);
      v.setBigUint64(16 + i * 16, BigInt.asUintN(64, a.size), true);
    });
  });
}

/** Decodes region `VFIO_REGION_INFO_CAP_TYPE`. */
export function decodeRegionTypeCap(cap: CapEntry): { readonly type: number; readonly subtype: number } {
  const v = expect(cap, VFIO_REGION_INFO_CAP_TYPE, 16, 'TYPE');
  return { type: v.getUint32(8, true), subtype: v.getUint32(12, true) };
}

/** Payload of a region TYPE capability. */
export function regionTypeCapPayload(type: number, subtype: number): Uint8Array {
  return payload(8, (v) => {
    v.setUint32(0, type >>> 0, true);
    v.setUint32(4, subtype >>> 0, true);
  });
}

/** Decodes region `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE` (header only; its presence is the information). */
export function decodeMsixMappableCap(cap: CapEntry): { readonly version: number } {
  expect(cap, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, CAP_HEADER_SIZE, 'MSIX_MAPPABLE');
  return { version: cap.version };
}

/** Decodes device `VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP` (`flags` = VFIO_PCI_ATOMIC_COMP32/64/128). */
export function decodePciAtomicCompCap(cap: CapEntry): { readonly flags: number } {
  const v = expect(cap, VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP, 16, 'PCI_ATOMIC_COMP');
  return { flags: v.getUint32(8, true) };
}

/** Payload of a PCI_ATOMIC_COMP capability. */
export function pciAtomicCompCapPayload(flags: number): Uint8Array {
  return payload(8, (v) => {
    v.setUint32(0, flags >>> 0, true);
  });
}
