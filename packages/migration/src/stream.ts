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
 * An incremental stream checker: bytes go in as the user writes them (any segmentation); each complete record is
 * checked at once — magic, version, kind, consecutive sequence numbers, length, CRC, START first with the
 * expected compatibility tag, nothing after END — and its payload kept. The first violation is remembered and
 * thrown (EINVAL) by {@link StreamDecoder.finish}, which also requires the stream to be complete. Checking as the
 * bytes arrive keeps the final RESUMING → STOP step proportional to the last records, not to the whole stream.
 */
export class StreamDecoder {
  private readonly records: MigRecord[] = [];
  /** Bytes received and not yet consumed (the start of the next header or payload). */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private header: { kind: MigRecordKind; length: number; crc: number; bytes: Uint8Array } | undefined;
  private seq = 0;
  private ended = false;
  private error: SysError | undefined;

  /**
   * @param expectedTag the compatibility tag the START record must carry
   * @param onRecord called with each data record as soon as it validated (a throw rejects the stream: the
   *   error, EINVAL unless it is a SysError, is what {@link StreamDecoder.finish} throws)
   */
  constructor(
    private readonly expectedTag: string,
    private readonly onRecord?: (record: MigRecord) => void,
  ) {}

  /** Feeds bytes; the decoder keeps what it needs (a copy), never a reference to `bytes`. */
  push(bytes: Uint8Array): void {
    if (this.error || bytes.length === 0) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    try {
      this.drain();
    } catch (e) {
      this.error = e instanceof SysError ? e : invalid(String(e));
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    // Leftovers may be views of the caller's buffer: keep a copy of them (less than one record).
    if (this.pending.length > 0 && this.pending.at(-1) === bytes) this.pending[this.pending.length - 1] = bytes.slice();
  }

  /** The data records (INITIAL, DIRTY, FINAL) of a complete, valid stream; EINVAL otherwise. */
  finish(): MigRecord[] {
    if (this.error) throw this.error;
    if (this.header) throw invalid(`truncated payload of record ${this.seq}`);
    if (this.pendingBytes > 0) throw invalid(`truncated header of record ${this.seq}`);
    if (this.seq === 0) throw invalid('empty stream');
    if (!this.ended) throw invalid('stream ends without END (truncated)');
    return this.records;
  }

  /** Takes `n` pending bytes as one new array. */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.pending[0]!;
      const k = Math.min(head.length, n - filled);
      out.set(head.subarray(0, k), filled);
      filled += k;
      if (k === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(k);
    }
    this.pendingBytes -= n;
    return out;
  }

  private drain(): void {
    for (;;) {
      if (!this.header) {
        if (this.pendingBytes === 0) return;
        if (this.ended) throw invalid(`${this.pendingBytes} bytes after END`);
        if (this.pendingBytes < MIG_RECORD_HEADER_SIZE) return;
        const bytes = this.take(MIG_RECORD_HEADER_SIZE);
        const hv = new DataView(bytes.buffer);
        const seq = this.seq;
        if (hv.getUint32(0, true) !== MIG_STREAM_MAGIC) throw invalid(`bad magic in record ${seq}`);
        if (hv.getUint16(4, true) !== MIG_STREAM_VERSION) throw invalid(`unsupported version ${hv.getUint16(4, true)}`);
        const kind = hv.getUint16(6, true);
        const rseq = hv.getUint32(8, true);
        const length = hv.getUint32(12, true);
        if (!isKind(kind)) throw invalid(`unknown record kind ${kind}`);
        if (rseq !== seq) throw invalid(`record ${rseq} where ${seq} was expected`);
        if (hv.getUint32(16, true) !== 0) throw invalid(`reserved bits set in record ${seq}`);
        if (length > MIG_RECORD_MAX_PAYLOAD) throw invalid(`record ${seq} claims ${length} bytes`);
        this.header = { kind, length, crc: hv.getUint32(20, true), bytes };
      }
      const { kind, length, crc, bytes } = this.header;
      if (this.pendingBytes < length) return;
      const payload = this.take(length);
      const seq = this.seq;
      if (recordCrc(bytes.subarray(0, 20), payload) !== crc) throw invalid(`CRC mismatch in record ${seq}`);
      if (seq === 0) {
        if (kind !== MigRecordKind.START) throw invalid('stream does not begin with START');
        const tag = new TextDecoder('utf-8', { fatal: false }).decode(payload);
        if (tag !== this.expectedTag) throw invalid(`stream from device "${tag}" cannot be loaded into "${this.expectedTag}"`);
      } else if (kind === MigRecordKind.START) {
        throw invalid(`second START at record ${seq}`);
      } else if (kind === MigRecordKind.END) {
        if (length !== 0) throw invalid('END record with a payload');
        this.ended = true;
      } else {
        const record: MigRecord = { kind, seq, payload };
        this.records.push(record);
        this.onRecord?.(record);
      }
      this.header = undefined;
      this.seq++;
    }
  }
}

/**
 * Parses a whole stream held in `chunks` (in write order, any segmentation) and checks it with a
 * {@link StreamDecoder}: EINVAL on the first violation (a truncated stream lacks its END). Returns the data
 * records (INITIAL, DIRTY, FINAL) in order.
 */
export function decodeStream(chunks: readonly Uint8Array[], expectedTag: string): MigRecord[] {
  const decoder = new StreamDecoder(expectedTag);
  for (const c of chunks) decoder.push(c);
  return decoder.finish();
}
