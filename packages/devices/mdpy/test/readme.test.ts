/** The README example, kept runnable. */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_DEVICE_QUERY_GFX_PLANE, VFIO_GFX_PLANE_TYPE_REGION, VFIO_TYPE1v2_IOMMU, vfioDeviceGfxPlaneInfo } from '@vfio-ts/uapi';
import { expect, it, vi } from 'vitest';
import { mdpy } from '../src/index.js';

it('runs the README example', () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // --- README example start
  const host = createHost({ platform: simPlatform(), plugins: [type1(), mdpy()] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
  const uuid = '0b7c8a3e-2d5f-4e61-9a10-5b2e7f3c4d01';
  const create = p.open('/sys/devices/virtual/mdpy/mdpy/mdev_supported_types/mdpy-xga/create', 1 /* O_WRONLY */);
  p.write(create, new TextEncoder().encode(uuid));
  p.close(create);

  const group = Number(p.readlink(`/sys/bus/mdev/devices/${uuid}/iommu_group`).split('/').at(-1));
  const { device } = openVfioDevice(p, { group, device: uuid, iommuType: VFIO_TYPE1v2_IOMMU });
  const plane = vfioDeviceGfxPlaneInfo.encode({ argsz: vfioDeviceGfxPlaneInfo.size, flags: VFIO_GFX_PLANE_TYPE_REGION });
  p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, plane);
  const { width, height, stride, region_index } = vfioDeviceGfxPlaneInfo.decode(plane);
  console.log(`${width}x${height}, stride ${stride}, region ${region_index}`); // 1024x768, stride 4096, region 16
  // --- README example end
  expect(log).toHaveBeenCalledWith('1024x768, stride 4096, region 16');
  log.mockRestore();
});
