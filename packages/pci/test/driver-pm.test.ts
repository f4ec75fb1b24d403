/**
 * Runtime power management (inventory §3.8, P48): idle devices in D3hot unless disable_idle_d3, resumed by use;
 * LOW_POWER_ENTRY / WITH_WAKEUP / EXIT through VFIO_DEVICE_FEATURE.
 */
import type { ConfigSpaceFunction } from '@vfio-ts/sim';
import {
  isSysError,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
  VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
  VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_GET_INFO,
  vfioDeviceInfo,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { E1000E_BDF, e1000eFunction, echoAsync, makeHost, openDev } from './driver-helpers.js';

const BAR0 = vfioPciOffset(0);

function expectErrno(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    expect(isSysError(e) ? e.errno : e).toBe(errno);
    return;
  }
  throw new Error(`expected ${errno}`);
}

function feature(flags: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(8 + data.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length, true);
  v.setUint32(4, flags, true);
  b.set(data, 8);
  return b;
}

const pmState = (fn: ConfigSpaceFunction): number => fn.configRead(0xcc, 2) & 3;

function host(params = {}) {
  const fn = e1000eFunction();
  const t = makeHost([{ bdf: E1000E_BDF, fn, driver: 'vfio-pci' }], { params });
  return { ...t, fn };
}

describe('idle D3', () => {
  it('keeps a bound, unused device in D3hot and brings it to D0 while open', async () => {
    const t = host();
    expect(pmState(t.fn)).toBe(3);
    const fds = openDev(t, E1000E_BDF);
    expect(pmState(t.fn)).toBe(0);
    t.p.close(fds.device);
    t.p.close(fds.group);
    await Promise.resolve();
    expect(pmState(t.fn)).toBe(3);
    // Unbinding resumes it for good.
    await echoAsync(t.p, '/sys/bus/pci/drivers/vfio-pci/unbind', E1000E_BDF);
    expect(pmState(t.fn)).toBe(0);
  });

  it('leaves the device in D0 with disable_idle_d3', () => {
    const t = host({ 'vfio_pci.disable_idle_d3': true });
    expect(pmState(t.fn)).toBe(0);
  });
});

describe('low-power features', () => {
  it('LOW_POWER_ENTRY suspends the open device; accesses resume it briefly; mappings fault until EXIT', () => {
    const t = host();
    const fd = openDev(t, E1000E_BDF).device;
    const va = t.p.mmap({ length: 0x1000, fd, offset: BAR0 });
    t.p.memory.write(va, new Uint8Array([7]));
    expect(t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY))).toBe(0);
    expect(pmState(t.fn)).toBe(3);
    expect(() => t.p.memory.read(va, 1)).toThrow(/EFAULT/);
    // A region read resumes the device, then it suspends again (the session stays engaged).
    expect(t.p.pread(fd, 1, BAR0)[0]).toBe(7);
    expect(pmState(t.fn)).toBe(3);
    // Entering twice is EINVAL (the ioctl itself resumed the device meanwhile).
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY)), 'EINVAL');
    t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT));
    expect(pmState(t.fn)).toBe(0);
    expect(t.p.memory.read(va, 1)[0]).toBe(7);
  });

  it('LOW_POWER_ENTRY_WITH_WAKEUP signals the eventfd on the next resume and ends the session', () => {
    const t = host();
    const fd = openDev(t, E1000E_BDF).device;
    const efd = t.p.eventfd(0, 0o4000);
    const data = new Uint8Array(8);
    new DataView(data.buffer).setInt32(0, efd, true);
    t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, data));
    expect(pmState(t.fn)).toBe(3);
    expectErrno(() => t.p.read(efd, 8), 'EAGAIN');
    t.p.ioctl(fd, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: 24 }));
    expect(new DataView(t.p.read(efd, 8).buffer).getBigUint64(0, true)).toBe(1n);
    expect(pmState(t.fn)).toBe(0);
    // A negative fd is EINVAL; short data is EINVAL; GET is not supported; PROBE succeeds.
    new DataView(data.buffer).setInt32(0, -1, true);
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, data)), 'EINVAL');
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP)), 'EINVAL');
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT)), 'EINVAL');
    expect(t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY))).toBe(0);
  });

  it('answers ENOTTY for the VF token (no SR-IOV) and unknown features', () => {
    const t = host();
    const fd = openDev(t, E1000E_BDF).device;
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, new Uint8Array(16))), 'ENOTTY');
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_GET | 0x1234)), 'ENOTTY');
  });
});
