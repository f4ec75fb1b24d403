import { describe, expect, it } from 'vitest';
import { IOMMU_READ } from '@vfio-ts/platform';
import { VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap } from '@vfio-ts/uapi';
import { FakeGroup } from './fakes.js';
import { bit, errnoOf, harness, popcount } from './helpers.js';

const P = 4096n;
const EMU = { id: 7, type: 'emulated-iommu' as const, iommuGroup: undefined };

describe('VFIO_IOMMU_DIRTY_PAGES', () => {
  it('is v2 only (EACCES) and wants exactly one known flag (EINVAL)', () => {
    expect(errnoOf(() => harness({ type: 1 }).start())).toBe('EACCES');
    const h = harness();
    expect(errnoOf(() => h.dirty(0))).toBe('EINVAL');
    expect(errnoOf(() => h.dirty(3))).toBe('EINVAL');
    expect(errnoOf(() => h.dirty(8))).toBe('EINVAL');
    const short = vfioIommuType1DirtyBitmap.encode({ argsz: 7, flags: 1 });
    expect(errnoOf(() => h.ioctl(VFIO_IOMMU_DIRTY_PAGES, short))).toBe('EINVAL');
  });

  it('START and STOP are idempotent; GET_BITMAP needs tracking started (EINVAL)', () => {
    const h = harness();
    h.map(0n, h.mm.add(4), 4n * P);
    expect(errnoOf(() => h.getBitmap(0n, 4n * P))).toBe('EINVAL');
    h.start();
    h.start();
    h.getBitmap(0n, 4n * P);
    h.stop();
    h.stop();
    expect(errnoOf(() => h.getBitmap(0n, 4n * P))).toBe('EINVAL');
  });

  it('reports every page of IOMMU-mapped memory dirty while a group can DMA without pinning', () => {
    const h = harness();
    const va = h.mm.add(200);
    h.map(0n, va, 100n * P);
    h.map(100n * P, va + 100n * P, 100n * P);
    h.start();
    const bm = h.getBitmap(0n, 200n * P);
    expect(popcount(bm)).toBe(200);
    expect(bm.length).toBe(32);
  });

  it('places each mapping’s bits at its offset, ORing shared words and leaving bits past the range clear', () => {
    const h = harness();
    const va = h.mm.add(1000);
    const sizes = [100n, 300n, 77n, 1n, 129n];
    let at = 0n;
    for (const n of sizes) {
      h.map(at * P, va + at * P, n * P);
      at += n;
    }
    h.start();
    const total = Number(at);
    const bm = h.getBitmap(0n, (at + 64n * 3n) * P);
    expect(popcount(bm)).toBe(total);
    for (let i = 0; i < total; i++) expect(bit(bm, i)).toBe(true);
    // A sub-range that starts at the second mapping (bit 0 = page 100).
    const sub = h.getBitmap(100n * P, 377n * P);
    expect(popcount(sub)).toBe(377);
  });

  it('reports only pinned and written pages in pinned-page scope, and resets to the pinned set after reading', () => {
    const h = harness({ group: false });
    h.attach(new FakeGroup(7), EMU);
    const va = h.mm.add(70);
    h.map(0n, va, 3n * P);
    h.map(3n * P, va + 3n * P, 67n * P); // second mapping's bits start at bit 3 (shifted)
    h.ops.registerDevice!(h.c, { name: 'mdev', dmaUnmap: () => undefined });
    h.ops.pinPages!(h.c, EMU, 1n * P, 1, IOMMU_READ, h.call);
    h.start();
    h.ops.dmaRw!(h.c, 66n * P + 5n, new Uint8Array(4), true);
    h.ops.pinPages!(h.c, EMU, 10n * P, 1, IOMMU_READ, h.call);
    let bm = h.getBitmap(0n, 70n * P);
    expect([...Array(70).keys()].filter((i) => bit(bm, i))).toEqual([1, 10, 66]);
    h.ops.unpinPages!(h.c, 10n * P, 1);
    // The read re-marked page 10 (pinned then); unpinning does not clear it, the next read does.
    bm = h.getBitmap(0n, 70n * P);
    expect([...Array(70).keys()].filter((i) => bit(bm, i))).toEqual([1, 10]);
    bm = h.getBitmap(0n, 70n * P);
    expect([...Array(70).keys()].filter((i) => bit(bm, i))).toEqual([1]);
  });

  it('validates the range and the user bitmap (EINVAL)', () => {
    const h = harness();
    const va = h.mm.add(8);
    h.map(0n, va, 4n * P);
    h.map(4n * P, va + 4n * P, 4n * P);
    h.start();
    expect(errnoOf(() => h.getBitmap(P, 4n * P))).toBe('EINVAL'); // bisects
    expect(errnoOf(() => h.getBitmap(0n, 2n * P))).toBe('EINVAL'); // bisects
    expect(errnoOf(() => h.getBitmap(0n, 8n * P, 8192n))).toBe('EINVAL'); // pgsize
    expect(errnoOf(() => h.getBitmap(0n, 0n, 4096n, 8n))).toBe('EINVAL'); // size 0
    expect(errnoOf(() => h.getBitmap(0n, 8n * P, 4096n, 0n))).toBe('EINVAL'); // no bitmap
    expect(errnoOf(() => h.getBitmap(0n, 64n * 65n * P, 4096n, 8n))).toBe('EINVAL'); // bitmap too small
    expect(popcount(h.getBitmap(0n, 8n * P))).toBe(8);
  });

  it('UNMAP with GET_DIRTY_BITMAP reports then unmaps; needs tracking and the minimum pgsize', () => {
    const h = harness();
    const va = h.mm.add(8);
    h.map(0n, va, 8n * P);
    expect(errnoOf(() => h.unmapDirty(0n, 8n * P))).toBe('EINVAL');
    h.start();
    expect(errnoOf(() => h.unmapDirty(0n, 8n * P, 8192n))).toBe('EINVAL');
    const [size, bm] = h.unmapDirty(0n, 8n * P);
    expect(size).toBe(8n * P);
    expect(popcount(bm)).toBe(8);
    expect(h.c.describe().mappings).toBe(0);
  });

  it('new mappings made while tracking get bitmaps; detaching the last non-pinning group marks all dirty once', () => {
    const h = harness({ group: false });
    h.attach(new FakeGroup(7), EMU);
    h.start();
    h.map(0n, h.mm.add(4), 4n * P);
    expect(popcount(h.getBitmap(0n, 4n * P))).toBe(0);
    const g = new FakeGroup(1);
    h.attach(g);
    expect(popcount(h.getBitmap(0n, 4n * P))).toBe(4);
    h.ops.detachGroup(h.c, { id: 1, type: 'iommu', iommuGroup: g });
    // Promoted to pinned scope: one full report, then clean.
    expect(popcount(h.getBitmap(0n, 4n * P))).toBe(4);
    expect(popcount(h.getBitmap(0n, 4n * P))).toBe(0);
  });
});
