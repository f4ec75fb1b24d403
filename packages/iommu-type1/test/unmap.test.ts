import { describe, expect, it } from 'vitest';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_UPDATE_VADDR,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import { FakeGroup, FakeMm, FakeTask, groupRef } from './fakes.js';
import type { FakeDomain } from './fakes.js';
import { errnoOf, harness } from './helpers.js';

const P = 4096n;

/** Three adjacent 4-page mappings at 0x100000. */
function three(type = 3) {
  const h = harness({ type });
  const va = h.mm.add(12);
  for (let i = 0n; i < 3n; i++) h.map(0x100000n + i * 4n * P, va + i * 4n * P, 4n * P);
  return h;
}

describe('UNMAP_DMA', () => {
  it('rejects a short argsz, unknown flags and bad flag combinations with EINVAL', () => {
    const h = three();
    const b = vfioIommuType1DmaUnmap.encode({ argsz: 23, flags: 0, iova: 0x100000n, size: 4n * P });
    expect(errnoOf(() => h.ioctl(VFIO_IOMMU_UNMAP_DMA, b))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0x100000n, 4n * P, 8))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0x100000n, 4n * P, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_VADDR))).toBe('EINVAL');
    // GET_DIRTY_BITMAP with argsz too small for the vfio_bitmap.
    expect(errnoOf(() => h.unmap(0x100000n, 4n * P, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP))).toBe('EINVAL');
    expect(h.c.describe().mappings).toBe(3);
  });

  it('rejects unaligned or empty or wrapping ranges with EINVAL', () => {
    const h = three();
    expect(errnoOf(() => h.unmap(0x100800n, 4n * P))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0x100000n, 0n))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0x100000n, 100n))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap((1n << 64n) - P, 2n * P))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(P, 0n, VFIO_DMA_UNMAP_FLAG_ALL))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0n, P, VFIO_DMA_UNMAP_FLAG_ALL))).toBe('EINVAL');
  });

  it('v2: refuses to bisect a mapping at either end, and unmaps whole mappings across a range', () => {
    const h = three();
    expect(errnoOf(() => h.unmap(0x101000n, 3n * P))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0x100000n, 2n * P))).toBe('EINVAL');
    expect(errnoOf(() => h.unmap(0xff000n, 6n * P))).toBe('EINVAL');
    expect(h.c.describe().mappings).toBe(3);
    expect(h.unmap(0xf0000n, 0x10000n + 8n * P)).toBe(8n * P);
    expect(h.c.describe()).toMatchObject({ mappings: 1, lockedPages: 4 });
  });

  it('v2: succeeds with size 0 when nothing is mapped in the range', () => {
    const h = three();
    expect(h.unmap(0x200000n, 16n * P)).toBe(0n);
  });

  it('v1: an unmap starting inside a mapping removes nothing; one covering its start removes all of it', () => {
    const h = three(1);
    expect(h.unmap(0x101000n, 8n * P)).toBe(0n);
    expect(h.c.describe().mappings).toBe(3);
    // Covers the first page of the second mapping only: the whole mapping goes, and the size says so.
    expect(h.unmap(0x104000n, P)).toBe(4n * P);
    expect(h.c.describe().mappings).toBe(2);
    expect(h.mm.memlock.lockedPages).toBe(8);
  });

  it('UNMAP_ALL removes everything and releases all pins and locked memory', () => {
    const h = three();
    expect(h.unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL)).toBe(12n * P);
    expect(h.c.describe()).toMatchObject({ mappings: 0, lockedPages: 0, dmaAvail: 65535 });
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
    expect((h.groups[0]!.attached as FakeDomain).entries.size).toBe(0);
  });
});

describe('VADDR invalidate / update', () => {
  it('invalidates vaddrs (DMA keeps working) and takes new ones for exactly the same ranges', () => {
    const h = three();
    const d = h.groups[0]!.attached as FakeDomain;
    expect(h.unmap(0x100000n, 8n * P, VFIO_DMA_UNMAP_FLAG_VADDR)).toBe(8n * P);
    expect(d.entries.size).toBe(12);
    expect(h.c.describe().vaddrInvalid).toBe(2);
    const nv = h.mm.add(8);
    expect(errnoOf(() => h.map(0x200000n, nv, 4n * P, VFIO_DMA_MAP_FLAG_VADDR))).toBe('ENOENT');
    expect(errnoOf(() => h.map(0x100000n, nv, 8n * P, VFIO_DMA_MAP_FLAG_VADDR))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0x108000n, nv, 4n * P, VFIO_DMA_MAP_FLAG_VADDR))).toBe('EINVAL');
    h.map(0x100000n, nv, 4n * P, VFIO_DMA_MAP_FLAG_VADDR);
    expect(h.c.mappings()[0]).toMatchObject({ vaddr: nv, vaddrInvalid: false });
    expect(errnoOf(() => h.map(0x100000n, nv, 4n * P, VFIO_DMA_MAP_FLAG_VADDR))).toBe('EINVAL');
    h.map(0x104000n, nv + 4n * P, 4n * P, VFIO_DMA_MAP_FLAG_VADDR);
    expect(h.c.describe().vaddrInvalid).toBe(0);
  });

  it('rolls back the invalidations of a call that meets an already invalid mapping', () => {
    const h = three();
    h.unmap(0x104000n, 4n * P, VFIO_DMA_UNMAP_FLAG_VADDR);
    expect(errnoOf(() => h.unmap(0x100000n, 12n * P, VFIO_DMA_UNMAP_FLAG_VADDR))).toBe('EINVAL');
    expect(h.c.mappings().map((m) => m.vaddrInvalid)).toEqual([false, true, false]);
    expect(h.c.describe().vaddrInvalid).toBe(1);
  });

  it('blocks attach, pin_pages and dma_rw while a vaddr is invalid (EBUSY)', () => {
    const h = three();
    h.ops.registerDevice!(h.c, { name: 'mdev', dmaUnmap: () => undefined });
    h.unmap(0x100000n, 4n * P, VFIO_DMA_UNMAP_FLAG_VADDR);
    expect(errnoOf(() => {
        h.attach(new FakeGroup(2));
      })).toBe('EBUSY');
    expect(errnoOf(() => h.ops.pinPages!(h.c, groupRef(h.groups[0], 1), 0x104000n, 1, 1, h.call))).toBe('EBUSY');
    expect(errnoOf(() => {
        h.ops.dmaRw!(h.c, 0x104000n, new Uint8Array(4), false);
      })).toBe('EBUSY');
    // Unmapping an invalidated mapping is fine and clears the count.
    h.unmap(0x100000n, 4n * P);
    h.attach(new FakeGroup(2));
  });

  it('is refused with emulated groups (EBUSY) and CHECK_EXTENSION says so', () => {
    const h = three();
    expect(h.ioctl(VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR)).toBe(1);
    h.attach(new FakeGroup(5), { id: 5, type: 'emulated-iommu', iommuGroup: undefined });
    expect(h.ioctl(VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR)).toBe(0);
    expect(errnoOf(() => h.unmap(0x100000n, 4n * P, VFIO_DMA_UNMAP_FLAG_VADDR))).toBe('EBUSY');
  });

  it('moves the locked-memory accounting to the process that supplies the new vaddr', () => {
    const h = three();
    h.unmap(0x100000n, 4n * P, VFIO_DMA_UNMAP_FLAG_VADDR);
    const mm2 = new FakeMm(h.phys, 2);
    const nv = mm2.add(4);
    const t2 = new FakeTask(mm2, [], 2n * P, 200);
    // The new owner's limit is too small for the 4 pages: ENOMEM and nothing moves.
    expect(errnoOf(() => h.ops.ioctl(h.c, VFIO_IOMMU_MAP_DMA, mapBytes(0x100000n, nv, 4n * P), { task: t2 }))).toBe('ENOMEM');
    expect(h.mm.memlock.lockedPages).toBe(12);
    t2.memlockLimit = null;
    h.ops.ioctl(h.c, VFIO_IOMMU_MAP_DMA, mapBytes(0x100000n, nv, 4n * P), { task: t2 });
    expect(h.mm.memlock.lockedPages).toBe(8);
    expect(mm2.memlock.lockedPages).toBe(4);
    h.unmap(0x100000n, 4n * P);
    expect(mm2.memlock.lockedPages).toBe(0);
  });
});

function mapBytes(iova: bigint, vaddr: bigint, size: bigint): Uint8Array {
  return vfioIommuType1DmaMap.encode({ argsz: 32, flags: VFIO_DMA_MAP_FLAG_VADDR, vaddr, iova, size });
}
