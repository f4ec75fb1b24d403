/**
 * Bad input at every entry point: short argsz, unknown flags, wrapping counts, wrong fd types, use after close.
 * Each is the errno Linux gives, and nothing already open changes.
 */
import { EFD_NONBLOCK } from '@vfio-ts/platform';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioDeviceFeature,
  vfioGroupStatus,
} from '@vfio-ts/uapi';
import { simPlatform } from '@vfio-ts/sim';
import { describe, expect, it } from 'vitest';
import { checkFeature, createHost, O_RDONLY } from '../src/index.js';
import type { VfioDeviceOps } from '../src/index.js';
import { bindTo, cstr, expectErrno, fn, s32, TEST_DEVICE_IOCTL, testBackend, testDriver } from './helpers.js';

const A = '0000:00:03.0';

function make(without: readonly (keyof VfioDeviceOps)[] = []) {
  const driver = testDriver({ without });
  const seen: { flags: number; dataSize: number; data: number }[] = [];
  const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
  const host = createHost({
    platform,
    plugins: [
      testBackend().plugin,
      driver.plugin,
      {
        name: 'feature-3',
        setup(api) {
          api.registerFeatureHandler(3, (_dev, flags, data, dataSize) => {
            if (!checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET, 4)) return 0;
            seen.push({ flags, dataSize, data: data[0] ?? -1 });
            data[0] = 0x77;
            return 0;
          });
          expectErrno(() => api.registerFeatureHandler(3, () => 0), 'EEXIST');
        },
      },
    ],
  });
  bindTo(platform, A);
  const gid = platform.pci.device(A)!.iommuGroup!.id;
  const p = host.spawn({ uid: 0 });
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${gid}`);
  return { driver, platform, host, p, c, g, gid, seen };
}

function feature(flags: number, argsz: number, extra = 8): Uint8Array {
  const b = new Uint8Array(vfioDeviceFeature.size + extra);
  vfioDeviceFeature.write(b, { argsz, flags });
  return b;
}

describe('bad input', () => {
  it('group ioctls: short argsz, short buffers, bad fds and wrong fd types', () => {
    const { p, c, g } = make();
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_STATUS, vfioGroupStatus.encode({ argsz: 4 })), 'EINVAL');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_STATUS, new Uint8Array(4)), 'EFAULT');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_STATUS), 'EFAULT');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(99)), 'EBADF');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(-1)), 'EBADF');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(p.open('/dev/null'))), 'EBADFD');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(g)), 'EBADFD');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, new Uint8Array(2)), 'EFAULT');
    // A number is a pointer: fd 3 as an address is unmapped memory.
    expectErrno(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, c), 'EFAULT');
    expectErrno(() => p.ioctl(g, 0x3b00 + 100 + 30), 'ENOTTY');
    // Nothing changed: still viable, no container.
    const st = vfioGroupStatus.encode({ argsz: 8 });
    p.ioctl(g, VFIO_GROUP_GET_STATUS, st);
    expect(vfioGroupStatus.decode(st).flags).toBe(VFIO_GROUP_FLAGS_VIABLE);

    // Pointers into the process's memory work as on Linux.
    const va = p.mmap({ length: 4096 });
    p.memory.write(va, s32(c));
    expect(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, va)).toBe(0);
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    p.memory.write(va + 100n, cstr(A));
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, va + 100n);
    expect(d).toBeGreaterThan(0);
    // GET_STATUS through a pointer writes the flags back into memory.
    p.memory.write(va + 200n, vfioGroupStatus.encode({ argsz: 8 }));
    p.ioctl(g, VFIO_GROUP_GET_STATUS, va + 200n);
    expect(vfioGroupStatus.decode(p.memory.read(va + 200n, 8)).flags).toBe(3);

    // Device names: unknown → ENODEV; unterminated within a page → EINVAL; buffer ends before NUL → EFAULT.
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr('0000:00:09.0')), 'ENODEV');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new Uint8Array(4096).fill(0x41)), 'EINVAL');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(A)), 'EFAULT');
    p.memory.write(va, new Uint8Array(4096).fill(0x41));
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, va), 'EINVAL');
  });

  it('container ioctls: by-value arguments and unknown requests', () => {
    const { p, c, g } = make();
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, 0xffffffff)).toBe(0);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, new Uint8Array(8))).toBe(0);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    expectErrno(() => p.ioctl(c, VFIO_SET_IOMMU, new Uint8Array(8)), 'ENODEV');
    expectErrno(() => p.ioctl(c, VFIO_SET_IOMMU, -1), 'ENODEV');
    expectErrno(() => p.ioctl(c, 0x1234), 'EINVAL');
  });

  it('VFIO_DEVICE_FEATURE header checks and dispatch by index', () => {
    const { p, c, g, seen } = make();
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | 3, 4)), 'EINVAL');
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, feature((1 << 19) | 3, 16)), 'EINVAL');
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | 3, 16)), 'EINVAL');
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, new Uint8Array(4)), 'EFAULT');
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, 0), 'EFAULT');
    // GET|SET with PROBE is allowed; the handler's checkFeature answers the probe.
    expect(p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | 3, 8))).toBe(0);
    expect(seen).toEqual([]);
    // Neither GET nor SET: EINVAL from checkFeature; data shorter than the feature needs: EINVAL.
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(3, 16)), 'EINVAL');
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | 3, 10)), 'EINVAL');
    const buf = feature(VFIO_DEVICE_FEATURE_SET | 3, 16);
    buf[8] = 5;
    expect(p.ioctl(d, VFIO_DEVICE_FEATURE, buf)).toBe(0);
    expect(seen).toEqual([{ flags: VFIO_DEVICE_FEATURE_SET | 3, dataSize: 8, data: 5 }]);
    expect(buf[8]).toBe(0x77);
    // An index nobody handles and a driver without device_feature: EINVAL.
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_GET | 200, 16)), 'EINVAL');
    // BIND_IOMMUFD is for cdev fds only.
    expectErrno(() => p.ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, new Uint8Array(24)), 'EINVAL');
    // Use after close.
    p.close(d);
    expectErrno(() => p.ioctl(d, TEST_DEVICE_IOCTL), 'EBADF');
    expectErrno(() => {
      p.close(d);
    }, 'EBADF');
    expectErrno(() => p.read(d, 1), 'EBADF');
  });

  it('absent driver ops are EINVAL; files without ioctls are ENOTTY', () => {
    const { p, c, g } = make(['read', 'write', 'mmap', 'ioctl']);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expectErrno(() => p.pread(d, 4, 0n), 'EINVAL');
    expectErrno(() => p.pwrite(d, new Uint8Array(4), 0n), 'EINVAL');
    expectErrno(() => p.ioctl(d, TEST_DEVICE_IOCTL), 'EINVAL');
    expectErrno(() => p.mmap({ length: 4096, fd: d }), 'EINVAL');
    expect(p.file(d).refs).toBe(1);
    const n = p.open('/dev/null');
    expectErrno(() => p.ioctl(n, 1), 'ENOTTY');
    const e = p.eventfd(0, EFD_NONBLOCK);
    expectErrno(() => p.ioctl(e, 1), 'ENOTTY');
    const s = p.open(`/sys/module/vfio/parameters/enable_unsafe_noiommu_mode`, O_RDONLY);
    expectErrno(() => p.ioctl(s, 1), 'ENOTTY');
    expectErrno(() => p.write(s, new Uint8Array(1)), 'EBADF');
    expectErrno(() => p.pread(e, 8, 0n), 'ESPIPE');
    // Container and group nodes are positional char devices without read/write ops (Linux: EINVAL, not ESPIPE).
    for (const f of [c, g]) {
      expectErrno(() => p.pread(f, 8, 0n), 'EINVAL');
      expectErrno(() => p.pwrite(f, new Uint8Array(8), 0n), 'EINVAL');
      expectErrno(() => p.read(f, 8), 'EINVAL');
    }
  });

  it('mmap and open argument checks', () => {
    const { p, c, g } = make();
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expectErrno(() => p.mmap({ length: 0 }), 'EINVAL');
    expectErrno(() => p.mmap({ length: 4096, fd: d, offset: 100n }), 'EINVAL');
    expectErrno(() => p.mmap({ length: 4096, fd: c }), 'ENODEV');
    expectErrno(() => p.mmap({ length: 4096, fd: d, shared: false }), 'EINVAL');
    expectErrno(() => p.mmap({ length: 4096, fd: 77 }), 'EBADF');
    expect(p.file(d).refs).toBe(1);
    expectErrno(() => p.open('/dev/vfio/nope'), 'ENOENT');
    expectErrno(() => p.open('/dev/vfio/vfio/x'), 'ENOTDIR');
    expectErrno(() => p.open('dev/null'), 'ENOENT');
    expectErrno(() => p.open('/dev/null', 3), 'EINVAL');
    expectErrno(() => p.open('/sys/module', 2), 'EISDIR');
  });
});
