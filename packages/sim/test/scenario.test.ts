// End to end on the simulated host: a process's memory, pinned and mapped into a domain, read and written by a
// device model's DMA, as a VFIO user and the type1 backend would arrange it.
import { IOMMU_READ, IOMMU_WRITE, type PciFunction, type PciFunctionContext } from '@vfio-ts/platform';
import { describe, expect, it } from 'vitest';
import { simPlatform } from '../src/index.js';
import { expectErrno, fn } from './helpers.js';

describe('process memory → pin → IOMMU → device DMA', () => {
  it('a device reads what the CPU wrote and writes what the CPU reads; unmapped IOVAs fault', () => {
    let ctx!: PciFunctionContext;
    const base = fn(0x1af4, 0x1000);
    const model: PciFunction = {
      configRead: (o, s) => base.configRead(o, s),
      configWrite: (o, s, v) => {
        base.configWrite(o, s, v);
      },
      bars: base.bars,
      attach: (c) => {
        ctx = c;
      },
    };
    const p = simPlatform({ devices: [{ bdf: '0000:00:04.0', fn: model }] });
    const group = p.pci.device('0000:00:04.0')!.iommuGroup!;
    const mm = p.createAddressSpace();
    const guest = mm.mmapAnonymous(8n << 20n, { hugepage: '2M' });
    mm.write(guest + 0x1234n, new TextEncoder().encode('ping'));

    const owner = {};
    group.claimDmaOwner(owner);
    const domain = group.allocDomain();
    group.attachDomain(domain);
    const runs = mm.pin(guest, 2048, { write: true });
    mm.memlock.adjust(2048, 64n << 20n);
    let iova = 0n;
    for (const r of runs) {
      domain.map(iova, r.pfn << 12n, BigInt(r.npages) << 12n, IOMMU_READ | IOMMU_WRITE);
      iova += BigInt(r.npages) << 12n;
    }
    expect(domain.stats.entriesByPageSize).toEqual(new Map([[2n << 20n, 4]]));
    expect(new TextDecoder().decode(ctx.dma.read(0x1234n, 4))).toBe('ping');
    ctx.dma.write(0x3ffffen, new Uint8Array([1, 2, 3, 4])); // crosses two hugepages (and two runs)
    expect([...mm.read(guest + 0x3ffffen, 4)]).toEqual([1, 2, 3, 4]);
    expectErrno(() => ctx.dma.read(8n << 20n, 1), 'EFAULT');

    // Tear down like type1: unmap, unpin, unaccount; the guest unmaps its memory; nothing stays allocated.
    expect(domain.unmap(0n, 8n << 20n)).toBe(8n << 20n);
    for (const r of runs) mm.unpin(r.pfn, r.npages);
    mm.memlock.adjust(-2048);
    group.detachDomain(domain);
    domain.free();
    group.releaseDmaOwner(owner);
    mm.munmap(guest, 8n << 20n);
    expect(p.memory.allocatedPages).toBe(0);
    expect(p.memory.residentPages).toBe(0);
    expect(p.iommu!.faults()).toHaveLength(1);
  });
});
