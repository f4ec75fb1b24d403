/** The README's device-cdev example, kept runnable. */
import { expect, it, vi } from 'vitest';
import { createHost } from '@vfio-ts/core';
import { simPlatform } from '@vfio-ts/sim';
import { IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, iommuIoasAlloc, iommuIoasMap } from '@vfio-ts/uapi';
import { attachIommufdPt, detachIommufdPt, iommufd, openVfioCdev } from '../src/index.js';

it('runs the README device-cdev example', () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // --- README example start
  const host = createHost({ platform: simPlatform({ iommu: 'vtd' }), plugins: [iommufd()] });
  // An emulated (mdev-style) device: BIND gives it an iommufd access, and its dmaRw goes through the IOAS.
  const dev = host.api.allocDevice({ name: 'demo', data: null, ops: { dmaUnmap: () => undefined } });
  host.api.registerEmulatedDevice(dev);

  const p = host.spawn({ uid: 0 });
  const { iommufd: fd, device, devid } = openVfioCdev(p, { device: dev.index }); // /dev/vfio/devices/vfio0, bound
  const alloc = iommuIoasAlloc.encode({ size: 12 });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, alloc);
  const ioas = iommuIoasAlloc.decode(alloc).out_ioas_id;
  attachIommufdPt(p, device, ioas);

  const buf = p.mmap({ length: 4096 });
  p.memory.write(buf, new TextEncoder().encode('hi'));
  const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE;
  p.ioctl(fd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags, ioas_id: ioas, user_va: buf, length: 4096n, iova: 0x10000n }));
  const seen = new Uint8Array(2);
  dev.dmaRw(0x10000n, seen, false);
  console.log(devid, new TextDecoder().decode(seen)); // 1 hi
  detachIommufdPt(p, device);
  p.close(device); // unbinds (the access is destroyed)
  // --- README example end
  expect(log.mock.calls).toEqual([[1, 'hi']]);
  expect(dev.index).toBe(0);
  expect(host.api.deviceIommufdInfo(dev).cdevOpened).toBe(false);
  log.mockRestore();
});
