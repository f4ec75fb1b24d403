import { describe, expect, it } from 'vitest';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_ENABLE,
  vfioIommuType1DmaMap,
} from '@vfio-ts/uapi';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, PROT_READ } from '@vfio-ts/platform';
import { FakeGroup } from './fakes.js';
import type { FakeDomain } from './fakes.js';
import { GiB, MiB, RW, errnoOf, harness } from './helpers.js';

describe('MAP_DMA', () => {
  it('pins, accounts and maps the pages into the domain', () => {
    const h = harness();
    const va = h.mm.add(16);
    h.map(0x100000n, va, 16n * 4096n);
    const d = h.groups[0]!.attached as FakeDomain;
    expect(d.entries.size).toBe(16);
    expect(d.translate(0x100000n)?.prot).toBe(IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE);
    expect(h.phys.totalPins).toBe(16);
    expect(h.mm.memlock.lockedPages).toBe(16);
    expect(h.c.describe()).toMatchObject({ mappings: 1, lockedPages: 16, domains: 1, dmaAvail: 65534 });
  });

  it('rejects a short argsz and unknown flags with EINVAL', () => {
    const h = harness();
    const va = h.mm.add(1);
    const b = vfioIommuType1DmaMap.encode({ argsz: 31, flags: RW, vaddr: va, iova: 0n, size: 4096n });
    expect(errnoOf(() => h.ioctl(VFIO_IOMMU_MAP_DMA, b))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0n, va, 4096n, RW | 8))).toBe('EINVAL');
    expect(h.c.describe().mappings).toBe(0);
  });

  it('needs READ or WRITE, and VADDR alone', () => {
    const h = harness();
    const va = h.mm.add(1);
    expect(errnoOf(() => h.map(0n, va, 4096n, 0))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0n, va, 4096n, VFIO_DMA_MAP_FLAG_VADDR | VFIO_DMA_MAP_FLAG_READ))).toBe('EINVAL');
    h.map(0n, va, 4096n, VFIO_DMA_MAP_FLAG_READ);
    expect(h.c.mappings()[0]!.prot).toBe(IOMMU_READ);
  });

  it('rejects size 0 and unaligned iova, vaddr or size with EINVAL', () => {
    const h = harness();
    const va = h.mm.add(4);
    expect(errnoOf(() => h.map(0n, va, 0n))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0x800n, va, 4096n))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0n, va + 8n, 4096n))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0n, va, 4095n))).toBe('EINVAL');
    expect(h.phys.totalPins).toBe(0);
  });

  it('uses the smallest page size of the domains for alignment', () => {
    const h = harness({ group: { pgsizeBitmap: 1n << 21n } });
    const va = h.mm.add(1024);
    const va2m = ((va + 2n * MiB - 1n) / (2n * MiB)) * (2n * MiB);
    expect(errnoOf(() => h.map(0n, va2m, 4096n))).toBe('EINVAL');
    expect(errnoOf(() => h.map(4096n, va2m, 2n * MiB))).toBe('EINVAL');
    h.map(0n, va2m, 2n * MiB);
  });

  it('answers a wrapping IOVA or vaddr range with EINVAL (Linux 6.12, before the EOVERFLOW rework)', () => {
    const h = harness({ group: { aperture: { start: 0n, end: (1n << 64n) - 1n } } });
    const va = h.mm.add(1);
    const top = (1n << 64n) - 4096n;
    expect(errnoOf(() => h.map(top, va, 8192n))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0n, top, 8192n))).toBe('EINVAL');
  });

  it('answers an overlap with EEXIST and leaves the first mapping alone', () => {
    const h = harness();
    const va = h.mm.add(8);
    h.map(0x10000n, va, 4n * 4096n);
    expect(errnoOf(() => h.map(0x12000n, va + 16384n, 4n * 4096n))).toBe('EEXIST');
    expect(errnoOf(() => h.map(0xe000n, va + 16384n, 3n * 4096n))).toBe('EEXIST');
    expect(h.c.describe()).toMatchObject({ mappings: 1, lockedPages: 4 });
    expect(h.phys.totalPins).toBe(4);
  });

  it('stops at dma_entry_limit with ENOSPC', () => {
    const h = harness({ params: { dma_entry_limit: '2' } });
    const va = h.mm.add(3);
    h.map(0n, va, 4096n);
    h.map(4096n, va + 4096n, 4096n);
    expect(errnoOf(() => h.map(8192n, va + 8192n, 4096n))).toBe('ENOSPC');
    h.unmap(0n, 4096n);
    h.map(8192n, va + 8192n, 4096n);
  });

  it('refuses IOVAs outside the aperture or inside a reserved region with EINVAL', () => {
    const h = harness({ group: { aperture: { start: 0n, end: (1n << 39n) - 1n } } });
    const va = h.mm.add(4);
    expect(errnoOf(() => h.map(1n << 39n, va, 4096n))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0xfee00000n, va, 4096n))).toBe('EINVAL');
    expect(errnoOf(() => h.map(0xfedff000n, va, 8192n))).toBe('EINVAL');
    h.map(0xfedff000n, va, 4096n);
    h.map(0xfef00000n, va + 4096n, 4096n);
  });

  it('answers RLIMIT_MEMLOCK with ENOMEM, logs a warning and leaves no pin behind', () => {
    const h = harness({ memlockLimit: 8n * 4096n });
    const va = h.mm.add(16, { layout: 'scattered' });
    h.map(0n, va, 4n * 4096n);
    expect(errnoOf(() => h.map(1n << 20n, va + 4n * 4096n, 8n * 4096n))).toBe('ENOMEM');
    expect(h.env.logs.some((l) => l.includes('RLIMIT_MEMLOCK'))).toBe(true);
    expect(h.phys.totalPins).toBe(4);
    expect(h.mm.memlock.lockedPages).toBe(4);
    expect(h.c.describe()).toMatchObject({ mappings: 1, dmaAvail: 65534 });
    expect((h.groups[0]!.attached as FakeDomain).entries.size).toBe(4);
    h.map(1n << 20n, va + 4n * 4096n, 4n * 4096n);
  });

  it('ignores RLIMIT_MEMLOCK with CAP_IPC_LOCK but still accounts', () => {
    const h = harness({ memlockLimit: 4096n, caps: ['CAP_IPC_LOCK'] });
    const va = h.mm.add(32);
    h.map(0n, va, 32n * 4096n);
    expect(h.mm.memlock.lockedPages).toBe(32);
  });

  it('answers unpinnable memory with EFAULT and unwinds', () => {
    const h = harness();
    const va = h.mm.add(4);
    expect(errnoOf(() => h.map(0n, va, 8n * 4096n))).toBe('EFAULT');
    const ro = h.mm.add(2, { prot: PROT_READ });
    expect(errnoOf(() => h.map(0n, ro, 8192n))).toBe('EFAULT');
    h.map(0n, ro, 8192n, VFIO_DMA_MAP_FLAG_READ);
    expect(h.phys.totalPins).toBe(2);
    expect(h.mm.memlock.lockedPages).toBe(2);
  });

  it('unwinds every domain when mapping into one of them fails', () => {
    const h = harness();
    h.attach(new FakeGroup(2, { coherent: false }));
    const [d1, d2] = [h.groups[0]!.attached as FakeDomain, h.groups[1]!.attached as FakeDomain];
    expect(d1).not.toBe(d2);
    const va = h.mm.add(8, { layout: 'scattered' });
    d2.failAt = 0x5000n;
    expect(errnoOf(() => h.map(0n, va, 8n * 4096n))).toBe('ENOMEM');
    expect(d1.entries.size).toBe(0);
    expect(d2.entries.size).toBe(0);
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
    expect(h.c.describe().mappings).toBe(0);
  });

  it('maps device memory (PFNMAP) as reserved pages: not pinned, not accounted', () => {
    const h = harness();
    const bar = h.mm.add(4, { device: true });
    h.map(0x40000000n, bar, 4n * 4096n);
    const d = h.groups[0]!.attached as FakeDomain;
    expect(d.entries.size).toBe(4);
    expect(d.mapCalls).toBe(1);
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
    h.unmap(0x40000000n, 4n * 4096n);
    expect(d.entries.size).toBe(0);
  });

  it('maps a mix of RAM and device pages in one mapping', () => {
    const h = harness();
    const ram = h.mm.add(4);
    h.mm.add(4, { device: true, addr: ram + 4n * 4096n });
    h.map(0n, ram, 8n * 4096n);
    expect(h.phys.totalPins).toBe(4);
    expect(h.mm.memlock.lockedPages).toBe(4);
    expect((h.groups[0]!.attached as FakeDomain).mapCalls).toBe(2);
  });

  it('makes one IOMMU map call per physically contiguous run, or one per page with disable_hugepages', () => {
    const h = harness();
    const va = h.mm.add(1024);
    h.map(0n, va, 4n * MiB);
    expect((h.groups[0]!.attached as FakeDomain).mapCalls).toBe(1);
    const s = harness({ params: { disable_hugepages: 'Y' } });
    const vb = s.mm.add(64);
    s.map(0n, vb, 64n * 4096n);
    expect((s.groups[0]!.attached as FakeDomain).mapCalls).toBe(64);
    s.unmap(0n, 64n * 4096n);
    expect(s.phys.totalPins).toBe(0);
  });

  it('records mappings without pinning when only emulated groups are attached', () => {
    const h = harness({ group: false });
    h.attach(new FakeGroup(9), { id: 9, type: 'emulated-iommu', iommuGroup: undefined });
    h.map(0n, 0xdead0000n, GiB);
    expect(h.phys.totalPins).toBe(0);
    expect(h.c.mappings()[0]).toMatchObject({ size: GiB, iommuMapped: false });
  });

  it('answers non-type1 ioctls with ENOTTY and a pointer-less struct ioctl with EFAULT', () => {
    const h = harness();
    expect(errnoOf(() => h.ioctl(VFIO_IOMMU_ENABLE, 0))).toBe('ENOTTY');
    expect(errnoOf(() => h.ioctl(VFIO_IOMMU_MAP_DMA, 0))).toBe('EFAULT');
  });
});
