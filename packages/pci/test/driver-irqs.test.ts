/**
 * The driver's interrupt ioctls end to end (inventory §1.4.2, §3.3): SET_IRQS validated by the core and served by
 * the interrupt layer, edu's interrupts reaching an eventfd, and IOEVENTFD writes reaching the BAR.
 */
import { EDU_IRQ, EDU_REG } from '@vfio-ts/device-edu';
import {
  isSysError,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_IOEVENTFD_32,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_INTX_IRQ_INDEX,
  vfioDeviceIoeventfd,
  vfioIrqSet,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { EDU_BDF, eduHost, le32, openDev, u32, until } from './driver-helpers.js';

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

function irqSet(flags: number, index: number, start: number, count: number, fds: number[] = []): Uint8Array {
  const b = new Uint8Array(20 + 4 * fds.length);
  b.set(vfioIrqSet.encode({ argsz: b.length, flags, index, start, count }));
  fds.forEach((fd, i) => {
    new DataView(b.buffer).setInt32(20 + 4 * i, fd, true);
  });
  return b;
}

const counter = (p: ReturnType<typeof eduHost>['p'], fd: number): bigint => {
  try {
    return new DataView(p.read(fd, 8).buffer).getBigUint64(0, true);
  } catch (e) {
    if (isSysError(e, 'EAGAIN')) return 0n;
    throw e;
  }
};

describe('interrupts through the driver', () => {
  it('delivers edu INTx to the trigger eventfd; SET_IRQS is validated first', () => {
    const t = eduHost();
    const fd = openDev(t, EDU_BDF).device;
    const efd = t.p.eventfd(0, 0o4000);
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, 2, [efd, efd])), 'EINVAL');
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 5, 0, 1, [efd])), 'EINVAL');
    t.p.ioctl(fd, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [efd]));
    // Loopback, then a real interrupt raised by the model.
    t.p.ioctl(fd, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
    expect(counter(t.p, efd)).toBe(1n);
    t.p.pwrite(fd, le32(EDU_IRQ.FACTORIAL), BAR0 + BigInt(EDU_REG.IRQ_RAISE));
    expect(counter(t.p, efd)).toBe(1n);
  });

  it('performs IOEVENTFD writes into a BAR when the eventfd fires', async () => {
    const t = eduHost();
    const fd = openDev(t, EDU_BDF).device;
    const efd = t.p.eventfd(0, 0o4000);
    const arg = vfioDeviceIoeventfd.encode({ argsz: 32, flags: VFIO_DEVICE_IOEVENTFD_32, offset: BAR0 + BigInt(EDU_REG.LIVENESS), data: 0x0f0f0f0fn, fd: efd });
    expect(t.p.ioctl(fd, VFIO_DEVICE_IOEVENTFD, arg)).toBe(0);
    t.p.write(efd, new Uint8Array(new BigUint64Array([1n]).buffer));
    await until(() => u32(t.p.pread(fd, 4, BAR0 + BigInt(EDU_REG.LIVENESS))) === 0xf0f0f0f0);
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_IOEVENTFD, vfioDeviceIoeventfd.encode({ argsz: 32, flags: 0, offset: BAR0, fd: efd })), 'EINVAL');
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_IOEVENTFD, vfioDeviceIoeventfd.encode({ argsz: 32, flags: 3, offset: BAR0, fd: efd })), 'EINVAL');
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_IOEVENTFD, vfioDeviceIoeventfd.encode({ argsz: 32, flags: 4, offset: BAR0, fd: -2 })), 'EINVAL');
    expectErrno(() => t.p.ioctl(fd, VFIO_DEVICE_IOEVENTFD, vfioDeviceIoeventfd.encode({ argsz: 27, flags: 4, offset: BAR0, fd: efd })), 'EINVAL');
  });
});
