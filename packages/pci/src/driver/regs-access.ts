/**
 * vfio-pci regions (inventory §1.11, §3.3): VFIO_DEVICE_GET_REGION_INFO, read/write at `index << 40` and mmap of
 * BARs, as Linux 6.12's vfio_pci_core.c and vfio_pci_rdwr.c do them.
 */
import type { MmapRequest } from '@vfio-ts/core';
import type { MmioHandler, PciBarInfo } from '@vfio-ts/platform';
import {
  CapChainBuilder,
  SysError,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  regionTypeCapPayload,
  vfioPciIndex,
  vfioPciOffset,
  vfioPciRegionOffset,
  vfioRegionInfo,
  writeInfoWithCaps,
} from '@vfio-ts/uapi';
import * as R from '../config/regs.js';
import type { VfioPciCoreDevice } from './device.js';
import { cfgRead, cfgWrite, romImageSize, updateCommand } from './pci-state.js';

/** The host page size (BAR mmap granularity). */
export const PAGE_SIZE = 4096n;
/** Size of the legacy VGA region: 0xa0000–0xbffff MMIO plus the 0x3b0/0x3c0 I/O windows at identity offsets. */
export const VGA_REGION_SIZE = 0xc0000n;

const pageAlign = (n: bigint): bigint => (n + PAGE_SIZE - 1n) & ~(PAGE_SIZE - 1n);

/** BAR `index` as the function decodes it, or undefined when not implemented (pci_resource_len 0). */
export function barInfo(dev: VfioPciCoreDevice, index: number): PciBarInfo | undefined {
  const b = dev.pdev.fn.bars.find((x) => x.index === index);
  return b && b.size > 0n ? b : undefined;
}

/** ROM BAR size (0 when the function has no ROM). */
export function romSize(dev: VfioPciCoreDevice): bigint {
  return dev.pdev.fn.romSize ?? 0n;
}

/**
 * vfio_pci_probe_mmaps: a memory BAR is mmap-able when it is at least a page, or smaller but starting on a page
 * boundary (the rest of its page is reserved for it). Never for I/O BARs.
 */
export function probeMmaps(dev: VfioPciCoreDevice): boolean[] {
  const out: boolean[] = [];
  for (let i = 0; i <= VFIO_PCI_BAR5_REGION_INDEX; i++) {
    const b = barInfo(dev, i);
    if (!b || b.type === 'io') {
      out.push(false);
      continue;
    }
    out.push(b.size >= PAGE_SIZE || ((dev.resourceStarts[i] ?? 0n) & (PAGE_SIZE - 1n)) === 0n);
  }
  return out;
}

function readInfoArg(bytes: Uint8Array): { argsz: number; index: number } {
  if (bytes.length < vfioRegionInfo.minsz) throw new SysError('EFAULT', 'vfio_region_info beyond the buffer');
  const v = vfioRegionInfo.decode(bytes);
  if (v.argsz < vfioRegionInfo.minsz) throw new SysError('EINVAL', `vfio_region_info argsz ${v.argsz} < 32`);
  return { argsz: v.argsz, index: v.index };
}

/**
 * Temporarily turns on the ROM enable bit (pci_map_rom) and, for REGION_INFO's validity check, memory decoding
 * (vfio_pci_memory_lock_and_enable) in hardware, runs `fn`, and puts both registers back.
 */
function withRomMapped<T>(dev: VfioPciCoreDevice, fn: () => T, enableMemory = false): T {
  const f = dev.pdev.fn;
  const cmd = cfgRead(f, R.PCI_COMMAND, 2);
  const rom = cfgRead(f, R.PCI_ROM_ADDRESS, 4);
  if (enableMemory) updateCommand(f, R.PCI_COMMAND_MEMORY, 0);
  if (!(rom & R.PCI_ROM_ADDRESS_ENABLE)) cfgWrite(f, R.PCI_ROM_ADDRESS, 4, rom | R.PCI_ROM_ADDRESS_ENABLE);
  try {
    return fn();
  } finally {
    if (!(rom & R.PCI_ROM_ADDRESS_ENABLE)) cfgWrite(f, R.PCI_ROM_ADDRESS, 4, rom);
    if (cfgRead(f, R.PCI_COMMAND, 2) !== cmd) cfgWrite(f, R.PCI_COMMAND, 2, cmd);
  }
}

function romRead(dev: VfioPciCoreDevice, offset: number, length: number): Uint8Array {
  const f = dev.pdev.fn;
  if (!f.romRead) return new Uint8Array(length).fill(0xff);
  return f.romRead(BigInt(offset), length);
}

/** Bytes of valid ROM images (pci_map_rom's size; 0 = pci_map_rom fails). */
function romValidSize(dev: VfioPciCoreDevice): number {
  const size = Number(romSize(dev));
  if (size === 0) return 0;
  return romImageSize((o, l) => romRead(dev, o, l), size);
}

/** VFIO_DEVICE_GET_REGION_INFO (vfio_pci_ioctl_get_region_info). */
export function getRegionInfo(dev: VfioPciCoreDevice, bytes: Uint8Array): number {
  const { argsz, index } = readInfoArg(bytes);
  const st = dev.opened;
  const caps = new CapChainBuilder();
  let flags = 0;
  let size = 0n;
  if (index <= VFIO_PCI_BAR5_REGION_INDEX) {
    const b = barInfo(dev, index);
    if (b) {
      size = b.size;
      flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
      if (st.barMmap[index]) {
        flags |= VFIO_REGION_INFO_FLAG_MMAP;
        // The whole MSI-X BAR may be mapped; the user still programs vectors through SET_IRQS (§1.4.1 cap 3).
        if (st.msix?.bar === index) caps.add(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
      }
    }
  } else if (index === VFIO_PCI_ROM_REGION_INDEX) {
    // Report the ROM BAR size when the ROM really holds an image (checked with decoding enabled), else nothing.
    if (romSize(dev) > 0n && withRomMapped(dev, () => romValidSize(dev), true) > 0) {
      flags = VFIO_REGION_INFO_FLAG_READ;
      size = romSize(dev);
    }
  } else if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
    size = BigInt(st.config.size);
    flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
  } else if (index === VFIO_PCI_VGA_REGION_INDEX) {
    if (!st.hasVga) throw new SysError('EINVAL', 'no VGA region');
    size = VGA_REGION_SIZE;
    flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
  } else {
    const region = dev.regions[index - VFIO_PCI_NUM_REGIONS];
    if (!region) throw new SysError('EINVAL', `no region ${index}`);
    size = region.size;
    flags = region.flags;
    caps.add(VFIO_REGION_INFO_CAP_TYPE, 1, regionTypeCapPayload(region.type, region.subtype));
    for (const c of region.capabilities?.(dev) ?? []) caps.add(c.id, c.version, c.payload);
  }
  writeInfoWithCaps(
    bytes,
    vfioRegionInfo,
    { argsz, flags, index, cap_offset: 0, size, offset: vfioPciOffset(index) },
    VFIO_REGION_INFO_FLAG_CAPS,
    caps,
  );
  return 0;
}

/** One access of do_io_rw: the device side of a chunk. */
interface IoTarget {
  read(offset: number, length: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
}

/**
 * do_io_rw (vfio_pci_rdwr.c): splits the access into naturally aligned 4/2/1-byte pieces; bytes in the excluded
 * window [xStart, xEnd) read as 0xff and drop writes. With `testMem`, every piece first checks that memory
 * decoding is on (EIO otherwise — the first piece fails the whole call, as Linux returns the error).
 */
function doIoRw(
  dev: VfioPciCoreDevice,
  testMem: boolean,
  target: IoTarget,
  off: number,
  count: number,
  xStart: number,
  xEnd: number,
  buf: Uint8Array,
  write: boolean,
): void {
  let done = 0;
  while (done < count) {
    const pos = off + done;
    const left = count - done;
    let fillable: number;
    if (pos < xStart) fillable = Math.min(left, xStart - pos);
    else if (pos >= xEnd) fillable = left;
    else fillable = 0;
    let n: number;
    if (fillable >= 4 && pos % 4 === 0) n = 4;
    else if (fillable >= 2 && pos % 2 === 0) n = 2;
    else if (fillable > 0) n = 1;
    else {
      n = Math.min(left, xEnd - pos);
      if (!write) buf.fill(0xff, done, done + n);
      done += n;
      continue;
    }
    if (testMem && !memoryEnabled(dev)) throw new SysError('EIO', `memory decoding of ${dev.pdev.bdf} is disabled`);
    if (write) target.write(pos, buf.slice(done, done + n));
    else buf.set(target.read(pos, n).subarray(0, n), done);
    done += n;
  }
}

/** __vfio_pci_memory_enabled: D0–D2 and the virtual COMMAND's memory-enable bit (always on for VFs). */
export function memoryEnabled(dev: VfioPciCoreDevice): boolean {
  return dev.open !== undefined && dev.open.config.memoryEnabled;
}

function barTarget(dev: VfioPciCoreDevice, bar: number): IoTarget {
  const f = dev.pdev.fn;
  return {
    read: (o, l) => (f.barRead ? f.barRead(bar, BigInt(o), l) : new Uint8Array(l).fill(0xff)),
    write: (o, d) => {
      f.barWrite?.(bar, BigInt(o), d);
    },
  };
}

/** vfio_pci_bar_rw for BAR0–5: clipped at the BAR end; the MSI-X table window reads 0xff and drops writes. */
function barRw(dev: VfioPciCoreDevice, bar: number, pos: bigint, buf: Uint8Array, write: boolean): number {
  const b = barInfo(dev, bar);
  if (!b) throw new SysError('EINVAL', `BAR${bar} is not implemented`);
  if (pos >= b.size) throw new SysError('EINVAL', `offset ${pos} beyond BAR${bar}`);
  const count = Number(BigInt(buf.length) < b.size - pos ? BigInt(buf.length) : b.size - pos);
  const msix = dev.open?.msix;
  const [xs, xe] = msix?.bar === bar ? [Number(msix.offset), Number(msix.offset + msix.size)] : [0, 0];
  doIoRw(dev, b.type !== 'io', barTarget(dev, bar), Number(pos), count, xs, xe, buf, write);
  return count;
}

/** vfio_pci_bar_rw for the ROM (read only): bytes past the valid images read 0xff. */
function romRw(dev: VfioPciCoreDevice, pos: bigint, buf: Uint8Array): number {
  const end = romSize(dev);
  if (end === 0n) throw new SysError('EINVAL', 'no ROM');
  if (pos >= end) throw new SysError('EINVAL', `offset ${pos} beyond the ROM`);
  const count = Number(BigInt(buf.length) < end - pos ? BigInt(buf.length) : end - pos);
  withRomMapped(dev, () => {
    const valid = romValidSize(dev);
    if (valid === 0) throw new SysError('ENOMEM', 'ROM holds no valid image');
    const target: IoTarget = { read: (o, l) => romRead(dev, o, l), write: () => undefined };
    doIoRw(dev, true, target, Number(pos), count, valid, Number(end), buf, false);
  });
  return count;
}

/**
 * A VGA-class model may decode the legacy ranges itself; absent methods read as all-ones (nothing claims the
 * cycle) and drop writes.
 */
interface VgaFunction {
  vgaRead?(space: 'mem' | 'io', address: number, length: number): Uint8Array;
  vgaWrite?(space: 'mem' | 'io', address: number, data: Uint8Array): void;
}

/** vfio_pci_vga_rw: the legacy MMIO window and the two I/O windows, at identity offsets. */
function vgaRw(dev: VfioPciCoreDevice, pos: bigint, buf: Uint8Array, write: boolean): number {
  if (!dev.opened.hasVga) throw new SysError('EINVAL', 'no VGA region');
  if (pos > 0xbffffn) throw new SysError('EINVAL', 'beyond the VGA region');
  const p = Number(pos);
  let limit: number;
  let space: 'mem' | 'io';
  if (p >= 0xa0000) [limit, space] = [0xc0000, 'mem'];
  else if (p >= 0x3b0 && p <= 0x3bb) [limit, space] = [0x3bc, 'io'];
  else if (p >= 0x3c0 && p <= 0x3df) [limit, space] = [0x3e0, 'io'];
  else throw new SysError('EINVAL', `offset ${p} is no legacy VGA address`);
  const count = Math.min(buf.length, limit - p);
  const vga = dev.pdev.fn as VgaFunction;
  const target: IoTarget = {
    read: (o, l) => (vga.vgaRead ? vga.vgaRead(space, o, l) : new Uint8Array(l).fill(0xff)),
    write: (o, d) => {
      vga.vgaWrite?.(space, o, d);
    },
  };
  // Legacy VGA is not a BAR: no memory-enable test. The arbiter lock is implicit (system calls do not interleave).
  doIoRw(dev, false, target, p, count, 0, 0, buf, write);
  return count;
}

/** Config region: the virtualization layer; any range leaving config space is EFAULT. */
function configRw(dev: VfioPciCoreDevice, pos: bigint, buf: Uint8Array, write: boolean): number {
  const cfg = dev.opened.config;
  if (pos >= BigInt(cfg.size)) throw new SysError('EFAULT', `config offset ${pos} beyond ${cfg.size}`);
  if (write) return cfg.writeBytes(Number(pos), buf);
  buf.set(cfg.readBytes(Number(pos), buf.length));
  return buf.length;
}

/**
 * How many bytes a read of `length` at `offset` can return at most (the region end clips it), so a huge count
 * never allocates more than the region holds. A config read past the end is EFAULT before anything is allocated.
 */
export function readBound(dev: VfioPciCoreDevice, offset: bigint, length: number): number {
  const index = vfioPciIndex(offset);
  const pos = vfioPciRegionOffset(offset);
  let end: bigint | undefined;
  if (index <= VFIO_PCI_BAR5_REGION_INDEX) end = barInfo(dev, index)?.size;
  else if (index === VFIO_PCI_ROM_REGION_INDEX) end = romSize(dev);
  else if (index === VFIO_PCI_VGA_REGION_INDEX) end = VGA_REGION_SIZE;
  else if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
    const size = BigInt(dev.opened.config.size);
    if (pos + BigInt(length) > size) throw new SysError('EFAULT', `config range ${pos}+${length} beyond ${size}`);
    return length;
  } else end = dev.regions[index - VFIO_PCI_NUM_REGIONS]?.size;
  if (end === undefined || pos >= end) return Math.min(length, 8);
  return end - pos < BigInt(length) ? Number(end - pos) : length;
}

/** vfio_pci_rw: dispatch on the region index of the fd offset. `buf` is filled on read. */
export function regionRw(dev: VfioPciCoreDevice, offset: bigint, buf: Uint8Array, write: boolean): number {
  const index = vfioPciIndex(offset);
  if (index >= VFIO_PCI_NUM_REGIONS + dev.regions.length) throw new SysError('EINVAL', `no region ${index}`);
  const pos = vfioPciRegionOffset(offset);
  if (index <= VFIO_PCI_BAR5_REGION_INDEX) return barRw(dev, index, pos, buf, write);
  if (index === VFIO_PCI_ROM_REGION_INDEX) {
    if (write) throw new SysError('EINVAL', 'the ROM region is read-only');
    return romRw(dev, pos, buf);
  }
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) return configRw(dev, pos, buf, write);
  if (index === VFIO_PCI_VGA_REGION_INDEX) return vgaRw(dev, pos, buf, write);
  const region = dev.regions[index - VFIO_PCI_NUM_REGIONS]!;
  const r = region.rw(dev, pos, write ? buf : buf.length, write);
  if (typeof r === 'number') return r;
  buf.set(r.subarray(0, buf.length));
  return Math.min(r.length, buf.length);
}

/**
 * Writes `data` to BAR `bar` at `offset` the way a user pwrite would (the ioeventfd path): EIO while memory
 * decoding is off for a memory BAR, EINVAL outside the BAR.
 */
export function barWrite(dev: VfioPciCoreDevice, bar: number, offset: bigint, data: Uint8Array): void {
  const b = barInfo(dev, bar);
  if (!b || offset < 0n || offset + BigInt(data.length) > b.size) throw new SysError('EINVAL', 'outside the BAR');
  if (b.type !== 'io' && !memoryEnabled(dev)) throw new SysError('EIO', `memory decoding of ${dev.pdev.bdf} is disabled`);
  dev.pdev.fn.barWrite?.(bar, offset, data);
}

/** Whether a BAR mapping may be (re)faulted in: memory decoding on and no low-power session. */
function checkFault(dev: VfioPciCoreDevice): void {
  if (dev.pmRuntimeEngaged || !memoryEnabled(dev)) {
    throw new SysError('EFAULT', `SIGBUS: BAR of ${dev.pdev.bdf} is not accessible`);
  }
}

/**
 * The loads and stores of a BAR mapping: straight to the function, at the width the CPU used. Bytes beyond the
 * BAR (the reserved rest of a sub-page BAR's page) read all-ones and drop writes. Every access checks, as the
 * fault handler would, that the BAR is accessible: every path that disables access zaps the mapping first.
 */
function barMapping(dev: VfioPciCoreDevice, bar: number, start: bigint, barSize: bigint): MmioHandler {
  const f = dev.pdev.fn;
  return {
    read: (offset, length) => {
      checkFault(dev);
      const at = start + offset;
      const out = new Uint8Array(length).fill(0xff);
      const n = at >= barSize ? 0 : Number(barSize - at < BigInt(length) ? barSize - at : BigInt(length));
      if (n > 0 && f.barRead) out.set(f.barRead(bar, at, n).subarray(0, n));
      return out;
    },
    write: (offset, data) => {
      checkFault(dev);
      const at = start + offset;
      const n = at >= barSize ? 0 : Number(barSize - at < BigInt(data.length) ? barSize - at : BigInt(data.length));
      if (n > 0) f.barWrite?.(bar, at, data.subarray(0, n));
    },
  };
}

/** vfio_pci_core_mmap: BARs only (MAP_SHARED, inside the page-aligned BAR), or a device region with MMAP. */
export function mmapRegion(dev: VfioPciCoreDevice, req: MmapRequest): MmioHandler {
  const index = vfioPciIndex(req.offset);
  if (index >= VFIO_PCI_NUM_REGIONS + dev.regions.length) throw new SysError('EINVAL', `no region ${index}`);
  if (!req.shared) throw new SysError('EINVAL', 'vfio-pci mappings must be MAP_SHARED');
  const start = vfioPciRegionOffset(req.offset);
  if (index >= VFIO_PCI_NUM_REGIONS) {
    const region = dev.regions[index - VFIO_PCI_NUM_REGIONS]!;
    if (region.mmap && region.flags & VFIO_REGION_INFO_FLAG_MMAP) return region.mmap(dev, start, req.length);
    throw new SysError('EINVAL', `region ${index} cannot be mapped`);
  }
  if (index >= VFIO_PCI_ROM_REGION_INDEX) throw new SysError('EINVAL', `region ${index} cannot be mapped`);
  if (!dev.opened.barMmap[index]) throw new SysError('EINVAL', `BAR${index} cannot be mapped`);
  const b = barInfo(dev, index)!;
  if (start + req.length > pageAlign(b.size)) throw new SysError('EINVAL', `mapping beyond BAR${index}`);
  return barMapping(dev, index, start, b.size);
}

/** The mmap fault handler after a zap: SIGBUS (EFAULT) while the BAR is inaccessible, else a fresh mapping. */
export function mmapFault(dev: VfioPciCoreDevice, req: MmapRequest): MmioHandler {
  checkFault(dev);
  const index = vfioPciIndex(req.offset);
  if (index >= VFIO_PCI_NUM_REGIONS) return mmapRegion(dev, req);
  const b = barInfo(dev, index);
  if (!b) throw new SysError('EFAULT', 'SIGBUS: BAR vanished');
  return barMapping(dev, index, vfioPciRegionOffset(req.offset), b.size);
}
