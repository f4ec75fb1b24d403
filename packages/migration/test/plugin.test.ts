/**
 * The migration plugin on a real host, through the system-call surface: a tiny in-test VFIO driver whose devices
 * carry a MigrationStateMachine (mig ops) and a DmaLogger (log ops), opened in no-IOMMU mode.
 */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { HostPlugin, Process, VfioDevice } from '@vfio-ts/core';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_STATE_ERROR,
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  VFIO_NOIOMMU_IOMMU,
  vfioDeviceFeature,
  vfioDeviceFeatureMigState,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import {
  DmaLogger,
  MigrationStateMachine,
  getDeviceState,
  getMigrationDataSize,
  getMigrationFlags,
  getPrecopyInfo,
  logOpsOf,
  migration,
  migrationOpsOf,
  probeFeature,
  reportDmaLogging,
  setDeviceState,
  startDmaLogging,
  stopDmaLogging,
} from '../src/index.js';
import { errnoOf } from './helpers.js';

const FLAGS = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

interface Toy {
  state: Uint8Array;
  machine: MigrationStateMachine | undefined;
  logger: DmaLogger | undefined;
}

/** A VFIO driver whose devices hold a byte array as their state; `plain` BDFs get no migration at all. */
function toyDriver(plain: readonly string[] = []): { plugin: HostPlugin; devices: Map<string, VfioDevice<Toy>> } {
  const devices = new Map<string, VfioDevice<Toy>>();
  const plugin: HostPlugin = {
    name: 'vfio-toy',
    setup(api) {
      api.registerPciDriver({
        name: 'vfio-toy',
        driverManagedDma: true,
        probe(pdev) {
          const toy: Toy = { state: new Uint8Array(0), machine: undefined, logger: undefined };
          const migratable = !plain.includes(pdev.bdf);
          if (migratable) {
            toy.machine = new MigrationStateMachine(
              {
                migrationFlags: FLAGS,
                setState(arc) {
                  if (arc.resumed) toy.state = arc.resumed.payload();
                  if (arc.to === VFIO_DEVICE_STATE_PRE_COPY || arc.to === VFIO_DEVICE_STATE_STOP_COPY) {
                    if (arc.from === VFIO_DEVICE_STATE_PRE_COPY) return;
                    let initial = toy.state.slice();
                    return {
                      initialBytes: () => initial.length,
                      readInitial: (max) => {
                        const out = initial.subarray(0, max);
                        initial = initial.subarray(out.length);
                        return out;
                      },
                      finalState: () => initial,
                    };
                  }
                },
                dataSize: () => toy.state.length,
              },
              { tag: 'toy:v1' },
            );
            toy.logger = new DmaLogger();
          }
          const dev = api.allocDevice({
            name: pdev.bdf,
            data: toy,
            ops: { closeDevice: (d) => d.data.machine?.close() },
            ...(migratable ? { migrationOps: toy.machine, logOps: toy.logger, migrationFlags: FLAGS } : {}),
          });
          api.registerGroupDevice(dev);
          devices.set(pdev.bdf, dev);
        },
        async remove(pdev) {
          const dev = devices.get(pdev.bdf)!;
          await dev.unregister();
          dev.put();
        },
      });
    },
  };
  return { plugin, devices };
}

const A = '0000:00:03.0';
const B = '0000:00:04.0';

function config(): Uint8Array {
  const c = new Uint8Array(256);
  c.set([0x34, 0x12, 0x11, 0x11]);
  return c;
}

function setup(options: { plugins?: 'none'; plain?: readonly string[] } = {}) {
  const driver = toyDriver(options.plain);
  const platform = simPlatform({
    iommu: 'none',
    devices: [A, B].map((bdf) => ({ bdf, fn: pciFunctionFromConfig({ config: config(), bars: '0:mem32:0x1000' }) })),
  });
  const plugins = options.plugins === 'none' ? [driver.plugin] : [driver.plugin, migration()];
  const host = createHost({ platform, plugins, params: { 'vfio.enable_unsafe_noiommu_mode': true } });
  for (const bdf of [A, B]) {
    platform.pci.device(bdf)!.driverOverride = 'vfio-toy';
    platform.pci.bind(bdf, 'vfio-toy');
  }
  const p = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'], memlockLimit: 64n << 20n });
  const groups = p.readdir('/dev/vfio').filter((n) => n.startsWith('noiommu-')).sort();
  const open = (bdf: string): number => {
    for (const g of groups) {
      try {
        return openVfioDevice(p, { group: `/dev/vfio/${g}`, device: bdf, iommuType: VFIO_NOIOMMU_IOMMU }).device;
      } catch (e) {
        if (!(e instanceof SysError)) throw e;
      }
    }
    throw new Error(`no group holds ${bdf}`);
  };
  return { host, p, devices: driver.devices, open };
}

function readAll(p: Process, fd: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let chunk = p.read(fd, 100); chunk.length > 0; chunk = p.read(fd, 100)) parts.push(chunk);
  const out = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of parts) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function rawFeature(p: Process, fd: number, flags: number, payload = new Uint8Array(0)): number {
  const buf = new Uint8Array(8 + payload.length);
  vfioDeviceFeature.write(buf, { argsz: buf.length, flags });
  buf.set(payload, 8);
  return p.ioctl(fd, VFIO_DEVICE_FEATURE, buf);
}

describe('migration() on a host', () => {
  it('answers MIGRATION with the device flags; PROBE, and SET is EINVAL', () => {
    const { p, open } = setup();
    const fd = open(A);
    expect(getMigrationFlags(p, fd)).toBe(FLAGS);
    expect(rawFeature(p, fd, VFIO_DEVICE_FEATURE_MIGRATION | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE)).toBe(0);
    expect(errnoOf(() => rawFeature(p, fd, VFIO_DEVICE_FEATURE_MIGRATION | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE))).toBe('EINVAL');
    expect(errnoOf(() => rawFeature(p, fd, VFIO_DEVICE_FEATURE_MIGRATION | VFIO_DEVICE_FEATURE_GET))).toBe('EINVAL'); // short data
    expect(probeFeature(p, fd, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_SET)).toBe(true);
  });

  it('answers ENOTTY for a device without mig/log ops, even to PROBE', () => {
    const { p, open } = setup({ plain: [B] });
    const fd = open(B);
    expect(errnoOf(() => getMigrationFlags(p, fd))).toBe('ENOTTY');
    expect(errnoOf(() => rawFeature(p, fd, VFIO_DEVICE_FEATURE_MIGRATION | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE))).toBe('ENOTTY');
    expect(errnoOf(() => getDeviceState(p, fd))).toBe('ENOTTY');
    expect(errnoOf(() => getMigrationDataSize(p, fd))).toBe('ENOTTY');
    expect(errnoOf(() => rawFeature(p, fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE))).toBe('ENOTTY');
    expect(
      errnoOf(() => {
        stopDmaLogging(p, fd);
      }),
    ).toBe('ENOTTY');
  });

  it('without the plugin the indexes fall to the driver op (absent: EINVAL)', () => {
    const { p, open } = setup({ plugins: 'none' });
    const fd = open(A);
    expect(errnoOf(() => getMigrationFlags(p, fd))).toBe('EINVAL');
  });

  it('refuses a second registration (EEXIST) and leaves none of its handlers behind', () => {
    const platform = simPlatform({ iommu: 'none' });
    expect(errnoOf(() => createHost({ platform, plugins: [migration(), migration({ name: 'again' })] }))).toBe('EEXIST');
  });

  it('moves a device between hosts through data fds: STOP_COPY on one, RESUMING on the other', () => {
    const src = setup();
    const dst = setup();
    src.devices.get(A)!.data.state = new TextEncoder().encode('registers, queues and a DMA ring');
    const sfd = src.open(A);
    const dfd = dst.open(A);
    expect(getMigrationDataSize(src.p, sfd)).toBe(32n);

    const out = setDeviceState(src.p, sfd, VFIO_DEVICE_STATE_STOP_COPY);
    expect(out).toBeGreaterThan(sfd);
    expect(getDeviceState(src.p, sfd)).toBe(VFIO_DEVICE_STATE_STOP_COPY);
    // The saving fd is read-only, and PRECOPY_INFO is EINVAL outside PRE_COPY states.
    expect(errnoOf(() => src.p.write(out, new Uint8Array(1)))).toBe('EBADF');
    expect(errnoOf(() => getPrecopyInfo(src.p, out))).toBe('EINVAL');
    const stream = readAll(src.p, out);

    const into = setDeviceState(dst.p, dfd, VFIO_DEVICE_STATE_RESUMING);
    expect(errnoOf(() => dst.p.read(into, 10))).toBe('EBADF');
    expect(dst.p.write(into, stream)).toBe(stream.length);
    expect(setDeviceState(dst.p, dfd, VFIO_DEVICE_STATE_RUNNING)).toBe(-1);
    expect(new TextDecoder().decode(dst.devices.get(A)!.data.state)).toBe('registers, queues and a DMA ring');
    // The data fd no longer works once the device left RESUMING.
    expect(errnoOf(() => dst.p.write(into, new Uint8Array(1)))).toBe('ENODEV');
    src.p.close(out);
    dst.p.close(into);
  });

  it('a corrupted stream fails RESUMING → STOP with EINVAL and leaves the device in ERROR', () => {
    const src = setup();
    const dst = setup();
    src.devices.get(A)!.data.state = new Uint8Array(300).fill(7);
    const sfd = src.open(A);
    const dfd = dst.open(A);
    const stream = readAll(src.p, setDeviceState(src.p, sfd, VFIO_DEVICE_STATE_STOP_COPY)).slice();
    stream[stream.length - 40]! ^= 1;
    const into = setDeviceState(dst.p, dfd, VFIO_DEVICE_STATE_RESUMING);
    dst.p.write(into, stream);
    // The struct is copied back with data_fd −1 before the errno.
    const buf = new Uint8Array(16);
    vfioDeviceFeature.write(buf, { argsz: 16, flags: VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | VFIO_DEVICE_FEATURE_SET });
    vfioDeviceFeatureMigState.write(buf.subarray(8), { device_state: VFIO_DEVICE_STATE_RUNNING, data_fd: 99 });
    expect(errnoOf(() => dst.p.ioctl(dfd, VFIO_DEVICE_FEATURE, buf))).toBe('EINVAL');
    expect(vfioDeviceFeatureMigState.decode(buf.subarray(8)).data_fd).toBe(-1);
    expect(getDeviceState(dst.p, dfd)).toBe(VFIO_DEVICE_STATE_ERROR);
    expect(dst.devices.get(A)!.data.state.length).toBe(0);
    expect(errnoOf(() => setDeviceState(dst.p, dfd, VFIO_DEVICE_STATE_RUNNING))).toBe('EINVAL');
  });

  it('PRE_COPY: PRECOPY_INFO by pointer-free struct, ENOMSG when drained, then STOP_COPY on the same fd', () => {
    const src = setup();
    src.devices.get(A)!.data.state = new Uint8Array(5000).fill(1);
    const fd = src.open(A);
    const data = setDeviceState(src.p, fd, VFIO_DEVICE_STATE_PRE_COPY);
    const info = getPrecopyInfo(src.p, data);
    expect(info.initialBytes).toBeGreaterThan(5000);
    let got = 0;
    for (;;) {
      try {
        got += src.p.read(data, 1024).length;
      } catch (e) {
        expect((e as SysError).errno).toBe('ENOMSG');
        break;
      }
    }
    expect(got).toBe(info.initialBytes);
    expect(getPrecopyInfo(src.p, data)).toEqual({ initialBytes: 0, dirtyBytes: 0 });
    expect(setDeviceState(src.p, fd, VFIO_DEVICE_STATE_STOP)).toBe(-1);
    expect(errnoOf(() => src.p.read(data, 10))).toBe('ENODEV');
    // The device can be moved back and used again.
    expect(setDeviceState(src.p, fd, VFIO_DEVICE_STATE_RUNNING)).toBe(-1);
  });

  it('DMA logging through user pointers: start, report at another page size, stop', () => {
    const { p, devices, open } = setup();
    const fd = open(A);
    const logger = devices.get(A)!.data.logger!;
    expect(startDmaLogging(p, fd, [{ iova: 0x10_0000n, length: 0x10_0000n }], 4096n)).toBe(4096n);
    expect(errnoOf(() => startDmaLogging(p, fd, [{ iova: 0n, length: 4096n }], 4096n))).toBe('EINVAL'); // already started
    logger.markDirty(0x10_2000n, 1n);
    logger.markDirty(0x1f_f000n, 0x1000n);
    logger.markDirty(0x30_0000n, 0x1000n); // untracked
    // 16 KiB report pages: pages 2 and 255 of 4 KiB land in bits 0 and 63.
    const bm = reportDmaLogging(p, fd, 0x10_0000n, 0x10_0000n, 16384n);
    const words = new BigUint64Array(bm.buffer, bm.byteOffset, bm.length / 8);
    expect([...words]).toEqual([(1n << 63n) | 1n]);
    // Read-and-clear: a second report is empty.
    const again = reportDmaLogging(p, fd, 0x10_0000n, 0x10_0000n, 4096n);
    expect(again.every((b) => b === 0)).toBe(true);
    stopDmaLogging(p, fd);
    expect(errnoOf(() => reportDmaLogging(p, fd, 0x10_0000n, 0x1000n, 4096n))).toBe('EINVAL');
    expect(errnoOf(() => startDmaLogging(p, fd, [], 4096n))).toBe('EINVAL');
    expect(errnoOf(() => startDmaLogging(p, fd, [{ iova: 1n, length: 4096n }], 4096n))).toBe('EINVAL');
  });
});

describe('migrationOpsOf / logOpsOf', () => {
  const machine = (): MigrationStateMachine =>
    new MigrationStateMachine({ migrationFlags: VFIO_MIGRATION_STOP_COPY, setState: () => undefined, dataSize: () => 0 }, { tag: 't' });

  it('reads ops under either spelling, with the device flags winning', () => {
    const m = machine();
    const linux = {
      migrationSetState: (s: number) => m.setState(s),
      migrationGetState: () => m.getState(),
      migrationGetDataSize: () => 7n,
    };
    const dev = (migrationOps: unknown, migrationFlags = 0): VfioDevice => ({ migrationOps, migrationFlags, logOps: undefined }) as unknown as VfioDevice;
    const a = migrationOpsOf(dev(linux, FLAGS))!;
    expect(a.migrationFlags).toBe(FLAGS);
    expect(a.getDataSize()).toBe(7n);
    expect(a.setState(VFIO_DEVICE_STATE_STOP)).toBeNull();
    expect(a.getState()).toBe(VFIO_DEVICE_STATE_STOP);
    expect(migrationOpsOf(dev(machine()))!.migrationFlags).toBe(VFIO_MIGRATION_STOP_COPY);
    expect(migrationOpsOf(dev({ getState: () => 0 }))).toBeUndefined();
    expect(migrationOpsOf(dev(undefined))).toBeUndefined();
    expect(logOpsOf({ logOps: new DmaLogger() } as unknown as VfioDevice)).toBeDefined();
    expect(logOpsOf({ logOps: { logStart: () => 0n } } as unknown as VfioDevice)).toBeUndefined();
  });
});
