/**
 * Bad input at the entry points of an mdev's VFIO device and emulated group (common rules): short argsz, unknown
 * flags, overflow and wrap, wrong fd types and use after close / after the mdev was removed. Each row checks the
 * errno Linux 6.12 gives (vfio_device_fops_unl_ioctl and friends for a driver without the op, vfio_group_fops,
 * type1's emulated-IOMMU path), that the error is a SysError, and that the pinned pages, locked memory, mappings
 * and open counts are as they were.
 */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { HostPlugin } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE,
  VFIO_TYPE1v2_IOMMU,
  vfioDeviceFeature,
  vfioGroupStatus,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { registerMdevParent } from '../src/index.js';
import { echo, echoAsync, groupOf, MTEST_TYPES, mtestDriver, mtestLog, settle } from './helpers.js';

const U1 = '11111111-2222-3333-4444-555555555555';
const TYPES = '/sys/devices/virtual/mtest/mtest/mdev_supported_types';
const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

type Row = readonly [name: string, call: () => unknown, errno: string];

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

function s32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

const map = (iova: bigint, vaddr: bigint, size: bigint, flags = RW): Uint8Array =>
  vfioIommuType1DmaMap.encode({ argsz: 32, flags, vaddr, iova, size });

/** An mdev opened the QEMU way, 16 KiB mapped at 1 MiB and two pages pinned by its vendor driver. */
function setup() {
  const log = mtestLog();
  const plugin: HostPlugin = {
    name: 'mtest',
    setup(api) {
      registerMdevParent(api, { parent: { virtual: { class: 'mtest', name: 'mtest' } }, driver: mtestDriver(log), types: MTEST_TYPES });
    },
  };
  const host = createHost({ platform: simPlatform(), plugins: [type1(), plugin] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_RAWIO', 'CAP_DAC_OVERRIDE'], memlockLimit: 64n << 20n });
  echo(p, `${TYPES}/mtest-a/create`, U1);
  const fds = openVfioDevice(p, { group: groupOf(p, U1), device: U1, iommuType: VFIO_TYPE1v2_IOMMU });
  const va = p.mmap({ length: 0x4000 });
  p.ioctl(fds.container, VFIO_IOMMU_MAP_DMA, map(0x100000n, va, 0x4000n));
  const dev = log.devices.get(U1)!;
  dev.pinPages(0x101000n, 2, RW);
  dev.data.pins.set(0x101000n, 1);
  dev.data.pins.set(0x102000n, 1);
  const devnull = p.open('/dev/null');
  const ev = p.eventfd(0);
  const snapshot = (): string => json({ h: host.describe(), fds: p.fds(), pins: [...dev.data.pins], unmaps: log.unmaps.length });
  return { host, p, log, dev, va, devnull, ev, snapshot, ...fds };
}

describe('mdev device and group: bad input', () => {
  it('device fd: short argsz, unknown flags, overflow, absent driver ops', () => {
    const s = setup();
    const { p, device: d } = s;
    const feature = (flags: number, argsz: number, extra = 8): Uint8Array => {
      const b = new Uint8Array(8 + extra);
      vfioDeviceFeature.write(b, { argsz, flags });
      return b;
    };
    runRows(s.snapshot, [
      ['FEATURE argsz 7', () => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, 7)), 'EINVAL'],
      ['FEATURE 4-byte buffer', () => p.ioctl(d, VFIO_DEVICE_FEATURE, new Uint8Array(4)), 'EFAULT'],
      ['FEATURE unknown flag bit', () => p.ioctl(d, VFIO_DEVICE_FEATURE, feature((1 << 21) | VFIO_DEVICE_FEATURE_GET, 16)), 'EINVAL'],
      ['FEATURE GET|SET', () => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET | 0xfff0, 16)), 'EINVAL'],
      // Without the migration() plugin the MIGRATION index falls to the driver's device_feature op, which this
      // driver lacks (EINVAL; Linux, whose core always knows MIGRATION, says ENOTTY — see migration's tests).
      ['FEATURE MIGRATION without the plugin', () => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, 16)), 'EINVAL'],
      ['FEATURE index 0xffff', () => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_GET | 0xffff, 16)), 'EINVAL'],
      // The vendor driver has no ioctl/read/write/mmap: the core answers EINVAL for each.
      ['GET_INFO without an ioctl op', () => p.ioctl(d, VFIO_DEVICE_GET_INFO, new Uint8Array(24).fill(24, 0, 1)), 'EINVAL'],
      ['SET_IRQS without an ioctl op', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, new Uint8Array(24)), 'EINVAL'],
      ['RESET without an ioctl op', () => p.ioctl(d, VFIO_DEVICE_RESET), 'EINVAL'],
      ['pread without a read op', () => p.pread(d, 4, 0n), 'EINVAL'],
      ['pwrite without a write op', () => p.pwrite(d, new Uint8Array(4), 0n), 'EINVAL'],
      ['pread at a negative offset', () => p.pread(d, 4, -1n), 'EINVAL'],
      ['mmap without an mmap op', () => p.mmap({ length: 0x1000, fd: d }), 'EINVAL'],
      ['BIND_IOMMUFD on a group-opened mdev', () => p.ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, new Uint8Array(24).fill(24, 0, 1)), 'EINVAL'],
    ]);
  });

  it('the emulated container: overflow, wrap and unaligned ranges leave pins and mappings alone', () => {
    const s = setup();
    const { p, container: c } = s;
    const top = 1n << 64n;
    runRows(s.snapshot, [
      ['MAP_DMA iova wraps', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(top - 0x1000n, s.va, 0x2000n)), 'EINVAL'],
      ['MAP_DMA vaddr wraps', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x200000n, top - 0x1000n, 0x2000n)), 'EINVAL'],
      ['MAP_DMA overlapping', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x103000n, s.va, 0x2000n)), 'EEXIST'],
      ['UNMAP_DMA wraps', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaUnmap.encode({ argsz: 24, iova: top - 0x1000n, size: 0x2000n })), 'EINVAL'],
      ['UNMAP_DMA bisecting the pinned mapping', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaUnmap.encode({ argsz: 24, iova: 0x101000n, size: 0x1000n })), 'EINVAL'],
      ['UNMAP_DMA unknown flag', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: 0x100, iova: 0x100000n, size: 0x4000n })), 'EINVAL'],
    ]);
  });

  it('wrong fd types on the mdev group and device', () => {
    const s = setup();
    const { p, group: g, device: d } = s;
    runRows(s.snapshot, [
      ['GET_DEVICE_FD of an unknown UUID', () => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\0')), 'ENODEV'],
      ['GET_DEVICE_FD of garbage', () => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode('../../x\0')), 'ENODEV'],
      ['SET_CONTAINER with an eventfd (group already attached)', () => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(s.ev)), 'EINVAL'],
      ['MAP_DMA on the mdev group', () => p.ioctl(g, VFIO_IOMMU_MAP_DMA, map(0x200000n, s.va, 0x1000n)), 'ENOTTY'],
      ['MAP_DMA on the mdev device', () => p.ioctl(d, VFIO_IOMMU_MAP_DMA, map(0x200000n, s.va, 0x1000n)), 'EINVAL'],
      ['GROUP_GET_STATUS on the mdev device', () => p.ioctl(d, VFIO_GROUP_GET_STATUS, vfioGroupStatus.encode({ argsz: 8 })), 'EINVAL'],
      // 117 on a type1 container is DIRTY_PAGES: the GET bit (1 << 16) is an unknown DIRTY_PAGES flag.
      ['FEATURE on the container (= DIRTY_PAGES)', () => p.ioctl(s.container, VFIO_DEVICE_FEATURE, vfioDeviceFeature.encode({ argsz: 8, flags: VFIO_DEVICE_FEATURE_GET })), 'EINVAL'],
      ['GET_INFO on /dev/null', () => p.ioctl(s.devnull, VFIO_DEVICE_GET_INFO, new Uint8Array(24)), 'ENOTTY'],
    ]);
  });

  it('use after close, and after the mdev was removed', async () => {
    const s = setup();
    const { p, group: g, device: d, host } = s;
    // Closing the device makes the vendor driver drop its pins (close_device); the fd is then EBADF.
    p.close(d);
    await settle();
    expect(s.dev.data.pins.size).toBe(0);
    runRows(s.snapshot, [
      ['FEATURE after close', () => p.ioctl(d, VFIO_DEVICE_FEATURE, vfioDeviceFeature.encode({ argsz: 8, flags: VFIO_DEVICE_FEATURE_GET })), 'EBADF'],
      ['pread after close', () => p.pread(d, 4, 0n), 'EBADF'],
      ['mmap after close', () => p.mmap({ length: 0x1000, fd: d }), 'EBADF'],
      ['close after close', () => { p.close(d); }, 'EBADF'],
    ]);
    await echoAsync(p, `/sys/bus/mdev/devices/${U1}/remove`, '1');
    await settle();
    // The mdev is gone: its emulated group has no device and answers ENODEV, as vfio_group_ioctl_get_status does
    // once group->iommu_group is cleared.
    rejects(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${U1}\0`)), 'ENODEV');
    rejects(() => p.ioctl(g, VFIO_GROUP_GET_STATUS, vfioGroupStatus.encode({ argsz: 8 })), 'ENODEV');
    expect(host.describe().processes[0]!.lockedPages).toBe(0);
  });

  it('fuzz: random VFIO requests and buffers on the mdev fds throw only SysError; the pins stay', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3), fc.integer({ min: 0, max: 40 }), fc.oneof(fc.uint8Array({ maxLength: 48 }), fc.integer({ min: -2, max: 0xffff }), fc.constant(undefined))), { maxLength: 25 }),
        (calls) => {
          const s = setup();
          const targets = [s.device, s.group, s.container, s.ev];
          for (const [t, n, arg] of calls) {
            // UNSET_CONTAINER (105) and UNMAP_DMA (114 on the container) legitimately change state.
            if (n === 5 || (t === 2 && n === 14)) continue;
            const before = s.snapshot();
            try {
              s.p.ioctl(targets[t]!, (VFIO_TYPE << 8) | (100 + n), arg);
            } catch (e) {
              if (!(e instanceof SysError)) throw e;
              // A refused call changes nothing.
              expect(s.snapshot()).toBe(before);
            }
          }
          expect(s.dev.data.pins.size).toBe(2);
          rejects(() => s.p.ioctl(s.container, VFIO_IOMMU_MAP_DMA, map(0x100000n, s.va, 0x1000n)), 'EEXIST');
        },
      ),
      { numRuns: 50 },
    );
  });
});
