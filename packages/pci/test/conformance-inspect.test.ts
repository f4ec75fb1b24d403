/**
 * Conformance with Linux 6.12 for everything `vfio inspect` asks of a device (GET_INFO, every GET_REGION_INFO with
 * its capabilities, every GET_IRQ_INFO, the whole CONFIG region in 4-byte reads, BAR and ROM sizing), on the two
 * QEMU 7.2 devices whose config spaces were captured from a Linux 6.12 guest (test/fixtures). Each expected value
 * is what Linux's vfio-pci gives for that device; the comment next to it names the rule.
 */
import {
  isSysError,
  parseCapChain,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioPciOffset,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import type { ConfigSpaceFunction } from '@vfio-ts/sim';
import { pciFunctionFromConfig } from '@vfio-ts/sim';
import { describe, expect, it } from 'vitest';
import { E1000E_BAR_SPEC, E1000E_BDF, EDU_BDF, le32, makeHost, openDev, u32 } from './driver-helpers.js';
import { fixture } from './helpers.js';

/** One valid option-ROM image (0x55AA, PCIR with the ids, last image) filling `size` bytes, as pci_map_rom wants. */
function optionRom(size: number, vendor: number, device: number): Uint8Array {
  const rom = new Uint8Array(size);
  const v = new DataView(rom.buffer);
  v.setUint16(0, 0xaa55, true);
  v.setUint16(0x18, 0x1c, true);
  rom.set([0x50, 0x43, 0x49, 0x52], 0x1c);
  v.setUint16(0x20, vendor, true);
  v.setUint16(0x22, device, true);
  v.setUint16(0x26, 0x18, true);
  v.setUint16(0x2c, size / 512, true);
  rom[0x31] = 0x80;
  return rom;
}

interface InspectView {
  device: { flags: number; numRegions: number; numIrqs: number };
  regions: ({ index: number; flags: number; size: bigint; offset: bigint; caps: number[] } | { index: number; errno: string })[];
  irqs: ({ index: number; flags: number; count: number } | { index: number; errno: string })[];
  config: Uint8Array;
  sizing: number[];
}

function errnoOf(e: unknown): string {
  if (!isSysError(e)) throw e;
  return e.errno;
}

/** The calls `vfio inspect` makes, in its order, through the system-call surface. */
function inspect(fn: ConfigSpaceFunction, bdf: string): InspectView {
  const t = makeHost([{ bdf, fn, driver: 'vfio-pci' }]);
  const fd = openDev(t, bdf).device;
  const info = vfioDeviceInfo.encode({ argsz: 24 });
  t.p.ioctl(fd, VFIO_DEVICE_GET_INFO, info);
  const d = vfioDeviceInfo.decode(info);
  const regions: InspectView['regions'] = [];
  for (let index = 0; index < d.num_regions; index++) {
    const bytes = new Uint8Array(256);
    bytes.set(vfioRegionInfo.encode({ argsz: 256, index }));
    try {
      t.p.ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, bytes);
      const r = vfioRegionInfo.decode(bytes);
      const caps = r.cap_offset ? parseCapChain(bytes, r.cap_offset, { minOffset: 32 }).map((c) => c.id) : [];
      regions.push({ index, flags: r.flags, size: r.size, offset: r.offset, caps });
    } catch (e) {
      regions.push({ index, errno: errnoOf(e) });
    }
  }
  const irqs: InspectView['irqs'] = [];
  for (let index = 0; index < d.num_irqs; index++) {
    const bytes = vfioIrqInfo.encode({ argsz: 16, index });
    try {
      t.p.ioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, bytes);
      const r = vfioIrqInfo.decode(bytes);
      irqs.push({ index, flags: r.flags, count: r.count });
    } catch (e) {
      irqs.push({ index, errno: errnoOf(e) });
    }
  }
  const cfg = vfioPciOffset(7);
  const size = Number((regions[7] as { size: bigint }).size);
  const config = new Uint8Array(size);
  for (let off = 0; off < size; off += 4) config.set(t.p.pread(fd, 4, cfg + BigInt(off)), off);
  const sizeReg = (reg: number, probe: number): number => {
    const saved = t.p.pread(fd, 4, cfg + BigInt(reg));
    t.p.pwrite(fd, le32(probe), cfg + BigInt(reg));
    const v = u32(t.p.pread(fd, 4, cfg + BigInt(reg)));
    t.p.pwrite(fd, saved, cfg + BigInt(reg));
    return v;
  };
  const sizing = [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24].map((reg) => sizeReg(reg, 0xffffffff));
  sizing.push(sizeReg(0x30, 0xfffff800));
  return { device: { flags: d.flags, numRegions: d.num_regions, numIrqs: d.num_irqs }, regions, irqs, config, sizing };
}

const dword = (b: Uint8Array, off: number): number => u32(b, off);
const OFF = (i: number): bigint => BigInt(i) << 40n;

describe('vfio inspect on QEMU 7.2 e1000e (8086:10d3, PCIe RC-integrated endpoint) = Linux 6.12', () => {
  const capture = fixture('e1000e');
  const view = inspect(
    pciFunctionFromConfig({ config: capture, bars: E1000E_BAR_SPEC, rom: optionRom(0x40000, 0x8086, 0x10d3) }),
    E1000E_BDF,
  );

  it('GET_INFO: PCI|RESET (PM reset: NoSoftRst-), 9 regions, 5 IRQ indexes, no caps (v1 PCIe cap has no DEVCAP2)', () => {
    // vfio_pci_ioctl_get_info: reset_works = !pci_try_reset_function() at open; vfio_pci_info_atomic_cap → ENODEV.
    expect(view.device).toEqual({ flags: 0x3, numRegions: 9, numIrqs: 5 });
  });

  it('GET_REGION_INFO: BAR sizes, MMAP for memory BARs, MSIX_MAPPABLE on BAR3, ROM read-only, 4 KiB config, no VGA', () => {
    // vfio_pci_ioctl_get_region_info: offset = index << 40 even for empty BARs; I/O BARs never mmap.
    expect(view.regions).toEqual([
      { index: 0, flags: 0x7, size: 0x20000n, offset: OFF(0), caps: [] },
      { index: 1, flags: 0x7, size: 0x20000n, offset: OFF(1), caps: [] },
      { index: 2, flags: 0x3, size: 0x20n, offset: OFF(2), caps: [] },
      { index: 3, flags: 0xf, size: 0x4000n, offset: OFF(3), caps: [3] },
      { index: 4, flags: 0, size: 0n, offset: OFF(4), caps: [] },
      { index: 5, flags: 0, size: 0n, offset: OFF(5), caps: [] },
      // pci_map_rom found the 0x55AA image: READ, size = ROM BAR size (efi-e1000e.rom in a 256 KiB BAR).
      { index: 6, flags: 0x1, size: 0x40000n, offset: OFF(6), caps: [] },
      { index: 7, flags: 0x3, size: 0x1000n, offset: OFF(7), caps: [] },
      { index: 8, errno: 'EINVAL' },
    ]);
  });

  it('GET_IRQ_INFO: INTx 1 maskable, MSI 1 NORESIZE, MSI-X 5 resizable (x86 dynamic MSI-X), ERR 1, REQ 1', () => {
    // vfio_pci_ioctl_get_irq_info: NORESIZE for all but INTx and (has_dyn_msix) MSI-X; x86's MSI parent domains
    // advertise MSI_FLAG_PCI_MSIX_ALLOC_DYN, so pci_msix_can_alloc_dyn() is true.
    expect(view.irqs).toEqual([
      { index: 0, flags: 0x7, count: 1 },
      { index: 1, flags: 0x9, count: 1 },
      { index: 2, flags: 0x1, count: 5 },
      { index: 3, flags: 0x9, count: 1 },
      { index: 4, flags: 0x9, count: 1 },
    ]);
  });

  it('config header: COMMAND io|mem|serr as firmware left it, no bus master; BARs and ROM as assigned', () => {
    const c = view.config;
    expect(dword(c, 0x00)).toBe(0x10d38086);
    // pci_clear_master + pci_enable_device (only sets decode bits) + INTx unmasked: 0x0103; STATUS: CAP_LIST.
    expect(dword(c, 0x04)).toBe(0x00100103);
    // vfio_bar_fixup: (value & ~(len-1)) | type flags from the resource.
    expect([0x10, 0x14, 0x18, 0x1c, 0x20, 0x24].map((o) => dword(c, o))).toEqual([0xfeb80000, 0xfeba0000, 0xc041, 0xfebc0000, 0, 0]);
    // ROM: enable bit clear (pci_unmap_rom after GET_REGION_INFO disabled it again; the virtual copy never had it).
    expect(dword(c, 0x30)).toBe(0xfeb40000);
    expect(dword(c, 0x34)).toBe(0xc8);
    expect(dword(c, 0x3c)).toBe(0x010a);
  });

  it('capabilities: PM in D0, MSI and MSI-X disabled, PCIe v1 RC endpoint, AER and DSN all visible', () => {
    const c = view.config;
    expect(dword(c, 0xc8)).toBe(0x0022d001); // PM v2|DSI, next MSI
    expect(dword(c, 0xcc)).toBe(0); // PMCSR: D0, PME bits virtualized to 0
    expect(dword(c, 0xd0)).toBe(0x0080e005); // MSI 64-bit, 1 vector, enable clear, next PCIe
    expect(dword(c, 0xe0)).toBe(0x0091a010); // PCIe v1, type 9, next MSI-X
    expect(dword(c, 0xa0)).toBe(0x00040011); // MSI-X table size 5, disabled, end of chain
    expect(dword(c, 0x100)).toBe(0x14020001); // AER v2 → 0x140
    expect(dword(c, 0x140)).toBe(0x00010003); // DSN v1, end
  });

  it('AER mask and severity read as the device holds them, untouched by the reset at open', () => {
    // The AER perms pass these registers through (init_pci_ext_cap_err_perm: NO_VIRT). The PM reset at open cannot
    // change them: they are sticky (PCIe r6.0 §7.8.4), and pci_try_reset_function's pci_restore_state →
    // pci_restore_aer_state writes UNCOR_MASK, UNCOR_SEVER, COR_MASK and CAP back anyway.
    expect(dword(view.config, 0x108)).toBe(0);
    expect(dword(view.config, 0x10c)).toBe(0x00462030);
    expect(dword(view.config, 0x114)).toBe(0x0000e000);
    expect(dword(view.config, 0x118)).toBe(0xa0);
  });

  it('the whole 4 KiB config region reads as the capture (every virtualized field equals the device at open)', () => {
    expect(Buffer.from(view.config).toString('hex')).toBe(Buffer.from(capture).toString('hex'));
  });

  it('BAR sizing: size masks with type bits, 0 for unimplemented BAR4/5, ROM 0xfffc0000 (enable not written)', () => {
    expect(view.sizing).toEqual([0xfffe0000, 0xfffe0000, 0xffffffe1, 0xffffc000, 0, 0, 0xfffc0000]);
  });
});

describe('vfio inspect on QEMU 7.2 edu (1234:11e8, conventional PCI) = Linux 6.12', () => {
  const capture = fixture('edu');
  const view = inspect(pciFunctionFromConfig({ config: capture, bars: '0:mem32:0x100000' }), EDU_BDF);

  it('GET_INFO: PCI only — no FLR, no PM capability, alone on the root bus (no bus reset)', () => {
    expect(view.device).toEqual({ flags: 0x2, numRegions: 9, numIrqs: 5 });
  });

  it('GET_REGION_INFO: BAR0 1 MiB mmap-able, no ROM (no ROM BAR, no shadow), 256-byte config, no VGA', () => {
    expect(view.regions).toEqual([
      { index: 0, flags: 0x7, size: 0x100000n, offset: OFF(0), caps: [] },
      ...[1, 2, 3, 4, 5, 6].map((i) => ({ index: i, flags: 0, size: 0n, offset: OFF(i), caps: [] })),
      { index: 7, flags: 0x3, size: 0x100n, offset: OFF(7), caps: [] },
      { index: 8, errno: 'EINVAL' },
    ]);
  });

  it('GET_IRQ_INFO: INTx 1, MSI 1, MSI-X 0 with NORESIZE (no MSI-X cap → no dynamic MSI-X), ERR EINVAL (not PCIe)', () => {
    expect(view.irqs).toEqual([
      { index: 0, flags: 0x7, count: 1 },
      { index: 1, flags: 0x9, count: 1 },
      { index: 2, flags: 0x9, count: 0 },
      { index: 3, errno: 'EINVAL' },
      { index: 4, flags: 0x9, count: 1 },
    ]);
  });

  it('the 256-byte config region reads as the capture; BAR sizing 0xfff00000, everything else 0', () => {
    expect(Buffer.from(view.config).toString('hex')).toBe(Buffer.from(capture).toString('hex'));
    expect(dword(view.config, 0x04)).toBe(0x00100103);
    expect(view.sizing).toEqual([0xfff00000, 0, 0, 0, 0, 0, 0]);
  });
});
