/** The README's runnable example, verbatim apart from the assertions. */
import { expect, it } from 'vitest';
import { SimIommuGroup, simPlatform } from '@vfio-ts/sim';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_TYPE1v2_IOMMU,
  vfioIommuType1DmaMap,
} from '@vfio-ts/uapi';
import { type1DriverOps } from '../src/index.js';

it('runs the README example', () => {
  const logs: string[] = [];
  const log = (t: string): void => {
    logs.push(t);
  };
  const platform = simPlatform({ iommu: 'vtd' });
  const mm = platform.createAddressSpace();
  const task = { pid: 1, uid: 0, gid: 0, mm, memlockLimit: 64n << 20n, capable: () => false, log };
  const env = { param: (name: string) => ({ dma_entry_limit: '65535' })[name] ?? 'N', log };

  const ops = type1DriverOps();
  const container = ops.open(VFIO_TYPE1v2_IOMMU, env, { task });
  const group = new SimIommuGroup(1, platform.iommu, undefined);
  ops.attachGroup(container, { id: 1, type: 'iommu', iommuGroup: group }, { task });

  const vaddr = mm.mmapAnonymous(4n << 20n, { hugepage: '2M' });
  const map = vfioIommuType1DmaMap.encode({
    argsz: 32,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    vaddr,
    iova: 1n << 30n,
    size: 4n << 20n,
  });
  ops.ioctl(container, VFIO_IOMMU_MAP_DMA, map, { task });

  expect(group.domain?.stats.mapCalls).toBe(2);
  expect(mm.memlock.lockedPages).toBe(1024);
  expect(ops.describe?.(container)).toMatchObject({ version: 'v2', mappings: 1, lockedPages: 1024, domains: 1 });
  ops.release(container);
  expect(mm.memlock.lockedPages).toBe(0);
});
