// The README example, kept runnable.
import { simPlatform } from '@vfio-ts/sim';
import {
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  VFIO_SPAPR_TCE_v2_IOMMU,
  vfioIommuSpaprRegisterMemory,
  vfioIommuSpaprTceCreate,
  vfioIommuType1DmaMap,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { spaprTceDriverOps } from '../src/index.js';
import { SpaprIommu } from './spapr-model.js';

describe('README example', () => {
  it('runs', () => {
    const logs: unknown[] = [];
    const log = (t: unknown): void => {
      logs.push(t);
    };
    const platform = simPlatform({ iommu: 'none' });
    const mm = platform.createAddressSpace();
    const task = { pid: 1, uid: 0, gid: 0, mm, memlockLimit: 64n << 20n, capable: () => false, log };
    const env = { param: () => '', log };

    const pe = new SpaprIommu().newGroup(1);
    const ref = { id: 1, type: 'iommu' as const, iommuGroup: pe };
    pe.claimDmaOwner(ref);

    const ops = spaprTceDriverOps();
    const container = ops.open(VFIO_SPAPR_TCE_v2_IOMMU, env, { task });
    ops.attachGroup(container, ref, { task });

    const vaddr = mm.mmapAnonymous(4n << 20n, { hugepage: '2M' });
    ops.ioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, vfioIommuSpaprRegisterMemory.encode({ argsz: 24, vaddr, size: 4n << 20n }), { task });

    const create = vfioIommuSpaprTceCreate.encode({ argsz: 40, page_shift: 21, window_size: 64n << 30n, levels: 1 });
    ops.ioctl(container, VFIO_IOMMU_SPAPR_TCE_CREATE, create, { task });
    const start = vfioIommuSpaprTceCreate.decode(create).start_addr;
    expect(start).toBe(0x800000000000000n);

    mm.write(vaddr, new TextEncoder().encode('hello'));
    ops.ioctl(container, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: 1, vaddr, iova: start, size: 2n << 20n }), { task });

    const [chunk] = pe.translateDma('0000:01:00.0', start, 5, false);
    expect(new TextDecoder().decode(platform.memory.read(chunk!.pa, 5))).toBe('hello');
    expect(ops.describe?.(container)).toMatchObject({ version: 2, windows: [{ num: 0, start: 0n }, { num: 1, start }] });
    ops.detachGroup(container, ref);
    ops.release(container);
    expect(mm.memlock.lockedPages).toBe(0);
    expect(logs).toEqual([]);
  });
});
