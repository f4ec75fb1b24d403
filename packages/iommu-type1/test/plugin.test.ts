import { describe, expect, it } from 'vitest';
import type { HostPluginApiBase, ModuleParamSpec, VfioIommuDriverOps } from '@vfio-ts/core';
import { type1 } from '../src/index.js';

describe('type1() plugin', () => {
  it('declares the three module parameters and registers the backend', () => {
    const params = new Map<string, ModuleParamSpec>();
    const drivers: VfioIommuDriverOps[] = [];
    let undone = false;
    const api: HostPluginApiBase = {
      registerIommuDriver<D>(ops: VfioIommuDriverOps<D>) {
        drivers.push(ops);
        return () => {
          undone = true;
        };
      },
      declareParam(module, name, spec) {
        params.set(`${module}.${name}`, spec);
      },
      param: () => '',
      log: () => undefined,
    };
    const plugin = type1({ dmaEntryLimit: 8 });
    expect(plugin.name).toBe('vfio-iommu-type1');
    const undo = plugin.setup(api);
    expect([...params.keys()]).toEqual([
      'vfio_iommu_type1.dma_entry_limit',
      'vfio_iommu_type1.disable_hugepages',
      'vfio_iommu_type1.allow_unsafe_interrupts',
    ]);
    expect(params.get('vfio_iommu_type1.dma_entry_limit')).toMatchObject({ default: '8', mode: 0o644 });
    expect(params.get('vfio_iommu_type1.disable_hugepages')).toMatchObject({ default: 'N', mode: 0o644 });
    expect(params.get('vfio_iommu_type1.allow_unsafe_interrupts')?.parse?.('1')).toBe('Y');
    expect(drivers.map((d) => [d.name, d.module])).toEqual([['vfio-iommu-type1', 'vfio_iommu_type1']]);
    undo();
    expect(undone).toBe(true);
  });
});
