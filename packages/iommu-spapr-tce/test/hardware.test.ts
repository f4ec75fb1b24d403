import { describe, expect, it } from 'vitest';
import { GiB, MiB, expectErrno } from './helpers.js';
import {
  SparseEntryArray,
  SpaprIommu,
  SpaprTableGroup,
  TCE_BYPASS_BASE,
  TceTable,
  spaprTableGroupOf,
  tceTableSize,
} from './spapr-model.js';

describe('the sPAPR hardware model (packages/sim/src/spapr)', () => {
  it('table sizes follow pnv_pci_ioda2_get_table_size (hardware table + userspace copy)', () => {
    // 2 GiB of 4K TCEs, one level: 512K entries x 8 bytes = 4 MiB, doubled.
    expect(tceTableSize(12, 2n * GiB, 1)).toBe(8n * MiB);
    // Two levels: a 4 KiB...-rounded direct table per level.
    expect(tceTableSize(12, 2n * GiB, 2)).toBe(2n * (8n * 1024n + 4n * MiB));
    expect(tceTableSize(16, 64n * 1024n, 1)).toBe(8192n);
    for (const [shift, size, levels] of [[12, 3n * GiB, 1], [12, GiB, 0], [12, GiB, 6], [16, 4096n, 1]] as const) {
      expect(tceTableSize(shift, size, levels)).toBe(0n);
    }
  });

  it('a multi-level table allocates indirect levels on demand and stays sparse', () => {
    const t = new TceTable({ pageShift: 12, busOffset: 0n, windowSize: 1n << 40n, levels: 3 });
    expect(t.size).toBe(2 ** 28);
    expect(t.stats).toEqual({ entries: 0, indirectBlocks: 0 });
    t.exchange(5, 0x10000n, 'bidirectional');
    t.exchange(2 ** 27, 0x20000n, 'to-device');
    expect(t.stats.entries).toBe(2);
    expect(t.stats.indirectBlocks).toBe(4);
    expect(t.usedEntries(0, t.size)).toEqual([5, 2 ** 27]);
    expect(t.get(5)).toEqual({ hpa: 0x10000n, direction: 'bidirectional' });
    expect(t.exchange(5, 0n, 'none')).toEqual({ hpa: 0x10000n, direction: 'bidirectional' });
    expect(t.get(5)).toBeUndefined();
    expectErrno(() => t.exchange(2 ** 28, 0n, 'to-device'), 'EINVAL');
    expectErrno(() => t.exchange(1, 0x10800n, 'to-device'), 'EINVAL');
  });

  it('SparseEntryArray finds entries across chunks in order', () => {
    const a = new SparseEntryArray();
    for (const i of [9000, 3, 4095, 4096, 123456]) a.set(i, i + 1);
    expect(a.usedIn(0, 1e9)).toEqual([3, 4095, 4096, 9000, 123456]);
    expect(a.usedIn(4000, 9001)).toEqual([4095, 4096, 9000]);
    a.set(4096, 0);
    expect(a.size).toBe(4);
  });

  it('windows are placed at tce32_start and 2^59; set_window refuses an occupied slot', () => {
    const tg = new SpaprTableGroup(1, { tce32Start: 0x1000_0000 });
    tg.takeOwnership();
    const w0 = tg.createTable(0, 16, GiB, 1);
    const w1 = tg.createTable(1, 21, 64n * GiB, 2);
    expect(w0.busStart).toBe(0x1000_0000n);
    expect(w1.busStart).toBe(TCE_BYPASS_BASE);
    tg.setWindow(0, w0);
    expectErrno(() => { tg.setWindow(0, w1); }, 'EBUSY');
    expect(tg.windowAt(0x1000_0000n + GiB - 1n)).toBe(w0);
    expect(tg.windowAt(0x1000_0000n + GiB)).toBeUndefined();
    expectErrno(() => tg.createTable(0, 16, GiB, 6), 'EINVAL');
  });

  it('the host owns the PE until user space claims it: bypass DMA, then blocked until TCEs exist', () => {
    const iommu = new SpaprIommu();
    const g = iommu.newGroup(3, { freezeOnFault: false });
    expect(spaprTableGroupOf(g)).toBe(g.spaprTableGroup);
    expect(g.translateDma('d', TCE_BYPASS_BASE + 0x5000n, 16, true)).toEqual([{ pa: 0x5000n, length: 16 }]);
    g.claimDmaOwner(g);
    expect(g.spaprTableGroup.isOwned).toBe(true);
    expectErrno(() => g.translateDma('d', TCE_BYPASS_BASE + 0x5000n, 16, true), 'EFAULT');
    expect(iommu.faults()).toHaveLength(1);
    expectErrno(() => { g.claimDmaOwner({}); }, 'EPERM');
    expectErrno(() => g.allocDomain(), 'ENODEV');
    g.releaseDmaOwner(g);
    expect(g.spaprTableGroup.bypassEnabled).toBe(true);
  });

  it('translation spans TCE pages and merges contiguous chunks; a TO_DEVICE TCE refuses writes', () => {
    const tg = new SpaprTableGroup(1, { freezeOnFault: true });
    tg.takeOwnership();
    const t = tg.createTable(0, 12, 2n * GiB, 1);
    tg.setWindow(0, t);
    t.exchange(0, 0x100000n, 'to-device');
    t.exchange(1, 0x101000n, 'to-device');
    t.exchange(2, 0x300000n, 'from-device');
    expect(tg.translateDma('d', 0x800n, 0x2000, false)).toEqual([
      { pa: 0x100800n, length: 0x1800 },
      { pa: 0x300000n, length: 0x800 },
    ]);
    expectErrno(() => tg.translateDma('d', 0n, 4, true), 'EFAULT');
    expect(tg.faultLog[0]?.reason).toBe('permission');
    // The PHB froze the PE: even a good read is now blocked until EEH thaws DMA.
    expectErrno(() => tg.translateDma('d', 0x800n, 4, false), 'EFAULT');
    tg.eeh?.setOption('thaw-dma');
    tg.eeh?.setOption('thaw-mmio');
    expect(tg.translateDma('d', 0x800n, 4, false)).toEqual([{ pa: 0x100800n, length: 4 }]);
  });

  it('options are validated', () => {
    expectErrno(() => new SpaprTableGroup(1, { pgsizes: 1n << 16n }), 'EINVAL');
    expectErrno(() => new SpaprTableGroup(1, { tce32Size: -1 }), 'EINVAL');
    expectErrno(() => new SpaprTableGroup(1, { tce32Start: 5 }), 'EINVAL');
  });
});
