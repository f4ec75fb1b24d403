/**
 * VFIO_DEVICE_GET_INFO, GET_REGION_INFO and GET_IRQ_INFO as Linux 6.12's vfio-pci answers them (inventory §1.4,
 * §1.11, §3.3, P6, P7, P29), on the edu and e1000e fixtures.
 */
import {
  isSysError,
  parseCapChain,
  VFIO_DEVICE_FLAGS_CAPS,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_PCI_ATOMIC_COMP32,
  VFIO_PCI_ATOMIC_COMP64,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioPciOffset,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import { pciFunctionFromConfig } from '@vfio-ts/sim';
import { describe, expect, it } from 'vitest';
import { E1000E_BDF, e1000eFunction, EDU_BDF, eduHost, eduPassive, makeHost, openDev, u32 } from './driver-helpers.js';
import { fixture } from './helpers.js';

const RW = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
const MMAP = VFIO_REGION_INFO_FLAG_MMAP;

function expectErrno(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    expect(isSysError(e) ? e.errno : e).toBe(errno);
    return;
  }
  throw new Error(`expected ${errno}`);
}

type Opened = ReturnType<typeof open>;
function open(devices: Parameters<typeof makeHost>[0], bdf: string) {
  const t = makeHost(devices);
  return { ...t, fd: openDev(t, bdf).device };
}

function regionInfo(o: Opened, index: number, argsz = 32): { info: ReturnType<typeof vfioRegionInfo.decode>; bytes: Uint8Array } {
  const bytes = new Uint8Array(Math.max(argsz, 32));
  bytes.set(vfioRegionInfo.encode({ argsz, index }));
  o.p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, bytes);
  return { info: vfioRegionInfo.decode(bytes), bytes };
}

describe('VFIO_DEVICE_GET_INFO', () => {
  it('reports PCI, 9 regions and 5 IRQ indexes; RESET only when a function reset works', () => {
    const edu = open([{ bdf: EDU_BDF, fn: eduPassive(), driver: 'vfio-pci' }], EDU_BDF);
    const a = vfioDeviceInfo.encode({ argsz: 24 });
    edu.p.ioctl(edu.fd, VFIO_DEVICE_GET_INFO, a);
    // edu has neither FLR nor PM reset and sits alone on the root bus: no reset works.
    expect(vfioDeviceInfo.decode(a)).toMatchObject({ argsz: 24, flags: VFIO_DEVICE_FLAGS_PCI, num_regions: 9, num_irqs: 5, cap_offset: 0 });
    const e = open([{ bdf: E1000E_BDF, fn: e1000eFunction(), driver: 'vfio-pci' }], E1000E_BDF);
    const b = vfioDeviceInfo.encode({ argsz: 16 });
    e.p.ioctl(e.fd, VFIO_DEVICE_GET_INFO, b);
    // NoSoftRst- gives the e1000e a PM reset.
    expect(vfioDeviceInfo.decode(b)).toMatchObject({ flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET, num_regions: 9, num_irqs: 5 });
  });

  it('refuses a short argsz (EINVAL) and a short buffer (EFAULT)', () => {
    const o = open([{ bdf: EDU_BDF, fn: eduPassive(), driver: 'vfio-pci' }], EDU_BDF);
    expectErrno(() => o.p.ioctl(o.fd, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: 15 })), 'EINVAL');
    expectErrno(() => o.p.ioctl(o.fd, VFIO_DEVICE_GET_INFO, new Uint8Array(8)), 'EFAULT');
  });

  it('adds the PCI_ATOMIC_COMP capability for a PCIe v2 endpoint on the root bus that claims completer widths', () => {
    const c = new Uint8Array(4096);
    c.set(fixture('edu'));
    c[0x41] = 0x60; // MSI → PCIe
    c.set([0x10, 0x00, 0x92, 0x00], 0x60); // PCIe v2, RC integrated endpoint
    new DataView(c.buffer).setUint32(0x60 + 0x24, 0x180, true); // DEVCAP2: 32- and 64-bit completers
    const fn = pciFunctionFromConfig({ config: c, bars: '0:mem32:0x100000' });
    const o = open([{ bdf: EDU_BDF, fn, driver: 'vfio-pci' }], EDU_BDF);
    const small = vfioDeviceInfo.encode({ argsz: 24 });
    o.p.ioctl(o.fd, VFIO_DEVICE_GET_INFO, small);
    expect(vfioDeviceInfo.decode(small)).toMatchObject({ argsz: 40, flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_CAPS, cap_offset: 0 });
    const big = new Uint8Array(40);
    big.set(vfioDeviceInfo.encode({ argsz: 40 }));
    o.p.ioctl(o.fd, VFIO_DEVICE_GET_INFO, big);
    expect(vfioDeviceInfo.decode(big).cap_offset).toBe(24);
    const [cap] = parseCapChain(big, 24, { minOffset: 24 });
    expect(cap).toMatchObject({ id: VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP, version: 1, next: 0 });
    expect(u32(big, 32)).toBe(VFIO_PCI_ATOMIC_COMP32 | VFIO_PCI_ATOMIC_COMP64);
  });
});

describe('VFIO_DEVICE_GET_REGION_INFO', () => {
  it('describes edu: one mmap-able 1 MiB BAR, no ROM, 256-byte config, no VGA', () => {
    const o = open([{ bdf: EDU_BDF, fn: eduPassive(), driver: 'vfio-pci' }], EDU_BDF);
    expect(regionInfo(o, 0).info).toEqual({ argsz: 32, flags: RW | MMAP, index: 0, cap_offset: 0, size: 0x100000n, offset: 0n });
    for (const i of [1, 2, 3, 4, 5]) {
      expect(regionInfo(o, i).info).toEqual({ argsz: 32, flags: 0, index: i, cap_offset: 0, size: 0n, offset: vfioPciOffset(i) });
    }
    expect(regionInfo(o, 6).info).toMatchObject({ flags: 0, size: 0n, offset: 6n << 40n });
    expect(regionInfo(o, 7).info).toMatchObject({ flags: RW, size: 256n, offset: 7n << 40n });
    expectErrno(() => regionInfo(o, 8), 'EINVAL');
    expectErrno(() => regionInfo(o, 9), 'EINVAL');
    expectErrno(() => regionInfo(o, 0xffffffff), 'EINVAL');
    expectErrno(() => o.p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, vfioRegionInfo.encode({ argsz: 31, index: 0 })), 'EINVAL');
    expectErrno(() => o.p.ioctl(o.fd, VFIO_DEVICE_GET_REGION_INFO, new Uint8Array(16)), 'EFAULT');
  });

  it('describes e1000e: I/O BAR without mmap, the MSI-X BAR with MSIX_MAPPABLE, 4 KiB config', () => {
    const o = open([{ bdf: E1000E_BDF, fn: e1000eFunction(), driver: 'vfio-pci' }], E1000E_BDF);
    expect(regionInfo(o, 0).info).toMatchObject({ flags: RW | MMAP, size: 0x20000n });
    expect(regionInfo(o, 1).info).toMatchObject({ flags: RW | MMAP, size: 0x20000n });
    expect(regionInfo(o, 2).info).toMatchObject({ flags: RW, size: 0x20n });
    // BAR3 holds the MSI-X table: a capability follows; with argsz 32 only its size is reported.
    const short = regionInfo(o, 3).info;
    expect(short).toMatchObject({ argsz: 40, flags: RW | MMAP | VFIO_REGION_INFO_FLAG_CAPS, cap_offset: 0, size: 0x4000n });
    const { info, bytes } = regionInfo(o, 3, 40);
    expect(info).toMatchObject({ argsz: 40, cap_offset: 32 });
    expect(parseCapChain(bytes, 32, { minOffset: 32 })).toMatchObject([{ id: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, version: 1, next: 0 }]);
    expect(regionInfo(o, 4).info.size).toBe(0n);
    // The ROM BAR holds no valid image (no 0x55AA signature): nothing to read.
    expect(regionInfo(o, 6).info).toMatchObject({ flags: 0, size: 0n });
    expect(regionInfo(o, 7).info).toMatchObject({ flags: RW, size: 4096n });
  });

  it('reports a ROM that holds a valid image with the size of its BAR, read-only', () => {
    const rom = new Uint8Array(0x8000);
    rom.set([0x55, 0xaa], 0);
    rom.set([0x1c, 0x00], 0x18); // PCIR at 0x1c
    rom.set([0x50, 0x43, 0x49, 0x52], 0x1c);
    rom.set([0x10, 0x00], 0x1c + 0x10); // 16 × 512 bytes
    rom[0x1c + 0x15] = 0x80; // last image
    const fn = e1000eFunction(rom);
    const o = open([{ bdf: E1000E_BDF, fn, driver: 'vfio-pci' }], E1000E_BDF);
    // The BAR size is reported, not the image size.
    expect(fn.romSize).toBe(0x40000n);
    expect(regionInfo(o, 6).info).toMatchObject({ flags: VFIO_REGION_INFO_FLAG_READ, size: 0x40000n, offset: 6n << 40n });
  });

  it('reports the VGA region for VGA-class devices unless disable_vga', () => {
    const c = fixture('edu');
    c.set([0x00, 0x00, 0x03], 0x09); // class 030000
    const mk = (params = {}) => {
      const t = makeHost([{ bdf: EDU_BDF, fn: pciFunctionFromConfig({ config: c, bars: '0:mem32:0x100000' }), driver: 'vfio-pci' }], { params });
      return { ...t, fd: openDev(t, EDU_BDF).device };
    };
    expect(regionInfo(mk(), 8).info).toMatchObject({ flags: RW, size: 0xc0000n, offset: 8n << 40n });
    expectErrno(() => regionInfo(mk({ 'vfio_pci.disable_vga': true }), 8), 'EINVAL');
  });
});

describe('VFIO_DEVICE_GET_IRQ_INFO', () => {
  function irqInfo(o: Opened, index: number, argsz = 16): ReturnType<typeof vfioIrqInfo.decode> {
    const b = vfioIrqInfo.encode({ argsz, index });
    o.p.ioctl(o.fd, VFIO_DEVICE_GET_IRQ_INFO, b);
    return vfioIrqInfo.decode(b);
  }

  it('answers INTx and REQ on conventional PCI; ERR only on PCI Express; index 5 is EINVAL', () => {
    const t = eduHost();
    const o = { ...t, fd: openDev(t, EDU_BDF).device };
    expect(irqInfo(o, 0)).toMatchObject({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, count: 1 });
    expect(irqInfo(o, 4)).toMatchObject({ count: 1 });
    expectErrno(() => irqInfo(o, 3), 'EINVAL');
    expectErrno(() => irqInfo(o, 5), 'EINVAL');
    expectErrno(() => irqInfo(o, 0, 15), 'EINVAL');
    const e = open([{ bdf: E1000E_BDF, fn: e1000eFunction(), driver: 'vfio-pci' }], E1000E_BDF);
    expect(irqInfo(e, 3)).toMatchObject({ count: 1 });
  });

  it('answers ENOTTY for an ioctl vfio-pci does not know', () => {
    const t = eduHost();
    const fd = openDev(t, EDU_BDF).device;
    expectErrno(() => t.p.ioctl(fd, 0x3b6e + 10, new Uint8Array(64)), 'ENOTTY');
  });
});
