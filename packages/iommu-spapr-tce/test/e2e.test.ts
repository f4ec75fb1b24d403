/**
 * End to end through the system-call surface: a simulated POWER host (`simPlatform({ iommu: 'spapr' })`, every IOMMU
 * group a PE with its TCE table group), the backend installed with `createHost({ plugins: [spaprTce(), ...] })`, a
 * tiny in-test VFIO bus driver, and a DMA-capable PCI function model whose reads and writes go through the PCI
 * bus's DMA path (`PciFunctionContext.dma`) and so through the PE's TCE windows. What the container programs with
 * MAP/UNMAP/TCE_CREATE/TCE_REMOVE is what the device sees (issue acceptance item 4).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost } from '@vfio-ts/core';
import type { HostPlugin, HostPluginApi, Process } from '@vfio-ts/core';
import type { PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { POWER8_TCE_PGSIZES, POWER9_TCE_PGSIZES, TCE_BYPASS_BASE, pciFunctionFromConfig, simPlatform, spaprTableGroupOf } from '@vfio-ts/sim';
import type { SpaprIommuOption, SpaprTableGroup } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_EEH,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_OP,
  VFIO_EEH_PE_STATE_NORMAL,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO,
  VFIO_IOMMU_SPAPR_TCE_REMOVE,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  vfioEehPeOp,
  vfioIommuSpaprRegisterMemory,
  vfioIommuSpaprTceCreate,
  vfioIommuSpaprTceInfo,
  vfioIommuSpaprTceRemove,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import { spaprTce } from '../src/index.js';

const BDF = '0000:00:03.0';
const MiB = 1n << 20n;
const GiB = 1n << 30n;
const R = VFIO_DMA_MAP_FLAG_READ;
const W = VFIO_DMA_MAP_FLAG_WRITE;

/** A DMA engine: a PCI function that reads and writes bus addresses through the context the bus hands it. */
class DmaEngine implements PciFunction {
  private readonly cfg: PciFunction;
  private ctx: PciFunctionContext | undefined;

  constructor() {
    const config = new Uint8Array(256);
    config.set([0x34, 0x12, 0x11, 0x11], 0); // 1234:1111
    config.set([0x00, 0x00, 0xff, 0x00], 8); // class 00ff00
    this.cfg = pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
  }

  get bars(): readonly PciBarInfo[] {
    return this.cfg.bars;
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    return this.cfg.configRead(offset, size);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.cfg.configWrite(offset, size, value);
  }

  attach(ctx: PciFunctionContext): void {
    this.ctx = ctx;
  }

  /** A DMA read of `length` bytes at bus address `addr` (device ← memory). */
  dmaRead(addr: bigint, length: number): Uint8Array {
    return this.ctx!.dma.read(addr, length);
  }

  /** A DMA write at bus address `addr` (device → memory). */
  dmaWrite(addr: bigint, data: Uint8Array): void {
    this.ctx!.dma.write(addr, data);
  }
}

/** A tiny VFIO bus driver: every probed function becomes a VFIO device in its IOMMU group. */
function miniVfio(): HostPlugin {
  let api: HostPluginApi | undefined;
  return {
    name: 'mini-vfio',
    setup(a) {
      api = a;
      a.registerPciDriver({
        name: 'mini-vfio',
        ids: [],
        driverManagedDma: true,
        probe(pdev) {
          const dev = api!.allocDevice({ name: pdev.bdf, data: undefined, ops: { name: 'mini-vfio' } });
          api!.registerGroupDevice(dev);
        },
        async remove() {},
      });
    },
  };
}

function errnoOf(fn: () => unknown): ErrnoName | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof SysError) return e.errno;
    throw e;
  }
  return undefined;
}

/** Byte-for-byte equality, reporting the first difference (vitest's deep equality is slow on large typed arrays). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const diff = actual.findIndex((v, i) => v !== expected[i]);
  expect(diff, diff < 0 ? '' : `first difference at byte ${diff}: ${actual[diff]} != ${expected[diff]}`).toBe(-1);
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

/** A POWER host with one DMA engine, a process that opened the container and the group and joined them. */
function setup(iommu: SpaprIommuOption = 'spapr', memlockLimit: bigint = 256n * MiB) {
  const dev = new DmaEngine();
  // 'mini-vfio' is not registered at boot: it becomes the driver_override, so the function binds with the plugin.
  const platform = simPlatform({ iommu, devices: [{ bdf: BDF, fn: dev, driver: 'mini-vfio' }] });
  const host = createHost({ platform, plugins: [spaprTce(), miniVfio()] });
  const group = platform.pci.device(BDF)!.iommuGroup!;
  const pe: SpaprTableGroup = spaprTableGroupOf(group)!;
  const p: Process = host.spawn({ uid: 0, capabilities: [], memlockLimit });
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${group.id}`);
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  p.ioctl(g, VFIO_GROUP_SET_CONTAINER, fd);
  const io = {
    info() {
      const buf = vfioIommuSpaprTceInfo.encode({ argsz: 32 });
      p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_GET_INFO, buf);
      return vfioIommuSpaprTceInfo.decode(buf);
    },
    register(vaddr: bigint, size: bigint) {
      p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, vfioIommuSpaprRegisterMemory.encode({ argsz: 24, flags: 0, vaddr, size }));
    },
    map(vaddr: bigint, iova: bigint, size: bigint, flags = R | W) {
      p.ioctl(c, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags, vaddr, iova, size }));
    },
    unmap(iova: bigint, size: bigint) {
      p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: 0, iova, size }));
    },
    create(pageShift: number, windowSize: bigint, levels: number): bigint {
      const buf = vfioIommuSpaprTceCreate.encode({ argsz: 40, flags: 0, page_shift: pageShift, window_size: windowSize, levels });
      p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, buf);
      return vfioIommuSpaprTceCreate.decode(buf).start_addr;
    },
    remove(startAddr: bigint) {
      p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, vfioIommuSpaprTceRemove.encode({ argsz: 16, flags: 0, start_addr: startAddr }));
    },
    eeh(op: number): number {
      return p.ioctl(c, VFIO_EEH_PE_OP, vfioEehPeOp.encode({ argsz: 40, flags: 0, op }));
    },
  };
  return { platform, host, dev, group, pe, p, c, g, io };
}

describe('sPAPR TCE end to end: container ioctls drive what a device can reach', () => {
  it('v2: GET_INFO, REGISTER_MEMORY and MAP_DMA at the 32-bit window; device DMA lands in process memory', () => {
    const { platform, dev, pe, p, c, io } = setup();
    expect(platform.iommu?.kind).toBe('spapr');
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU)).toBe(1);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_EEH)).toBe(1);
    // SET_CONTAINER claimed the group: the host gave the PE's windows up (no default window, no bypass).
    expect(pe.isOwned).toBe(true);
    expect(pe.bypassEnabled).toBe(false);
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU);

    const info = io.info();
    expect(info.dma32_window_start).toBe(0);
    expect(info.dma32_window_size).toBe(0x8000_0000);
    expect(info.ddw_pgsizes).toBe(POWER9_TCE_PGSIZES);
    expect(info.ddw_max_dynamic_windows_supported).toBe(2);
    expect(info.ddw_levels).toBe(5);

    const va = p.mmap({ length: 64n * 1024n });
    const data = pattern(64 * 1024, 7);
    p.memory.write(va, data);
    io.register(va, 64n * 1024n);
    io.map(va, 0x10000n, 64n * 1024n);

    // The device reads what the process wrote, across scattered 4 KiB frames (one read spans three TCEs).
    expectBytes(dev.dmaRead(0x10000n + 0x0ff0n, 0x2020), data.subarray(0x0ff0, 0x0ff0 + 0x2020));
    // And its writes appear in the process's memory, at the matching offset.
    dev.dmaWrite(0x10000n + 0x5ffen, new Uint8Array([1, 2, 3, 4]));
    expect([...p.memory.read(va + 0x5ffen, 4)]).toEqual([1, 2, 3, 4]);
    expect(platform.iommu!.faults()).toEqual([]);

    // UNMAP_DMA takes the TCEs away: the same read now faults and moves nothing.
    io.unmap(0x10000n, 64n * 1024n);
    expect(errnoOf(() => dev.dmaRead(0x10000n, 16))).toBe('EFAULT');
    expect(platform.iommu!.faults().at(-1)).toEqual({ device: BDF, iova: 0x10000n, write: false, reason: 'not-present' });
  });

  it('unmapped and wrong-direction DMA fault, leave memory untouched and freeze the PE until EEH thaws it', () => {
    const { platform, dev, pe, p, c, io } = setup();
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU);
    const va = p.mmap({ length: 8192n });
    const before = pattern(8192, 3);
    p.memory.write(va, before);
    io.register(va, 8192n);
    io.map(va, 0n, 4096n, R); // to-device only: the device may read, not write
    io.map(va + 4096n, 4096n, 4096n, R | W);

    expect(dev.dmaRead(0x10n, 4)).toEqual(before.subarray(0x10, 0x14));
    expect(io.eeh(VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);

    // A write through a read-only TCE: EFAULT, recorded, logged, nothing written, and the PHB freezes the PE.
    expect(errnoOf(() => { dev.dmaWrite(0x10n, new Uint8Array([0xff, 0xff])); })).toBe('EFAULT');
    expect(platform.iommu!.faults().at(-1)).toEqual({ device: BDF, iova: 0x10n, write: true, reason: 'permission' });
    expect(platform.logEntries().some((e) => e.text.includes(`EEH: Frozen PHB PE on device ${BDF}`))).toBe(true);
    expectBytes(p.memory.read(va, 8192), before);
    expect(io.eeh(VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED);

    // Frozen: even a well-mapped DMA is blocked until user space thaws the PE through the container.
    expect(errnoOf(() => dev.dmaRead(0x1000n, 4))).toBe('EFAULT');
    expect(platform.iommu!.faults().at(-1)!.reason).toBe('blocked');
    io.eeh(VFIO_EEH_PE_UNFREEZE_IO);
    io.eeh(VFIO_EEH_PE_UNFREEZE_DMA);
    expect(io.eeh(VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    dev.dmaWrite(0x1000n, new Uint8Array([9, 9]));
    expect([...p.memory.read(va + 0x1000n, 2)]).toEqual([9, 9]);

    // A write whose first page is mapped and whose second is not: checked whole first, so not one byte moves.
    const snapshot = p.memory.read(va, 8192);
    expect(errnoOf(() => { dev.dmaWrite(0x1ffen, new Uint8Array([7, 7, 7, 7])); })).toBe('EFAULT');
    expect(platform.iommu!.faults().at(-1)).toEqual({ device: BDF, iova: 0x2000n, write: true, reason: 'not-present' });
    expectBytes(p.memory.read(va, 8192), snapshot);
    expect(pe.eeh!.stats.freezes).toBe(2);
  });

  it('v2: TCE_CREATE a 64-bit window of 2 MiB TCEs, DMA through it, TCE_REMOVE takes it away', () => {
    const { platform, dev, pe, p, c, io } = setup();
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU);
    const va = p.mmap({ length: 4n * MiB, hugepage: '2M' });
    io.register(va, 4n * MiB);
    const start = io.create(21, GiB, 1);
    expect(start).toBe(TCE_BYPASS_BASE); // window 1 sits at 2^59 on PowerNV
    expect(pe.tables[1]?.pageShift).toBe(21);

    io.map(va, start + 2n * MiB, 4n * MiB);
    dev.dmaWrite(start + 2n * MiB + 2n * MiB + 0x100n, new TextEncoder().encode('ddw'));
    expect(new TextDecoder().decode(p.memory.read(va + 2n * MiB + 0x100n, 3))).toBe('ddw');
    p.memory.write(va + 0x1234n, new Uint8Array([0xab, 0xcd]));
    expect([...dev.dmaRead(start + 2n * MiB + 0x1234n, 2)]).toEqual([0xab, 0xcd]);
    // Inside the window but past the mapping: not present.
    expect(errnoOf(() => dev.dmaRead(start, 1))).toBe('EFAULT');
    io.eeh(VFIO_EEH_PE_UNFREEZE_IO);
    io.eeh(VFIO_EEH_PE_UNFREEZE_DMA);

    // TCE_REMOVE by the window's start: the window leaves the PE and the device can no longer reach the memory.
    io.unmap(start + 2n * MiB, 4n * MiB);
    io.remove(start);
    expect(pe.tables[1]).toBeUndefined();
    expect(pe.windowAt(start + 2n * MiB)).toBeUndefined();
    const faults = platform.iommu!.faults().length;
    expect(errnoOf(() => dev.dmaRead(start + 2n * MiB, 4))).toBe('EFAULT');
    expect(platform.iommu!.faults().length).toBe(faults + 1);
    // Removing it again: no window holds that address any more.
    expect(errnoOf(() => { io.remove(start); })).toBe('EINVAL');
  });

  it('v1: ENABLE charges the 32-bit window, MAP pins and points TCEs at process pages, DISABLE and EBUSY', () => {
    // A 16 MiB 32-bit window on a POWER8-like PHB: the PE options flow from simPlatform into GET_INFO.
    const { dev, p, c, g, io } = setup({ model: 'spapr', tce32Size: 16 << 20, pgsizes: POWER8_TCE_PGSIZES }, 32n * MiB);
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU);
    const info = io.info();
    expect(info.dma32_window_size).toBe(16 << 20);
    const va = p.mmap({ length: 16384n });
    const data = pattern(16384, 11);
    p.memory.write(va, data);

    // v1 maps only once enabled.
    expect(errnoOf(() => { io.map(va, 0x4000n, 16384n); })).toBe('EPERM');
    p.ioctl(c, VFIO_IOMMU_ENABLE);
    expect(p.mm.memlock.lockedPages).toBe(4096); // 16 MiB / 4 KiB: the whole window, charged once
    expect(errnoOf(() => p.ioctl(c, VFIO_IOMMU_ENABLE))).toBe('EBUSY');

    io.map(va, 0x4000n, 16384n);
    // The first MAP created the default window: its TCE table (4096 entries, hardware + userspace copy = 64 KiB)
    // is charged too; the pinned pages themselves are covered by the ENABLE charge.
    expect(p.mm.memlock.lockedPages).toBe(4096 + 16);
    expectBytes(dev.dmaRead(0x4000n, 16384), data);
    dev.dmaWrite(0x7ff0n, new Uint8Array([5, 6, 7]));
    expect([...p.memory.read(va + 0x3ff0n, 3)]).toEqual([5, 6, 7]);

    io.unmap(0x4000n, 16384n);
    expect(errnoOf(() => dev.dmaRead(0x4000n, 1))).toBe('EFAULT');
    p.ioctl(c, VFIO_IOMMU_DISABLE);
    expect(p.mm.memlock.lockedPages).toBe(16); // the window stays until the container goes
    p.close(g);
    p.close(c);
    expect(p.mm.memlock.lockedPages).toBe(0);
  });

  it('v2: MAP_DMA without pre-registered memory is EPERM; outside the registered range EINVAL', () => {
    const { dev, p, c, io } = setup();
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU);
    const va = p.mmap({ length: 16384n });
    // tce_iommu_ioctl: a v2 container is "enabled" only by REGISTER_MEMORY.
    expect(errnoOf(() => { io.map(va, 0n, 4096n); })).toBe('EPERM');
    io.register(va, 8192n);
    expect(errnoOf(() => { io.map(va + 8192n, 0n, 4096n); })).toBe('EINVAL');
    // Nothing was mapped by the failed calls.
    expect(errnoOf(() => dev.dmaRead(0n, 1))).toBe('EFAULT');
  });

  it('closing the fds releases the PE back to the host (default window and bypass) and unpins', () => {
    const { dev, pe, p, c, g, io } = setup();
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU);
    const va = p.mmap({ length: 8192n });
    io.register(va, 8192n);
    io.map(va, 0n, 8192n);
    expect(p.mm.memlock.lockedPages).toBeGreaterThan(0);
    p.close(g);
    p.close(c);
    expect(pe.isOwned).toBe(false);
    expect(pe.bypassEnabled).toBe(true);
    expect(pe.tables[0]?.stats.entries).toBe(0); // the host's own, empty, 32-bit window is back
    expect(p.mm.memlock.lockedPages).toBe(0);
    // With the bypass on, bus address 2^59 + pa reaches pa (the host kernel's direct DMA).
    const pa = p.mm.lookup(va)!.pfn << 12n;
    p.memory.write(va, new Uint8Array([0x42]));
    expect([...dev.dmaRead(TCE_BYPASS_BASE + pa, 1)]).toEqual([0x42]);
  });
});

/** One container operation of the property test, in 4 KiB pages. */
type Op =
  | { readonly kind: 'map'; readonly page: number; readonly at: number; readonly n: number; readonly flags: number }
  | { readonly kind: 'unmap'; readonly at: number; readonly n: number };

const PAGES = 8; // process pages, all pre-registered
const SLOTS = 16; // bus pages of the 32-bit window the test uses

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc
    .record({ page: fc.nat(PAGES - 1), at: fc.nat(SLOTS - 1), n: fc.integer({ min: 1, max: 4 }), flags: fc.constantFrom(R, W, R | W) })
    .filter((o) => o.page + o.n <= PAGES && o.at + o.n <= SLOTS)
    .map((o) => ({ kind: 'map' as const, ...o })),
  fc
    .record({ at: fc.nat(SLOTS - 1), n: fc.integer({ min: 1, max: 6 }) })
    .filter((o) => o.at + o.n <= SLOTS)
    .map((o) => ({ kind: 'unmap' as const, ...o })),
);

describe('sPAPR TCE end to end against a reference model', () => {
  it('after any MAP/UNMAP sequence, device reads and writes reach exactly the pages the model says', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 12 }), (ops) => {
        const { platform, dev, p, c, io } = setup();
        p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU);
        const va = p.mmap({ length: BigInt(PAGES) * 4096n });
        const mem = pattern(PAGES * 4096, 5);
        p.memory.write(va, mem);
        io.register(va, BigInt(PAGES) * 4096n);
        // Model: bus page → { process page, may the device write }. A MAP over a mapped TCE replaces it (Linux
        // tce_iommu_build_v2 exchanges and releases the old entry).
        const model = new Map<number, { page: number; write: boolean }>();
        const thaw = (): void => {
          io.eeh(VFIO_EEH_PE_UNFREEZE_IO);
          io.eeh(VFIO_EEH_PE_UNFREEZE_DMA);
        };
        for (const op of ops) {
          if (op.kind === 'map') {
            io.map(va + BigInt(op.page) * 4096n, BigInt(op.at) * 4096n, BigInt(op.n) * 4096n, op.flags);
            for (let i = 0; i < op.n; i++) model.set(op.at + i, { page: op.page + i, write: (op.flags & W) !== 0 });
          } else {
            io.unmap(BigInt(op.at) * 4096n, BigInt(op.n) * 4096n);
            for (let i = 0; i < op.n; i++) model.delete(op.at + i);
          }
        }
        let faults = platform.iommu!.faults().length;
        for (let slot = 0; slot < SLOTS; slot++) {
          const bus = BigInt(slot) * 4096n + BigInt(slot * 8);
          const m = model.get(slot);
          const off = m ? m.page * 4096 + slot * 8 : 0;
          // Read: every mapped TCE is readable (a from-device TCE is also readable, iommu_direction_to_tce_perm).
          if (m) expect(dev.dmaRead(bus, 4)).toEqual(mem.subarray(off, off + 4));
          else {
            expect(errnoOf(() => dev.dmaRead(bus, 4))).toBe('EFAULT');
            expect(platform.iommu!.faults().length).toBe(++faults);
            thaw();
          }
          // Write: lands only through a TCE with write permission; otherwise nothing changes.
          const data = new Uint8Array([slot, 0xa5, slot, 0x5a]);
          if (m?.write) {
            dev.dmaWrite(bus, data);
            mem.set(data, off);
          } else {
            expect(errnoOf(() => { dev.dmaWrite(bus, data); })).toBe('EFAULT');
            expect(platform.iommu!.faults().at(-1)).toMatchObject({ write: true, reason: m ? 'permission' : 'not-present' });
            faults++;
            thaw();
          }
          expectBytes(p.memory.read(va, PAGES * 4096), mem);
        }
      }),
      { numRuns: 100 },
    );
  });
});
