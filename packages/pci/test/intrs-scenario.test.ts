/**
 * Interrupts end to end through the system-call surface (acceptance item 2): a simulated host with type1 and
 * vfio-pci, the QEMU edu model (INTx and MSI) and the captured e1000e (MSI-X), driven with open/ioctl/pread/
 * pwrite/eventfd/poll exactly as a VMM drives Linux.
 */
import { createHost, openVfioDevice, POLLIN } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import { EDU_REG, eduFunction } from '@vfio-ts/device-edu';
import { type1 } from '@vfio-ts/iommu-type1';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import type { SimPciDeviceEntry, SimPlatform } from '@vfio-ts/sim';
import {
  EFD_NONBLOCK,
  SysError,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_IOEVENTFD_32,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX as ERR,
  VFIO_PCI_INTX_IRQ_INDEX as INTX,
  VFIO_PCI_MSI_IRQ_INDEX as MSI,
  VFIO_PCI_MSIX_IRQ_INDEX as MSIX,
  VFIO_PCI_REQ_IRQ_INDEX as REQ,
  VFIO_TYPE1v2_IOMMU,
  vfioDeviceIoeventfd,
  vfioIrqInfo,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { vfioPci } from '../src/index.js';
import { fixture } from './helpers.js';
import { irqSetBytes, TRIGGER_BOOL, TRIGGER_EVENTFD, TRIGGER_NONE } from './intrs-helpers.js';

const EDU = '0000:00:03.0';
const E1000E = '0000:00:04.0';

function host(devices: SimPciDeviceEntry[]): { platform: SimPlatform; p: Process } {
  const platform = simPlatform({ devices });
  const h = createHost({ platform, plugins: [type1(), vfioPci()] });
  return { platform, p: h.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n }) };
}

function openDevice(platform: SimPlatform, p: Process, bdf: string): number {
  const group = platform.pci.device(bdf)?.iommuGroup?.id;
  if (group === undefined) throw new Error('no group');
  return openVfioDevice(p, { group, device: bdf, iommuType: VFIO_TYPE1v2_IOMMU }).device;
}

function irqInfo(p: Process, dev: number, index: number): { flags: number; count: number } {
  const bytes = vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, index });
  p.ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, bytes);
  const { flags, count } = vfioIrqInfo.decode(bytes);
  return { flags, count };
}

function setIrqs(p: Process, dev: number, flags: number, index: number, start: number, count: number, data: number[] = []): number {
  return p.ioctl(dev, VFIO_DEVICE_SET_IRQS, irqSetBytes(flags, index, start, count, data));
}

/** read(2) of an eventfd: its counter, 0 when empty (EAGAIN on a non-blocking eventfd). */
function readEventfd(p: Process, fd: number): number {
  try {
    return Number(new DataView(p.read(fd, 8).buffer).getBigUint64(0, true));
  } catch (e) {
    if (e instanceof SysError && e.errno === 'EAGAIN') return 0;
    throw e;
  }
}

/** write(2) of 1 to an eventfd. */
function signal(p: Process, fd: number): void {
  p.write(fd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
}

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SysError) return e.errno;
    throw e;
  }
  return 'ok';
}

function le32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

const config = (off: number): bigint => vfioPciOffset(VFIO_PCI_CONFIG_REGION_INDEX) + BigInt(off);
const bar0 = (off: number): bigint => vfioPciOffset(0) + BigInt(off);

describe('edu through the system-call surface', () => {
  function edu() {
    const t = host([{ bdf: EDU, fn: eduFunction(), driver: 'vfio-pci' }]);
    const dev = openDevice(t.platform, t.p, EDU);
    // Memory decoding and bus mastering on, through the CONFIG region.
    t.p.pwrite(dev, new Uint8Array([0x06, 0x00]), config(0x04));
    const raise = (): void => {
      t.p.pwrite(dev, le32(1), bar0(EDU_REG.IRQ_RAISE));
    };
    const ack = (): void => {
      t.p.pwrite(dev, le32(1), bar0(EDU_REG.IRQ_ACK));
    };
    return { ...t, dev, raise, ack };
  }

  it('reports its IRQ indexes', () => {
    const { p, dev } = edu();
    expect(irqInfo(p, dev, INTX)).toEqual({ flags: 0x7, count: 1 });
    expect(irqInfo(p, dev, MSI)).toEqual({ flags: 0x9, count: 1 });
    expect(irqInfo(p, dev, MSIX)).toEqual({ flags: 0x9, count: 0 });
    expect(errnoOf(() => irqInfo(p, dev, ERR))).toBe('EINVAL');
    expect(irqInfo(p, dev, REQ)).toEqual({ flags: 0x9, count: 1 });
  });

  it('INTx: trigger, automask, unmask through an eventfd, then MSI', async () => {
    const { p, dev, raise, ack } = edu();
    const trigger = p.eventfd(0, EFD_NONBLOCK);
    const unmask = p.eventfd(0, EFD_NONBLOCK);
    expect(setIrqs(p, dev, TRIGGER_EVENTFD, INTX, 0, 1, [trigger])).toBe(0);
    expect(setIrqs(p, dev, VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_EVENTFD, INTX, 0, 1, [unmask])).toBe(0);

    raise();
    const [ready] = await p.poll([{ fd: trigger, events: POLLIN }], 0);
    expect((ready?.revents ?? 0) & POLLIN).toBe(POLLIN);
    expect(readEventfd(p, trigger)).toBe(1);
    // Automasked: a second raise is held at the device.
    raise();
    expect(readEventfd(p, trigger)).toBe(0);
    // The guest acks and "EOIs" by writing the unmask eventfd (as KVM's resampler would).
    ack();
    signal(p, unmask);
    raise();
    expect(readEventfd(p, trigger)).toBe(1);
    ack();
    expect(setIrqs(p, dev, VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_NONE, INTX, 0, 1)).toBe(0);

    // One type at a time.
    const msi = p.eventfd(0, EFD_NONBLOCK);
    expect(errnoOf(() => setIrqs(p, dev, TRIGGER_EVENTFD, MSI, 0, 1, [msi]))).toBe('EINVAL');
    expect(setIrqs(p, dev, TRIGGER_NONE, INTX, 0, 0)).toBe(0);
    expect(setIrqs(p, dev, TRIGGER_EVENTFD, MSI, 0, 1, [msi])).toBe(0);
    raise();
    expect(readEventfd(p, msi)).toBe(1);
    expect(readEventfd(p, trigger)).toBe(0);
    ack();
    raise();
    expect(readEventfd(p, msi)).toBe(1);
    expect(errnoOf(() => setIrqs(p, dev, TRIGGER_EVENTFD, MSI, 0xffffffff, 2, [msi, msi]))).toBe('EINVAL');
    expect(setIrqs(p, dev, TRIGGER_NONE, MSI, 0, 0)).toBe(0);
    p.close(dev);
  });

  it('REQ: an unbind asks the user to release the device through the REQ eventfd', async () => {
    const { p, dev, platform } = edu();
    const req = p.eventfd(0, EFD_NONBLOCK);
    expect(setIrqs(p, dev, TRIGGER_EVENTFD, REQ, 0, 1, [req])).toBe(0);
    const unbound = platform.pci.unbind(EDU);
    const [ready] = await p.poll([{ fd: req, events: POLLIN }], 1000);
    expect((ready?.revents ?? 0) & POLLIN).toBe(POLLIN);
    expect(readEventfd(p, req)).toBeGreaterThanOrEqual(1);
    p.close(dev);
    await unbound;
    expect(platform.pci.device(EDU)?.driver).toBeUndefined();
  });

  it('an ioeventfd writes the BAR when the eventfd is signalled', () => {
    const { p, dev } = edu();
    const efd = p.eventfd(0, EFD_NONBLOCK);
    const arg = vfioDeviceIoeventfd.encode({
      argsz: vfioDeviceIoeventfd.size,
      flags: VFIO_DEVICE_IOEVENTFD_32,
      offset: bar0(EDU_REG.LIVENESS),
      data: 0x12345678n,
      fd: efd,
    });
    expect(p.ioctl(dev, VFIO_DEVICE_IOEVENTFD, arg)).toBe(0);
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_IOEVENTFD, arg))).toBe('EEXIST');
    signal(p, efd);
    // edu's liveness register returns the inverse of what was written.
    expect(new DataView(p.pread(dev, 4, bar0(EDU_REG.LIVENESS)).buffer).getUint32(0, true)).toBe(~0x12345678 >>> 0);
    vfioDeviceIoeventfd.write(arg, { fd: -1 });
    expect(p.ioctl(dev, VFIO_DEVICE_IOEVENTFD, arg)).toBe(0);
  });
});

describe('e1000e (MSI-X) through the system-call surface', () => {
  it('enables MSI-X vectors, routes device messages, adds a vector later, loops back and disables', () => {
    const t = host([{ bdf: E1000E, fn: pciFunctionFromConfig({ config: fixture('e1000e'), bars: '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000' }), driver: 'vfio-pci' }]);
    const { p, platform } = t;
    const dev = openDevice(platform, p, E1000E);
    const sim = platform.pci.device(E1000E);
    if (!sim) throw new Error('no device');
    // Dynamic MSI-X: no NORESIZE.
    expect(irqInfo(p, dev, MSIX)).toEqual({ flags: 0x1, count: 5 });
    expect(irqInfo(p, dev, ERR)).toEqual({ flags: 0x9, count: 1 });

    const v = [p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK)];
    expect(setIrqs(p, dev, TRIGGER_EVENTFD, MSIX, 0, 2, [v[0]!, v[1]!])).toBe(0);
    sim.msiNotify(1);
    sim.msiNotify(1);
    sim.msiNotify(0);
    sim.msiNotify(4); // no trigger: masked at the host
    expect([readEventfd(p, v[0]!), readEventfd(p, v[1]!)]).toEqual([1, 2]);
    // A vector added to the enabled function.
    expect(setIrqs(p, dev, TRIGGER_EVENTFD, MSIX, 4, 1, [v[2]!])).toBe(0);
    sim.msiNotify(4);
    expect(readEventfd(p, v[2]!)).toBe(1);
    setIrqs(p, dev, TRIGGER_BOOL, MSIX, 0, 2, [1, 0]);
    expect([readEventfd(p, v[0]!), readEventfd(p, v[1]!)]).toEqual([1, 0]);
    // An ioeventfd may not target the MSI-X table (BAR3 offset 0).
    const arg = vfioDeviceIoeventfd.encode({ argsz: 32, flags: VFIO_DEVICE_IOEVENTFD_32, offset: vfioPciOffset(3), data: 0n, fd: v[0]! });
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_IOEVENTFD, arg))).toBe('EINVAL');
    // The ERR index of a PCIe function, with loopback.
    const err = p.eventfd(0, EFD_NONBLOCK);
    setIrqs(p, dev, TRIGGER_EVENTFD, ERR, 0, 1, [err]);
    setIrqs(p, dev, TRIGGER_NONE, ERR, 0, 1);
    expect(readEventfd(p, err)).toBe(1);

    expect(setIrqs(p, dev, TRIGGER_NONE, MSIX, 0, 0)).toBe(0);
    sim.msiNotify(1);
    expect(readEventfd(p, v[1]!)).toBe(0);
    p.close(dev);
  });
});
