/**
 * The VFIO helpers of the edu driver against a scripted process: the bytes they put in the structs and how they read
 * the answers (the argsz two-call pattern for capability chains). End-to-end runs on a simulated host live in
 * @vfio-ts/cli's tests (packages/cli/test/edu-driver.test.ts), which can depend on core, sim and pci.
 */
import {
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  vfioIrqSet,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import { describe, expect, test } from 'vitest';
import { EduDriverError, EduVfioDriver, disableIrqIndex, eduFactorial, regionInfo, setIrqEventfds } from '../src/driver/index.js';
import type { EduDriverProcess } from '../src/driver/index.js';

/** A process whose ioctl is a script; every other call throws. */
function scripted(ioctl: (fd: number, request: number, arg?: number | Uint8Array) => number): EduDriverProcess & { opened: number; closed: number[] } {
  const fail = (): never => { throw new Error('not scripted'); };
  const self = {
    opened: 0,
    closed: [] as number[],
    open: () => { self.opened++; return 2 + self.opened; },
    close: (fd: number) => { self.closed.push(fd); },
    ioctl,
    read: fail,
    pread: fail,
    pwrite: fail,
    mmap: fail,
    munmap: fail,
    memory: { read: fail, write: fail },
    eventfd: fail,
    poll: fail,
    sleep: () => Promise.resolve(),
    readlink: fail,
  };
  return self;
}

describe('edu driver helpers', () => {
  test('regionInfo asks again with the argsz the kernel reports and decodes the capability chain', () => {
    const calls: number[] = [];
    const p = scripted((_fd, request, arg) => {
      expect(request).toBe(VFIO_DEVICE_GET_REGION_INFO);
      const buf = arg as Uint8Array;
      const info = vfioRegionInfo.decode(buf);
      calls.push(info.argsz);
      expect(info.index).toBe(3);
      const v = new DataView(buf.buffer);
      if (info.argsz < 40) {
        // Linux: CAPS set, cap_offset 0, argsz raised to what the chain needs.
        vfioRegionInfo.write(buf, { argsz: 40, flags: 0xf, cap_offset: 0, size: 0x4000n, offset: 3n << 40n });
        return 0;
      }
      vfioRegionInfo.write(buf, { flags: 0xf, cap_offset: 32, size: 0x4000n, offset: 3n << 40n });
      v.setUint16(32, 3, true); // MSIX_MAPPABLE
      v.setUint16(34, 1, true);
      v.setUint32(36, 0, true);
      return 0;
    });
    const r = regionInfo(p, 7, 3);
    expect(calls).toEqual([32, 40]);
    expect(r).toEqual({ index: 3, flags: 0xf, size: 0x4000n, offset: 3n << 40n, caps: [{ id: 3, version: 1 }] });
  });

  test('SET_IRQS: eventfds as s32 after the 20-byte header; disabling is DATA_NONE | TRIGGER with count 0', () => {
    const seen: Uint8Array[] = [];
    const p = scripted((_fd, request, arg) => {
      expect(request).toBe(VFIO_DEVICE_SET_IRQS);
      seen.push((arg as Uint8Array).slice());
      return 0;
    });
    setIrqEventfds(p, 5, 1, 0, [9, -1]);
    disableIrqIndex(p, 5, 1);
    const [set, off] = seen;
    expect(vfioIrqSet.decode(set!)).toEqual({ argsz: 28, flags: 0x24, index: 1, start: 0, count: 2 });
    const v = new DataView(set!.buffer);
    expect([v.getInt32(20, true), v.getInt32(24, true)]).toEqual([9, -1]);
    expect(vfioIrqSet.decode(off!)).toEqual({ argsz: 20, flags: 0x21, index: 1, start: 0, count: 0 });
  });

  test('a failing open names its step and closes what it opened', async () => {
    const p = scripted(() => { throw Object.assign(new Error('ENOTTY: no'), { errno: 'ENOTTY' }); });
    const err = await EduVfioDriver.open(p, { bdf: '0000:00:03.0', group: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EduDriverError);
    expect((err as EduDriverError).step).toBe('container');
    expect(p.opened).toBe(1);
    expect(p.closed).toEqual([3]);
  });

  test('eduFactorial is n! modulo 2^32, as the device computes it', () => {
    expect([0, 1, 5, 10, 12].map(eduFactorial)).toEqual([1, 1, 120, 3628800, 479001600]);
    expect(eduFactorial(13)).toBe(Number(6227020800n % (1n << 32n)));
    expect(eduFactorial(40)).toBe(0); // 2^32 divides 40!
  });
});
