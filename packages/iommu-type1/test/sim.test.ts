/**
 * The backend on the simulated host (@vfio-ts/sim): real sparse memory, hugepage-backed address spaces, VT-d-like
 * page tables and IOMMU groups.
 */
import { describe, expect, it } from 'vitest';
import type { AddressSpace, Capability, Task } from '@vfio-ts/platform';
import { SimIommuGroup, simPlatform } from '@vfio-ts/sim';
import type { SimIommuDomain } from '@vfio-ts/sim';
import { VFIO_DMA_UNMAP_FLAG_ALL, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaMap, vfioIommuType1DmaUnmap } from '@vfio-ts/uapi';
import type { CallContext } from '@vfio-ts/core';
import { type1DriverOps } from '../src/index.js';
import { FakeEnv } from './fakes.js';
import { GiB, MiB, RW, errnoOf } from './helpers.js';

function simTask(mm: AddressSpace, memlockLimit: bigint | null, caps: Capability[] = []): Task {
  return { pid: 1, uid: 0, gid: 0, mm, memlockLimit, capable: (c) => caps.includes(c), log: () => undefined };
}

function simSetup(opts: { disableHugepages?: boolean; memlockLimit?: bigint | null; isolatedMsi?: boolean } = {}) {
  const platform = simPlatform({ iommu: { model: 'vtd', isolatedMsi: opts.isolatedMsi ?? true } });
  const mm = platform.createAddressSpace();
  const task = simTask(mm, opts.memlockLimit ?? null);
  const env = new FakeEnv();
  if (opts.disableHugepages) env.params.set('disable_hugepages', 'Y');
  const ops = type1DriverOps();
  const call: CallContext = { task };
  const c = ops.open(3, env, call);
  const group = new SimIommuGroup(42, platform.iommu, undefined);
  ops.attachGroup(c, { id: 42, type: 'iommu', iommuGroup: group }, call);
  const map = (iova: bigint, vaddr: bigint, size: bigint): number =>
    ops.ioctl(c, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: RW, vaddr, iova, size }), call);
  const unmapAll = (): bigint => {
    const b = vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_ALL });
    ops.ioctl(c, VFIO_IOMMU_UNMAP_DMA, b, call);
    return vfioIommuType1DmaUnmap.decode(b).size;
  };
  return { platform, mm, task, env, ops, call, c, group, map, unmapAll, domain: () => group.domain as SimIommuDomain };
}

describe('type1 on the simulated host', () => {
  it('maps 1 GiB of 2M-hugepage memory with at most 512 IOMMU map calls, using 2M entries', () => {
    const s = simSetup();
    const va = s.mm.mmapAnonymous(GiB, { hugepage: '2M' });
    s.map(0n, va, GiB);
    const st = s.domain().stats;
    expect(st.mapCalls).toBeLessThanOrEqual(512);
    expect(st.entriesByPageSize.get(2n * MiB)).toBe(512);
    expect(s.mm.memlock.lockedPages).toBe(262144);
    // DMA lands in the process's memory.
    s.mm.write(va + 12345n, new Uint8Array([1, 2, 3]));
    const t = s.domain().translate(12345n)!;
    expect([...s.platform.memory.read(t.pa, 3)]).toEqual([1, 2, 3]);
    expect(s.platform.memory.pinCount(t.pa >> 12n)).toBe(1);
    expect(s.unmapAll()).toBe(GiB);
    expect(s.platform.memory.pinCount(t.pa >> 12n)).toBe(0);
    expect(s.mm.memlock.lockedPages).toBe(0);
  });

  it('with disable_hugepages maps page by page', () => {
    const s = simSetup({ disableHugepages: true });
    const va = s.mm.mmapAnonymous(4n * MiB, { hugepage: '2M' });
    s.map(0n, va, 4n * MiB);
    expect(s.domain().stats.mapCalls).toBe(1024);
    expect(s.domain().stats.entriesByPageSize.get(4096n)).toBe(1024);
  });

  it('RLIMIT_MEMLOCK: ENOMEM, nothing pinned, nothing mapped', () => {
    const s = simSetup({ memlockLimit: 8n * MiB });
    const va = s.mm.mmapAnonymous(16n * MiB);
    expect(errnoOf(() => s.map(0n, va, 16n * MiB))).toBe('ENOMEM');
    expect(s.mm.memlock.lockedPages).toBe(0);
    const pfn = s.mm.lookup(va)!.pfn;
    expect(s.platform.memory.pinCount(pfn)).toBe(0);
    expect(s.domain().translate(0n)).toBeUndefined();
    s.map(0n, va, 8n * MiB);
  });

  it('the MSI window of the group is not a valid IOVA; release frees everything', () => {
    const s = simSetup();
    const va = s.mm.mmapAnonymous(2n * MiB);
    expect(errnoOf(() => s.map(0xfee00000n, va, 4096n))).toBe('EINVAL');
    s.map(0x100000n, va, 2n * MiB);
    const pfn = s.mm.lookup(va)!.pfn;
    s.ops.release(s.c);
    expect(s.platform.memory.pinCount(pfn)).toBe(0);
    expect(s.mm.memlock.lockedPages).toBe(0);
    expect(s.group.domain).toBeUndefined();
  });

  it('maps another device\'s BAR (device memory) as reserved pages: mapped, not pinned, not accounted', () => {
    const s = simSetup();
    const bar = s.mm.mmapDevice(64n * 1024n, { read: (_o, n) => new Uint8Array(n), write: () => undefined });
    s.map(0x80000000n, bar, 64n * 1024n);
    const look = s.mm.lookup(bar)!;
    expect(look.device).toBe(true);
    expect(s.domain().translate(0x80000000n)?.pa).toBe(look.pfn << 12n);
    expect(s.mm.memlock.lockedPages).toBe(0);
    expect(s.unmapAll()).toBe(64n * 1024n);
  });

  it('refuses a group without interrupt remapping (EPERM)', () => {
    expect(errnoOf(() => simSetup({ isolatedMsi: false }))).toBe('EPERM');
  });
});
