// The README example, kept runnable.
import { IOMMU_READ, IOMMU_WRITE } from '@vfio-ts/platform';
import { describe, expect, it } from 'vitest';
import { pciFunctionFromConfig, simPlatform } from '../src/index.js';

describe('README example', () => {
  it('runs', () => {
    const config = new Uint8Array(256);
    config.set([0x34, 0x12, 0xe8, 0x11], 0);
    config.set([0x00, 0x00, 0xff, 0x00], 8);
    const edu = pciFunctionFromConfig({ config, bars: '0:mem32:0x100000' });

    const platform = simPlatform({
      iommu: 'vtd',
      devices: [
        { bdf: '0000:00:03.0', fn: edu },
        { bdf: '0000:00:04.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      ],
      hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }],
    });

    const mm = platform.createAddressSpace();
    const vaddr = mm.mmapAnonymous(4n << 20n, { hugepage: '2M' });
    mm.write(vaddr, new TextEncoder().encode('hello'));
    const runs = mm.pin(vaddr, 1024, { write: true });
    expect(runs.map((r) => r.npages)).toEqual([512, 512]);

    const group = platform.pci.device('0000:00:03.0')!.iommuGroup!;
    const owner = {};
    group.claimDmaOwner(owner);
    const domain = group.allocDomain();
    group.attachDomain(domain);
    for (const [i, r] of runs.entries()) {
      domain.map(BigInt(i) << 21n, r.pfn << 12n, BigInt(r.npages) << 12n, IOMMU_READ | IOMMU_WRITE);
    }
    expect(domain.stats.entriesByPageSize).toEqual(new Map([[2097152n, 2]]));
    expect(domain.translate(3n)?.pa === (runs[0]!.pfn << 12n) + 3n).toBe(true);

    const cls = platform.lookupSysfs('/sys/bus/pci/devices/0000:00:03.0/class').node;
    expect(cls.kind === 'file' ? new TextDecoder().decode(cls.read()) : '').toBe('0x00ff00\n');
  });
});
