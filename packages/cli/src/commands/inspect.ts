/**
 * `vfio inspect --config-image FILE --bars SPEC [--json]`: builds a host with one `pciFunctionFromConfig` device
 * bound to vfio-pci and prints what a VFIO user sees: the device info, every region info with its capabilities,
 * every IRQ info, the whole config space read through the VFIO config region in 4-byte reads, and the value each
 * BAR register and the ROM register read back after writing all-ones (then restored). The numbers are vfio-pci's
 * (Linux 6.12), so they can be compared with what real Linux gives for the same device.
 */
import { createHost } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import { simPlatform } from '@vfio-ts/sim';
import {
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_TYPE1v2_IOMMU,
  deviceInfo,
  irqInfo,
  isSysError,
  openVfioDevice,
  regionInfo,
} from '@vfio-ts/uapi';
import type { VfioIrqInfoView, VfioRegionInfoView } from '@vfio-ts/uapi';
import type { VfioCommand } from '../command.js';
import { CliError } from '../errors.js';
import { fields, hex, table, text, type Block, type Report } from '../output.js';
import { iommuType1, vfioPciPlugin } from '../plugins.js';
import { configImageFromOptions, deviceFromImage, withImage, type ConfigImageDevice } from '../sim-host.js';

/** Where the inspected device sits: alone on the root bus, as QEMU puts `-device` on pcie.0. */
export const INSPECT_BDF = '0000:00:03.0';

/** One entry of `regions` in the JSON: the info, or the errno GET_REGION_INFO gave. */
export type InspectRegion =
  | { readonly index: number; readonly flags: string; readonly size: string; readonly offset: string; readonly caps: readonly { readonly id: number; readonly version: number }[] }
  | { readonly index: number; readonly errno: string };

/** One entry of `irqs` in the JSON. */
export type InspectIrq = { readonly index: number; readonly flags: string; readonly count: number } | { readonly index: number; readonly errno: string };

/** What `vfio inspect --json` prints (the shape the issue specifies). */
export interface InspectView {
  readonly device: { readonly flags: string; readonly num_regions: number; readonly num_irqs: number };
  readonly regions: readonly InspectRegion[];
  readonly irqs: readonly InspectIrq[];
  /** Hex bytes of the whole config region, in offset order. */
  readonly config: string;
  readonly bar_sizing: Readonly<Record<'bar0' | 'bar1' | 'bar2' | 'bar3' | 'bar4' | 'bar5' | 'rom', string>>;
}

const BAR_REGS = [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24] as const;
const ROM_REG = 0x30;
/** Sizing value for the ROM register: every address bit, enable clear (PCI_ROM_ADDRESS_MASK). */
const ROM_SIZING = 0xfffff800;

const u32 = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};
const readU32 = (b: Uint8Array): number => {
  if (b.length !== 4) throw new CliError(`a 4-byte config read returned ${b.length} bytes`, 'this is a bug in vfio-ts; please report it');
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
};

/**
 * The QEMU flow up to the device fd, as root (uapi's `openVfioDevice`: a group that is not viable is refused by
 * SET_CONTAINER with Linux's errno, and whatever was opened is closed again).
 */
function openDevice(p: Process, bdf: string): number {
  const link = p.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`);
  const group = Number(link.slice(link.lastIndexOf('/') + 1));
  return openVfioDevice(p, { group, device: bdf, iommuType: VFIO_TYPE1v2_IOMMU }).device;
}

function regionView(r: VfioRegionInfoView): InspectRegion {
  return { index: r.index, flags: hex(r.flags), size: hex(r.size), offset: hex(r.offset), caps: r.caps.map((c) => ({ id: c.id, version: c.version })) };
}

function irqView(r: VfioIrqInfoView): InspectIrq {
  return { index: r.index, flags: hex(r.flags), count: r.count };
}

/**
 * A minimal valid option-ROM image of `size` bytes: one image (0x55AA signature, PCIR structure with the
 * device's ids, code type 0, the last-image bit) spanning the whole ROM. A config capture holds no ROM bytes, but
 * Linux reports a ROM region only when pci_map_rom finds a valid image there (inventory §3.3), which the device
 * the capture came from had — so a ROM named in SPEC gets one.
 */
export function optionRomImage(size: bigint, vendor: number, device: number): Uint8Array {
  const rom = new Uint8Array(Number(size));
  const v = new DataView(rom.buffer);
  v.setUint16(0x00, 0xaa55, true);
  rom[0x02] = Math.min(255, Number(size / 512n)); // legacy "size in 512-byte blocks" byte
  v.setUint16(0x18, 0x1c, true); // pointer to the PCI data structure
  rom.set([0x50, 0x43, 0x49, 0x52], 0x1c); // "PCIR"
  v.setUint16(0x1c + 0x04, vendor, true);
  v.setUint16(0x1c + 0x06, device, true);
  v.setUint16(0x1c + 0x0a, 0x18, true); // structure length
  v.setUint16(0x1c + 0x10, Number(size / 512n), true); // image length in 512-byte units
  rom[0x1c + 0x15] = 0x80; // last image
  return rom;
}

/** Runs the inspection on a fresh host and returns the JSON view. */
export function inspectDevice(image: ConfigImageDevice): InspectView {
  const fn = deviceFromImage(image, (size, vendor, device) => optionRomImage(size, vendor, device));
  const platform = withImage(image, () => simPlatform({ iommu: 'vtd', devices: [{ bdf: INSPECT_BDF, fn, driver: 'vfio-pci' }] }));
  const host = createHost({ platform, plugins: [iommuType1(), vfioPciPlugin()] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_ADMIN', 'CAP_SYS_RAWIO'] });
  const fd = openDevice(p, INSPECT_BDF);
  const info = deviceInfo(p, fd);
  const regions: InspectRegion[] = [];
  let config: VfioRegionInfoView | undefined;
  for (let i = 0; i < info.numRegions; i++) {
    try {
      const r = regionInfo(p, fd, i);
      if (i === VFIO_PCI_CONFIG_REGION_INDEX) config = r;
      regions.push(regionView(r));
    } catch (e) {
      if (!isSysError(e)) throw e;
      regions.push({ index: i, errno: e.errno });
    }
  }
  const irqs: InspectIrq[] = [];
  for (let i = 0; i < info.numIrqs; i++) {
    try {
      irqs.push(irqView(irqInfo(p, fd, i)));
    } catch (e) {
      if (!isSysError(e)) throw e;
      irqs.push({ index: i, errno: e.errno });
    }
  }
  if (!config || config.size === 0n) throw new CliError('the device has no config region', 'this is a bug in vfio-ts; please report it');
  const base = config.offset;
  const read32 = (off: number): number => readU32(p.pread(fd, 4, base + BigInt(off)));
  const write32 = (off: number, v: number): void => { p.pwrite(fd, u32(v), base + BigInt(off)); };
  // The whole config region, one 4-byte read at a time (as a user reading dwords would).
  let configHex = '';
  for (let off = 0; off < Number(config.size); off += 4) {
    const v = read32(off);
    for (let b = 0; b < 4; b++) configHex += ((v >>> (8 * b)) & 0xff).toString(16).padStart(2, '0');
  }
  const size = (reg: number, probe: number): string => {
    const saved = read32(reg);
    write32(reg, probe);
    const sized = read32(reg);
    write32(reg, saved);
    return hex(sized >>> 0);
  };
  const sizing = {
    bar0: size(BAR_REGS[0], 0xffffffff),
    bar1: size(BAR_REGS[1], 0xffffffff),
    bar2: size(BAR_REGS[2], 0xffffffff),
    bar3: size(BAR_REGS[3], 0xffffffff),
    bar4: size(BAR_REGS[4], 0xffffffff),
    bar5: size(BAR_REGS[5], 0xffffffff),
    rom: size(ROM_REG, ROM_SIZING),
  };
  p.exit(0);
  return {
    device: { flags: hex(info.flags), num_regions: info.numRegions, num_irqs: info.numIrqs },
    regions,
    irqs,
    config: configHex,
    bar_sizing: sizing,
  };
}

const REGION_NAMES = ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'CONFIG', 'VGA'];
const IRQ_NAMES = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'];
const CAP_NAMES: Readonly<Record<number, string>> = { 1: 'SPARSE_MMAP', 2: 'TYPE', 3: 'MSIX_MAPPABLE', 4: 'NVLINK2_SSATGT', 5: 'NVLINK2_LNKSPD' };

function flagNames(flags: number, names: readonly string[]): string {
  const set = names.filter((_, i) => (flags & (1 << i)) !== 0);
  return set.length ? set.join('|') : '-';
}

/** The human view: the same data as tables and a hex dump. */
export function inspectReport(view: InspectView, file: string | undefined): Report {
  const dump: string[] = [];
  for (let off = 0; off < view.config.length / 2; off += 16) {
    const bytes = view.config.slice(off * 2, off * 2 + 32).match(/../g) ?? [];
    dump.push(`${off.toString(16).padStart(3, '0')}: ${bytes.join(' ')}`);
  }
  const devFlags = Number(view.device.flags);
  const blocks: Block[] = [
    fields([
      ['image', file ?? '(given bytes)'],
      ['flags', `${view.device.flags} (${flagNames(devFlags, ['RESET', 'PCI', 'PLATFORM', 'AMBA', 'CCW', 'AP', 'FSL_MC', 'CAPS', 'CDX'])})`],
      ['regions', String(view.device.num_regions)],
      ['irqs', String(view.device.num_irqs)],
    ], `VFIO device ${INSPECT_BDF} (vfio-pci, simulated host)`),
    table(
      [{ header: 'index', align: 'right' }, 'region', 'flags', { header: 'size', align: 'right' }, { header: 'offset', align: 'right' }, 'caps'],
      view.regions.map((r) => 'errno' in r
        ? [String(r.index), REGION_NAMES[r.index] ?? `#${r.index}`, r.errno, '-', '-', '-']
        : [String(r.index), REGION_NAMES[r.index] ?? `#${r.index}`, `${r.flags} ${flagNames(Number(r.flags), ['READ', 'WRITE', 'MMAP', 'CAPS'])}`, r.size, r.offset,
          r.caps.map((c) => `${CAP_NAMES[c.id] ?? c.id} v${c.version}`).join(', ') || '-']),
      'Regions',
    ),
    table(
      [{ header: 'index', align: 'right' }, 'irq', 'flags', { header: 'count', align: 'right' }],
      view.irqs.map((r) => 'errno' in r
        ? [String(r.index), IRQ_NAMES[r.index] ?? `#${r.index}`, r.errno, '-']
        : [String(r.index), IRQ_NAMES[r.index] ?? `#${r.index}`, `${r.flags} ${flagNames(Number(r.flags), ['EVENTFD', 'MASKABLE', 'AUTOMASKED', 'NORESIZE'])}`, String(r.count)]),
      'IRQs',
    ),
    table(
      ['register', 'read back after sizing'],
      Object.entries(view.bar_sizing).map(([k, v]) => [k === 'rom' ? 'ROM (0x30, wrote 0xfffff800)' : `${k.toUpperCase()} (${hex(BAR_REGS[Number(k.slice(3))]!)}, wrote 0xffffffff)`, v]),
      'BAR sizing',
    ),
    text(`Config space through the VFIO config region (${view.config.length / 2} bytes)\n${dump.join('\n')}`),
  ];
  return { data: view, blocks };
}

/** `vfio inspect`. */
export const inspectCommand: VfioCommand = {
  name: 'inspect',
  configure: (cmd) => {
    cmd
      .summary('show what a VFIO user sees of a device given as a captured config space')
      .description('Builds a simulated host with one device made from a config space image (the bytes of a sysfs '
        + 'config file) bound to vfio-pci, opens it through VFIO and prints the device info, every region info '
        + 'with its capabilities, every IRQ info, the whole config space read through the VFIO config region in '
        + '4-byte reads, and what each BAR register and the ROM register read back after writing all-ones '
        + '(0xfffff800 for the ROM), each restored afterwards. SPEC lists BARs as index:type:size (type mem32, '
        + 'mem64, mem32-pref, mem64-pref or io) and the ROM as rom:size.')
      .requiredOption('--config-image <file>', 'the captured config space (256 or 4096 bytes)')
      .requiredOption('--bars <spec>', "the BARs, e.g. '0:mem32:0x20000,2:io:0x20,rom:0x40000'");
  },
  run: ({ options }) => {
    const image = configImageFromOptions(options, true)!;
    return inspectReport(inspectDevice(image), image.file);
  },
};
