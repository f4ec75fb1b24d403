import { describe, expect, it } from 'vitest';
import {
  VFIO_DEVICE_FEATURE_GET,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  vfioDeviceFeatureDmaLoggingReport,
  vfioPrecopyInfo,
} from '@vfio-ts/uapi';
import { DmaLogger, MigrationStateMachine, featureDmaLoggingReport, migrationFile } from '../src/index.js';
import type { MigrationDriver } from '../src/index.js';
import { FakeMemory, M, ReadOnlyMemory, errnoOf } from './helpers.js';

function preCopyDevice(): MigrationDriver & { dirty: number } {
  let initial = 10;
  return {
    dirty: 0,
    migrationFlags: VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
    setState(arc) {
      if (arc.from !== M.RUNNING || arc.to !== M.PRE_COPY) return;
      return {
        initialBytes: () => initial,
        readInitial: (max) => {
          const n = Math.min(max, initial);
          initial -= n;
          return new Uint8Array(n).fill(1);
        },
        dirtyBytes: () => this.dirty,
        readDirty: (max) => {
          const n = Math.min(max, this.dirty);
          this.dirty -= n;
          return new Uint8Array(n);
        },
        finalState: () => new Uint8Array(3),
      };
    },
    dataSize: () => 13,
  };
}

describe('migrationFile', () => {
  it('a saving file reads, polls and answers PRECOPY_INFO by pointer', () => {
    const dev = preCopyDevice();
    const sm = new MigrationStateMachine(dev, { tag: 'f' });
    const session = sm.setState(M.PRE_COPY)!;
    const file = migrationFile(session);
    expect(file.kind).toBe('vfio-migration');
    expect(file.openFlags).toBe(0o2000000);
    expect(file.write).toBeUndefined();
    expect(file.poll()).toBe(0x41);
    const mem = new FakeMemory();
    const buf = mem.map(0x1000n, 24);
    buf.set(vfioPrecopyInfo.encode({ argsz: 24 }));
    expect(file.ioctl(VFIO_MIG_GET_PRECOPY_INFO, 0x1000n, { task: { mm: mem } })).toBe(0);
    expect(vfioPrecopyInfo.decode(buf).initial_bytes).toBeGreaterThan(0n);
    expect(errnoOf(() => file.ioctl(VFIO_MIG_GET_PRECOPY_INFO, 0x9000n, { task: { mm: mem } }))).toBe('EFAULT');
    expect(errnoOf(() => file.ioctl(VFIO_MIG_GET_PRECOPY_INFO, undefined))).toBe('EFAULT');
    expect(errnoOf(() => file.ioctl(123, 0x9000n, { task: { mm: mem } }))).toBe('ENOTTY');
    while (file.poll() !== 0) file.read!(1000);
    expect(errnoOf(() => file.read!(1))).toBe('ENOMSG');
    let woke = 0;
    const stop = file.pollWait(() => woke++);
    dev.dirty = 5;
    if (session.kind === 'saving') session.notify();
    expect(woke).toBe(1);
    expect(file.poll()).toBe(0x41);
    sm.setState(M.RUNNING);
    expect(woke).toBe(2); // ending the session wakes pollers (they see POLLRDHUP)
    stop();
    expect(file.poll()).toBe(0x2041);
    expect(errnoOf(() => file.read!(1))).toBe('ENODEV');
    file.release();
  });

  it('a resuming file writes and answers no ioctl', () => {
    const sm = new MigrationStateMachine(preCopyDevice(), { tag: 'f' });
    const file = migrationFile(sm.setState(M.RESUMING)!);
    expect(file.openFlags).toBe(0o2000001);
    expect(file.read).toBeUndefined();
    expect(file.write!(new Uint8Array(7))).toBe(7);
    expect(errnoOf(() => file.ioctl(VFIO_MIG_GET_PRECOPY_INFO, new Uint8Array(24)))).toBe('ENOTTY');
    expect(file.poll()).toBe(0x145);
    file.release();
    expect(errnoOf(() => sm.setState(M.STOP))).toBe('EINVAL');
    expect(sm.state).toBe(M.ERROR);
  });
});

describe('DMA_LOGGING_REPORT into read-only memory', () => {
  it('fails with EFAULT before the log is consumed', () => {
    const logger = new DmaLogger();
    logger.logStart([{ iova: 0n, length: 1n << 20n }], 4096n);
    logger.markDirty(0n, 1n);
    const ro = new ReadOnlyMemory();
    ro.map(0x5000n, 64);
    const data = vfioDeviceFeatureDmaLoggingReport.encode({ iova: 0n, length: 1n << 20n, page_size: 4096n, bitmap: 0x5000n });
    expect(errnoOf(() => featureDmaLoggingReport(VFIO_DEVICE_FEATURE_GET, 32, data, { dmaLogging: logger }, { memory: ro }))).toBe('EFAULT');
    const rw = new FakeMemory();
    const user = rw.map(0x5000n, 64);
    featureDmaLoggingReport(VFIO_DEVICE_FEATURE_GET, 32, data, { dmaLogging: logger }, { memory: rw });
    expect(user[0]).toBe(1);
  });
});
