/** The README example, kept runnable. */
import { expect, it, vi } from 'vitest';
import { createHost } from '@vfio-ts/core';
import { SimIommuGroup, simPlatform } from '@vfio-ts/sim';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommuIoasAlloc,
  iommuIoasMap,
  iommuIoasUnmap,
} from '@vfio-ts/uapi';
import { iommufd, iommufdContextOf } from '../src/index.js';

it('runs the README example', () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // --- README example start
  const plugin = iommufd();
  const platform = simPlatform({ iommu: 'vtd' });
  const host = createHost({ platform, plugins: [plugin] });
  const p = host.spawn({ uid: 1000, memlockLimit: 64n << 20n });

  const fd = p.open('/dev/iommu');
  const alloc = iommuIoasAlloc.encode({ size: 12 });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, alloc);
  const ioas = iommuIoasAlloc.decode(alloc).out_ioas_id; // 1

  // Let the kernel pick the IOVA for 1 MiB of the process's memory.
  const buf = p.mmap({ length: 1n << 20n });
  const map = iommuIoasMap.encode({
    size: 40, flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioas, user_va: buf, length: 1n << 20n,
  });
  p.ioctl(fd, IOMMU_IOAS_MAP, map);
  const iova = iommuIoasMap.decode(map).iova;

  // What VFIO's cdev code does on BIND_IOMMUFD + ATTACH_IOMMUFD_PT: the IOAS now fills a VT-d domain.
  const ctx = iommufdContextOf(p.file(fd))!;
  const group = new SimIommuGroup(5, platform.iommu, undefined);
  const devId = ctx.bindDevice({ name: '0000:00:05.0', iommuGroup: group });
  const hwptId = ctx.attach(devId, ioas);
  console.log(hwptId, group.domain!.translate(iova) !== undefined); // 3 true
  console.log(plugin.subsystem!.userLockedPages(1000)); // 256 pages charged to uid 1000

  const unmap = iommuIoasUnmap.encode({ size: 24, ioas_id: ioas, iova: 0n, length: (1n << 64n) - 1n });
  p.ioctl(fd, IOMMU_IOAS_UNMAP, unmap);
  console.log(iommuIoasUnmap.decode(unmap).length); // 1048576n
  p.close(fd); // unbinds, frees the HWPT and the IOAS
  // --- README example end
  expect(log.mock.calls).toEqual([[3, true], [256], [1048576n]]);
  expect(ioas).toBe(1);
  expect(group.dmaOwner).toBeUndefined();
  expect(plugin.subsystem!.userLockedPages(1000)).toBe(0);
  log.mockRestore();
});
