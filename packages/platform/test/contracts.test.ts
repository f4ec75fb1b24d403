import { describe, expect, expectTypeOf, it } from 'vitest';
import * as platform from '../src/index.js';
import type { AddressSpace, EventFdContext, IommuDomain, PciDriver, PinnedRun, Platform } from '../src/index.js';

describe('platform contracts', () => {
  it('re-exports the ABI flags with Linux x86_64 values', () => {
    expect(platform.PAGE_SIZE).toBe(4096);
    expect(platform.PAGE_SIZE_N).toBe(4096n);
    expect([platform.PROT_NONE, platform.PROT_READ, platform.PROT_WRITE, platform.PROT_EXEC]).toEqual([0, 1, 2, 4]);
    expect([platform.EFD_SEMAPHORE, platform.EFD_NONBLOCK, platform.EFD_CLOEXEC]).toEqual([1, 0o4000, 0o2000000]);
    expect([platform.IOMMU_READ, platform.IOMMU_WRITE, platform.IOMMU_CACHE, platform.IOMMU_NOEXEC, platform.IOMMU_MMIO]).toEqual([1, 2, 4, 8, 16]);
  });

  it('keeps the shapes implementations rely on', () => {
    expectTypeOf<AddressSpace['pin']>().returns.toEqualTypeOf<PinnedRun[]>();
    expectTypeOf<IommuDomain['unmap']>().returns.toEqualTypeOf<bigint>();
    expectTypeOf<EventFdContext['take']>().returns.toEqualTypeOf<bigint | undefined>();
    expectTypeOf<PciDriver['remove']>().returns.toEqualTypeOf<void | Promise<void>>();
    expectTypeOf<Platform['createEventFd']>().returns.toEqualTypeOf<EventFdContext>();
  });
});
