/**
 * Bad input never crashes and never corrupts state (common rules): random ioctls, preads/pwrites and mmaps on a
 * vfio-pci device fd only ever fail with a SysError, and afterwards the device still answers as before.
 */
import fc from 'fast-check';
import {
  isSysError,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DEVICE_FEATURE,
  vfioDeviceInfo,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { expect, it } from 'vitest';
import { E1000E_BDF, e1000eFunction, makeHost, openDev } from './driver-helpers.js';

const CMDS = [
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_FEATURE,
  0x3b00,
];

const action = fc.oneof(
  fc.record({ kind: fc.constant('ioctl' as const), cmd: fc.constantFrom(...CMDS), arg: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.integer()) }),
  fc.record({ kind: fc.constant('pread' as const), index: fc.integer({ min: 0, max: 12 }), off: fc.bigInt({ min: 0n, max: 0x30000n }), n: fc.integer({ min: 0, max: 64 }) }),
  fc.record({ kind: fc.constant('pwrite' as const), index: fc.constant(7), off: fc.bigInt({ min: 0n, max: 0x1100n }), data: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('mmap' as const), index: fc.integer({ min: 0, max: 12 }), off: fc.bigInt({ min: 0n, max: 0x30n }), pages: fc.integer({ min: 1, max: 64 }) }),
);

it('random device-fd calls fail only with SysError and leave the device answering', () => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 25 }), (actions) => {
      const t = makeHost([{ bdf: E1000E_BDF, fn: e1000eFunction(), driver: 'vfio-pci' }]);
      const fd = openDev(t, E1000E_BDF).device;
      for (const a of actions) {
        try {
          if (a.kind === 'ioctl') {
            // Arguments with a valid-looking argsz exercise the deeper checks too.
            if (a.arg instanceof Uint8Array && a.arg.length >= 4) new DataView(a.arg.buffer).setUint32(0, a.arg.length, true);
            t.p.ioctl(fd, a.cmd, a.arg);
          } else if (a.kind === 'pread') {
            t.p.pread(fd, a.n, vfioPciOffset(a.index) + a.off);
          } else if (a.kind === 'pwrite') {
            // Config writes only: they may move BARs and COMMAND, which the check below must survive.
            if (a.off !== 4n) t.p.pwrite(fd, a.data, vfioPciOffset(a.index) + a.off);
          } else {
            t.p.mmap({ length: a.pages * 0x1000, fd, offset: vfioPciOffset(a.index) + a.off * 0x1000n });
          }
        } catch (e) {
          if (!isSysError(e)) throw e;
        }
      }
      const info = vfioDeviceInfo.encode({ argsz: 24 });
      t.p.ioctl(fd, VFIO_DEVICE_GET_INFO, info);
      expect(vfioDeviceInfo.decode(info)).toMatchObject({ num_regions: 9, num_irqs: 5 });
      expect(t.p.pread(fd, 4, vfioPciOffset(7)).length).toBe(4);
    }),
    { numRuns: 60 },
  );
});
