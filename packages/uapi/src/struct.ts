/**
 * Struct codecs: one declaration per Linux struct gives its size, its minsz (`offsetofend` of the last mandatory
 * field), its field offsets (LP64) and a typed decode/encode. This module is the only place byte offsets live.
 */
import { SysError } from './errno.js';

/** Field types: unsigned/signed integers little-endian, `bytes` a fixed-size byte array (size given). */
export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 's64' | 'bytes';

/** `[offset, type]` or `[offset, 'bytes', size]`. */
export type FieldSpec = readonly [offset: number, type: FieldType, size?: number];

/** The decoded JavaScript type of a field type: 64-bit integers are bigints, byte arrays Uint8Arrays. */
export type FieldValue<F extends FieldType> = F extends 'u64' | 's64' ? bigint : F extends 'bytes' ? Uint8Array : number;

/** The decoded object of a struct spec. */
export type StructValue<S extends Record<string, FieldSpec>> = { -readonly [K in keyof S]: FieldValue<S[K][1]> };

/** The decoded value type of a codec: `StructOf<typeof vfioIommuType1DmaMap>`. */
export type StructOf<C> = C extends StructCodec<infer T> ? T : never;

/** One field as laid out in memory. */
export interface FieldLayout {
  /** The Linux member name. */
  readonly name: string;
  /** `offsetof()` on LP64. */
  readonly offset: number;
  /** Bytes the field occupies. */
  readonly size: number;
  /** How the bytes are read. */
  readonly type: FieldType;
}

/** A struct's layout and codec. */
export interface StructCodec<T> {
  /** The Linux name, e.g. `vfio_iommu_type1_dma_map`. */
  readonly name: string;
  /** `sizeof` on LP64. */
  readonly size: number;
  /** The smallest argsz the kernel accepts (offsetofend of the last mandatory field). */
  readonly minsz: number;
  /** Fields in offset order. */
  readonly fields: readonly FieldLayout[];
  /** `offsetof(struct, field)`; throws for an unknown field name. */
  offsetOf(field: keyof T & string): number;
  /** `offsetofend(struct, field)`: the offset just past the field. */
  offsetOfEnd(field: keyof T & string): number;
  /** Reads the struct at `offset`; bytes past the end of `bytes` read as zero. */
  decode(bytes: Uint8Array, offset?: number): T;
  /** A new buffer of `size` bytes holding `value` (missing fields are zero). */
  encode(value?: Partial<T>): Uint8Array;
  /**
   * Writes the given fields into `bytes` at `offset`. Only bytes below `limit` (relative to `offset`, default
   * `size`) are written, the way the kernel copies back `min(argsz, sizeof)`; a field straddling the limit is
   * written partially, as a byte-wise copy would.
   */
  write(bytes: Uint8Array, value: Partial<T>, offset?: number, limit?: number): void;
}

const SIZES: Record<Exclude<FieldType, 'bytes'>, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };

function fieldSize(spec: FieldSpec): number {
  if (spec[1] === 'bytes') {
    if (spec[2] === undefined) throw new Error('bytes field needs a size');
    return spec[2];
  }
  return SIZES[spec[1]];
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readField(bytes: Uint8Array, dv: DataView, at: number, f: FieldLayout): number | bigint | Uint8Array {
  if (at + f.size > bytes.length) {
    // Partially or wholly beyond the buffer: read what is there, zero-fill the rest.
    const tmp = new Uint8Array(f.size);
    if (at < bytes.length) tmp.set(bytes.subarray(at, bytes.length));
    return readField(tmp, view(tmp), 0, f);
  }
  switch (f.type) {
    case 'u8': return dv.getUint8(at);
    case 'u16': return dv.getUint16(at, true);
    case 'u32': return dv.getUint32(at, true);
    case 's32': return dv.getInt32(at, true);
    case 'u64': return dv.getBigUint64(at, true);
    case 's64': return dv.getBigInt64(at, true);
    case 'bytes': return bytes.slice(at, at + f.size);
  }
}

/** 64-bit fields accept a bigint or (for convenience) a safe-integer number. */
function toBigInt(v: unknown): bigint {
  return typeof v === 'bigint' ? v : BigInt(Number(v));
}

/**
 * Writes the first `n` bytes of field `f` holding `v` at `at`. The common case (the whole field fits) stores
 * straight through one DataView; a field cut by argsz or the buffer's end goes through a scratch copy.
 */
function writeField(bytes: Uint8Array, dv: DataView, at: number, f: FieldLayout, v: unknown, n: number): void {
  if (n < f.size) {
    const tmp = new Uint8Array(f.size);
    writeField(tmp, view(tmp), 0, f, v, f.size);
    bytes.set(tmp.subarray(0, n), at);
    return;
  }
  switch (f.type) {
    case 'u8': dv.setUint8(at, Number(v) & 0xff); break;
    case 'u16': dv.setUint16(at, Number(v) & 0xffff, true); break;
    case 'u32': dv.setUint32(at, Number(v) >>> 0, true); break;
    case 's32': dv.setInt32(at, Number(v) | 0, true); break;
    case 'u64': dv.setBigUint64(at, BigInt.asUintN(64, toBigInt(v)), true); break;
    case 's64': dv.setBigInt64(at, BigInt.asIntN(64, toBigInt(v)), true); break;
    case 'bytes': {
      const src = (v as Uint8Array).subarray(0, f.size);
      bytes.set(src, at);
      // A shorter source leaves the rest of the field zero, as a fresh field would be.
      if (src.length < f.size) bytes.fill(0, at + src.length, at + f.size);
      break;
    }
  }
}

/**
 * Declares a struct. `spec` maps field names to `[offset, type]`; `minsz` defaults to `size`.
 *
 * @example
 * const dmaMap = defineStruct('vfio_iommu_type1_dma_map', 32, 32, {
 *   argsz: [0, 'u32'], flags: [4, 'u32'], vaddr: [8, 'u64'], iova: [16, 'u64'], size: [24, 'u64'],
 * });
 */
export function defineStruct<const S extends Record<string, FieldSpec>>(
  name: string,
  size: number,
  minsz: number,
  spec: S,
): StructCodec<StructValue<S>> {
  const fields: FieldLayout[] = Object.entries(spec)
    .map(([fname, s]) => ({ name: fname, offset: s[0], size: fieldSize(s), type: s[1] }))
    .sort((a, b) => a.offset - b.offset);
  let prevEnd = 0;
  for (const f of fields) {
    if (f.offset + f.size > size) throw new Error(`${name}.${f.name} ends past sizeof (${size})`);
    // Unions are declared with one member only, so two fields sharing bytes is a typo in a layout.
    if (f.offset < prevEnd) throw new Error(`${name}.${f.name} overlaps the previous field`);
    prevEnd = f.offset + f.size;
  }
  if (minsz > size || minsz < 0) throw new Error(`${name}: minsz ${minsz} outside 0..${size}`);
  const byName = new Map(fields.map((f) => [f.name, f]));
  const lookup = (field: string): FieldLayout => {
    const f = byName.get(field);
    if (!f) throw new Error(`${name} has no field ${field}`);
    return f;
  };
  type T = StructValue<S>;
  return {
    name,
    size,
    minsz,
    fields,
    offsetOf: (field) => lookup(field).offset,
    offsetOfEnd: (field) => {
      const f = lookup(field);
      return f.offset + f.size;
    },
    decode(bytes: Uint8Array, offset = 0): T {
      const out: Record<string, unknown> = {};
      const dv = view(bytes);
      for (const f of fields) out[f.name] = readField(bytes, dv, offset + f.offset, f);
      return out as T;
    },
    encode(value: Partial<T> = {}): Uint8Array {
      const buf = new Uint8Array(size);
      this.write(buf, value, 0);
      return buf;
    },
    write(bytes: Uint8Array, value: Partial<T>, offset = 0, limit = size): void {
      const end = Math.min(limit, size);
      const dv = view(bytes);
      for (const f of fields) {
        const v = (value as Record<string, unknown>)[f.name];
        if (v === undefined) continue;
        if (f.offset >= end) continue;
        const n = Math.min(f.size, end - f.offset, bytes.length - (offset + f.offset));
        if (n > 0) writeField(bytes, dv, offset + f.offset, f, v, n);
      }
    },
  };
}

/**
 * Reads `argsz` (the first u32) from a user buffer and applies the kernel's rules: a buffer shorter than minsz is
 * `EFAULT` (the copy of the fixed part faults), `argsz < minsz` is `EINVAL`. Returns argsz.
 */
export function checkArgsz(bytes: Uint8Array, minsz: number, what = 'argsz'): number {
  // The kernel copy_from_user()s minsz bytes before it looks at argsz: user memory shorter than that faults.
  if (bytes.length < 4 || bytes.length < minsz) throw new SysError('EFAULT', `${what}: buffer of ${bytes.length} bytes is shorter than minsz ${minsz}`);
  const argsz = view(bytes).getUint32(0, true);
  if (argsz < minsz) throw new SysError('EINVAL', `${what} ${argsz} is smaller than minsz ${minsz}`);
  return argsz;
}
