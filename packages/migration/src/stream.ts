/**
 * The framing of a vfio-ts migration data stream. Linux leaves the byte format to each driver (§5: "the stream
 * written must come from one saving session of a compatible device"; mlx5 frames its stream with headers); this
 * format lets the resuming side detect a truncated, corrupted, reordered or foreign stream before the device is
 * loaded from it.
 *
 * A stream is a sequence of records. Each record is a 24-byte little-endian header followed by its payload:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | magic `0x534d4656` ("VFMS") |
 * | 4 | 2 | version (1) |
 * | 6 | 2 | kind: 1 START, 2 INITIAL, 3 DIRTY, 4 FINAL, 5 END |
 * | 8 | 4 | sequence number, 0 for START, +1 per record |
 * | 12 | 4 | payload length |
 * | 16 | 4 | reserved, 0 |
 * | 20 | 4 | CRC-32 (IEEE) over header bytes 0..19 followed by the payload |
 *
 * START carries the device's compatibility tag (UTF-8); END has no payload and closes the stream. A complete
 * stream is START, any number of INITIAL/DIRTY/FINAL records, END — nothing after END.
 */
import { crc32 } from 'node:zlib';
import { SysError } from '@vfio-ts/uapi';

/** "VFMS" read as a little-endian u32. */
export const MIG_STREAM_MAGIC = 0x534d4656;
/** The only format version this package writes and reads. */
export const MIG_STREAM_VERSION = 1;
/** Size of a record header in bytes. */
export const MIG_RECORD_HEADER_SIZE = 24;
/** Largest payload one record may carry (bounds what a resuming side buffers for one record). */
export const MIG_RECORD_MAX_PAYLOAD = 1 << 24;

/** Record kinds. */
export const MigRecordKind = {
  START: 1,
  INITIAL: 2,
  DIRTY: 3,
  FINAL: 4,
  END: 5,
} as const;
/** A record kind value. */
export type MigRecordKind = (typeof MigRecordKind)[keyof typeof MigRecordKind];

/** A decoded record. */
export interface MigRecord {
  readonly kind: MigRecordKind;
  readonly seq: number;
  readonly payload: Uint8Array;
}

function isKind(k: number): k is MigRecordKind {
  return k >= MigRecordKind.START && k <= MigRecordKind.END;
}

/**
 * Encodes one record (header + payload) as a new buffer. The payload may be given as several parts (e.g. a
 * header and the pages it describes): they are copied straight into the record, once.
 */
export function encodeRecord(
  kind: MigRecordKind,
  seq: number,
  payload: Uint8Array | readonly Uint8Array[] = new Uint8Array(0),
): Uint8Array {
  const parts = payload instanceof Uint8Array ? [payload] : payload;
  let length = 0;
  for (const p of parts) length += p.length;
  if (length > MIG_RECORD_MAX_PAYLOAD) throw new RangeError(`record payload of ${length} bytes is too large`);
  const out = new Uint8Array(MIG_RECORD_HEADER_SIZE + length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MIG_STREAM_MAGIC, true);
  dv.setUint16(4, MIG_STREAM_VERSION, true);
  dv.setUint16(6, kind, true);
  dv.setUint32(8, seq >>> 0, true);
  dv.setUint32(12, length, true);
  dv.setUint32(16, 0, true);
  let at = MIG_RECORD_HEADER_SIZE;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  dv.setUint32(20, recordCrc(out.subarray(0, 20), out.subarray(MIG_RECORD_HEADER_SIZE)), true);
  return out;
}

function recordCrc(head: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(head)) >>> 0;
}

function invalid(message: string): SysError {
  return new SysError('EINVAL', `migration stream: ${message}`);
}

/**
 * Parses a whole stream held in `chunks` (in write order, any segmentation) and checks it: magic, version,
 * kinds, consecutive sequence numbers, CRCs, START first with the expected compatibility tag, END last, no
 * trailing bytes. Throws EINVAL on the first violation (a truncated stream lacks its END). Returns the data
 * records (INITIAL, DIRTY, FINAL) in order.
 */
export function decodeStream(chunks: readonly Uint8Array[], expectedTag: string): MigRecord[] {
  const reader = new ChunkReader(chunks);
  const records: MigRecord[] = [];
  const header = new Uint8Array(MIG_RECORD_HEADER_SIZE);
  const hv = new DataView(header.buffer);
  let seq = 0;
  let ended = false;
  while (reader.remaining > 0) {
    if (ended) throw invalid(`${reader.remaining} bytes after END`);
    if (reader.remaining < MIG_RECORD_HEADER_SIZE) throw invalid(`truncated header of record ${seq}`);
    reader.read(header);
    if (hv.getUint32(0, true) !== MIG_STREAM_MAGIC) throw invalid(`bad magic in record ${seq}`);
    if (hv.getUint16(4, true) !== MIG_STREAM_VERSION) throw invalid(`unsupported version ${hv.getUint16(4, true)}`);
    const kind = hv.getUint16(6, true);
    const rseq = hv.getUint32(8, true);
    const length = hv.getUint32(12, true);
    if (!isKind(kind)) throw invalid(`unknown record kind ${kind}`);
    if (rseq !== seq) throw invalid(`record ${rseq} where ${seq} was expected`);
    if (hv.getUint32(16, true) !== 0) throw invalid(`reserved bits set in record ${seq}`);
    if (length > MIG_RECORD_MAX_PAYLOAD) throw invalid(`record ${seq} claims ${length} bytes`);
    if (reader.remaining < length) throw invalid(`truncated payload of record ${seq}`);
    const payload = new Uint8Array(length);
    reader.read(payload);
    if (recordCrc(header.subarray(0, 20), payload) !== hv.getUint32(20, true)) throw invalid(`CRC mismatch in record ${seq}`);
    if (seq === 0) {
      if (kind !== MigRecordKind.START) throw invalid('stream does not begin with START');
      const tag = new TextDecoder('utf-8', { fatal: false }).decode(payload);
      if (tag !== expectedTag) throw invalid(`stream from device "${tag}" cannot be loaded into "${expectedTag}"`);
    } else if (kind === MigRecordKind.START) {
      throw invalid(`second START at record ${seq}`);
    } else if (kind === MigRecordKind.END) {
      if (length !== 0) throw invalid('END record with a payload');
      ended = true;
    } else {
      records.push({ kind, seq, payload });
    }
    seq++;
  }
  if (seq === 0) throw invalid('empty stream');
  if (!ended) throw invalid('stream ends without END (truncated)');
  return records;
}

/** Sequential reads across a list of chunks without concatenating them. */
class ChunkReader {
  private index = 0;
  private offset = 0;
  remaining: number;
  constructor(private readonly chunks: readonly Uint8Array[]) {
    this.remaining = chunks.reduce((n, c) => n + c.length, 0);
  }
  read(into: Uint8Array): void {
    let filled = 0;
    while (filled < into.length) {
      const chunk = this.chunks[this.index]!;
      const n = Math.min(chunk.length - this.offset, into.length - filled);
      into.set(chunk.subarray(this.offset, this.offset + n), filled);
      filled += n;
      this.offset += n;
      if (this.offset === chunk.length) {
        this.index++;
        this.offset = 0;
      }
    }
    this.remaining -= into.length;
  }
}
