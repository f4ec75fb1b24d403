import type { VfioGroupRef } from '@vfio-ts/core';
import { VFIO_IOMMU_ENABLE } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { Bench, GiB, KiB, expectErrno, pattern } from './helpers.js';

describe('attach / detach', () => {
  it('v2 programs every window into every group, including groups attached later', () => {
    const b = new Bench({ memlockLimit: null });
    const g1 = b.group();
    const g2 = b.group();
    const c = b.open(7, g1.ref, g2.ref);
    const start = b.create(c, { pageShift: 16, windowSize: 16n * GiB, levels: 2 });
    for (const g of [g1, g2]) {
      expect(g.hw.spaprTableGroup.tables[0]).toBe(c.tables[0]);
      expect(g.hw.spaprTableGroup.tables[1]).toBe(c.tables[1]);
    }
    const va = b.buffer(64n * KiB);
    b.register(c, va, 64n * KiB);
    b.mm.write(va, pattern(64));
    b.map(c, { vaddr: va, iova: 0x2000n, size: 8192n });
    const g3 = b.group();
    b.ops.attachGroup(c, g3.ref, b.call);
    expect(g3.hw.spaprTableGroup.tables[1]?.busStart).toBe(start);
    // One shared table: a mapping is seen by the devices of every group.
    for (const g of [g1, g2, g3]) expect(b.deviceRead(g.hw, 0x2000n, 64)).toEqual(pattern(64));
    // Groups are kept in the kernel's list order: the newest first.
    expect(c.describe().groups).toEqual([g3.ref.id, g2.ref.id, g1.ref.id]);
  });

  it('detach clears the shared TCEs and unprograms the leaving group only', () => {
    const b = new Bench({ memlockLimit: null });
    const g1 = b.group();
    const g2 = b.group();
    const c = b.open(7, g1.ref, g2.ref);
    const va = b.buffer(64n * KiB);
    b.register(c, va, 64n * KiB);
    b.map(c, { vaddr: va, iova: 0n, size: 4096n });
    b.ops.detachGroup(c, g2.ref);
    expect(g2.hw.spaprTableGroup.tables).toEqual([undefined, undefined]);
    expect(g1.hw.spaprTableGroup.tables[0]).toBe(c.tables[0]);
    expectErrno(() => b.deviceRead(g1.hw, 0n, 4), 'EFAULT');
    expect(c.describe().preregistered[0]?.mappings).toBe(0);
    // Releasing the IOMMU group gives the PE back to the host: default window and bypass again.
    g2.hw.releaseDmaOwner(g2.ref);
    expect(g2.hw.spaprTableGroup.isOwned).toBe(false);
    expect(g2.hw.spaprTableGroup.bypassEnabled).toBe(true);
    expect(g2.hw.spaprTableGroup.tables[0]?.pageShift).toBe(12);
  });

  it('v1 takes a single group (EBUSY for the second)', () => {
    const b = new Bench({ memlockLimit: null });
    const g1 = b.group();
    const g2 = b.group();
    const c = b.open(2, g1.ref);
    expectErrno(() => { b.ops.attachGroup(c, g2.ref, b.call); }, 'EBUSY');
    expect(c.groups).toHaveLength(1);
  });

  it('refuses emulated groups (EINVAL), groups without a table group (ENODEV), the same group twice (EBUSY)', () => {
    const b = new Bench({ memlockLimit: null });
    const c = b.open(7);
    const emulated: VfioGroupRef = { id: 90, type: 'emulated-iommu', iommuGroup: undefined };
    expectErrno(() => { b.ops.attachGroup(c, emulated, b.call); }, 'EINVAL');
    // An IOMMU group of another IOMMU (no `spaprTableGroup`): iommu_group_get_iommudata finds nothing.
    const foreign = { id: 91, devices: () => [] } as unknown as VfioGroupRef['iommuGroup'];
    const noTable: VfioGroupRef = { id: 91, type: 'iommu', iommuGroup: foreign };
    expectErrno(() => { b.ops.attachGroup(c, noTable, b.call); }, 'ENODEV');
    const g = b.group();
    b.ops.attachGroup(c, g.ref, b.call);
    expectErrno(() => { b.ops.attachGroup(c, { ...g.ref }, b.call); }, 'EBUSY');
    expect(b.log.some((l) => l.includes('already attached'))).toBe(true);
  });

  it('v2 needs dynamic windows (EINVAL); incompatible platform families are EPERM', () => {
    const b = new Bench({ memlockLimit: null });
    const noDdw = b.group({ maxDynamicWindows: 0 });
    expectErrno(() => b.open(7, noDdw.ref), 'EINVAL');
    // A PE without DDW still works in a v1 container.
    expect(b.open(2, noDdw.ref).groups).toHaveLength(1);
    const a = b.group();
    const other = b.group({ family: 'pseries-lpar' });
    const c = b.open(7, a.ref);
    expectErrno(() => { b.ops.attachGroup(c, other.ref, b.call); }, 'EPERM');
    expect(other.hw.spaprTableGroup.tables).toEqual([undefined, undefined]);
  });

  it('a window that cannot be programmed into a new group is unwound', () => {
    const b = new Bench({ memlockLimit: null });
    const g1 = b.group();
    const c = b.open(7, g1.ref);
    b.create(c, { pageShift: 16, windowSize: GiB, levels: 1 });
    const g2 = b.group();
    // Something else already occupies window 1 of the new PE: set_window fails with EBUSY.
    const foreign = g2.hw.spaprTableGroup.createTable(1, 12, GiB, 1);
    g2.hw.spaprTableGroup.setWindow(1, foreign);
    expectErrno(() => { b.ops.attachGroup(c, g2.ref, b.call); }, 'EBUSY');
    expect(g2.hw.spaprTableGroup.tables).toEqual([undefined, undefined]);
    expect(c.groups).toHaveLength(1);
  });

  it('release detaches what is left and gives every charge back', () => {
    const b = new Bench({ memlockLimit: null });
    const g1 = b.group();
    const g2 = b.group();
    const c = b.open(7, g1.ref, g2.ref);
    b.create(c, { pageShift: 12, windowSize: GiB, levels: 2 });
    expect(b.mm.memlock.lockedPages).toBeGreaterThan(0);
    b.ops.release(c);
    expect(b.mm.memlock.lockedPages).toBe(0);
    expect(g1.hw.spaprTableGroup.tables[1]).toBeUndefined();
    expect(c.tables).toEqual([undefined, undefined]);
  });

  it('v1 keeps working through its single group', () => {
    const b = new Bench({ memlockLimit: null });
    const g = b.group();
    const c = b.open(2, g.ref);
    b.ioctl(c, VFIO_IOMMU_ENABLE, undefined);
    const va = b.buffer(8192n);
    b.mm.write(va, pattern(8192, 5));
    b.map(c, { vaddr: va, iova: 0x4000n, size: 8192n, flags: 1 });
    expect(b.deviceRead(g.hw, 0x4000n, 8192)).toEqual(pattern(8192, 5));
  });
});
