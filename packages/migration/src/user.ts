/**
 * The user side of migration v2: typed wrappers over `ioctl(VFIO_DEVICE_FEATURE)` on a device fd and over the
 * data fd, building the same bytes QEMU's hw/vfio/migration.c passes to Linux (inventory §1.5, §5). Sugar over
 * the system-call surface, for examples, tests and the CLI.
 */
import type { Process } from '@vfio-ts/core';
import {
  SysError,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_MIG_GET_PRECOPY_INFO,
  vfioDeviceFeature,
  vfioDeviceFeatureDmaLoggingControl,
  vfioDeviceFeatureDmaLoggingRange,
  vfioDeviceFeatureDmaLoggingReport,
  vfioDeviceFeatureMigDataSize,
  vfioDeviceFeatureMigState,
  vfioDeviceFeatureMigration,
  vfioPrecopyInfo,
} from '@vfio-ts/uapi';
import type { IovaRange } from './dma-logging.js';
import type { PrecopyInfo } from './sessions.js';

/** The calls these helpers make: a vfio-ts `Process` satisfies it. */
export type MigrationUserProcess = Pick<Process, 'ioctl' | 'mmap' | 'munmap' | 'memory'>;

/** Builds `struct vfio_device_feature` + payload and runs the ioctl; returns the payload bytes as left by it. */
function feature(p: MigrationUserProcess, fd: number, flags: number, payload: Uint8Array): Uint8Array {
  const buf = new Uint8Array(vfioDeviceFeature.size + payload.length);
  vfioDeviceFeature.write(buf, { argsz: buf.length, flags });
  buf.set(payload, vfioDeviceFeature.size);
  p.ioctl(fd, VFIO_DEVICE_FEATURE, buf);
  return buf.subarray(vfioDeviceFeature.size);
}

/** PROBE of a feature: true when the device serves it (0), false on ENOTTY/EINVAL. */
export function probeFeature(p: MigrationUserProcess, fd: number, index: number, ops: number): boolean {
  try {
    feature(p, fd, index | ops | VFIO_DEVICE_FEATURE_PROBE, new Uint8Array(0));
    return true;
  } catch (e) {
    if (e instanceof SysError && (e.errno === 'ENOTTY' || e.errno === 'EINVAL')) return false;
    throw e;
  }
}

/** VFIO_DEVICE_FEATURE_MIGRATION GET: the device's VFIO_MIGRATION_* flags (ENOTTY: no migration). */
export function getMigrationFlags(p: MigrationUserProcess, fd: number): number {
  const out = feature(p, fd, VFIO_DEVICE_FEATURE_MIGRATION | VFIO_DEVICE_FEATURE_GET, new Uint8Array(vfioDeviceFeatureMigration.size));
  return Number(vfioDeviceFeatureMigration.decode(out).flags);
}

/** MIG_DEVICE_STATE GET: the current `VFIO_DEVICE_STATE_*`. */
export function getDeviceState(p: MigrationUserProcess, fd: number): number {
  const out = feature(p, fd, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | VFIO_DEVICE_FEATURE_GET, new Uint8Array(vfioDeviceFeatureMigState.size));
  return vfioDeviceFeatureMigState.decode(out).device_state;
}

/** MIG_DEVICE_STATE SET: moves the device; returns the new data fd, or −1 when the move opened none. */
export function setDeviceState(p: MigrationUserProcess, fd: number, state: number): number {
  const payload = vfioDeviceFeatureMigState.encode({ device_state: state, data_fd: -1 });
  const out = feature(p, fd, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | VFIO_DEVICE_FEATURE_SET, payload);
  return vfioDeviceFeatureMigState.decode(out).data_fd;
}

/** MIG_DATA_SIZE GET: the driver's estimate of the STOP_COPY length. */
export function getMigrationDataSize(p: MigrationUserProcess, fd: number): bigint {
  const out = feature(p, fd, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE | VFIO_DEVICE_FEATURE_GET, new Uint8Array(vfioDeviceFeatureMigDataSize.size));
  return vfioDeviceFeatureMigDataSize.decode(out).stop_copy_length;
}

/** VFIO_MIG_GET_PRECOPY_INFO on a data fd (EINVAL outside PRE_COPY states). */
export function getPrecopyInfo(p: MigrationUserProcess, dataFd: number): PrecopyInfo {
  const buf = vfioPrecopyInfo.encode({ argsz: vfioPrecopyInfo.size });
  p.ioctl(dataFd, VFIO_MIG_GET_PRECOPY_INFO, buf);
  const info = vfioPrecopyInfo.decode(buf);
  return { initialBytes: Number(info.initial_bytes), dirtyBytes: Number(info.dirty_bytes) };
}

/** Runs `fn` with `bytes` bytes of scratch memory mapped in `p`, unmapped afterwards. */
function withScratch<T>(p: MigrationUserProcess, bytes: number, fn: (vaddr: bigint) => T): T {
  const length = BigInt(Math.max(4096, Math.ceil(bytes / 4096) * 4096));
  const vaddr = p.mmap({ length });
  try {
    return fn(vaddr);
  } finally {
    p.munmap(vaddr, length);
  }
}

/**
 * DMA_LOGGING_START: the ranges are written into scratch memory and passed by pointer. Returns the page size the
 * device chose (it may differ from `pageSize`).
 */
export function startDmaLogging(p: MigrationUserProcess, fd: number, ranges: readonly IovaRange[], pageSize: bigint): bigint {
  const size = vfioDeviceFeatureDmaLoggingRange.size;
  return withScratch(p, ranges.length * size, (vaddr) => {
    const table = new Uint8Array(ranges.length * size);
    ranges.forEach((r, i) => {
      vfioDeviceFeatureDmaLoggingRange.write(table.subarray(i * size, (i + 1) * size), { iova: r.iova, length: r.length });
    });
    if (table.length > 0) p.memory.write(vaddr, table);
    const control = vfioDeviceFeatureDmaLoggingControl.encode({ page_size: pageSize, num_ranges: ranges.length, ranges: vaddr });
    const out = feature(p, fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | VFIO_DEVICE_FEATURE_SET, control);
    return vfioDeviceFeatureDmaLoggingControl.decode(out).page_size;
  });
}

/** DMA_LOGGING_STOP. */
export function stopDmaLogging(p: MigrationUserProcess, fd: number): void {
  feature(p, fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP | VFIO_DEVICE_FEATURE_SET, new Uint8Array(0));
}

/**
 * DMA_LOGGING_REPORT of `[iova, iova + length)` at `pageSize`: returns the bitmap (one bit per page, u64 words,
 * little-endian), read and cleared on the device side.
 */
export function reportDmaLogging(p: MigrationUserProcess, fd: number, iova: bigint, length: bigint, pageSize: bigint): Uint8Array {
  const bits = length === 0n ? 0n : (length + pageSize - 1n) / pageSize;
  const bytes = Number(((bits + 63n) / 64n) * 8n);
  return withScratch(p, bytes, (vaddr) => {
    const report = vfioDeviceFeatureDmaLoggingReport.encode({ iova, length, page_size: pageSize, bitmap: vaddr });
    feature(p, fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | VFIO_DEVICE_FEATURE_GET, report);
    return bytes === 0 ? new Uint8Array(0) : p.memory.read(vaddr, bytes);
  });
}
