import { VFIO_IOMMU_SPAPR_INFO_DDW, VFIO_IOMMU_SPAPR_TCE_CREATE, VFIO_IOMMU_SPAPR_TCE_GET_INFO, VFIO_IOMMU_SPAPR_TCE_REMOVE, vfioIommuSpaprTceCreate } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { Bench, GiB, MiB, expectErrno } from './helpers.js';
import { POWER8_TCE_PGSIZES, POWER9_TCE_PGSIZES, TCE_BYPASS_BASE, tceTableSize } from './spapr-model.js';

describe('VFIO_IOMMU_SPAPR_TCE_GET_INFO', () => {
  it('reports the 32-bit window and, for v2 on a DDW platform, the DDW parameters', () => {
    const b = new Bench();
    const { ref } = b.group({ tce32Size: 0x4000_0000, pgsizes: POWER8_TCE_PGSIZES });
    const c = b.open(7, ref);
    const info = b.info(c);
    expect(info.flags).toBe(VFIO_IOMMU_SPAPR_INFO_DDW);
    expect(info.dma32_window_start).toBe(0);
    expect(info.dma32_window_size).toBe(0x4000_0000);
    expect(info.ddw_pgsizes).toBe(POWER8_TCE_PGSIZES);
    expect(info.ddw_max_dynamic_windows_supported).toBe(2);
    expect(info.ddw_levels).toBe(5);
  });

  it('v1 reports no DDW (flags 0, ddw zeroed)', () => {
    const b = new Bench();
    const { ref } = b.group();
    const c = b.open(2, ref);
    const info = b.info(c);
    expect(info.flags).toBe(0);
    expect(info.dma32_window_size).toBe(0x8000_0000);
    expect(info.ddw_pgsizes).toBe(0n);
    expect(info.ddw_levels).toBe(0);
  });

  it('copies only 16 bytes when argsz does not cover ddw, and rejects argsz < 16', () => {
    const b = new Bench();
    const { ref } = b.group();
    const c = b.open(7, ref);
    const info = b.info(c, 24);
    expect(info.dma32_window_size).toBe(0x8000_0000);
    expect([...info.raw.subarray(16)]).toEqual(new Array(16).fill(0xee));
    expectErrno(() => b.info(c, 15), 'EINVAL');
  });

  it('is ENXIO with no group', () => {
    const b = new Bench();
    const c = b.open(7);
    expectErrno(() => b.info(c), 'ENXIO');
  });
});

describe('VFIO_IOMMU_SPAPR_TCE_CREATE / TCE_REMOVE', () => {
  it('creates the second window at 2^59 after the lazy default window, then ENOSPC', () => {
    const b = new Bench({ memlockLimit: null });
    const { ref, hw } = b.group();
    const c = b.open(7, ref);
    expect(c.defWindowPending).toBe(true);
    const start = b.create(c, { pageShift: 16, windowSize: 64n * GiB, levels: 2 });
    expect(start).toBe(TCE_BYPASS_BASE);
    // The create made the pending default window first (slot 0 at bus 0, 4K pages).
    expect(c.defWindowPending).toBe(false);
    expect(hw.spaprTableGroup.tables[0]?.pageShift).toBe(12);
    expect(hw.spaprTableGroup.tables[0]?.windowSize).toBe(2n * GiB);
    expect(hw.spaprTableGroup.tables[1]?.busStart).toBe(TCE_BYPASS_BASE);
    expectErrno(() => b.create(c, { pageShift: 16, windowSize: GiB, levels: 1 }), 'ENOSPC');
  });

  it('errno table: bad page shift, levels, window size, flags, argsz', () => {
    const b = new Bench({ memlockLimit: null });
    const { ref } = b.group({ pgsizes: POWER9_TCE_PGSIZES });
    const c = b.open(7, ref);
    const table: [Parameters<Bench['create']>[1], string][] = [
      [{ pageShift: 24, windowSize: GiB, levels: 1 }, 'EINVAL'], // 16M not in POWER9 pgsizes
      [{ pageShift: 13, windowSize: GiB, levels: 1 }, 'EINVAL'],
      [{ pageShift: 64, windowSize: GiB, levels: 1 }, 'EINVAL'],
      [{ pageShift: 16, windowSize: GiB, levels: 0 }, 'EINVAL'],
      [{ pageShift: 16, windowSize: GiB, levels: 6 }, 'EINVAL'], // > POWERNV_IOMMU_MAX_LEVELS
      [{ pageShift: 16, windowSize: 3n * GiB, levels: 1 }, 'EINVAL'], // not a power of two
      [{ pageShift: 16, windowSize: 0n, levels: 1 }, 'EINVAL'],
      [{ pageShift: 30, windowSize: 1n << 58n, levels: 1 }, 'EINVAL'], // (level_shift-3)*levels+page_shift >= 55
      [{ pageShift: 16, windowSize: GiB, levels: 1, flags: 1 }, 'EINVAL'],
    ];
    for (const [p, errno] of table) expectErrno(() => b.create(c, p), errno as 'EINVAL');
    // The default window was created by the first call and is still the only one.
    expect(c.tables[1]).toBeUndefined();
    const short = vfioIommuSpaprTceCreate.encode({ argsz: 36, page_shift: 16, window_size: GiB, levels: 1 });
    expectErrno(() => b.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, short), 'EINVAL');
    expect(b.create(c, { pageShift: 21, windowSize: 16n * GiB, levels: 1 })).toBe(TCE_BYPASS_BASE);
  });

  it('charges the table memory to locked_vm (ENOMEM over the limit) and returns it on remove', () => {
    const b = new Bench({ memlockLimit: 32n * MiB });
    const { ref } = b.group({ tce32Size: 0x1000_0000 });
    const c = b.open(7, ref);
    // Default window: 256 MiB of 4K TCEs = 64K entries = 512 KiB, doubled for the userspace copy.
    expect(tceTableSize(12, 256n * MiB, 1)).toBe(1n * MiB);
    const start = b.create(c, { pageShift: 12, windowSize: 4n * GiB, levels: 1 }); // 8 MiB table x2
    expect(b.mm.memlock.lockedPages).toBe(Number((1n * MiB + 16n * MiB) / 4096n));
    b.remove(c, start);
    expect(b.mm.memlock.lockedPages).toBe(256);
    expectErrno(() => b.create(c, { pageShift: 12, windowSize: 8n * GiB, levels: 1 }), 'ENOMEM');
    expect(b.mm.memlock.lockedPages).toBe(256);
    expect(c.tables[1]).toBeUndefined();
  });

  it('removes by any address inside a window; unknown address EINVAL; pending default window is cancelled', () => {
    const b = new Bench({ memlockLimit: null });
    const { ref, hw } = b.group();
    const c = b.open(7, ref);
    expect(b.remove(c, 0n)).toBe(0);
    expect(c.defWindowPending).toBe(false);
    expect(c.tables[0]).toBeUndefined();
    // With the default window gone, a new window lands in slot 0 at tce32_start, the next one at 2^59.
    expect(b.create(c, { pageShift: 16, windowSize: 4n * GiB, levels: 1 })).toBe(0n);
    expect(b.create(c, { pageShift: 16, windowSize: 4n * GiB, levels: 1 })).toBe(TCE_BYPASS_BASE);
    expectErrno(() => b.remove(c, 8n * GiB), 'EINVAL');
    expect(b.remove(c, TCE_BYPASS_BASE + 0x10000n)).toBe(0);
    expect(hw.spaprTableGroup.tables[1]).toBeUndefined();
    expect(b.remove(c, 0n)).toBe(0);
    expectErrno(() => b.remove(c, 0n), 'EINVAL');
    expect(b.mm.memlock.lockedPages).toBe(0);
  });

  it('is EPERM to remove when the platform keeps its windows, and nothing changes', () => {
    const b = new Bench({ memlockLimit: null });
    const { ref } = b.group({ removableWindows: false });
    const c = b.open(7, ref);
    expectErrno(() => b.create(c, { pageShift: 16, windowSize: GiB, levels: 1 }), 'EPERM');
    // The pending default window cannot be created either (create needs unset_window), so it stays pending.
    expect(c.defWindowPending).toBe(true);
    expect(b.remove(c, 0n)).toBe(0);
  });

  it('needs v2 (ENOTTY on v1), a group (ENXIO) and the latched mm (EPERM)', () => {
    const b = new Bench({ memlockLimit: null });
    const { ref } = b.group();
    const v1 = b.open(2, ref);
    const buf = vfioIommuSpaprTceCreate.encode({ argsz: 40, page_shift: 16, window_size: GiB, levels: 1 });
    expectErrno(() => b.ioctl(v1, VFIO_IOMMU_SPAPR_TCE_CREATE, buf), 'ENOTTY');
    expectErrno(() => b.ioctl(v1, VFIO_IOMMU_SPAPR_TCE_REMOVE, buf), 'ENOTTY');
    const empty = b.open(7);
    expectErrno(() => b.ioctl(empty, VFIO_IOMMU_SPAPR_TCE_CREATE, buf), 'ENXIO');
    expect(empty.mm).toBe(b.mm); // mm_set happens before the group check
    expectErrno(() => b.ioctl(empty, VFIO_IOMMU_SPAPR_TCE_GET_INFO, new Uint8Array(32)), 'ENXIO');
  });
});
