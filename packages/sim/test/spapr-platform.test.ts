/**
 * `simPlatform({ iommu: 'spapr' })`: IOMMU groups are PEs (SpaprIommuGroup) formed by the same pci_device_group
 * rules as on VT-d, and device DMA goes through each PE's TCE windows.
 */
import type { PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  POWER8_TCE_PGSIZES,
  SpaprIommu,
  SpaprIommuGroup,
  TCE_BYPASS_BASE,
  pciFunctionFromConfig,
  simPlatform,
  spaprTableGroupOf,
  type SimPlatform,
} from '../src/index.js';
import { config, expectErrno, fn } from './helpers.js';

const PCIE_ENDPOINT = 0;

/** A passive function that keeps its context so the test can start DMA. */
function dmaFn(): { f: PciFunction; ctx: () => PciFunctionContext } {
  let ctx: PciFunctionContext | undefined;
  const inner = pciFunctionFromConfig({ config: config(0x1234, 0x2222), bars: '0:mem32:0x1000' });
  const f: PciFunction = {
    bars: inner.bars,
    configRead: (offset, size) => inner.configRead(offset, size),
    configWrite: (offset, size, value) => {
      inner.configWrite(offset, size, value);
    },
    attach: (c) => {
      ctx = c;
    },
  };
  return { f, ctx: () => ctx! };
}

describe("simPlatform({ iommu: 'spapr' })", () => {
  it('types the platform by model and builds the sPAPR hardware', () => {
    const p = simPlatform({ iommu: 'spapr' });
    expectTypeOf(p).toEqualTypeOf<SimPlatform<SpaprIommu>>();
    expectTypeOf(simPlatform({ iommu: 'vtd' })).toEqualTypeOf<SimPlatform>();
    expectTypeOf(simPlatform()).toEqualTypeOf<SimPlatform>();
    expect(p.iommu).toBeInstanceOf(SpaprIommu);
    expect(p.iommu?.kind).toBe('spapr');
    expectErrno(() => p.iommu!.allocDomain(), 'ENODEV');
  });

  it('forms one PE per group by the VT-d rules (a multifunction device without ACS is one PE)', () => {
    const p = simPlatform({
      iommu: 'spapr',
      devices: [
        { bdf: '0000:00:03.0', fn: fn() },
        { bdf: '0000:00:04.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
        { bdf: '0000:01:00.0', fn: fn(0x1, 0x1, { pcie: PCIE_ENDPOINT, multifunction: true }) },
        { bdf: '0000:01:00.1', fn: fn(0x1, 0x2, { pcie: PCIE_ENDPOINT, multifunction: true }) },
      ],
    });
    const groups = p.iommuGroups();
    expect(groups.map((g) => g.id)).toEqual([0, 1, 2]);
    for (const g of groups) expect(g).toBeInstanceOf(SpaprIommuGroup);
    const mf = p.pci.device('0000:01:00.0')!.iommuGroup!;
    expect(p.pci.device('0000:01:00.1')!.iommuGroup).toBe(mf);
    expect(mf.devices()).toEqual(['0000:01:00.0', '0000:01:00.1']);
    // The platform contract's typed seam reaches the PE's table group.
    expect(mf.spaprTableGroup).toBe(spaprTableGroupOf(mf));
    expect(mf.spaprTableGroup?.tce32Size).toBe(0x8000_0000);
  });

  it('PE options flow to every PE and are validated up front', () => {
    const p = simPlatform({
      iommu: { model: 'spapr', tce32Size: 256 << 20, pgsizes: POWER8_TCE_PGSIZES, eeh: false },
      devices: [{ bdf: '0000:00:03.0', fn: fn() }],
    });
    const tg = spaprTableGroupOf(p.iommuGroup(0))!;
    expect(tg.tce32Size).toBe(256 << 20);
    expect(tg.pgsizes).toBe(POWER8_TCE_PGSIZES);
    expect(tg.eeh).toBeUndefined();
    expectErrno(() => simPlatform({ iommu: { model: 'spapr', pgsizes: 1n << 16n } }), 'EINVAL');
    expectErrno(() => simPlatform({ iommu: { model: 'spapr', tce32Start: 7 } }), 'EINVAL');
  });

  it('device DMA goes through the PE: the host bypass before ownership, the TCE windows after', () => {
    const { f, ctx } = dmaFn();
    const p = simPlatform({ iommu: 'spapr', devices: [{ bdf: '0000:00:03.0', fn: f }] });
    const g = p.iommuGroup(0) as SpaprIommuGroup;
    const tg = g.spaprTableGroup;
    p.memory.write(0x5000_0000n, new Uint8Array([1, 2, 3]));
    // The host owns the PE: bus 2^59 + pa is the direct (bypass) window; the 32-bit window has no TCEs.
    expect([...ctx().dma.read(TCE_BYPASS_BASE + 0x5000_0000n, 3)]).toEqual([1, 2, 3]);

    const owner = {};
    g.claimDmaOwner(owner);
    expect(tg.isOwned).toBe(true);
    expectErrno(() => ctx().dma.read(TCE_BYPASS_BASE + 0x5000_0000n, 3), 'EFAULT');
    expect(p.iommu!.faults().at(-1)).toEqual({ device: '0000:00:03.0', iova: TCE_BYPASS_BASE + 0x5000_0000n, write: false, reason: 'not-present' });
    expect(p.logEntries().at(-1)?.text).toMatch(/^EEH: Frozen PHB PE on device 0000:00:03.0: TCE read fault/);
    tg.eeh!.setOption('thaw-mmio');
    tg.eeh!.setOption('thaw-dma');

    // What a container does: a 64 KiB-page window at 2^59, one TCE pointing at the page.
    const table = tg.createTable(1, 16, 1n << 30n, 1);
    tg.setWindow(1, table);
    table.exchange(Number(TCE_BYPASS_BASE >> 16n), 0x5000_0000n, 'from-device');
    ctx().dma.write(TCE_BYPASS_BASE + 0x10n, new Uint8Array([9, 8]));
    expect([...p.memory.read(0x5000_0010n, 2)]).toEqual([9, 8]);

    g.releaseDmaOwner(owner);
    expect(tg.bypassEnabled).toBe(true);
  });

  it('host drivers and ownership: a DMA-doing driver blocks the claim, an owned PE refuses such a driver', async () => {
    const p = simPlatform({
      iommu: 'spapr',
      devices: [{ bdf: '0000:00:03.0', fn: fn(0x8086, 0x100e), driver: 'e1000' }],
      hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }],
    });
    const g = p.iommuGroup(0)!;
    expect(g.kernelUsers).toBe(1);
    expectErrno(() => { g.claimDmaOwner({}); }, 'EPERM');
    await p.pci.unbind('0000:00:03.0');
    const owner = {};
    g.claimDmaOwner(owner);
    expectErrno(() => { p.pci.bind('0000:00:03.0', 'e1000'); }, 'EBUSY');
    g.releaseDmaOwner(owner);
    p.pci.bind('0000:00:03.0', 'e1000');
    expect(g.dmaOwnerClaimed).toBe(true);
  });

  it('sysfs shows the PE groups as Linux does on POWER (no reserved regions, platform default domain)', () => {
    const p = simPlatform({ iommu: 'spapr', devices: [{ bdf: '0000:00:03.0', fn: fn() }] });
    const read = (path: string): string => {
      const { node } = p.lookupSysfs(path);
      if (node.kind !== 'file') throw new Error(path);
      return new TextDecoder().decode(node.read());
    };
    expect(read('/sys/kernel/iommu_groups/0/type')).toBe('unknown\n');
    expect(read('/sys/kernel/iommu_groups/0/reserved_regions')).toBe('');
    expect(p.lookupSysfs('/sys/bus/pci/devices/0000:00:03.0/iommu_group').path).toBe('/sys/kernel/iommu_groups/0');
  });

  it('software groups still come from allocSoftGroup on a POWER host', () => {
    const p = simPlatform({ iommu: 'spapr', devices: [{ bdf: '0000:00:03.0', fn: fn() }] });
    const soft = p.allocSoftGroup('vfio-noiommu');
    expect(soft.id).toBe(1);
    expect(soft.hardware).toBeUndefined();
    p.releaseSoftGroup(soft);
    expect(p.iommuGroups().map((g) => g.id)).toEqual([0]);
  });
});
