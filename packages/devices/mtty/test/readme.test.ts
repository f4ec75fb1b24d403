/** The README example, kept runnable. */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { migration } from '@vfio-ts/migration';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_DEVICE_GET_INFO, VFIO_TYPE1v2_IOMMU, vfioDeviceInfo } from '@vfio-ts/uapi';
import { expect, it, vi } from 'vitest';
import { mtty, mttyRegionOffset, UART_RX, UART_TX } from '../src/index.js';

it('runs the README example', () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // --- README example start
  const host = createHost({ platform: simPlatform(), plugins: [type1(), mtty({ wiring: 'null-modem' }), migration()] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
  const uuid = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
  const create = p.open('/sys/devices/virtual/mtty/mtty/mdev_supported_types/mtty-2/create', 1 /* O_WRONLY */);
  p.write(create, new TextEncoder().encode(uuid));
  p.close(create);

  const group = Number(p.readlink(`/sys/bus/mdev/devices/${uuid}/iommu_group`).split('/').at(-1));
  const { device } = openVfioDevice(p, { group, device: uuid, iommuType: VFIO_TYPE1v2_IOMMU });
  p.ioctl(device, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size }));
  p.pwrite(device, new TextEncoder().encode('!'), mttyRegionOffset(0) + BigInt(UART_TX)); // port 0 transmits
  console.log(new TextDecoder().decode(p.pread(device, 1, mttyRegionOffset(1) + BigInt(UART_RX)))); // '!' on port 1
  // --- README example end
  expect(log).toHaveBeenCalledWith('!');
  log.mockRestore();
});
