/**
 * Last close is synchronous (vfio_device_fops_release → vfio_df_close, inventory §2.7 step 4): the IOMMU "unuse"
 * is done when close(2) returns even if the driver's closeDevice leaves deferred cleanup; software groups go with
 * their last device; describe()'s `viable` is GET_STATUS's VIABLE; preadInto is pread into a caller's buffer.
 */
import { simPlatform } from '@vfio-ts/sim';
import {
  isSysError,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioGroupStatus,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost, O_WRONLY } from '../src/index.js';
import { bindTo, cstr, expectErrno, fn, s32, testBackend, testDriver } from './helpers.js';

const A = '0000:00:03.0';

function make(options: { emulated?: boolean } = {}) {
  const backend = testBackend();
  const driver = testDriver(options.emulated === true ? { emulated: true } : {});
  const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
  const host = createHost({ platform, plugins: [backend.plugin, driver.plugin] });
  return { backend, driver, platform, host };
}

function openA(m: ReturnType<typeof make>) {
  bindTo(m.platform, A);
  const p = m.host.spawn({ uid: 0 });
  const c = p.open('/dev/vfio/vfio');
  const gid = m.driver.devices.get(A)!.group!.id;
  const g = p.open(`/dev/vfio/${gid}`);
  p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
  p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  return { p, c, g, gid, da: m.driver.devices.get(A)! };
}

function status(p: { ioctl(fd: number, req: number, arg?: Uint8Array): number }, g: number): number {
  const st = vfioGroupStatus.encode({ argsz: 8 });
  p.ioctl(g, VFIO_GROUP_GET_STATUS, st);
  return vfioGroupStatus.decode(st).flags;
}

describe('last close with deferred driver cleanup', () => {
  it('releases the container at once: an immediate UNSET_CONTAINER succeeds; a re-open waits for the cleanup', async () => {
    const m = make();
    const { p, c, g, da } = openA(m);
    da.data.closeDelay = 20;
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    p.close(fd);
    // The IOMMU side is done when close returns (container_users back to 1, backend told).
    expect(m.backend.log.events.filter((e) => e.includes(A))).toEqual([`register ${A}`, `unregister ${A}`]);
    expect(da.openCount).toBe(0);
    expect(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
    expect(m.host.describe().groups[0]).toMatchObject({ container: null, containerUsers: 0 });
    // The driver's deferred part still holds the set lock: a synchronous open answers EBUSY, an async one waits.
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    expect(da.deviceSet!.lock.locked).toBe(true);
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'EBUSY');
    const again = await p.ioctlAsync(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expect(m.driver.trace).toEqual([`open ${A}`, `opened ${A}`, `close ${A}`, `closed ${A}`, `open ${A}`, `opened ${A}`]);
    expect(da.openCount).toBe(1);
    expectErrno(() => p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER), 'EBUSY');
    p.close(again);
    expect(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
    await p.sleep(30);
    expect(da.deviceSet!.lock.locked).toBe(false);
  });

  it('unregister still waits for the deferred cleanup before the device goes away', async () => {
    const m = make();
    const { p, g, da } = openA(m);
    da.data.closeDelay = 20;
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    p.close(fd);
    p.close(g);
    const done = m.platform.pci.unbind(A);
    await p.sleep(5);
    // The registration reference of the closed file goes only when the driver's cleanup settled.
    expect(da.state).toBe('unregistering');
    expect(m.driver.trace).not.toContain(`closed ${A}`);
    await done;
    expect(m.driver.trace.at(-1)).toBe(`closed ${A}`);
    expect(da.state).toBe('released');
  });
});

describe('software IOMMU groups', () => {
  it('an emulated group is freed with its last device: sysfs drops it and the number is reused', async () => {
    const m = make({ emulated: true });
    const p = m.host.spawn({ uid: 0 });
    const before = p.readdir('/sys/kernel/iommu_groups');
    let firstGid: number | undefined;
    for (let round = 0; round < 3; round++) {
      bindTo(m.platform, A);
      const d = m.driver.devices.get(A)!;
      const gid = d.group!.id;
      expect(d.group!.type).toBe('emulated-iommu');
      expect(p.readdir('/sys/kernel/iommu_groups')).toContain(String(gid));
      expect(p.readdir('/dev/vfio')).toContain(String(gid));
      await m.platform.pci.unbind(A);
      expect(p.readdir('/sys/kernel/iommu_groups')).toEqual(before);
      expect(m.platform.iommuGroup(gid)).toBeUndefined();
      expect(p.readdir('/dev/vfio')).not.toContain(String(gid));
      // Reused: the next round's group gets the same (lowest free) number.
      if (round > 0) expect(gid).toBe(firstGid);
      firstGid ??= gid;
    }
  });
});

describe('describe().groups[].viable', () => {
  it('matches GET_STATUS VIABLE: before attach, while a container is attached, after detach', () => {
    const m = make();
    bindTo(m.platform, A);
    const p = m.host.spawn({ uid: 0 });
    const gid = m.driver.devices.get(A)!.group!.id;
    const g = p.open(`/dev/vfio/${gid}`);
    const viable = (): boolean => (m.host.describe().groups as { id: number; viable: boolean }[]).find((x) => x.id === gid)!.viable;
    const flagged = (): boolean => (status(p, g) & VFIO_GROUP_FLAGS_VIABLE) !== 0;
    expect([viable(), flagged()]).toEqual([true, true]);
    const c = p.open('/dev/vfio/vfio');
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    // SET_CONTAINER claimed the group's DMA ownership, yet GET_STATUS says VIABLE (and so does describe).
    expect([viable(), flagged()]).toEqual([true, true]);
    p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER);
    expect([viable(), flagged()]).toEqual([true, true]);
  });
});

describe('Process.preadInto', () => {
  it('equals pread on a driver without readInto (read + copy), for random offsets and lengths', () => {
    const m = make();
    const { p, g, da } = openA(m);
    for (let i = 0; i < 64; i++) da.data.regs.set(BigInt(i), (i * 37 + 5) & 0xff);
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 4 }), (off, len, slack) => {
        const buf = new Uint8Array(len + slack).fill(0xee);
        const n = p.preadInto(fd, buf.subarray(0, len), BigInt(off));
        expect(n).toBe(len);
        expect([...buf.subarray(0, n)]).toEqual([...p.pread(fd, len, BigInt(off))]);
        // Nothing past the caller's view is touched.
        expect(buf.subarray(len).every((b) => b === 0xee)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('answers the errno pread answers', () => {
    const m = make();
    const { p, c, g } = openA(m);
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    const buf = new Uint8Array(4);
    const errnoOf = (f: () => unknown): string => {
      try {
        f();
        return 'ok';
      } catch (e) {
        if (!isSysError(e)) throw e;
        return e.errno;
      }
    };
    const wronly = p.open(`/sys/bus/pci/drivers/vfio-test/bind`, O_WRONLY);
    const efd = p.eventfd(0);
    const cases: [number, bigint][] = [
      [999, 0n], // EBADF
      [-1, 0n], // EBADF
      [wronly, 0n], // EBADF: not open for reading
      [c, 0n], // EINVAL: the container has no read operation
      [efd, 0n], // ESPIPE
      [fd, -1n], // EINVAL: negative offset
      [fd, 4n], // ok
    ];
    for (const [f, off] of cases) {
      expect(errnoOf(() => p.preadInto(f, buf, off)), `fd ${f} @ ${off}`).toBe(errnoOf(() => p.pread(f, 4, off)));
    }
    expect(errnoOf(() => p.preadInto(999, buf, 0n))).toBe('EBADF');
    expect(errnoOf(() => p.preadInto(fd, buf, -1n))).toBe('EINVAL');
    expect(p.preadInto(fd, new Uint8Array(0), 0n)).toBe(0);
  });

  it('a driver without read is EINVAL through preadInto too', () => {
    const backend = testBackend();
    const driver = testDriver({ without: ['read'] });
    const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({ platform, plugins: [backend.plugin, driver.plugin] });
    const { p, g } = openA({ backend, driver, platform, host });
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expectErrno(() => p.preadInto(fd, new Uint8Array(4), 0n), 'EINVAL');
    expectErrno(() => p.pread(fd, 4, 0n), 'EINVAL');
  });
});
