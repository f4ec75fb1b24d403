/**
 * Bad input at the migration entry points through the system-call surface (common rules): the data fd's
 * VFIO_MIG_GET_PRECOPY_INFO, read/write/pread/pwrite/mmap on saving and resuming fds, and the MIG_DEVICE_STATE
 * feature on the device. Each row checks the errno Linux 6.12's drivers give (mlx5vf/hisi_acc precopy ioctl,
 * stream_open'd data files, vfio_mig_get_next_state), that it is a SysError, and that the device's migration
 * state, its data session and the open files are unchanged. A fast-check fuzz on the data fd closes it.
 */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { HostPlugin, VfioDevice } from '@vfio-ts/core';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_STATE_ERROR,
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_GROUP_GET_STATUS,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_NOIOMMU_IOMMU,
  PROT_READ,
  VFIO_TYPE,
  vfioDeviceFeature,
  vfioDeviceFeatureMigState,
  vfioPrecopyInfo,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DmaLogger, MigrationStateMachine, getDeviceState, migration, setDeviceState } from '../src/index.js';

const FLAGS = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
const A = '0000:00:03.0';

type Row = readonly [name: string, call: () => unknown, errno: string];

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


function config(): Uint8Array {
  const c = new Uint8Array(256);
  c.set([0x34, 0x12, 0x11, 0x11]);
  return c;
}

function setup() {
  const driver = toyDriver();
  const platform = simPlatform({
    iommu: 'none',
    devices: [{ bdf: A, fn: pciFunctionFromConfig({ config: config(), bars: '0:mem32:0x1000' }) }],
  });
  const host = createHost({ platform, plugins: [driver.plugin, migration()], params: { 'vfio.enable_unsafe_noiommu_mode': true } });
  platform.pci.device(A)!.driverOverride = 'vfio-toy';
  platform.pci.bind(A, 'vfio-toy');
  const p = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'], memlockLimit: 64n << 20n });
  const group = p.readdir('/dev/vfio').find((n) => n.startsWith('noiommu-'))!;
  const fds = openVfioDevice(p, { group: `/dev/vfio/${group}`, device: A, iommuType: VFIO_NOIOMMU_IOMMU });
  const toy = driver.devices.get(A)!.data;
  toy.state = new Uint8Array(300).map((_, i) => i & 0xff);
  const devnull = p.open('/dev/null');
  const ev = p.eventfd(0);
  return { host, p, ...fds, toy, devnull, ev };
}

function rejects(f: () => unknown, errno: string, name = ''): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `${name}: expected ${errno}`).toBeInstanceOf(SysError);
  expect((err as SysError).errno, name).toBe(errno);
}

const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

function runRows(snapshot: () => string, rows: readonly Row[]): void {
  for (const [name, call, errno] of rows) {
    const before = snapshot();
    rejects(call, errno, name);
    expect(snapshot(), `${name}: state changed`).toBe(before);
  }
}

const precopy = (argsz: number, length = 24): Uint8Array => {
  const b = new Uint8Array(length);
  b.set(vfioPrecopyInfo.encode({ argsz }).subarray(0, Math.min(length, 24)));
  return b;
};

function migState(state: number, argsz?: number): Uint8Array {
  const payload = vfioDeviceFeatureMigState.encode({ device_state: state, data_fd: -1 });
  const b = new Uint8Array(8 + payload.length);
  vfioDeviceFeature.write(b, { argsz: argsz ?? b.length, flags: VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | VFIO_DEVICE_FEATURE_SET });
  b.set(payload, 8);
  return b;
}

describe('migration data fd and MIG_DEVICE_STATE: bad input', () => {
  it('a saving fd in PRE_COPY: short argsz, wrong fd types, bad states, overflow', () => {
    const s = setup();
    const { p, device: d } = s;
    const fd = setDeviceState(p, d, VFIO_DEVICE_STATE_PRE_COPY);
    // Read part of the initial data so the session has a position worth protecting.
    expect(p.read(fd, 10).length).toBe(10);
    const info = (): unknown => {
      const b = precopy(24);
      p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, b);
      return [...b];
    };
    const snapshot = (): string => json({ h: s.host.describe(), fds: p.fds(), state: getDeviceState(p, d), info: info() });
    runRows(snapshot, [
      ['PRECOPY_INFO argsz 23', () => p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, precopy(23)), 'EINVAL'],
      ['PRECOPY_INFO argsz 0', () => p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, precopy(0)), 'EINVAL'],
      // copy_from_user of minsz (24) bytes from a shorter buffer faults first.
      ['PRECOPY_INFO 23-byte buffer', () => p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, precopy(24, 23)), 'EFAULT'],
      ['PRECOPY_INFO at an unmapped address', () => p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, 0x1000), 'EFAULT'],
      ['unknown request on the data fd', () => p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO + 1, precopy(24)), 'ENOTTY'],
      ['device FEATURE on the data fd', () => p.ioctl(fd, VFIO_DEVICE_FEATURE, migState(VFIO_DEVICE_STATE_STOP)), 'ENOTTY'],
      // A stream_open'd file: no positioned I/O, no mmap, and a saving file is read-only.
      ['pread', () => p.pread(fd, 4, 0n), 'ESPIPE'],
      ['pread at 2^63-1', () => p.pread(fd, 4, (1n << 63n) - 1n), 'ESPIPE'],
      ['pwrite', () => p.pwrite(fd, new Uint8Array(4), 0n), 'EBADF'],
      ['write on a saving fd', () => p.write(fd, new Uint8Array(4)), 'EBADF'],
      // do_mmap: a shared writable map of a read-only file is EACCES before the missing mmap op (ENODEV).
      ['mmap read-write', () => p.mmap({ length: 4096, fd }), 'EACCES'],
      ['mmap read-only', () => p.mmap({ length: 4096, fd, prot: PROT_READ }), 'ENODEV'],
      // PRECOPY_INFO on files that are not data files.
      ['PRECOPY_INFO on the group', () => p.ioctl(s.group, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'ENOTTY'],
      ['PRECOPY_INFO on /dev/null', () => p.ioctl(s.devnull, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'ENOTTY'],
      ['PRECOPY_INFO on an eventfd', () => p.ioctl(s.ev, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'ENOTTY'],
      // ... and on the device it reaches the driver, which has no ioctl op.
      ['PRECOPY_INFO on the device', () => p.ioctl(d, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'EINVAL'],
      ['group request on the data fd', () => p.ioctl(fd, VFIO_GROUP_GET_STATUS, new Uint8Array(8).fill(8, 0, 1)), 'ENOTTY'],
      // vfio_mig_get_next_state: a state past the table, or one the device's flags do not support (ERROR).
      ['MIG_DEVICE_STATE 0xffffffff', () => p.ioctl(d, VFIO_DEVICE_FEATURE, migState(0xffffffff)), 'EINVAL'],
      ['MIG_DEVICE_STATE 8', () => p.ioctl(d, VFIO_DEVICE_FEATURE, migState(8)), 'EINVAL'],
      ['MIG_DEVICE_STATE ERROR', () => p.ioctl(d, VFIO_DEVICE_FEATURE, migState(VFIO_DEVICE_STATE_ERROR)), 'EINVAL'],
      ['MIG_DEVICE_STATE argsz short of the payload', () => p.ioctl(d, VFIO_DEVICE_FEATURE, migState(VFIO_DEVICE_STATE_STOP, 12)), 'EINVAL'],
      ['MIG_DEVICE_STATE buffer short of the payload', () => p.ioctl(d, VFIO_DEVICE_FEATURE, migState(VFIO_DEVICE_STATE_STOP).subarray(0, 12)), 'EFAULT'],
    ]);
  });

  it('a resuming fd: read is EBADF, positioned I/O ESPIPE, PRECOPY_INFO ENOTTY', () => {
    const s = setup();
    const { p, device: d } = s;
    setDeviceState(p, d, VFIO_DEVICE_STATE_STOP);
    const fd = setDeviceState(p, d, VFIO_DEVICE_STATE_RESUMING);
    const snapshot = (): string => json({ h: s.host.describe(), fds: p.fds(), state: getDeviceState(p, d) });
    runRows(snapshot, [
      ['read on a resuming fd', () => p.read(fd, 4), 'EBADF'],
      ['pread', () => p.pread(fd, 4, 0n), 'EBADF'],
      ['pwrite', () => p.pwrite(fd, new Uint8Array(4), 0n), 'ESPIPE'],
      ['PRECOPY_INFO', () => p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'ENOTTY'],
      // A write-only file cannot be mapped at all (do_mmap needs FMODE_READ).
      ['mmap', () => p.mmap({ length: 4096, fd, prot: PROT_READ }), 'EACCES'],
    ]);
  });

  it('PRECOPY_INFO outside PRE_COPY, and use after the device moved on or the fd was closed', () => {
    const s = setup();
    const { p, device: d } = s;
    const pre = setDeviceState(p, d, VFIO_DEVICE_STATE_PRE_COPY);
    setDeviceState(p, d, VFIO_DEVICE_STATE_RUNNING);
    // The device left PRE_COPY: drivers check the device state first (EINVAL), the session is gone for reads.
    const snapshot = (): string => json({ h: s.host.describe(), fds: p.fds(), state: getDeviceState(p, d) });
    runRows(snapshot, [
      ['PRECOPY_INFO on an ended session, device RUNNING', () => p.ioctl(pre, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'EINVAL'],
      ['read on an ended session', () => p.read(pre, 4), 'ENODEV'],
    ]);
    // In PRE_COPY again (a new session): the old file passes the state check and is stale (ENODEV).
    const pre2 = setDeviceState(p, d, VFIO_DEVICE_STATE_PRE_COPY);
    runRows(snapshot, [
      ['PRECOPY_INFO on a stale file, device in PRE_COPY again', () => p.ioctl(pre, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'ENODEV'],
    ]);
    expect(p.ioctl(pre2, VFIO_MIG_GET_PRECOPY_INFO, precopy(24))).toBe(0);
    setDeviceState(p, d, VFIO_DEVICE_STATE_STOP);
    const stopCopy = setDeviceState(p, d, VFIO_DEVICE_STATE_STOP_COPY);
    runRows(snapshot, [
      ['PRECOPY_INFO in STOP_COPY', () => p.ioctl(stopCopy, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'EINVAL'],
    ]);
    p.close(stopCopy);
    runRows(snapshot, [
      ['read after close', () => p.read(stopCopy, 4), 'EBADF'],
      ['PRECOPY_INFO after close', () => p.ioctl(stopCopy, VFIO_MIG_GET_PRECOPY_INFO, precopy(24)), 'EBADF'],
      ['mmap after close', () => p.mmap({ length: 4096, fd: stopCopy }), 'EBADF'],
      ['close after close', () => { p.close(stopCopy); }, 'EBADF'],
    ]);
    // The device itself is unharmed: the stream still completes.
    expect(getDeviceState(p, d)).toBe(VFIO_DEVICE_STATE_STOP_COPY);
    setDeviceState(p, d, VFIO_DEVICE_STATE_STOP);
    expect(getDeviceState(p, d)).toBe(VFIO_DEVICE_STATE_STOP);
  });

  it('fuzz: random requests, buffers and reads on a data fd throw only SysError; the session stays readable', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('ioctl' as const), n: fc.integer({ min: 0, max: 40 }), arg: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: -2, max: 0xffff })) }),
            fc.record({ kind: fc.constant('io' as const), op: fc.constantFrom('read', 'write', 'pread', 'pwrite', 'mmap'), n: fc.integer({ min: 0, max: 64 }) }),
          ),
          { maxLength: 25 },
        ),
        (actions) => {
          const s = setup();
          const { p, device: d } = s;
          const fd = setDeviceState(p, d, VFIO_DEVICE_STATE_PRE_COPY);
          for (const a of actions) {
            try {
              if (a.kind === 'ioctl') {
                // Never the device fd: that may legitimately move the state.
                p.ioctl(fd, (VFIO_TYPE << 8) | (100 + a.n), a.arg);
              } else if (a.op === 'read') {
                p.read(fd, a.n);
              } else if (a.op === 'write') {
                p.write(fd, new Uint8Array(a.n));
              } else if (a.op === 'pread') {
                p.pread(fd, a.n, BigInt(a.n));
              } else if (a.op === 'pwrite') {
                p.pwrite(fd, new Uint8Array(a.n), 0n);
              } else {
                p.mmap({ length: 4096, fd });
              }
            } catch (e) {
              if (!(e instanceof SysError)) throw e;
            }
          }
          expect(getDeviceState(p, d)).toBe(VFIO_DEVICE_STATE_PRE_COPY);
          const b = precopy(24);
          expect(p.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, b)).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});
