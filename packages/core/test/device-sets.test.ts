/**
 * Device sets and the device life cycle (inventory §2.6, §2.7): first open → openDevice, last close →
 * closeDevice, the set's open count is the sum of its members', opens on one set never interleave, and
 * unregister waits for the last user while re-sending request().
 */
import { simPlatform } from '@vfio-ts/sim';
import {
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
import { createHost } from '../src/index.js';
import { bindTo, cstr, expectErrno, expectErrnoAsync, fn, s32, TEST_DEVICE_IOCTL, testBackend, testDriver } from './helpers.js';

const A = '0000:00:03.0';
const B = '0000:00:04.0';

function make(sameSet = true) {
  const backend = testBackend();
  const driver = testDriver(sameSet ? { setId: () => 'bus0' } : {});
  const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }, { bdf: B, fn: fn() }] });
  const host = createHost({ platform, plugins: [backend.plugin, driver.plugin] });
  bindTo(platform, A);
  bindTo(platform, B);
  const p = host.spawn({ uid: 0 });
  const c = p.open('/dev/vfio/vfio');
  const ga = p.open(`/dev/vfio/${platform.pci.device(A)!.iommuGroup!.id}`);
  const gb = p.open(`/dev/vfio/${platform.pci.device(B)!.iommuGroup!.id}`);
  p.ioctl(ga, VFIO_GROUP_SET_CONTAINER, s32(c));
  p.ioctl(gb, VFIO_GROUP_SET_CONTAINER, s32(c));
  p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  const da = driver.devices.get(A)!;
  const db = driver.devices.get(B)!;
  return { backend, driver, platform, host, p, c, ga, gb, da, db };
}

describe('device sets', () => {
  it('two devices with one set id share the set; open/close ops run on first open and last close only', () => {
    const { driver, p, ga, gb, da, db } = make();
    const set = driver.api().deviceSet('bus0')!;
    expect(set.devices.map((d) => d.name)).toEqual([A, B]);
    expect(da.set).toBe(set);
    const a1 = p.ioctl(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    const a2 = p.ioctl(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    const b1 = p.ioctl(gb, VFIO_GROUP_GET_DEVICE_FD, cstr(B));
    expect([da.data.opens, db.data.opens]).toEqual([1, 1]);
    expect(set.openCount).toBe(3);
    p.close(a1);
    expect(da.data.closes).toBe(0);
    expect(set.openCount).toBe(2);
    p.close(a2);
    expect(da.data.closes).toBe(1);
    expect(set.openCount).toBe(1);
    p.close(b1);
    expect(db.data.closes).toBe(1);
    expect(set.openCount).toBe(0);
  });

  it('without a set id each device gets a singleton set', () => {
    const { da, db } = make(false);
    expect(da.set).not.toBe(db.set);
    expect(da.set!.id).toBe(da);
  });

  it('serializes asynchronous opens on one set and refuses a synchronous open meanwhile', async () => {
    const { driver, p, ga, gb, da, db } = make();
    da.data.openDelay = 100;
    db.data.openDelay = 100;
    const fds = await Promise.all([
      p.ioctlAsync(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A)),
      p.ioctlAsync(gb, VFIO_GROUP_GET_DEVICE_FD, cstr(B)),
      (async () => {
        // While A's open_device runs, the set lock is held: a synchronous open cannot wait for it.
        await Promise.resolve();
        expectErrno(() => p.ioctl(gb, VFIO_GROUP_GET_DEVICE_FD, cstr(B)), 'EBUSY');
        return -1;
      })(),
    ]);
    expect(driver.trace).toEqual([`open ${A}`, `opened ${A}`, `open ${B}`, `opened ${B}`]);
    expect(fds[0]).toBeGreaterThan(2);
    expect(p.ioctl(fds[0], TEST_DEVICE_IOCTL)).toBe(0);
    expect(da.deviceSet!.openCount).toBe(2);
  });

  it('a synchronous open of an async driver returns the fd at once; the fd works once open_device finished', async () => {
    const { p, ga, da } = make();
    da.data.openDelay = 50;
    const fd = p.ioctl(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expectErrno(() => p.ioctl(fd, TEST_DEVICE_IOCTL), 'EINVAL');
    await p.sleep(60);
    expect(p.ioctl(fd, TEST_DEVICE_IOCTL)).toBe(0);
    p.close(fd);
    expect(da.openCount).toBe(0);
  });

  it('a failing open_device leaves every count as it was', async () => {
    const { backend, p, ga, da } = make();
    da.data.failOpen = 'EIO';
    expectErrno(() => p.ioctl(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'EIO');
    expect(da.openCount).toBe(0);
    expect(da.registrationRefs).toBe(1);
    expect(backend.log.events.filter((e) => e.includes(A))).toEqual([`register ${A}`, `unregister ${A}`]);
    expect(p.fds()).toEqual([3, 4, 5]);
    // Async path too.
    da.data.failOpen = 'EIO';
    await expectErrnoAsync(p.ioctlAsync(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'EIO');
    expect(da.openCount).toBe(0);
    expect(da.registrationRefs).toBe(1);
    // container_users is back to 1: UNSET_CONTAINER succeeds.
    expect(p.ioctl(ga, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
  });

  it('matches a reference model over random open/close sequences', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.boolean(), fc.nat(3)), { maxLength: 40 }), (ops) => {
        const { p, ga, gb, da, db } = make();
        const open: { dev: 'a' | 'b'; fd: number }[] = [];
        const model = { a: 0, b: 0, opensA: 0, opensB: 0, closesA: 0, closesB: 0 };
        for (const [isOpen, onA, pick] of ops) {
          if (isOpen) {
            const fd = p.ioctl(onA ? ga : gb, VFIO_GROUP_GET_DEVICE_FD, cstr(onA ? A : B));
            open.push({ dev: onA ? 'a' : 'b', fd });
            if (onA) {
              if (model.a++ === 0) model.opensA++;
            } else if (model.b++ === 0) model.opensB++;
          } else if (open.length > 0) {
            const [victim] = open.splice(pick % open.length, 1);
            p.close(victim!.fd);
            if (victim!.dev === 'a') {
              if (--model.a === 0) model.closesA++;
            } else if (--model.b === 0) model.closesB++;
          }
          expect(da.openCount).toBe(model.a);
          expect(db.openCount).toBe(model.b);
          expect(da.deviceSet!.openCount).toBe(model.a + model.b);
          expect([da.data.opens, da.data.closes, db.data.opens, db.data.closes]).toEqual([
            model.opensA,
            model.closesA,
            model.opensB,
            model.closesB,
          ]);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('unregister', () => {
  it('waits for the last user, calling request at once and then every 10 s; new opens get ENODEV', async () => {
    const { platform, p, ga, da, c } = make();
    const gid = platform.pci.device(A)!.iommuGroup!.id;
    const fd = p.ioctl(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    let unbound = false;
    const unbind = platform.pci.unbind(A).then(() => {
      unbound = true;
    });
    await Promise.resolve();
    expect(da.data.requests).toEqual([0]);
    expect(da.state).toBe('unregistering');
    expectErrno(() => p.ioctl(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'ENODEV');
    await p.sleep(25_000);
    expect(da.data.requests).toEqual([0, 1, 2]);
    expect(unbound).toBe(false);
    // The open fd still works while unregister waits.
    expect(p.ioctl(fd, TEST_DEVICE_IOCTL)).toBe(0);
    p.close(fd);
    await unbind;
    expect(unbound).toBe(true);
    expect(da.state).toBe('released');
    expect(da.data.requests).toEqual([0, 1, 2]);
    // The group lost its only device: its node is gone and the open group file answers ENODEV.
    expect(p.readdir('/dev/vfio')).not.toContain(String(gid));
    const st = vfioGroupStatus.encode({ argsz: 8 });
    expectErrno(() => p.ioctl(ga, VFIO_GROUP_GET_STATUS, st), 'ENODEV');
    expectErrno(() => p.ioctl(ga, VFIO_GROUP_SET_CONTAINER, s32(c)), 'ENODEV');
    expectErrno(() => p.ioctl(ga, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'ENODEV');
    expectErrno(() => p.ioctl(ga, VFIO_GROUP_UNSET_CONTAINER), 'EINVAL');
    expectErrno(() => p.readdir(`/sys/bus/pci/devices/${A}/vfio-dev`), 'ENOENT');
  });

  it('an unused device unregisters without calling request; rebinding makes a new group', async () => {
    const { platform, p, ga, da } = make(false);
    const gid = platform.pci.device(A)!.iommuGroup!.id;
    p.close(ga);
    await platform.pci.unbind(A);
    expect(da.data.requests).toEqual([]);
    bindTo(platform, A);
    const g = p.open(`/dev/vfio/${gid}`);
    const st = vfioGroupStatus.encode({ argsz: 8 });
    p.ioctl(g, VFIO_GROUP_GET_STATUS, st);
    expect(vfioGroupStatus.decode(st).flags).toBe(VFIO_GROUP_FLAGS_VIABLE);
  });

  it('put releases the index for reuse and calls release; put while registered is EBUSY', async () => {
    const { platform, driver, da } = make(false);
    expectErrno(() => {
      da.put();
    }, 'EBUSY');
    const index = da.index;
    await platform.pci.unbind(A);
    expect(da.state).toBe('released');
    bindTo(platform, A);
    expect(driver.devices.get(A)!.index).toBe(index);
  });
});
