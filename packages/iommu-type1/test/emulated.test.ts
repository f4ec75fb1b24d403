import { describe, expect, it } from 'vitest';
import { IOMMU_READ, IOMMU_WRITE } from '@vfio-ts/platform';
import { VFIO_DMA_MAP_FLAG_READ } from '@vfio-ts/uapi';
import type { VfioDeviceRef } from '@vfio-ts/core';
import { FakeGroup } from './fakes.js';
import type { FakeDomain } from './fakes.js';
import { errnoOf, harness } from './helpers.js';

const P = 4096n;
const EMU = { id: 7, type: 'emulated-iommu' as const, iommuGroup: undefined };

/** A container with one emulated group, one mapping of 8 pages at 0x10000 and a device that unpins on dma_unmap. */
function emulated(opts: { withIommu?: boolean; memlockLimit?: bigint; type?: number } = {}) {
  const h = harness({ group: opts.withIommu ?? false, type: opts.type ?? 3, memlockLimit: opts.memlockLimit ?? null });
  h.attach(new FakeGroup(7), EMU);
  const va = h.mm.add(8, { layout: 'scattered' });
  h.map(0x10000n, va, 8n * P);
  const pinned = new Map<bigint, number>();
  const calls: [bigint, bigint][] = [];
  const dev: VfioDeviceRef = {
    name: 'mdev0',
    dmaUnmap(iova, length) {
      calls.push([iova, length]);
      for (const [at, n] of [...pinned]) {
        if (at >= iova && at < iova + length) {
          for (let i = 0; i < n; i++) h.ops.unpinPages!(h.c, at, 1);
          pinned.delete(at);
        }
      }
    },
  };
  const pin = (iova: bigint, npage: number, prot = IOMMU_READ | IOMMU_WRITE): bigint[] => {
    const pfns = h.ops.pinPages!(h.c, EMU, iova, npage, prot, h.call);
    for (let i = 0n; i < BigInt(npage); i++) pinned.set(iova + i * P, (pinned.get(iova + i * P) ?? 0) + 1);
    return pfns;
  };
  return { ...h, va, dev, pin, pinned, calls };
}

describe('pin_pages / unpin_pages (emulated IOMMU)', () => {
  it('needs v2 (EACCES) and a registered device with dma_unmap (EINVAL)', () => {
    const v1 = emulated({ type: 1 });
    expect(errnoOf(() => v1.ops.pinPages!(v1.c, EMU, 0x10000n, 1, IOMMU_READ, v1.call))).toBe('EACCES');
    const h = emulated();
    expect(errnoOf(() => h.pin(0x10000n, 1))).toBe('EINVAL');
    h.ops.registerDevice!(h.c, { name: 'no-unmap' });
    expect(errnoOf(() => h.pin(0x10000n, 1))).toBe('EINVAL');
  });

  it('pins refcounted pages, accounts them without an IOMMU domain, and checks range and prot', () => {
    const h = emulated();
    h.ops.registerDevice!(h.c, h.dev);
    const pfns = h.pin(0x10000n, 2);
    expect(pfns).toHaveLength(2);
    expect(h.pin(0x10000n, 1)).toEqual([pfns[0]]);
    expect(h.phys.totalPins).toBe(2);
    expect(h.mm.memlock.lockedPages).toBe(2);
    expect(errnoOf(() => h.pin(0x17000n, 2))).toBe('EINVAL');
    expect(h.phys.totalPins).toBe(2);
    const ro = h.mm.add(1);
    h.map(0x40000n, ro, P, VFIO_DMA_MAP_FLAG_READ);
    expect(errnoOf(() => h.pin(0x40000n, 1, IOMMU_WRITE))).toBe('EPERM');
    h.ops.unpinPages!(h.c, 0x10000n, 2);
    expect(h.phys.totalPins).toBe(1);
    expect(h.mm.memlock.lockedPages).toBe(1);
    h.ops.unpinPages!(h.c, 0x10000n, 1);
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
  });

  it('release gives back a page pinned twice by a device exactly once (one page pin per vfio_pfn)', () => {
    for (const withIommu of [false, true]) {
      const h = emulated({ withIommu });
      h.ops.registerDevice!(h.c, h.dev);
      h.pin(0x10000n, 1);
      h.pin(0x10000n, 1);
      // The device never unpins: release drops the left-over pins without driving any count below zero.
      h.ops.release(h.c);
      expect(h.phys.totalPins).toBe(0);
      expect(h.mm.memlock.lockedPages).toBe(0);
    }
  });

  it('answers RLIMIT_MEMLOCK with ENOMEM and undoes the pages pinned by the same call', () => {
    const h = emulated({ memlockLimit: 2n * P });
    h.ops.registerDevice!(h.c, h.dev);
    expect(errnoOf(() => h.pin(0x10000n, 3))).toBe('ENOMEM');
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
    expect(h.env.logs.some((l) => l.includes('RLIMIT_MEMLOCK'))).toBe(true);
  });

  it('does not account external pins when an IOMMU domain already pins the pages', () => {
    const h = emulated({ withIommu: true });
    h.ops.registerDevice!(h.c, h.dev);
    expect(h.mm.memlock.lockedPages).toBe(8);
    h.pin(0x10000n, 4);
    expect(h.mm.memlock.lockedPages).toBe(8);
    expect(h.phys.totalPins).toBe(12);
    // Losing the IOMMU group: the IOMMU pins go, the external ones stay accounted.
    h.ops.detachGroup(h.c, { id: 1, type: 'iommu', iommuGroup: h.groups[0] });
    expect(h.phys.totalPins).toBe(4);
    expect(h.mm.memlock.lockedPages).toBe(4);
  });

  it('attaching an IOMMU group later pins the recorded mappings and counts external pins once', () => {
    const h = emulated();
    h.ops.registerDevice!(h.c, h.dev);
    h.pin(0x10000n, 2);
    h.attach(new FakeGroup(1));
    expect(h.mm.memlock.lockedPages).toBe(8);
    expect(h.phys.totalPins).toBe(10);
    expect((h.groups[1]!.attached as FakeDomain).entries.size).toBe(8);
  });

  it('asks devices to unpin before unmapping a pinned range (dma_unmap), then unmaps', () => {
    const h = emulated();
    h.ops.registerDevice!(h.c, h.dev);
    h.pin(0x11000n, 2);
    expect(h.unmap(0x10000n, 8n * P)).toBe(8n * P);
    expect(h.calls).toEqual([[0x10000n, 8n * P]]);
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
  });

  it('gives up with EIO when a device keeps its pins through repeated dma_unmap calls (Linux BUG())', () => {
    const h = emulated();
    let calls = 0;
    h.ops.registerDevice!(h.c, { name: 'bad', dmaUnmap: () => {
        calls++;
      } });
    h.ops.pinPages!(h.c, EMU, 0x10000n, 1, IOMMU_READ, h.call);
    expect(errnoOf(() => h.unmap(0x10000n, 8n * P))).toBe('EIO');
    expect(calls).toBe(11);
    expect(h.env.logs.some((l) => l.includes('BUG'))).toBe(true);
    expect(h.c.describe().mappings).toBe(1);
  });

  it('detaching the last emulated group unmaps everything', () => {
    const h = emulated();
    h.ops.detachGroup(h.c, EMU);
    expect(h.c.describe().mappings).toBe(0);
  });
});

describe('dma_rw', () => {
  it('copies to and from the user memory behind IOVAs, across mappings', () => {
    const h = emulated();
    const va2 = h.mm.add(2);
    h.map(0x18000n, va2, 2n * P);
    const data = new Uint8Array(8192).map((_, i) => i & 0xff);
    h.ops.dmaRw!(h.c, 0x17000n, data, true);
    expect(h.mm.read(h.va + 7n * P, 16)).toEqual(data.subarray(0, 16));
    expect(h.mm.read(va2, 16)).toEqual(data.subarray(4096, 4112));
    const back = new Uint8Array(8192);
    h.ops.dmaRw!(h.c, 0x17000n, back, false);
    expect(back).toEqual(data);
  });

  it('answers unmapped IOVAs with EINVAL and missing permissions with EPERM', () => {
    const h = emulated();
    expect(errnoOf(() => {
      h.ops.dmaRw!(h.c, 0x90000n, new Uint8Array(1), false);
    })).toBe('EINVAL');
    const ro = h.mm.add(1);
    h.map(0x40000n, ro, P, VFIO_DMA_MAP_FLAG_READ);
    expect(errnoOf(() => {
      h.ops.dmaRw!(h.c, 0x40000n, new Uint8Array(1), true);
    })).toBe('EPERM');
  });
});
