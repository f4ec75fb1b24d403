/**
 * VFIO_DEVICE_FEATURE payload handlers for migration and DMA logging (inventory §1.5 idx 1, 2, 6, 7, 8, 9), as
 * Linux 6.12's vfio_main.c runs them after the header checks. Each takes the feature flags, the data size
 * (argsz − 8), the user's data bytes (read and written in place), the device's ops and — where the payload holds
 * pointers — the caller's memory, so the core's feature registry can call them directly.
 */
import { checkFeature } from '@vfio-ts/core';
import { PAGE_SIZE } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_SET,
  vfioDeviceFeatureDmaLoggingControl,
  vfioDeviceFeatureDmaLoggingRange,
  vfioDeviceFeatureDmaLoggingReport,
  vfioDeviceFeatureMigDataSize,
  vfioDeviceFeatureMigState,
  vfioDeviceFeatureMigration,
} from '@vfio-ts/uapi';
import type { StructCodec } from '@vfio-ts/uapi';
import { IovaBitmap } from './bitmap.js';
import type { DmaLoggingOps, IovaRange } from './dma-logging.js';
import type { MigrationFeatureOps } from './machine.js';
import type { MigrationDataSession } from './sessions.js';

/** The caller's memory, for pointers inside payloads; both throw SysError EFAULT on bad addresses. */
export interface UserMemory {
  read(addr: bigint, length: number): Uint8Array;
  write(addr: bigint, bytes: Uint8Array): void;
}

/** What a device offers these handlers: its migration ops and/or its DMA logging ops (absent → ENOTTY). */
export interface MigrationFeatureDevice {
  readonly migration?: MigrationFeatureOps | undefined;
  readonly dmaLogging?: DmaLoggingOps | undefined;
}

/** Services of the calling process the handlers need. */
export interface MigrationFeatureContext {
  /** The caller's memory (DMA logging ranges and report bitmap). */
  readonly memory: UserMemory;
  /**
   * Installs a data session as a new file descriptor (O_CLOEXEC) and returns its number; throws (e.g. EMFILE)
   * when no descriptor is free.
   */
  installFile(session: MigrationDataSession): number;
}

/** A handler as the core's registry will call it. */
export type MigrationFeatureHandler = (
  flags: number,
  dataSize: number,
  data: Uint8Array,
  device: MigrationFeatureDevice,
  context: MigrationFeatureContext,
) => number;

/** copy_from_user of a payload struct: EFAULT when the user's buffer holds fewer bytes. */
function readPayload<T>(codec: StructCodec<T>, data: Uint8Array, n = codec.size): T {
  if (data.length < n) throw new SysError('EFAULT', `${codec.name} beyond the user buffer`);
  return codec.decode(data.subarray(0, n));
}

/** copy_to_user of a whole payload struct: EFAULT when it does not fit. */
function writePayload<T>(codec: StructCodec<T>, data: Uint8Array, value: Partial<T>): void {
  if (data.length < codec.size) throw new SysError('EFAULT', `${codec.name} beyond the user buffer`);
  codec.write(data, value);
}

function migrationOps(device: MigrationFeatureDevice): MigrationFeatureOps {
  if (!device.migration) throw new SysError('ENOTTY', 'device does not support migration');
  return device.migration;
}

function logOps(device: MigrationFeatureDevice): DmaLoggingOps {
  if (!device.dmaLogging) throw new SysError('ENOTTY', 'device does not support DMA logging');
  return device.dmaLogging;
}

/** Feature 1 MIGRATION (GET): writes `migration_flags`. ENOTTY without migration ops. */
export function featureMigration(flags: number, dataSize: number, data: Uint8Array, device: MigrationFeatureDevice): number {
  const mig = migrationOps(device);
  if (!checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_GET, vfioDeviceFeatureMigration.size)) return 0;
  writePayload(vfioDeviceFeatureMigration, data, { flags: BigInt(mig.migrationFlags >>> 0) });
  return 0;
}

/**
 * Feature 2 MIG_DEVICE_STATE (GET/SET). GET writes the current state. SET moves the device; when the move opened
 * a data session it is installed as a new fd and its number written to `data_fd`, else `data_fd` is −1. On a
 * failed SET the struct is still copied back (data_fd −1) before the errno is thrown. If no fd can be installed
 * the session's file is dropped (its release runs) and that errno is returned without copying back, as Linux does.
 */
export function featureMigDeviceState(
  flags: number,
  dataSize: number,
  data: Uint8Array,
  device: MigrationFeatureDevice,
  context: Pick<MigrationFeatureContext, 'installFile'>,
): number {
  const mig = migrationOps(device);
  const codec = vfioDeviceFeatureMigState;
  if (!checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET, codec.size)) return 0;
  const req = readPayload(codec, data, codec.offsetOfEnd('data_fd'));
  if ((flags & VFIO_DEVICE_FEATURE_GET) !== 0) {
    const state = mig.getState();
    writePayload(codec, data, { device_state: state, data_fd: -1 });
    return 0;
  }
  let session: MigrationDataSession | null;
  try {
    session = mig.setState(req.device_state);
  } catch (e) {
    writePayload(codec, data, { device_state: req.device_state, data_fd: -1 });
    throw e;
  }
  if (!session) {
    writePayload(codec, data, { device_state: req.device_state, data_fd: -1 });
    return 0;
  }
  if (data.length < codec.size) {
    session.release();
    throw new SysError('EFAULT', `${codec.name} beyond the user buffer`);
  }
  let fd: number;
  try {
    fd = context.installFile(session);
  } catch (e) {
    session.release();
    throw e;
  }
  codec.write(data, { device_state: req.device_state, data_fd: fd });
  return 0;
}

/** Feature 9 MIG_DATA_SIZE (GET, any state): writes the driver's STOP_COPY length estimate. */
export function featureMigDataSize(flags: number, dataSize: number, data: Uint8Array, device: MigrationFeatureDevice): number {
  const mig = migrationOps(device);
  const codec = vfioDeviceFeatureMigDataSize;
  if (!checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_GET, codec.size)) return 0;
  const size = mig.getDataSize();
  writePayload(codec, data, { stop_copy_length: typeof size === 'bigint' ? size : BigInt(Math.max(0, Math.floor(size))) });
  return 0;
}

/** Most ranges DMA_LOGGING_START takes: what fits in one kernel page (256 with 4 KiB pages). */
export const DMA_LOGGING_MAX_RANGES = PAGE_SIZE / vfioDeviceFeatureDmaLoggingRange.size;

const U64_MAX = (1n << 64n) - 1n;

/** IS_ALIGNED(x, a) on u64: `(x & (a - 1)) == 0`, with a − 1 wrapping for a = 0 as in C. */
function isAligned(x: bigint, a: bigint): boolean {
  return (x & BigInt.asUintN(64, a - 1n)) === 0n;
}

/**
 * Validates the DMA_LOGGING_START ranges one by one, in Linux's order: EFAULT when a range cannot be read,
 * EINVAL when iova or length is not aligned to `pageSize`, EOVERFLOW when iova + length passes 2^64 − 1, EINVAL
 * when the range overlaps an earlier one. Returns them sorted by IOVA.
 */
export function readLoggingRanges(memory: UserMemory, rangesPtr: bigint, count: number, pageSize: bigint): IovaRange[] {
  const size = vfioDeviceFeatureDmaLoggingRange.size;
  const seen: { start: bigint; last: bigint }[] = [];
  const out: IovaRange[] = [];
  for (let i = 0; i < count; i++) {
    const addr = BigInt.asUintN(64, rangesPtr + BigInt(i * size));
    const bytes = memory.read(addr, size);
    if (bytes.length < size) throw new SysError('EFAULT', `range ${i} beyond user memory`);
    const { iova, length } = vfioDeviceFeatureDmaLoggingRange.decode(bytes);
    if (!isAligned(iova, pageSize) || !isAligned(length, pageSize)) {
      throw new SysError('EINVAL', `range ${i} is not aligned to page size ${pageSize}`);
    }
    if (iova + length > U64_MAX) throw new SysError('EOVERFLOW', `range ${i} wraps past 2^64`);
    // Interval-tree semantics: [start, last] with last = iova + length − 1 (u64); ≤ 256 ranges keep this cheap.
    const node = { start: iova, last: BigInt.asUintN(64, iova + length - 1n) };
    if (seen.some((n) => n.start <= node.last && node.start <= n.last)) {
      throw new SysError('EINVAL', `range ${i} overlaps an earlier range`);
    }
    seen.push(node);
    out.push({ iova, length });
  }
  return out.sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
}

/**
 * Feature 6 DMA_LOGGING_START (SET): num_ranges 0 → EINVAL; more than {@link DMA_LOGGING_MAX_RANGES} → E2BIG;
 * each range checked by {@link readLoggingRanges}; then `logStart`. The control struct is written back with the
 * page size the driver chose; if that copy fails logging is stopped again (EFAULT).
 */
export function featureDmaLoggingStart(
  flags: number,
  dataSize: number,
  data: Uint8Array,
  device: MigrationFeatureDevice,
  context: Pick<MigrationFeatureContext, 'memory'>,
): number {
  const log = logOps(device);
  const codec = vfioDeviceFeatureDmaLoggingControl;
  if (!checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_SET, codec.size)) return 0;
  const control = readPayload(codec, data, codec.offsetOfEnd('ranges'));
  if (control.num_ranges === 0) throw new SysError('EINVAL', 'num_ranges is 0');
  if (control.num_ranges > DMA_LOGGING_MAX_RANGES) {
    throw new SysError('E2BIG', `num_ranges ${control.num_ranges} > ${DMA_LOGGING_MAX_RANGES}`);
  }
  const ranges = readLoggingRanges(context.memory, control.ranges, control.num_ranges, control.page_size);
  const chosen = log.logStart(ranges, control.page_size);
  const pageSize = chosen ?? control.page_size;
  if (data.length < codec.size) {
    log.logStop();
    throw new SysError('EFAULT', `${codec.name} beyond the user buffer`);
  }
  codec.write(data, { ...control, page_size: pageSize });
  return 0;
}

/** Feature 7 DMA_LOGGING_STOP (SET, no data). */
export function featureDmaLoggingStop(flags: number, dataSize: number, _data: Uint8Array, device: MigrationFeatureDevice): number {
  const log = logOps(device);
  if (!checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_SET, 0)) return 0;
  log.logStop();
  return 0;
}

/** Bitmap bytes handled per window of a report (Linux pins up to 512 pages, 2 MiB, of bitmap at a time). */
export const DMA_LOGGING_REPORT_WINDOW_BYTES = 64 * 1024;

/**
 * Feature 8 DMA_LOGGING_REPORT (GET): page_size below 4 KiB or not a power of two → EINVAL; iova + length past
 * 2^64 − 1 → EOVERFLOW. The user bitmap (one bit per `page_size` from `iova`, u64 words) is processed in windows:
 * each window's bytes are read, the driver's `logReadAndClear` sets bits for its part of the range, and the
 * bytes are written back — bits are only ever set, never cleared. A zero length reports nothing.
 */
export function featureDmaLoggingReport(
  flags: number,
  dataSize: number,
  data: Uint8Array,
  device: MigrationFeatureDevice,
  context: Pick<MigrationFeatureContext, 'memory'>,
): number {
  const log = logOps(device);
  const codec = vfioDeviceFeatureDmaLoggingReport;
  if (!checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_GET, codec.size)) return 0;
  const report = readPayload(codec, data, codec.offsetOfEnd('bitmap'));
  const { iova, length, page_size: pageSize, bitmap } = report;
  if (pageSize < 4096n || (pageSize & (pageSize - 1n)) !== 0n) {
    throw new SysError('EINVAL', `report page size ${pageSize} is not a power of two ≥ 4096`);
  }
  if (iova + length > U64_MAX) throw new SysError('EOVERFLOW', 'iova + length wraps past 2^64');
  if (length === 0n) return 0;
  let shift = 0n;
  while (1n << shift !== pageSize) shift++;
  const totalBits = ((length - 1n) >> shift) + 1n;
  const windowBits = BigInt(DMA_LOGGING_REPORT_WINDOW_BYTES * 8);
  let carry: { iova: bigint; length: bigint }[] = [];
  for (let first = 0n; first < totalBits; first += windowBits) {
    const bits = totalBits - first < windowBits ? totalBits - first : windowBits;
    const winIova = iova + (first << shift);
    const winEnd = iova + length < winIova + (bits << shift) ? iova + length : winIova + (bits << shift);
    const winLength = winEnd - winIova;
    const byteOffset = (first / 64n) * 8n;
    const byteLength = Number(((bits + 63n) / 64n) * 8n);
    const addr = BigInt.asUintN(64, bitmap + byteOffset);
    const current = context.memory.read(addr, byteLength);
    // Linux pins the window writable before the driver reads and clears its log; writing the bytes back
    // unchanged first makes a read-only bitmap fail (EFAULT) before any dirty state is consumed.
    context.memory.write(addr, current);
    const window = new IovaBitmap(winIova, winLength, pageSize, current);
    // Bits the previous window's driver call set past its end (a tracker page straddling the boundary).
    for (const r of carry) window.set(r.iova, r.length);
    log.logReadAndClear(winIova, winLength, window);
    context.memory.write(addr, window.toBytes());
    carry = window.spill;
  }
  return 0;
}

/**
 * The handlers by feature index, for registration with the core's feature registry:
 * `for (const [index, handler] of migrationFeatureHandlers()) registerFeatureHandler(index, adapt(handler))`.
 * A fresh map per call (no shared mutable state between hosts).
 */
export function migrationFeatureHandlers(): Map<number, MigrationFeatureHandler> {
  return new Map<number, MigrationFeatureHandler>([
  [VFIO_DEVICE_FEATURE_MIGRATION, (f, n, d, dev) => featureMigration(f, n, d, dev)],
  [VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, (f, n, d, dev, ctx) => featureMigDeviceState(f, n, d, dev, ctx)],
  [VFIO_DEVICE_FEATURE_DMA_LOGGING_START, (f, n, d, dev, ctx) => featureDmaLoggingStart(f, n, d, dev, ctx)],
  [VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, (f, n, d, dev) => featureDmaLoggingStop(f, n, d, dev)],
  [VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, (f, n, d, dev, ctx) => featureDmaLoggingReport(f, n, d, dev, ctx)],
  [VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, (f, n, d, dev) => featureMigDataSize(f, n, d, dev)],
  ]);
}
