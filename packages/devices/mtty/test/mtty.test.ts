import { createHost, O_RDONLY, O_WRONLY, openVfioDevice } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { EFD_NONBLOCK } from '@vfio-ts/platform';
import { simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR1_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_TYPE1v2_IOMMU,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioIrqSet,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import {
  mtty,
  mttyRegionOffset,
  UART_FCR,
  UART_FCR_CLEAR_RCVR,
  UART_FCR_CLEAR_XMIT,
  UART_FCR_ENABLE_FIFO,
  UART_IER,
  UART_IER_RDI,
  UART_IER_THRI,
  UART_IIR,
  UART_IIR_NO_INT,
  UART_IIR_RDI,
  UART_LCR,
  UART_LCR_DLAB,
  UART_LSR,
  UART_LSR_DR,
  UART_LSR_OE,
  UART_LSR_TEMT,
  UART_LSR_THRE,
  UART_MSR,
  UART_RX,
  UART_SCR,
  UART_TX,
} from '../src/index.js';
import type { MttyOptions } from '../src/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const U1 = 'b0c1d2e3-0000-4000-8000-000000000001';
const U2 = 'b0c1d2e3-0000-4000-8000-000000000002';
const TYPES = '/sys/devices/virtual/mtty/mtty/mdev_supported_types';

function cat(p: Process, path: string): string {
  const fd = p.open(path, O_RDONLY);
  try {
    return dec.decode(p.read(fd, 4096));
  } finally {
    p.close(fd);
  }
}

function echo(p: Process, path: string, text: string): void {
  const fd = p.open(path, O_WRONLY);
  try {
    p.write(fd, enc.encode(text));
  } finally {
    p.close(fd);
  }
}

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SysError);
    return (e as SysError).errno;
  }
  throw new Error('expected a SysError');
}

function setup(options: MttyOptions = {}): { p: Process; plugin: ReturnType<typeof mtty>; host: ReturnType<typeof createHost> } {
  const plugin = mtty(options);
  const host = createHost({ platform: simPlatform(), plugins: [type1(), plugin] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_DAC_OVERRIDE'], memlockLimit: 64n << 20n });
  return { p, plugin, host };
}

/** Creates an mdev of `type` and opens it through its group: the QEMU flow, then GET_INFO. */
function openCard(p: Process, type: 'mtty-1' | 'mtty-2', uuid: string): { device: number; group: number; container: number } {
  echo(p, `${TYPES}/${type}/create`, `${uuid}\n`);
  const group = Number(p.readlink(`/sys/bus/mdev/devices/${uuid}/iommu_group`).split('/').at(-1));
  const fds = openVfioDevice(p, { group, device: uuid, iommuType: VFIO_TYPE1v2_IOMMU });
  const info = vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size });
  p.ioctl(fds.device, VFIO_DEVICE_GET_INFO, info);
  return fds;
}

function reg(p: Process, fd: number, port: number, offset: number): number {
  return p.pread(fd, 1, mttyRegionOffset(VFIO_PCI_BAR0_REGION_INDEX + port) + BigInt(offset))[0]!;
}

function setReg(p: Process, fd: number, port: number, offset: number, value: number): void {
  p.pwrite(fd, new Uint8Array([value]), mttyRegionOffset(VFIO_PCI_BAR0_REGION_INDEX + port) + BigInt(offset));
}

function setIrqEventfd(p: Process, device: number, index: number, efd: number): void {
  const buf = new Uint8Array(vfioIrqSet.size + 4);
  vfioIrqSet.write(buf, { argsz: buf.length, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 1 });
  new DataView(buf.buffer).setInt32(vfioIrqSet.size, efd, true);
  p.ioctl(device, VFIO_DEVICE_SET_IRQS, buf);
}

/** Reads and resets an eventfd counter (0 when nothing was signalled). */
function drain(p: Process, efd: number): bigint {
  try {
    return new DataView(p.read(efd, 8).buffer).getBigUint64(0, true);
  } catch (e) {
    if (e instanceof SysError && e.errno === 'EAGAIN') return 0n;
    throw e;
  }
}

describe('mtty parent and types', () => {
  it('shows the two types with the port budget as available_instances', () => {
    const { p, plugin, host } = setup();
    expect(p.readdir(TYPES).sort()).toEqual(['mtty-1', 'mtty-2']);
    expect(cat(p, `${TYPES}/mtty-1/name`)).toBe('Single port serial\n');
    expect(cat(p, `${TYPES}/mtty-2/name`)).toBe('Dual port serial\n');
    expect(cat(p, `${TYPES}/mtty-2/device_api`)).toBe('vfio-pci\n');
    expect(p.readdir(`${TYPES}/mtty-1`)).not.toContain('description');
    expect(cat(p, `${TYPES}/mtty-1/available_instances`)).toBe('24\n');
    expect(cat(p, `${TYPES}/mtty-2/available_instances`)).toBe('12\n');
    echo(p, `${TYPES}/mtty-2/create`, U1);
    echo(p, `${TYPES}/mtty-1/create`, U2);
    expect(cat(p, `${TYPES}/mtty-1/available_instances`)).toBe('21\n');
    expect(cat(p, `${TYPES}/mtty-2/available_instances`)).toBe('10\n');
    expect(plugin.handle(host.api)?.availablePorts()).toBe(21);
    expect(cat(p, `/sys/bus/mdev/devices/${U1}/vendor/sample_mdev_dev`)).toBe(`This is MDEV ${U1}\n`);
    echo(p, `/sys/bus/mdev/devices/${U1}/remove`, '1');
    expect(cat(p, `${TYPES}/mtty-2/available_instances`)).toBe('11\n');
  });

  it('gives every host its own port budget', () => {
    const plugin = mtty({ maxPorts: 2 });
    const a = createHost({ platform: simPlatform(), plugins: [plugin] });
    const b = createHost({ platform: simPlatform(), plugins: [plugin] });
    const pa = a.spawn({ uid: 0 });
    const pb = b.spawn({ uid: 0 });
    echo(pa, `${TYPES}/mtty-2/create`, U1);
    expect(cat(pa, `${TYPES}/mtty-1/available_instances`)).toBe('0\n');
    expect(cat(pb, `${TYPES}/mtty-1/available_instances`)).toBe('2\n');
    echo(pb, `${TYPES}/mtty-2/create`, U1);
    expect(plugin.handle(b.api)?.availablePorts()).toBe(0);
  });

  it('refuses a card the port budget cannot hold with ENOSPC, leaving nothing behind', () => {
    const { p, host } = setup({ maxPorts: 3 });
    echo(p, `${TYPES}/mtty-2/create`, U1);
    expect(cat(p, `${TYPES}/mtty-2/available_instances`)).toBe('0\n');
    expect(errnoOf(() => { echo(p, `${TYPES}/mtty-2/create`, U2); })).toBe('ENOSPC');
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([U1]);
    expect(host.describe().devices).toHaveLength(1);
    echo(p, `${TYPES}/mtty-1/create`, U2);
    expect(cat(p, `${TYPES}/mtty-1/available_instances`)).toBe('0\n');
  });
});

describe('mtty through the VFIO device fd', () => {
  it('answers GET_INFO, GET_REGION_INFO and GET_IRQ_INFO as mtty.c does', () => {
    const { p } = setup();
    echo(p, `${TYPES}/mtty-2/create`, U1);
    const group = Number(p.readlink(`/sys/bus/mdev/devices/${U1}/iommu_group`).split('/').at(-1));
    const { device } = openVfioDevice(p, { group, device: U1, iommuType: VFIO_TYPE1v2_IOMMU });
    // IRQ calls are checked against the num_irqs GET_INFO reported: before it, everything is EINVAL.
    const irq = vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, index: VFIO_PCI_INTX_IRQ_INDEX });
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, irq))).toBe('EINVAL');
    const info = vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size });
    p.ioctl(device, VFIO_DEVICE_GET_INFO, info);
    expect(vfioDeviceInfo.decode(info)).toMatchObject({ flags: VFIO_DEVICE_FLAGS_PCI, num_regions: 9, num_irqs: 5 });
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: 15 })))).toBe('EINVAL');
    const region = (index: number): { size: bigint; offset: bigint; flags: number } => {
      const r = vfioRegionInfo.encode({ argsz: vfioRegionInfo.size, index });
      p.ioctl(device, VFIO_DEVICE_GET_REGION_INFO, r);
      return vfioRegionInfo.decode(r);
    };
    expect(region(VFIO_PCI_CONFIG_REGION_INDEX)).toMatchObject({ size: 0xffn, offset: 7n << 40n, flags: 3 });
    expect(region(VFIO_PCI_BAR0_REGION_INDEX)).toMatchObject({ size: 8n, offset: 0n });
    expect(region(VFIO_PCI_BAR1_REGION_INDEX)).toMatchObject({ size: 8n, offset: 1n << 40n });
    expect(region(2)).toMatchObject({ size: 0n, offset: 2n << 40n });
    expect(errnoOf(() => region(9))).toBe('EINVAL');
    p.ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, irq);
    expect(vfioIrqInfo.decode(irq)).toMatchObject({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, count: 1 });
    const msi = vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, index: VFIO_PCI_MSI_IRQ_INDEX });
    p.ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, msi);
    expect(vfioIrqInfo.decode(msi)).toMatchObject({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: 1 });
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, vfioIrqInfo.encode({ argsz: 16, index: VFIO_PCI_MSIX_IRQ_INDEX })))).toBe('EINVAL');
    expect(p.ioctl(device, VFIO_DEVICE_RESET)).toBe(0);
    expect(errnoOf(() => p.ioctl(device, 0x3b70))).toBe('ENOTTY');
  });

  it('presents its PCI config space with BAR sizing', () => {
    const { p } = setup();
    const { device } = openCard(p, 'mtty-1', U1);
    const cfg = mttyRegionOffset(VFIO_PCI_CONFIG_REGION_INDEX);
    const dword = (off: number): number => new DataView(p.pread(device, 4, cfg + BigInt(off)).buffer).getUint32(0, true);
    expect(dword(0)).toBe(0x32534348);
    expect(dword(8) >>> 8).toBe(0x070002);
    expect(p.pread(device, 1, cfg + 0x3dn)[0]).toBe(1);
    expect(dec.decode(p.pread(device, 15, cfg + 0x60n))).toBe('PCI Serial/UART');
    const w = new Uint8Array(4);
    new DataView(w.buffer).setUint32(0, 0xffffffff, true);
    p.pwrite(device, w, cfg + 0x10n);
    expect(dword(0x10)).toBe(0xfffffff9);
    p.pwrite(device, w, cfg + 0x14n);
    expect(dword(0x14)).toBe(0);
    // Command and interrupt pin are read-only; the interrupt line is not.
    p.pwrite(device, new Uint8Array([0x07, 0x00]), cfg + 4n);
    expect(dword(4) & 0xffff).toBe(1);
    p.pwrite(device, new Uint8Array([0x0b]), cfg + 0x3cn);
    expect(p.pread(device, 2, cfg + 0x3cn)).toEqual(new Uint8Array([0x0b, 0x01]));
    // A 1-port card has no BAR1 registers; unknown regions fault.
    expect(errnoOf(() => p.pread(device, 1, mttyRegionOffset(VFIO_PCI_BAR1_REGION_INDEX)))).toBe('EFAULT');
    expect(errnoOf(() => p.pread(device, 1, mttyRegionOffset(8)))).toBe('EFAULT');
  });

  it('loops a byte back on one port, with an MSI through an eventfd', () => {
    const { p } = setup();
    const { device } = openCard(p, 'mtty-1', U1);
    const efd = p.eventfd(0, EFD_NONBLOCK);
    setIrqEventfd(p, device, VFIO_PCI_MSI_IRQ_INDEX, efd);
    setReg(p, device, 0, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    setReg(p, device, 0, UART_IER, UART_IER_RDI);
    expect(reg(p, device, 0, UART_LSR)).toBe(UART_LSR_TEMT | UART_LSR_THRE);
    expect(reg(p, device, 0, UART_IIR)).toBe(UART_IIR_NO_INT | 0xc0);
    setReg(p, device, 0, UART_TX, 0x41);
    expect(drain(p, efd)).toBe(1n);
    expect(reg(p, device, 0, UART_LSR)).toBe(UART_LSR_DR);
    expect(reg(p, device, 0, UART_IIR)).toBe(UART_IIR_RDI | 0xc0);
    setReg(p, device, 0, UART_TX, 0x42);
    expect(drain(p, efd)).toBe(0n); // the level-1 trigger fires only when the FIFO reaches 1
    expect(reg(p, device, 0, UART_RX)).toBe(0x41);
    expect(reg(p, device, 0, UART_RX)).toBe(0x42);
    expect(reg(p, device, 0, UART_LSR)).toBe(UART_LSR_TEMT | UART_LSR_THRE);
    // Sixteen bytes fill the FIFO; the seventeenth overruns.
    for (let i = 0; i < 17; i++) setReg(p, device, 0, UART_TX, i);
    expect(reg(p, device, 0, UART_LSR)).toBe(UART_LSR_DR | UART_LSR_OE);
    for (let i = 0; i < 16; i++) expect(reg(p, device, 0, UART_RX)).toBe(i);
    // THRI fires once the FIFO has drained; SCR and the divisor latch hold what was written.
    setReg(p, device, 0, UART_IER, UART_IER_THRI);
    expect(drain(p, efd)).toBe(2n);
    setReg(p, device, 0, UART_SCR, 0x5a);
    expect(reg(p, device, 0, UART_SCR)).toBe(0x5a);
    setReg(p, device, 0, UART_LCR, UART_LCR_DLAB | 3);
    setReg(p, device, 0, UART_TX, 0x0c);
    setReg(p, device, 0, UART_IER, 0x00);
    expect([reg(p, device, 0, UART_RX), reg(p, device, 0, UART_IER)]).toEqual([0x0c, 0]);
    expect(reg(p, device, 0, UART_MSR)).toBe(0xb3);
  });

  it('carries data from port 0 to port 1 over a null-modem pair, with INTx through an eventfd', () => {
    const { p } = setup({ wiring: 'null-modem' });
    const { device } = openCard(p, 'mtty-2', U1);
    const efd = p.eventfd(0, EFD_NONBLOCK);
    setIrqEventfd(p, device, VFIO_PCI_INTX_IRQ_INDEX, efd);
    for (const port of [0, 1]) {
      setReg(p, device, port, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    }
    setReg(p, device, 1, UART_IER, UART_IER_RDI);
    // pwrite THR on port 0 ...
    p.pwrite(device, enc.encode('h'), mttyRegionOffset(VFIO_PCI_BAR0_REGION_INDEX) + BigInt(UART_TX));
    expect(drain(p, efd)).toBe(1n);
    expect(reg(p, device, 0, UART_LSR) & UART_LSR_DR).toBe(0);
    expect(reg(p, device, 1, UART_LSR) & UART_LSR_DR).toBe(UART_LSR_DR);
    // ... pread RBR on port 1.
    expect(dec.decode(p.pread(device, 1, mttyRegionOffset(VFIO_PCI_BAR1_REGION_INDEX) + BigInt(UART_RX)))).toBe('h');
    // INTx is automasked until the user unmasks it.
    p.pwrite(device, enc.encode('i'), mttyRegionOffset(VFIO_PCI_BAR0_REGION_INDEX));
    p.ioctl(device, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: 24 }));
    expect(drain(p, efd)).toBe(0n);
    expect(reg(p, device, 1, UART_RX)).toBe(0x69);
    p.ioctl(device, VFIO_DEVICE_SET_IRQS, vfioIrqSet.encode({ argsz: 20, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1 }));
    p.pwrite(device, enc.encode('j'), mttyRegionOffset(VFIO_PCI_BAR0_REGION_INDEX));
    expect(drain(p, efd)).toBe(1n);
    // Port 1 transmits to port 0.
    setReg(p, device, 1, UART_TX, 0x21);
    expect(reg(p, device, 0, UART_RX)).toBe(0x21);
  });

  it('validates SET_IRQS like mtty_set_irqs', () => {
    const { p } = setup();
    const { device } = openCard(p, 'mtty-1', U1);
    const efd = p.eventfd(0, EFD_NONBLOCK);
    const call = (flags: number, index: number, count: number, data?: number): number => {
      const buf = new Uint8Array(24);
      vfioIrqSet.write(buf, { argsz: data === undefined ? 20 : 24, flags, index, start: 0, count });
      if (data !== undefined) new DataView(buf.buffer).setInt32(20, data, true);
      return p.ioctl(device, VFIO_DEVICE_SET_IRQS, buf);
    };
    const T = VFIO_IRQ_SET_ACTION_TRIGGER;
    // Triggering INTx before an eventfd is bound: not in use.
    expect(errnoOf(() => call(VFIO_IRQ_SET_DATA_NONE | T, VFIO_PCI_INTX_IRQ_INDEX, 1))).toBe('EINVAL');
    expect(errnoOf(() => call(VFIO_IRQ_SET_DATA_EVENTFD | T, VFIO_PCI_MSIX_IRQ_INDEX, 1, efd))).toBe('ENOTTY');
    expect(errnoOf(() => call(VFIO_IRQ_SET_DATA_EVENTFD | T, VFIO_PCI_INTX_IRQ_INDEX, 1, 99))).toBe('EBADF');
    expect(errnoOf(() => call(VFIO_IRQ_SET_DATA_EVENTFD | T, VFIO_PCI_INTX_IRQ_INDEX, 2, efd))).toBe('EINVAL');
    call(VFIO_IRQ_SET_DATA_EVENTFD | T, VFIO_PCI_INTX_IRQ_INDEX, 1, efd);
    // INTx in use: MSI cannot be bound next to it.
    expect(errnoOf(() => call(VFIO_IRQ_SET_DATA_EVENTFD | T, VFIO_PCI_MSI_IRQ_INDEX, 1, efd))).toBe('EINVAL');
    expect(errnoOf(() => call(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_MSI_IRQ_INDEX, 1))).toBe('ENOTTY');
    call(VFIO_IRQ_SET_DATA_NONE | T, VFIO_PCI_INTX_IRQ_INDEX, 1);
    expect(drain(p, efd)).toBe(1n);
    // Disable INTx (count 0), then MSI can take over.
    call(VFIO_IRQ_SET_DATA_NONE | T, VFIO_PCI_INTX_IRQ_INDEX, 0);
    call(VFIO_IRQ_SET_DATA_EVENTFD | T, VFIO_PCI_MSI_IRQ_INDEX, 1, efd);
    call(VFIO_IRQ_SET_DATA_NONE | T, VFIO_PCI_MSI_IRQ_INDEX, 1);
    expect(drain(p, efd)).toBe(1n);
    // Neither or several action bits match no case of mtty_set_irqs: success, nothing happens.
    expect(call(VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_MSI_IRQ_INDEX, 1)).toBe(0);
    expect(call(VFIO_IRQ_SET_DATA_NONE | T | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 1)).toBe(0);
    expect(drain(p, efd)).toBe(0n);
    // fd -1 unbinds.
    call(VFIO_IRQ_SET_DATA_EVENTFD | T, VFIO_PCI_MSI_IRQ_INDEX, 1, -1);
    expect(errnoOf(() => call(VFIO_IRQ_SET_DATA_NONE | T, VFIO_PCI_MSI_IRQ_INDEX, 1))).toBe('EINVAL');
  });

  it('removing an open card waits for the user to close it, then returns its ports', async () => {
    const { p, plugin, host } = setup();
    const fds = openCard(p, 'mtty-2', U1);
    expect(plugin.handle(host.api)?.availablePorts()).toBe(22);
    const fd = p.open(`/sys/bus/mdev/devices/${U1}/remove`, O_WRONLY);
    let done = false;
    const removal = p.writeAsync(fd, enc.encode('1')).then(() => {
      done = true;
    });
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(done).toBe(false);
    expect(plugin.handle(host.api)?.availablePorts()).toBe(22);
    p.close(fds.device);
    await removal;
    expect(plugin.handle(host.api)?.availablePorts()).toBe(24);
    expect(p.readdir('/sys/devices/virtual/mtty/mtty')).toEqual(['mdev_supported_types', 'subsystem']);
    p.close(fd);
  });
});
