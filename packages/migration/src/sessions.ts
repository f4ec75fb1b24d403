/**
 * Migration data sessions (inventory §5 "Data fds"): the saving session behind the fd that PRE_COPY,
 * PRE_COPY_P2P and STOP_COPY share, and the resuming session behind the fd STOP → RESUMING returns. They are
 * plain objects with system-call shaped methods (`read`, `write`, `ioctl`, `release`); the core wraps them in
 * files. A vendor driver supplies the bytes through a {@link SavingSource} and receives them back, validated,
 * at RESUMING → STOP.
 */
import { SysError, VFIO_DEVICE_STATE_STOP_COPY, VFIO_MIG_GET_PRECOPY_INFO, checkArgsz, vfioPrecopyInfo } from '@vfio-ts/uapi';
import type { MigState } from './states.js';
import { isPreCopyState, isSavingState } from './states.js';
import type { MigRecord } from './stream.js';
import { MIG_RECORD_HEADER_SIZE, MIG_RECORD_MAX_PAYLOAD, MigRecordKind, StreamDecoder, encodeRecord } from './stream.js';

/**
 * Where a saving session's bytes come from: the vendor driver's view of its device state. All byte counts are
 * of raw device data (the session adds framing). The PRE_COPY members are needed only with
 * VFIO_MIGRATION_PRE_COPY; absent ones count as zero.
 */
export interface SavingSource {
  /** Initial (pre-copy) bytes not yet handed to the session. */
  initialBytes?(): number;
  /** Up to `max` bytes of initial data; must return at least one byte while `initialBytes() > 0`. */
  readInitial?(max: number): Uint8Array;
  /** Bytes the device has dirtied since they were last handed over. */
  dirtyBytes?(): number;
  /** Up to `max` bytes of dirty data; must return at least one byte while `dirtyBytes() > 0`. */
  readDirty?(max: number): Uint8Array;
  /**
   * The remaining state, called once when the session enters STOP_COPY (the device is stopped). It must be
   * complete given what the initial/dirty reads already handed over. An iterable is consumed lazily, on read;
   * an element that is an array of parts becomes one record (copied once, straight into it) when it fits in
   * `maxRecordPayload`, else it is cut like a plain chunk.
   */
  finalState(): Uint8Array | Iterable<Uint8Array | readonly Uint8Array[]>;
  /** The session ended (the device left the saving group, was reset or closed): free buffers. */
  release?(): void;
}

/** Options shared by both session kinds. */
export interface SessionOptions {
  /**
   * The compatibility tag written into the stream's START record and required when resuming: only a stream from
   * a device with the same tag loads (§5 "a compatible device"). Typically `vendor:device:driver-version`.
   */
  readonly tag: string;
  /** Largest payload per record (default 64 KiB, at most 16 MiB). */
  readonly maxRecordPayload?: number;
  /** Largest stream a resuming session accepts before write() fails with ENOMEM (default 1 GiB). */
  readonly maxResumeBytes?: number;
}

/** `{ initial_bytes, dirty_bytes }` of VFIO_MIG_GET_PRECOPY_INFO. */
export interface PrecopyInfo {
  readonly initialBytes: number;
  readonly dirtyBytes: number;
}

type Listener = () => void;

interface Pending {
  readonly bytes: Uint8Array;
  /** Accounted as initial (START, INITIAL) or dirty (DIRTY) for PRECOPY_INFO; FINAL/END are neither. */
  readonly account: 'initial' | 'dirty' | 'none';
  offset: number;
}

const DEFAULT_RECORD = 64 * 1024;

function recordLimit(options: SessionOptions): number {
  const n = options.maxRecordPayload ?? DEFAULT_RECORD;
  if (!Number.isInteger(n) || n < 1 || n > MIG_RECORD_MAX_PAYLOAD) throw new RangeError(`maxRecordPayload ${n} out of range`);
  return n;
}

/**
 * The one data session of the saving group (§5). Created when the device enters PRE_COPY/PRE_COPY_P2P from
 * RUNNING/RUNNING_P2P or STOP_COPY from STOP; kept while the device moves within the group; ended when it leaves.
 *
 * - In PRE_COPY states `read` returns initial then dirty data and throws ENOMSG when both are exhausted (a
 *   temporary end: more may come as the device runs; poll for it).
 * - In STOP_COPY `read` returns whatever is still buffered, then the final state, then the END record, then EOF
 *   (an empty array, as read(2) returns 0).
 * - After the session ended, `read` throws ENODEV (Linux drivers disable the file).
 */
export class SavingSession {
  /** Distinguishes the two session kinds for the core's file wrapper. */
  readonly kind = 'saving' as const;
  private readonly maxRecord: number;
  private readonly queue: Pending[] = [];
  private seq = 0;
  private queuedInitial = 0;
  private queuedDirty = 0;
  private current: MigState;
  private finalIter: Iterator<Uint8Array | readonly Uint8Array[]> | undefined;
  private finalChunk: { bytes: Uint8Array; offset: number } | undefined;
  private endWritten = false;
  private ended = false;
  private closed = false;
  private readonly listeners = new Set<Listener>();

  /**
   * Starts a session in the saving state `state` (PRE_COPY, PRE_COPY_P2P or STOP_COPY). `deviceState`, when given,
   * reads the device's current state after the session ended (for PRECOPY_INFO's error order).
   */
  constructor(
    private readonly source: SavingSource,
    state: MigState,
    options: SessionOptions,
    private readonly deviceState?: () => MigState,
  ) {
    if (!isSavingState(state)) throw new SysError('EINVAL', `state ${state} is not a saving state`);
    this.maxRecord = recordLimit(options);
    this.current = state;
    this.push(MigRecordKind.START, new TextEncoder().encode(options.tag), 'initial');
    if (state === VFIO_DEVICE_STATE_STOP_COPY) this.beginFinal();
  }

  /** The device state the session is in, or `'ended'`. */
  get state(): MigState | 'ended' {
    return this.ended ? 'ended' : this.current;
  }

  /** True once the device left the saving group (or was reset/closed). */
  get isEnded(): boolean {
    return this.ended;
  }

  /** The device moved to another state of the saving group; entering STOP_COPY captures the final state. */
  moveTo(state: MigState): void {
    if (this.ended) throw new SysError('ENODEV', 'migration session has ended');
    if (!isSavingState(state)) throw new SysError('EINVAL', `state ${state} is not a saving state`);
    // STOP_COPY → PRE_COPY* is refused by the state table; the session never goes back either.
    if (this.current === VFIO_DEVICE_STATE_STOP_COPY && state !== VFIO_DEVICE_STATE_STOP_COPY) {
      throw new SysError('EINVAL', 'a saving session cannot leave STOP_COPY for PRE_COPY');
    }
    const enteringStopCopy = state === VFIO_DEVICE_STATE_STOP_COPY && this.current !== VFIO_DEVICE_STATE_STOP_COPY;
    this.current = state;
    if (enteringStopCopy) this.beginFinal();
    this.notify();
  }

  /** The device left the saving group: the file stops working (reads fail with ENODEV) and the source is freed. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.queue.length = 0;
    this.queuedInitial = 0;
    this.queuedDirty = 0;
    this.finalIter = undefined;
    this.finalChunk = undefined;
    this.source.release?.();
    this.notify();
    this.listeners.clear();
  }

  /** The user closed the file. The device stays where it is; the session still ends when the device leaves. */
  release(): void {
    this.closed = true;
    this.listeners.clear();
  }

  /**
   * read(2): up to `n` bytes of the stream. Returns an empty array at end of stream (STOP_COPY fully read);
   * throws ENOMSG in PRE_COPY states when no data is available now, ENODEV after the session ended.
   */
  read(n: number): Uint8Array {
    if (this.ended) throw new SysError('ENODEV', 'migration session has ended');
    if (this.closed) throw new SysError('EBADF', 'migration file is closed');
    if (!Number.isInteger(n) || n < 0) throw new SysError('EINVAL', `bad read length ${n}`);
    if (n === 0) return new Uint8Array(0);
    const parts: Uint8Array[] = [];
    let total = 0;
    while (total < n) {
      if (this.queue.length === 0 && !this.refill()) break;
      const head = this.queue[0]!;
      const take = Math.min(n - total, head.bytes.length - head.offset);
      parts.push(head.bytes.subarray(head.offset, head.offset + take));
      head.offset += take;
      total += take;
      if (head.account === 'initial') this.queuedInitial -= take;
      else if (head.account === 'dirty') this.queuedDirty -= take;
      if (head.offset === head.bytes.length) this.queue.shift();
    }
    if (total === 0) {
      if (isPreCopyState(this.current)) throw new SysError('ENOMSG', 'no pre-copy data available now');
      return new Uint8Array(0);
    }
    // Record buffers are never written after encoding, so a view of one is as good as a copy.
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /**
   * The PRECOPY_INFO numbers: stream bytes of initial and of dirty data still to be read (framed bytes already
   * queued plus what the source still holds, with the headers it will need). Both only decrease as the user
   * reads (dirty grows when the device dirties more) and reach 0 exactly when a read would return ENOMSG.
   * EINVAL outside PRE_COPY states (§1.4, §5).
   */
  precopyInfo(): PrecopyInfo {
    // Linux drivers (mlx5vf, hisi_acc) check the device's state before the file's: EINVAL while the device is
    // outside PRE_COPY, ENODEV only for a stale file of a device that is in PRE_COPY again.
    const state = this.ended ? this.deviceState?.() : this.current;
    if (state !== undefined && !isPreCopyState(state)) throw new SysError('EINVAL', 'VFIO_MIG_GET_PRECOPY_INFO outside PRE_COPY states');
    if (this.ended) throw new SysError('ENODEV', 'migration session has ended');
    return {
      initialBytes: this.queuedInitial + this.framed(nonNegative(this.source.initialBytes?.())),
      dirtyBytes: this.queuedDirty + this.framed(nonNegative(this.source.dirtyBytes?.())),
    };
  }

  /**
   * ioctl(2) on the data fd. VFIO_MIG_GET_PRECOPY_INFO reads `argsz` (EINVAL below 24), fills `initial_bytes`
   * and `dirty_bytes` in place and returns 0; anything else is ENOTTY.
   */
  ioctl(request: number, arg: Uint8Array): number {
    if (request !== VFIO_MIG_GET_PRECOPY_INFO) throw new SysError('ENOTTY', `ioctl ${request} on a migration file`);
    if (arg.length < vfioPrecopyInfo.minsz) throw new SysError('EFAULT', 'vfio_precopy_info beyond the buffer');
    checkArgsz(arg, vfioPrecopyInfo.minsz, 'vfio_precopy_info.argsz');
    const info = this.precopyInfo();
    vfioPrecopyInfo.write(arg, { initial_bytes: BigInt(info.initialBytes), dirty_bytes: BigInt(info.dirtyBytes) });
    return 0;
  }

  /** poll(2) readiness: data (or EOF, or the error of an ended session) can be read without ENOMSG. */
  readable(): boolean {
    if (this.ended || !isPreCopyState(this.current)) return true;
    return this.queue.length > 0 || nonNegative(this.source.initialBytes?.()) > 0 || nonNegative(this.source.dirtyBytes?.()) > 0;
  }

  /** Calls `listener` whenever readiness may have changed (new dirty data, a state move, the end). */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For the driver: new data may be available (wakes pollers). */
  notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private push(kind: MigRecordKind, payload: Uint8Array | readonly Uint8Array[], account: Pending['account']): void {
    const bytes = encodeRecord(kind, this.seq++, payload);
    this.queue.push({ bytes, account, offset: 0 });
    if (account === 'initial') this.queuedInitial += bytes.length;
    else if (account === 'dirty') this.queuedDirty += bytes.length;
  }

  /**
   * Stream bytes `raw` source bytes will take once framed, assuming the source hands over full records (it is
   * asked for exactly `min(maxRecordPayload, remaining)`): this keeps PRECOPY_INFO from growing when a record is
   * pulled, so it only decreases as the user reads (uAPI doc of vfio_precopy_info).
   */
  private framed(raw: number): number {
    return raw === 0 ? 0 : raw + Math.ceil(raw / this.maxRecord) * MIG_RECORD_HEADER_SIZE;
  }

  /** A source may hand over more than asked: cut it into records rather than lose bytes. */
  private pushSplit(kind: MigRecordKind, data: Uint8Array, account: Pending['account']): void {
    for (let at = 0; at < data.length; at += this.maxRecord) {
      this.push(kind, data.subarray(at, Math.min(data.length, at + this.maxRecord)), account);
    }
  }

  private beginFinal(): void {
    const state = this.source.finalState();
    const iterable: Iterable<Uint8Array | readonly Uint8Array[]> = state instanceof Uint8Array ? [state] : state;
    this.finalIter = iterable[Symbol.iterator]();
  }

  /** Pulls the next record from the source; false when none is available now. */
  private refill(): boolean {
    if (isPreCopyState(this.current)) {
      const initial = nonNegative(this.source.initialBytes?.());
      if (initial > 0 && this.source.readInitial) {
        const data = this.source.readInitial(Math.min(this.maxRecord, initial));
        if (data.length > 0) {
          this.pushSplit(MigRecordKind.INITIAL, data, 'initial');
          return true;
        }
      }
      const dirty = nonNegative(this.source.dirtyBytes?.());
      if (dirty > 0 && this.source.readDirty) {
        const data = this.source.readDirty(Math.min(this.maxRecord, dirty));
        if (data.length > 0) {
          this.pushSplit(MigRecordKind.DIRTY, data, 'dirty');
          return true;
        }
      }
      return false;
    }
    // STOP_COPY: the final state, split into records, then END.
    for (;;) {
      if (this.finalChunk && this.finalChunk.offset < this.finalChunk.bytes.length) {
        const { bytes, offset } = this.finalChunk;
        const end = Math.min(bytes.length, offset + this.maxRecord);
        this.finalChunk.offset = end;
        this.push(MigRecordKind.FINAL, bytes.subarray(offset, end), 'none');
        return true;
      }
      const next = this.finalIter?.next();
      if (next && !next.done) {
        const value = next.value;
        if (value instanceof Uint8Array) {
          this.finalChunk = { bytes: value, offset: 0 };
          continue;
        }
        const total = value.reduce((n, p) => n + p.length, 0);
        if (total === 0) continue;
        if (total <= this.maxRecord) {
          this.push(MigRecordKind.FINAL, value, 'none');
          return true;
        }
        const joined = new Uint8Array(total);
        let at = 0;
        for (const p of value) {
          joined.set(p, at);
          at += p.length;
        }
        this.finalChunk = { bytes: joined, offset: 0 };
        continue;
      }
      this.finalIter = undefined;
      if (this.endWritten) return false;
      this.endWritten = true;
      this.push(MigRecordKind.END, new Uint8Array(0), 'none');
      return true;
    }
  }
}

function nonNegative(n: number | undefined): number {
  return n !== undefined && n > 0 ? n : 0;
}

/** The validated content of a resuming stream, handed to the driver at RESUMING → STOP. */
export interface ResumedStream {
  /** The data records (INITIAL, DIRTY, FINAL) in stream order. */
  readonly records: readonly MigRecord[];
  /** The payloads of all data records (or of one kind) concatenated. */
  payload(kind?: MigRecord['kind']): Uint8Array;
}

/**
 * The write side of a migration (§5 "RESUMING"): STOP → RESUMING returns its file; the user writes the bytes of
 * a saving session in order, cut into any pieces. Nothing is interpreted until RESUMING → STOP, when
 * {@link finish} validates the whole stream (EINVAL for a truncated, corrupted or foreign stream) before the
 * driver loads it, so the device never runs on half-loaded state.
 */
export class ResumingSession {
  /** Distinguishes the two session kinds for the core's file wrapper. */
  readonly kind = 'resuming' as const;
  private decoder: StreamDecoder;
  private total = 0;
  private ended = false;
  private readonly maxBytes: number;

  /**
   * @param onRecord called with each data record as soon as it validated, while the user is still writing (a
   *   driver's staging; see `MigrationDriver.stageRecord`); a throw makes RESUMING → STOP fail with its errno.
   */
  constructor(options: SessionOptions, onRecord?: (record: MigRecord) => void) {
    this.decoder = new StreamDecoder(options.tag, onRecord);
    this.maxBytes = options.maxResumeBytes ?? 2 ** 30;
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.total;
  }

  /** True once the device left RESUMING (or was reset/closed). */
  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * write(2): takes `bytes` (copied); returns its length. ENODEV after the session ended, ENOMEM over the limit.
   * Records are checked as they complete, but a bad stream is reported only at RESUMING → STOP, as one EINVAL.
   */
  write(bytes: Uint8Array): number {
    if (this.ended) throw new SysError('ENODEV', 'migration session has ended');
    if (this.total + bytes.length > this.maxBytes) {
      throw new SysError('ENOMEM', `resume stream over ${this.maxBytes} bytes`);
    }
    if (bytes.length > 0) {
      this.decoder.push(bytes);
      this.total += bytes.length;
    }
    return bytes.length;
  }

  /** ioctl(2) on the resuming fd: none is defined (PRECOPY_INFO is a saving-side ioctl). */
  ioctl(request: number, _arg: Uint8Array): number {
    throw new SysError('ENOTTY', `ioctl ${request} on a resuming migration file`);
  }

  /**
   * Validates the stream written so far and returns its records; throws EINVAL when it is incomplete or invalid.
   * Called by the state machine at RESUMING → STOP, before the driver's arc runs.
   */
  finish(): ResumedStream {
    if (this.ended) throw new SysError('ENODEV', 'migration session has ended');
    const records = this.decoder.finish();
    return {
      records,
      payload(kind?: MigRecord['kind']): Uint8Array {
        const picked = kind === undefined ? records : records.filter((r) => r.kind === kind);
        const out = new Uint8Array(picked.reduce((n, r) => n + r.payload.length, 0));
        let at = 0;
        for (const r of picked) {
          out.set(r.payload, at);
          at += r.payload.length;
        }
        return out;
      },
    };
  }

  /** The device left RESUMING: drop the buffered stream; later writes fail with ENODEV. */
  end(): void {
    this.ended = true;
    // Drop everything buffered (a fresh, empty decoder holds nothing).
    this.decoder = new StreamDecoder('');
    this.total = 0;
  }

  /** The user closed the file; the buffered bytes stay until the device leaves RESUMING. */
  release(): void {
    // Nothing to do: Linux drivers keep the data on the device side until RESUMING → STOP.
  }
}

/** A data session the state machine hands out through MIG_DEVICE_STATE's `data_fd`. */
export type MigrationDataSession = SavingSession | ResumingSession;
