/**
 * The QEMU flow through the system-call surface (inventory §1.2, §1.3, §1.4): container, group, IOMMU backend,
 * device fd, and the device ops reached through read/write/ioctl/mmap.
 */
import { simPlatform } from '@vfio-ts/sim';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioGroupStatus,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { createHost } from '../src/index.js';
import { bindTo, cstr, expectErrno, fn, s32, TEST_BACKEND_IOCTL, TEST_DEVICE_IOCTL, testBackend, testDriver } from './helpers.js';

const BDF = '0000:00:03.0';

export function setup() {
  const backend = testBackend();
  const driver = testDriver();
  const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: fn() }] });
  const host = createHost({ platform, plugins: [backend.plugin, driver.plugin] });
  bindTo(platform, BDF);
  const groupId = platform.pci.device(BDF)!.iommuGroup!.id;
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n << 20n });
  return { backend, driver, platform, host, groupId, p };
}

function status(p: ReturnType<typeof setup>['p'], g: number): number {
  const st = vfioGroupStatus.encode({ argsz: vfioGroupStatus.size });
  expect(p.ioctl(g, VFIO_GROUP_GET_STATUS, st)).toBe(0);
  return vfioGroupStatus.decode(st).flags;
}

describe('the QEMU flow', () => {
  it('opens container, group and device, and reaches the driver ops', () => {
    const { backend, driver, groupId, p, host } = setup();
    const c = p.open('/dev/vfio/vfio');
    expect(c).toBe(3);
    expect(p.ioctl(c, VFIO_GET_API_VERSION)).toBe(VFIO_API_VERSION);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU)).toBe(0);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU)).toBe(0);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, 9999)).toBe(0);

    const g = p.open(`/dev/vfio/${groupId}`);
    expect(g).toBe(4);
    expect(status(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE);
    // SET_IOMMU needs a group first (§1.2).
    expectErrno(() => p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'EINVAL');
    // GET_DEVICE_FD needs a container (§1.3).
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(BDF)), 'EINVAL');

    expect(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c))).toBe(0);
    expect(status(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    // Container set, no IOMMU yet: the device cannot be opened (vfio_group_use_container).
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(BDF)), 'EINVAL');
    // Unknown container ioctls without a backend are EINVAL, not ENOTTY.
    expectErrno(() => p.ioctl(c, TEST_BACKEND_IOCTL), 'EINVAL');

    expect(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect(backend.log.events).toEqual(['open 3', `attach ${groupId}`]);
    expectErrno(() => p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'EINVAL');
    // After selection the backend answers extensions and its own ioctls.
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(p.ioctl(c, TEST_BACKEND_IOCTL)).toBe(43);

    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(BDF));
    expect(d).toBe(5);
    const dev = driver.devices.get(BDF)!;
    expect(dev.openCount).toBe(1);
    expect(dev.data.opens).toBe(1);
    expect(backend.log.events).toContain(`register ${BDF}`);

    // pwrite/pread reach the driver at 64-bit offsets; write/read use the file position.
    const off = 7n << 40n;
    expect(p.pwrite(d, new Uint8Array([1, 2, 3]), off)).toBe(3);
    expect([...p.pread(d, 3, off)]).toEqual([1, 2, 3]);
    expect(p.write(d, new Uint8Array([9]))).toBe(1);
    expect([...p.pread(d, 1, 0n)]).toEqual([9]);
    expect(p.ioctl(d, TEST_DEVICE_IOCTL)).toBe(0);
    expect(driver.trace).toContain(`reset ${BDF}`);
    // The driver's ENOTTY passes through, with bytes it copied out left in place.
    const arg = new Uint8Array(4);
    expectErrno(() => p.ioctl(d, 0x3b00 + 100 + 40, arg), 'ENOTTY');
    expect(arg[0]).toBe(0xaa);

    // A device mapping is served by the driver's mmap op and keeps the file open after close.
    const va = p.mmap({ length: 4096, fd: d, offset: 0n });
    expect(va).toBeGreaterThanOrEqual(0x10000n);
    p.memory.write(va + 8n, new Uint8Array([0x55]));
    expect([...p.pread(d, 1, 8n)]).toEqual([0x55]);
    p.close(d);
    expect(dev.openCount).toBe(1);
    p.munmap(va, 4096n);
    expect(dev.openCount).toBe(0);
    expect(dev.data.closes).toBe(1);
    expect(backend.log.events).toContain(`unregister ${BDF}`);

    // A second open of the group node is EBUSY; the group is single-opener.
    expectErrno(() => p.open(`/dev/vfio/${groupId}`), 'EBUSY');
    expect(host.describe().groups).toHaveLength(1);

    // UNSET_CONTAINER releases the backend with the last group.
    expect(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
    expect(backend.log.events.slice(-2)).toEqual([`detach ${groupId}`, 'release']);
    expect(status(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE);
    expectErrno(() => p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 'EINVAL');
  });

  it('keeps the group busy while a device is open, and notifies the backend on container close', () => {
    const { backend, groupId, p, driver } = setup();
    const c = p.open('/dev/vfio/vfio');
    const g = p.open(`/dev/vfio/${groupId}`);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(BDF));
    const d2 = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(BDF));
    const dev = driver.devices.get(BDF)!;
    expect(dev.openCount).toBe(2);
    expect(dev.data.opens).toBe(1);
    expectErrno(() => p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 'EBUSY');
    // Closing the group and container fds: the device still pins the group file, the group pins the container.
    p.close(g);
    p.close(c);
    expect(backend.log.events).toContain('notify container-close');
    expect(backend.log.events).not.toContain('release');
    expect(p.ioctl(d, TEST_DEVICE_IOCTL)).toBe(0);
    p.close(d);
    expect(backend.log.events).not.toContain('release');
    p.close(d2);
    expect(dev.data.closes).toBe(1);
    expect(backend.log.events.slice(-3)).toEqual([`unregister ${BDF}`, `detach ${groupId}`, 'release']);
    // The group can be opened again now.
    expect(p.open(`/dev/vfio/${groupId}`)).toBe(3);
  });

  it('unwinds SET_IOMMU when attaching a group fails, and tries the next backend', () => {
    const first = testBackend(undefined, 'first');
    const second = testBackend(undefined, 'second');
    const driver = testDriver();
    const platform = simPlatform({
      iommu: 'vtd',
      devices: [
        { bdf: BDF, fn: fn() },
        { bdf: '0000:00:04.0', fn: fn() },
      ],
    });
    // Registered later = polled first (Linux list_add): `second` is tried first.
    const host = createHost({ platform, plugins: [first.plugin, second.plugin, driver.plugin] });
    bindTo(platform, BDF);
    bindTo(platform, '0000:00:04.0');
    const p = host.spawn({ uid: 0 });
    const c = p.open('/dev/vfio/vfio');
    const ga = p.open(`/dev/vfio/${platform.pci.device(BDF)!.iommuGroup!.id}`);
    const gb = p.open(`/dev/vfio/${platform.pci.device('0000:00:04.0')!.iommuGroup!.id}`);
    p.ioctl(ga, VFIO_GROUP_SET_CONTAINER, s32(c));
    p.ioctl(gb, VFIO_GROUP_SET_CONTAINER, s32(c));
    second.log.failAttach = 'ENOSPC';
    expect(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    // `second` opened, failed on the first attach, released; `first` took the container.
    expect(second.log.events).toEqual(['open 3', 'release']);
    expect(first.log.events).toEqual(['open 3', expect.stringMatching(/^attach/), expect.stringMatching(/^attach/)]);
    const desc = host.describe().containers[0] as { backend: string };
    expect(desc.backend).toBe('first');

    // When every backend fails, the last error is returned and nothing stays selected.
    const c2 = p.open('/dev/vfio/vfio');
    p.ioctl(ga, VFIO_GROUP_UNSET_CONTAINER);
    p.ioctl(ga, VFIO_GROUP_SET_CONTAINER, s32(c2));
    second.log.failAttach = 'ENOSPC';
    first.log.failAttach = 'EPERM';
    expectErrno(() => p.ioctl(c2, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'EPERM');
    expectErrno(() => p.ioctl(c2, TEST_BACKEND_IOCTL), 'EINVAL');
    // No backend answers type 2: ENODEV.
    expectErrno(() => p.ioctl(c2, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), 'ENODEV');
    expect(p.ioctl(c2, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
  });
});
