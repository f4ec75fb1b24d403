/**
 * Resets (inventory §3.5, §1.6, P5, P40–P44): DEVICE_RESET, FLR through config space, power-state changes with
 * NoSoftRst- state restore, GET_PCI_HOT_RESET_INFO, PCI_HOT_RESET with proof of ownership through group fds, and
 * the bus reset of an idle device set at last close.
 */
import { openVfioDevice } from '@vfio-ts/core';
import type { SimPciDeviceEntry } from '@vfio-ts/sim';
import {
  isSysError,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_RESET,
  VFIO_TYPE1v2_IOMMU,
  vfioPciDependentDevice,
  vfioPciHotResetInfo,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import {
  E1000E_BDF,
  e1000eFunction,
  EDU_BDF,
  eduHost,
  eduPassive,
  groupOf,
  le32,
  makeHost,
  openDev,
  setIdle,
  u16,
  u32,
  until,
} from './driver-helpers.js';
import { fixture } from './helpers.js';
import { pciFunctionFromConfig } from '@vfio-ts/sim';

const BAR0 = vfioPciOffset(0);
const CONFIG = vfioPciOffset(7);
const A = '0000:01:00.0';
const B = '0000:01:00.1';

function expectErrno(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    expect(isSysError(e) ? e.errno : e).toBe(errno);
    return;
  }
  throw new Error(`expected ${errno}`);
}

/** A root port with two edu functions behind it, each in its own IOMMU group (ACS), both bound to vfio-pci. */
function busPair(extra: SimPciDeviceEntry[] = [], hostDrivers?: { name: string; ids: string[] }[]) {
  const fa = eduPassive();
  const fb = eduPassive();
  const t = makeHost(
    [
      { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: A, fn: fa, driver: 'vfio-pci', acs: true },
      { bdf: B, fn: fb, driver: 'vfio-pci', acs: true },
      ...extra,
    ],
    hostDrivers ? { hostDrivers } : {},
  );
  return { ...t, fa, fb };
}

function hotResetInfo(p: ReturnType<typeof makeHost>['p'], fd: number, argsz: number): Uint8Array {
  const b = new Uint8Array(Math.max(argsz, 12));
  b.set(vfioPciHotResetInfo.encode({ argsz }));
  p.ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, b);
  return b;
}

function hotReset(p: ReturnType<typeof makeHost>['p'], fd: number, groupFds: number[], flags = 0, count = groupFds.length): number {
  const b = new Uint8Array(12 + 4 * groupFds.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, count, true);
  groupFds.forEach((g, i) => {
    v.setInt32(12 + 4 * i, g, true);
  });
  return p.ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, b);
}

describe('VFIO_DEVICE_RESET', () => {
  it('resets a function that has a reset (PM reset on the e1000e) and restores its state', () => {
    const fn = e1000eFunction();
    const t = makeHost([{ bdf: E1000E_BDF, fn, driver: 'vfio-pci' }]);
    const fd = openDev(t, E1000E_BDF).device;
    const va = t.p.mmap({ length: 0x1000, fd, offset: BAR0 });
    t.p.memory.write(va, le32(0x1234));
    const before = fn.resets.length;
    const bar0 = fn.configRead(0x10, 4);
    expect(t.p.ioctl(fd, VFIO_DEVICE_RESET)).toBe(0);
    expect(fn.resets.slice(before)).toEqual(['pm']);
    expect(fn.configRead(0x10, 4)).toBe(bar0);
    // The mapping was zapped and faults back in: decoding is still on.
    expect(u32(t.p.memory.read(va, 4))).toBe(0x1234);
  });

  it('is EINVAL for a function without a working reset (edu alone on the root bus)', () => {
    const t = eduHost();
    const fd = openDev(t, EDU_BDF).device;
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_RESET), 'EINVAL');
  });

  it('uses a bus reset as the function reset of a lone function behind a bridge', () => {
    const fn = eduPassive();
    const t = makeHost([
      { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: A, fn, driver: 'vfio-pci' },
    ]);
    const fd = openDev(t, A).device;
    const before = fn.resets.length;
    t.p.ioctl(fd, VFIO_DEVICE_RESET);
    expect(fn.resets.slice(before)).toEqual(['bus']);
  });
});

describe('resets through config space', () => {
  it('performs an FLR when the user sets Initiate FLR on a device that advertises FLR', () => {
    const c = fixture('e1000e');
    new DataView(c.buffer).setUint32(0xe4, new DataView(c.buffer).getUint32(0xe4, true) | (1 << 28), true);
    const fn = pciFunctionFromConfig({ config: c, bars: '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000' });
    const t = makeHost([{ bdf: E1000E_BDF, fn, driver: 'vfio-pci' }]);
    const fd = openDev(t, E1000E_BDF).device;
    const before = fn.resets.length;
    const devctl = u16(t.p.pread(fd, 2, CONFIG + 0xe8n));
    t.p.pwrite(fd, new Uint8Array([devctl & 0xff, (devctl >> 8) | 0x80]), CONFIG + 0xe8n);
    expect(fn.resets.slice(before)).toEqual(['flr']);
    // Initiate FLR reads back as 0.
    expect(u16(t.p.pread(fd, 2, CONFIG + 0xe8n)) & 0x8000).toBe(0);
  });

  it('blocks BAR access in D3hot and restores the state of a NoSoftRst- function back in D0', () => {
    const fn = e1000eFunction();
    const t = makeHost([{ bdf: E1000E_BDF, fn, driver: 'vfio-pci' }]);
    const fd = openDev(t, E1000E_BDF).device;
    const bar0 = fn.configRead(0x10, 4);
    const va = t.p.mmap({ length: 0x1000, fd, offset: BAR0 });
    t.p.pwrite(fd, new Uint8Array([0x03, 0x00]), CONFIG + 0xccn); // PMCSR: D3hot
    expect(fn.configRead(0xcc, 2) & 3).toBe(3);
    expectErrno(() => t.p.pread(fd, 4, BAR0), 'EIO');
    expect(() => t.p.memory.read(va, 4)).toThrow(/EFAULT/);
    const before = fn.resets.length;
    t.p.pwrite(fd, new Uint8Array([0x00, 0x00]), CONFIG + 0xccn); // back to D0: the function resets itself
    expect(fn.resets.slice(before)).toEqual(['pm']);
    expect(fn.configRead(0x10, 4)).toBe(bar0);
    expect(t.p.pread(fd, 4, BAR0).length).toBe(4);
    expect(t.p.memory.read(va, 4).length).toBe(4);
  });
});

describe('VFIO_DEVICE_GET_PCI_HOT_RESET_INFO', () => {
  it('lists every function of the bus with its group, and answers ENOSPC with the count when the array is short', () => {
    const t = busPair();
    const fd = openDev(t, A).device;
    expect(() => hotResetInfo(t.p, fd, 12 + 8)).toThrow(/ENOSPC/);
    const b = new Uint8Array(12);
    b.set(vfioPciHotResetInfo.encode({ argsz: 16 }));
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, b), 'ENOSPC');
    expect(vfioPciHotResetInfo.decode(b)).toMatchObject({ argsz: 16, flags: 0, count: 2 });
    const full = hotResetInfo(t.p, fd, 12 + 16);
    expect(vfioPciHotResetInfo.decode(full)).toMatchObject({ flags: 0, count: 2 });
    expect(vfioPciDependentDevice.decode(full, 12)).toEqual({ group_id: groupOf(t, A), segment: 0, bus: 1, devfn: 0 });
    expect(vfioPciDependentDevice.decode(full, 20)).toEqual({ group_id: groupOf(t, B), segment: 0, bus: 1, devfn: 1 });
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, vfioPciHotResetInfo.encode({ argsz: 11 })), 'EINVAL');
  });

  it('is ENODEV on a root bus (no bus reset possible)', () => {
    const t = eduHost();
    const fd = openDev(t, EDU_BDF).device;
    expectErrno(() => hotResetInfo(t.p, fd, 64), 'ENODEV');
  });
});

describe('VFIO_DEVICE_PCI_HOT_RESET', () => {
  it('resets the bus when the caller proves ownership of every group of the set', () => {
    const t = busPair();
    const a = openDev(t, A);
    const gB = t.p.open(`/dev/vfio/${groupOf(t, B)}`);
    const [ra, rb] = [t.fa.resets.length, t.fb.resets.length];
    expect(hotReset(t.p, a.device, [a.group, gB])).toBe(0);
    expect(t.fa.resets.slice(ra)).toEqual(['bus']);
    expect(t.fb.resets.slice(rb)).toEqual(['bus']);
  });

  it('is refused with EINVAL when a device of the set is owned elsewhere', () => {
    const t = busPair();
    const a = openDev(t, A);
    // Another process owns B's group: this caller cannot open it, so it can only offer its own group.
    const other = t.host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });
    const b = openVfioDevice(other, { group: groupOf(t, B), device: B, iommuType: VFIO_TYPE1v2_IOMMU });
    expectErrno(() => t.p.open(`/dev/vfio/${groupOf(t, B)}`), 'EBUSY');
    const [ra, rb] = [t.fa.resets.length, t.fb.resets.length];
    expectErrno(() => hotReset(t.p, a.device, [a.group]), 'EINVAL');
    expect(t.fa.resets.length).toBe(ra);
    expect(t.fb.resets.length).toBe(rb);
    // The owner of B cannot reset A's bus either.
    expectErrno(() => hotReset(other, b.device, [b.group]), 'EINVAL');
  });

  it('checks its argument: flags, count, fds', () => {
    const t = busPair();
    const a = openDev(t, A);
    const gB = t.p.open(`/dev/vfio/${groupOf(t, B)}`);
    const efd = t.p.eventfd();
    expectErrno(() => hotReset(t.p, a.device, [a.group, gB], 1), 'EINVAL');
    expectErrno(() => hotReset(t.p, a.device, [], 0, 0), 'EINVAL');
    expectErrno(() => hotReset(t.p, a.device, [a.group, gB, gB]), 'EINVAL');
    expectErrno(() => hotReset(t.p, a.device, [a.group, 999]), 'EBADF');
    expectErrno(() => hotReset(t.p, a.device, [a.group, efd]), 'EINVAL');
    expectErrno(() => hotReset(t.p, a.device, [a.group], 0, 2), 'EFAULT');
  });

  it('is refused with EINVAL when a function on the bus is bound to another driver', () => {
    const t = busPair([{ bdf: '0000:01:00.2', fn: e1000eFunction(), driver: 'e1000e', acs: true }], [{ name: 'e1000e', ids: ['8086:10d3'] }]);
    const a = openDev(t, A);
    const gB = t.p.open(`/dev/vfio/${groupOf(t, B)}`);
    expectErrno(() => hotReset(t.p, a.device, [a.group, gB]), 'EINVAL');
    // The info still lists all three functions.
    expect(vfioPciHotResetInfo.decode(hotResetInfo(t.p, a.device, 12 + 24)).count).toBe(3);
  });
});

describe('bus reset at last close', () => {
  it('resets the bus once no device of the set is open and one needs a reset', async () => {
    const t = busPair();
    const other = t.host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });
    const a = openDev(t, A);
    const b = openVfioDevice(other, { group: groupOf(t, B), device: B, iommuType: VFIO_TYPE1v2_IOMMU });
    const [ra, rb] = [t.fa.resets.length, t.fb.resets.length];
    t.p.close(a.device);
    await until(() => setIdle(t, A));
    // B is still open: no bus reset.
    expect(t.fa.resets.length).toBe(ra);
    other.close(b.device);
    await until(() => setIdle(t, B));
    expect(t.fa.resets.slice(ra)).toEqual(['bus']);
    expect(t.fb.resets.slice(rb)).toEqual(['bus']);
  });
});
