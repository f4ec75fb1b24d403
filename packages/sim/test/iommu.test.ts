import { IOMMU_READ, IOMMU_WRITE } from '@vfio-ts/platform';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simPlatform, type SimIommuDomain, type SimPlatform } from '../src/index.js';
import { expectErrno, fn } from './helpers.js';

const K4 = 4096n;
const M2 = 2n << 20n;
const G1 = 1n << 30n;
const RW = IOMMU_READ | IOMMU_WRITE;

function domain(pgsizeBitmap?: bigint): SimIommuDomain {
  const p = simPlatform(pgsizeBitmap === undefined ? {} : { iommu: { model: 'vtd', pgsizeBitmap } });
  return p.iommu!.allocDomain();
}

describe('IOMMU domain page tables', () => {
  it('picks the largest page size alignment allows and counts one map call per map()', () => {
    const d = domain();
    expect(d.pgsizeBitmap).toBe(K4 | M2 | G1);
    expect(d.aperture).toEqual({ start: 0n, end: (1n << 48n) - 1n });
    // 4K at the head, 2M pages up to 1G, 1G pages, then 2M and 4K at the tail.
    d.map(G1 - M2 - K4, 0x100000000n - M2 - K4, K4 + M2 + 2n * G1 + M2 + K4, RW);
    expect(d.stats.mapCalls).toBe(1);
    expect(d.stats.entriesByPageSize).toEqual(new Map([[K4, 2], [M2, 2], [G1, 2]]));
    // Misaligned physical address forces 4K pages.
    d.map(0x8000000000n, 0x1000n, 4n * M2, IOMMU_READ);
    expect(d.stats.entriesByPageSize.get(K4)).toBe(2 + 2048);
    expect(d.stats.mapCalls).toBe(2);
  });

  it('respects a smaller pgsize bitmap', () => {
    const d = domain(K4 | M2);
    d.map(0n, 0n, 2n * G1, RW);
    expect(d.stats.entriesByPageSize).toEqual(new Map([[M2, 1024]]));
  });

  it('translates, unmaps whole entries and returns bytes', () => {
    const d = domain();
    d.map(G1, 4n * G1, G1, IOMMU_READ);
    expect(d.translate(G1 + 0x12345n)).toEqual({ pa: 4n * G1 + 0x12345n, prot: IOMMU_READ });
    expect(d.translate(G1 - 1n)).toBeUndefined();
    // Unmapping 4K inside a 1G entry removes the whole entry (the "horrid API" of iommu_unmap).
    expect(d.unmap(G1 + M2, K4)).toBe(G1);
    expect(d.translate(G1)).toBeUndefined();
    expect(d.unmap(G1, G1)).toBe(0n);
    expect(d.stats.unmapCalls).toBe(2);
    expect(d.stats.entriesByPageSize.size).toBe(0);
  });

  it('rejects bad input without changing anything', () => {
    const d = domain();
    d.map(0n, 0n, M2, RW);
    expectErrno(() => { d.map(K4, 0n, K4, RW); }, 'EEXIST');
    expectErrno(() => { d.map(M2 - K4, 0n, 2n * K4, RW); }, 'EEXIST'); // overlaps the tail
    expect(d.translate(M2)).toBeUndefined();
    expectErrno(() => { d.map(M2 + 1n, 0n, K4, RW); }, 'EINVAL');
    expectErrno(() => { d.map(M2, 0n, K4, 0); }, 'EINVAL');
    expectErrno(() => { d.map(1n << 48n, 0n, K4, RW); }, 'ERANGE');
    expectErrno(() => { d.map((1n << 48n) - K4, 0n, 2n * K4, RW); }, 'ERANGE');
    expectErrno(() => d.unmap(1n, K4), 'EINVAL');
    expect(d.stats.mapCalls).toBe(1);
    expect(d.stats.entriesByPageSize).toEqual(new Map([[M2, 1]]));
  });

  it('agrees with a page-granular model under random aligned map/unmap (property)', () => {
    const PAGES = 2048; // 8 MiB of IOVA space, in 4K units
    type Op = { kind: 'map'; iova: number; pa: number; n: number; prot: number } | { kind: 'unmap'; iova: number; n: number };
    const aligned = fc.constantFrom(1, 512); // 4K or 2M alignment, in pages
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constant('map' as const),
        iova: fc.tuple(aligned, fc.nat(PAGES - 1)).map(([a, i]) => Math.floor(i / a) * a),
        pa: fc.tuple(aligned, fc.nat(1 << 20)).map(([a, i]) => Math.floor(i / a) * a),
        n: fc.integer({ min: 1, max: 1100 }),
        prot: fc.constantFrom(IOMMU_READ, IOMMU_WRITE, RW),
      }),
      fc.record({
        kind: fc.constant('unmap' as const),
        iova: fc.nat(PAGES - 1),
        n: fc.integer({ min: 1, max: 1100 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
        const d = domain();
        // Model: page → [pa page, prot, entry id]; entries remember their page span (large entries unmap whole).
        const model = new Map<number, { pa: number; prot: number; entry: number }>();
        const entries = new Map<number, number[]>();
        let nextEntry = 0;
        for (const o of ops) {
          const n = Math.min(o.n, PAGES - o.iova);
          if (o.kind === 'map') {
            const taken = Array.from({ length: n }, (_, i) => o.iova + i).some((pg) => model.has(pg));
            let threw = false;
            try {
              d.map(BigInt(o.iova) * K4, BigInt(o.pa) * K4, BigInt(n) * K4, o.prot);
            } catch {
              threw = true;
            }
            expect(threw).toBe(taken);
            if (taken) continue;
            // Split like iommu_pgsize: 2M entries where both addresses are 2M aligned and 512 pages remain.
            let i = 0;
            while (i < n) {
              const big = (o.iova + i) % 512 === 0 && (o.pa + i) % 512 === 0 && n - i >= 512;
              const len = big ? 512 : 1;
              const id = nextEntry++;
              const pages: number[] = [];
              for (let j = 0; j < len; j++) {
                model.set(o.iova + i + j, { pa: o.pa + i + j, prot: o.prot, entry: id });
                pages.push(o.iova + i + j);
              }
              entries.set(id, pages);
              i += len;
            }
          } else {
            let expected = 0;
            const hit = new Set<number>();
            for (let pg = o.iova; pg < o.iova + n; pg++) {
              const m = model.get(pg);
              if (m) hit.add(m.entry);
            }
            for (const id of hit) {
              for (const pg of entries.get(id)!) model.delete(pg);
              expected += entries.get(id)!.length;
              entries.delete(id);
            }
            expect(d.unmap(BigInt(o.iova) * K4, BigInt(n) * K4)).toBe(BigInt(expected) * K4);
          }
        }
        for (let pg = 0; pg < PAGES; pg += 7) {
          const m = model.get(pg);
          const t = d.translate(BigInt(pg) * K4 + 5n);
          if (!m) expect(t).toBeUndefined();
          else expect(t).toEqual({ pa: BigInt(m.pa) * K4 + 5n, prot: m.prot });
        }
        const counted = [...d.stats.entriesByPageSize].reduce((s, [sz, c]) => s + Number(sz / K4) * c, 0);
        expect(counted).toBe(model.size);
      }),
      { numRuns: 150 },
    );
  });
});

function host(): { p: SimPlatform; bdf: string } {
  const p = simPlatform({
    iommu: 'vtd',
    devices: [{ bdf: '0000:00:03.0', fn: fn() }],
  });
  return { p, bdf: '0000:00:03.0' };
}

describe('device DMA through the IOMMU', () => {
  it('goes through the identity default domain while the group is not owned', () => {
    const { p, bdf } = host();
    const dev = p.pci.device(bdf)!;
    const ctx = dev.makeContext({ memory: p.memory, iommu: p.iommu, clock: p.clock, log: () => undefined, newGroup: () => { throw new Error('no'); } });
    ctx.dma.write(0x5000n, new Uint8Array([1, 2]));
    expect([...p.memory.read(0x5000n, 2)]).toEqual([1, 2]);
  });

  it('is blocked while owned without a domain, translated when attached, and faults leave memory untouched', () => {
    const { p, bdf } = host();
    const dev = p.pci.device(bdf)!;
    const group = dev.iommuGroup!;
    const ctx = dev.makeContext({ memory: p.memory, iommu: p.iommu, clock: p.clock, log: (t) => { p.log(t); }, newGroup: () => { throw new Error('no'); } });
    const owner = {};
    group.claimDmaOwner(owner);
    expectErrno(() => { ctx.dma.write(0x1000n, new Uint8Array([1])); }, 'EFAULT');
    expect(p.iommu!.faults().at(-1)).toEqual({ device: bdf, iova: 0x1000n, write: true, reason: 'blocked' });
    const d = group.allocDomain();
    group.attachDomain(d);
    d.map(0x10000n, 0x200000n, 0x2000n, IOMMU_READ);
    expect(p.memory.residentPages).toBe(0);
    // A write spanning a read-only page faults with 'permission' and writes nothing.
    expectErrno(() => { ctx.dma.write(0x10ffen, new Uint8Array([1, 2, 3, 4])); }, 'EFAULT');
    expect(p.iommu!.faults().at(-1)).toMatchObject({ iova: 0x10ffen, reason: 'permission' });
    // A read running off the mapping faults 'not-present' at the first missing page.
    expectErrno(() => ctx.dma.read(0x11ff0n, 0x20), 'EFAULT');
    expect(p.iommu!.faults().at(-1)).toMatchObject({ iova: 0x12000n, write: false, reason: 'not-present' });
    expect(p.memory.residentPages).toBe(0);
    p.memory.write(0x201000n, new Uint8Array([0xab]));
    expect(ctx.dma.read(0x11000n, 1)[0]).toBe(0xab);
    expect(p.logEntries().some((e) => e.text.startsWith('DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x10ffe'))).toBe(true);
    // Releasing ownership returns the group to its default domain.
    expectErrno(() => { d.free(); }, 'EBUSY');
    group.releaseDmaOwner(owner);
    expect(group.domain).toBeUndefined();
    d.free();
    ctx.dma.write(0x3000n, new Uint8Array([5]));
    expect(p.memory.read(0x3000n, 1)[0]).toBe(5);
  });

  it('reports the x86 MSI window as reserved and the IOMMU as coherent', () => {
    const { p, bdf } = host();
    const g = p.pci.device(bdf)!.iommuGroup!;
    expect(g.reservedRegions()).toEqual([{ start: 0xfee00000n, end: 0xfeefffffn, type: 'msi' }]);
    expect(g.cacheCoherent).toBe(true);
    expect(g.isolatedMsi).toBe(true);
  });

  it("'none' has no IOMMU and no groups; DMA is physical", () => {
    const p = simPlatform({ iommu: 'none', devices: [{ bdf: '0000:00:03.0', fn: fn() }] });
    expect(p.iommu).toBeUndefined();
    expect(p.pci.device('0000:00:03.0')!.iommuGroup).toBeUndefined();
    expect(p.iommuGroups()).toEqual([]);
    const soft = p.allocSoftGroup('vfio-noiommu', '0000:00:03.0');
    expect(soft.id).toBe(0);
    expect(p.pci.device('0000:00:03.0')!.iommuGroup).toBe(soft);
    expectErrno(() => { soft.attachDomain({} as never); }, 'ENODEV');
    p.releaseSoftGroup(soft);
    expect(p.iommuGroups()).toEqual([]);
  });
});
