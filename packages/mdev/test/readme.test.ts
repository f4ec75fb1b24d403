/** The README example, kept runnable. */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { HostPlugin } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_DEVICE_API_PCI_STRING, VFIO_TYPE1v2_IOMMU } from '@vfio-ts/uapi';
import { expect, it, vi } from 'vitest';
import { registerMdevParent } from '../src/index.js';

it('runs the README example', () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // --- README example start
  const hello: HostPlugin = {
    name: 'hello',
    setup(api) {
      registerMdevParent(api, {
        parent: { virtual: { class: 'hello', name: 'hello' } },
        types: [{ sysfsName: 'small', prettyName: 'Small hello', data: { value: 0x42 } }],
        driver: {
          name: 'hello',
          deviceApi: VFIO_DEVICE_API_PCI_STRING,
          maxInstances: 2,
          probe(mdev) {
            mdev.registerEmulatedDevice({ read: (d, n) => new Uint8Array(n).fill(d.data.value) }, { value: mdev.type.data.value });
          },
          remove: (mdev) => mdev.unregisterVfioDevice(),
        },
      });
    },
  };

  const host = createHost({ platform: simPlatform(), plugins: [type1(), hello] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
  const uuid = 'c0ffee00-0000-4000-8000-000000000001';
  const create = p.open('/sys/devices/virtual/hello/hello/mdev_supported_types/hello-small/create', 1 /* O_WRONLY */);
  p.write(create, new TextEncoder().encode(`${uuid}\n`));
  p.close(create);

  const group = Number(p.readlink(`/sys/bus/mdev/devices/${uuid}/iommu_group`).split('/').at(-1));
  const { device } = openVfioDevice(p, { group, device: uuid, iommuType: VFIO_TYPE1v2_IOMMU });
  console.log(p.pread(device, 2, 0n)); // Uint8Array [ 66, 66 ]
  // --- README example end
  expect(log).toHaveBeenCalledWith(new Uint8Array([0x42, 0x42]));
  log.mockRestore();
});
