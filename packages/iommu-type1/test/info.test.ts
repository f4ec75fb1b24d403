import { describe, expect, it } from 'vitest';
import {
  TYPE1_INFO_CAP_SIZES,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  __VFIO_RESERVED_TYPE1_NESTING_IOMMU,
  decodeDmaAvailCap,
  decodeIovaRangeCap,
  decodeMigrationCap,
  findCap,
  parseCapChain,
  vfioIommuType1Info,
} from '@vfio-ts/uapi';
import { PAGE_MASK_U64, type1DriverOps } from '../src/index.js';
import { FakeEnv, FakeGroup, FakeMm, FakePhys, FakeTask } from './fakes.js';
import type { FakeDomain } from './fakes.js';
import { errnoOf, harness } from './helpers.js';

function info(h: ReturnType<typeof harness>, argsz = 256): { bytes: Uint8Array; value: ReturnType<typeof vfioIommuType1Info.decode> } {
  const bytes = new Uint8Array(Math.max(argsz, 24));
  vfioIommuType1Info.write(bytes, { argsz });
  h.ioctl(VFIO_IOMMU_GET_INFO, bytes);
  return { bytes, value: vfioIommuType1Info.decode(bytes) };
}

describe('VFIO_CHECK_EXTENSION', () => {
  it('answers before SET_IOMMU (no container): TYPE1, TYPE1v2, UNMAP_ALL only', () => {
    const ops = type1DriverOps();
    const call = { task: new FakeTask(new FakeMm(new FakePhys())) };
    const ask = (ext: number): number => ops.ioctl(null, VFIO_CHECK_EXTENSION, ext, call);
    expect([VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL].map(ask)).toEqual([1, 1, 1]);
    expect([VFIO_UPDATE_VADDR, VFIO_DMA_CC_IOMMU, __VFIO_RESERVED_TYPE1_NESTING_IOMMU, 2, 7, 8, 99].map(ask)).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('answers DMA_CC_IOMMU from the domains’ coherency enforcement', () => {
    const h = harness();
    expect(h.ioctl(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(1);
    h.attach(new FakeGroup(2, { coherent: false }));
    expect(h.ioctl(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(0);
  });

  it('opens v1, v2 and the reserved nesting type as v2; refuses others with EINVAL', () => {
    const ops = type1DriverOps();
    const call = { task: new FakeTask(new FakeMm(new FakePhys())) };
    expect(ops.open(1, new FakeEnv(), call).v2).toBe(false);
    expect(ops.open(3, new FakeEnv(), call).v2).toBe(true);
    expect(ops.open(6, new FakeEnv(), call).v2).toBe(true);
    expect(errnoOf(() => ops.open(2, new FakeEnv(), call))).toBe('EINVAL');
    expect(errnoOf(() => ops.open(8, new FakeEnv(), call))).toBe('EINVAL');
  });
});

describe('VFIO_IOMMU_GET_INFO', () => {
  it('reports page sizes and the caps in kernel order MIGRATION, DMA_AVAIL, IOVA_RANGE', () => {
    const h = harness({ group: { aperture: { start: 0n, end: (1n << 39n) - 1n } } });
    h.map(0n, h.mm.add(1), 4096n);
    const { bytes, value } = info(h);
    expect(value.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    expect(value.iova_pgsizes).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    expect(value.cap_offset).toBe(24);
    const chain = parseCapChain(bytes, value.cap_offset, { minOffset: 24, minSizes: TYPE1_INFO_CAP_SIZES });
    expect(chain.map((c) => c.id)).toEqual([VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE]);
    expect(decodeMigrationCap(findCap(chain, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION)!)).toEqual({ flags: 0, pgsizeBitmap: 4096n, maxDirtyBitmapSize: 1n << 28n });
    expect(decodeDmaAvailCap(findCap(chain, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)!).avail).toBe(65534);
    expect(decodeIovaRangeCap(findCap(chain, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)!).ranges).toEqual([
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: (1n << 39n) - 1n },
    ]);
  });

  it('omits IOVA_RANGE without an IOMMU domain and starts from PAGE_MASK', () => {
    const h = harness({ group: false });
    const { bytes, value } = info(h);
    expect(value.iova_pgsizes).toBe(PAGE_MASK_U64);
    const chain = parseCapChain(bytes, value.cap_offset, { minOffset: 24 });
    expect(chain.map((c) => c.id)).toEqual([VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL]);
  });

  it('with a short argsz: succeeds, sets CAPS, leaves cap_offset 0 and asks for the full size', () => {
    const h = harness();
    expect(info(h).value.argsz).toBe(256);
    const full = info(h, 24).value.argsz;
    expect(full).toBe(24 + 32 + 16 + 16 + 2 * 16);
    for (let argsz = 16; argsz < full; argsz += 4) {
      const bytes = new Uint8Array(full).fill(0xaa);
      vfioIommuType1Info.write(bytes, { argsz });
      h.ioctl(VFIO_IOMMU_GET_INFO, bytes);
      const v = vfioIommuType1Info.decode(bytes);
      expect(v.argsz).toBe(full);
      expect(v.flags & VFIO_IOMMU_INFO_CAPS).toBe(VFIO_IOMMU_INFO_CAPS);
      // Nothing written past argsz (min with the struct size).
      expect(bytes.subarray(Math.min(argsz, 24)).every((b) => b === 0xaa)).toBe(true);
    }
  });

  it('rejects argsz below 16 with EINVAL', () => {
    const h = harness();
    expect(errnoOf(() => info(h, 15))).toBe('EINVAL');
  });
});

describe('attach and detach', () => {
  it('shares a domain between compatible groups and replays mappings into a new incompatible one', () => {
    const h = harness();
    const va = h.mm.add(8, { layout: 'scattered' });
    h.map(0n, va, 8n * 4096n);
    const g2 = new FakeGroup(2);
    h.attach(g2);
    expect(g2.attached).toBe(h.groups[0]!.attached);
    expect(g2.allocated[0]!.freed).toBe(true);
    const g3 = new FakeGroup(3, { coherent: false });
    h.attach(g3);
    const d1 = h.groups[0]!.attached!;
    const d3 = g3.attached!;
    expect(d3).not.toBe(d1);
    for (let i = 0n; i < 8n; i++) expect(d3.translate(i * 4096n)?.pa).toBe(d1.translate(i * 4096n)?.pa);
    // Replay maps the same pages: nothing pinned or accounted twice.
    expect(h.phys.totalPins).toBe(8);
    expect(h.mm.memlock.lockedPages).toBe(8);
    expect(h.c.describe()).toMatchObject({ domains: 2, groups: 3 });
  });

  it('refuses a duplicate group (EINVAL) and a group whose aperture or reserved regions hit mappings (EINVAL)', () => {
    const h = harness();
    expect(errnoOf(() => {
        h.attach(h.groups[0]!);
      })).toBe('EINVAL');
    const va = h.mm.add(2);
    h.map(1n << 40n, va, 4096n);
    const small = new FakeGroup(2, { aperture: { start: 0n, end: (1n << 39n) - 1n }, coherent: false });
    expect(errnoOf(() => {
        h.attach(small);
      })).toBe('EINVAL');
    expect(small.attached).toBeUndefined();
    expect(small.allocated[0]!.freed).toBe(true);
    h.map(0x20000000n, va + 4096n, 4096n);
    const resv = new FakeGroup(3, {}, [{ start: 0x20000000n, end: 0x200fffffn, type: 'reserved' }]);
    expect(errnoOf(() => {
        h.attach(resv);
      })).toBe('EINVAL');
    const relaxable = new FakeGroup(4, {}, [{ start: 0x20000000n, end: 0x200fffffn, type: 'direct-relaxable' }]);
    h.attach(relaxable);
  });

  it('refuses a group without MSI isolation (EPERM) unless allow_unsafe_interrupts is set', () => {
    const h = harness({ group: false });
    expect(errnoOf(() => {
        h.attach(new FakeGroup(2, {}, [], false));
      })).toBe('EPERM');
    expect(h.env.logs.some((l) => l.includes('allow_unsafe_interrupts'))).toBe(true);
    h.env.params.set('allow_unsafe_interrupts', 'Y');
    h.attach(new FakeGroup(2, {}, [], false));
  });

  it('unwinds a replay that fails in the new domain', () => {
    const h = harness();
    const va = h.mm.add(8, { layout: 'scattered' });
    h.map(0n, va, 4n * 4096n);
    h.map(0x100000n, va + 4n * 4096n, 4n * 4096n);
    const g = new FakeGroup(2, { coherent: false });
    const realAlloc = g.allocDomain.bind(g);
    g.allocDomain = () => {
      const d = realAlloc();
      d.failAt = 0x102000n;
      return d;
    };
    expect(errnoOf(() => {
        h.attach(g);
      })).toBe('ENOMEM');
    expect(g.attached).toBeUndefined();
    expect(g.allocated[0]!.entries.size).toBe(0);
    expect(g.allocated[0]!.freed).toBe(true);
    expect(h.c.describe()).toMatchObject({ domains: 1, groups: 1 });
  });

  it('detaching the last group unmaps and unpins everything; the valid range re-expands on detach', () => {
    const h = harness({ group: { aperture: { start: 0n, end: (1n << 39n) - 1n } } });
    const g2 = new FakeGroup(2, { coherent: false, aperture: { start: 0n, end: (1n << 30n) - 1n } }, []);
    h.attach(g2);
    expect(h.c.iovaRanges.at(-1)!.end).toBe((1n << 30n) - 1n);
    h.ops.detachGroup(h.c, { id: 2, type: 'iommu', iommuGroup: g2 });
    expect(g2.attached).toBeUndefined();
    expect(h.c.iovaRanges.at(-1)!.end).toBe((1n << 39n) - 1n);
    h.map(0n, h.mm.add(4), 4n * 4096n);
    h.ops.detachGroup(h.c, { id: 1, type: 'iommu', iommuGroup: h.groups[0] });
    expect(h.c.describe()).toMatchObject({ mappings: 0, domains: 0 });
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
  });

  it('release unpins everything, un-accounts all locked memory and frees the domains', () => {
    const h = harness();
    h.map(0n, h.mm.add(64), 64n * 4096n);
    const d = h.groups[0]!.attached as FakeDomain;
    h.ops.release(h.c);
    expect(h.phys.totalPins).toBe(0);
    expect(h.mm.memlock.lockedPages).toBe(0);
    expect(d.freed).toBe(true);
    expect(h.groups[0]!.attached).toBeUndefined();
  });
});
