/** The README example, kept runnable. */
import { expect, it, vi } from 'vitest';
import { createHost, openVfioDevice } from '../src/index.js';
import type { HostPlugin, VfioDevice } from '../src/index.js';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import { VFIO_NOIOMMU_IOMMU } from '@vfio-ts/uapi';

it('runs the README example', () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // --- README example start
  const config = new Uint8Array(256);
  config.set([0x34, 0x12, 0x11, 0x11]); // vendor 0x1234, device 0x1111

  // A tiny VFIO driver: binds to PCI functions and serves reads of its "registers".
  const devices = new Map<string, VfioDevice<{ reg: number }>>();
  const demoDriver: HostPlugin = {
    name: 'vfio-demo',
    setup(api) {
      api.registerPciDriver({
        name: 'vfio-demo',
        driverManagedDma: true,
        probe(pdev) {
          const dev = api.allocDevice({
            name: pdev.bdf,
            data: { reg: 0x42 },
            ops: {
              openDevice: (d) => { api.log(`${d.name}: opened`); },
              read: (d, length) => new Uint8Array(length).fill(d.data.reg),
            },
          });
          api.registerGroupDevice(dev);
          devices.set(pdev.bdf, dev);
        },
        async remove(pdev) {
          const dev = devices.get(pdev.bdf)!;
          await dev.unregister();
          dev.put();
        },
      });
    },
  };

  // A host without an IOMMU, in (unsafe) no-IOMMU mode.
  const platform = simPlatform({
    iommu: 'none',
    devices: [{ bdf: '0000:00:03.0', fn: pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' }) }],
  });
  const host = createHost({ platform, plugins: [demoDriver], params: { 'vfio.enable_unsafe_noiommu_mode': true } });
  platform.pci.device('0000:00:03.0')!.driverOverride = 'vfio-demo';
  platform.pci.bind('0000:00:03.0', 'vfio-demo');

  const p = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'], memlockLimit: 64n << 20n });
  const group = p.readdir('/dev/vfio').find((n) => n.startsWith('noiommu-'))!;
  const fds = openVfioDevice(p, { group: `/dev/vfio/${group}`, device: '0000:00:03.0', iommuType: VFIO_NOIOMMU_IOMMU });
  console.log(p.pread(fds.device, 4, 0n)); // Uint8Array [0x42, 0x42, 0x42, 0x42]
  console.log(host.log().map((l) => l.text)); // taint warning, "opened", "vfio-noiommu device opened by user"
  // --- README example end
  expect([...p.pread(fds.device, 4, 0n)]).toEqual([0x42, 0x42, 0x42, 0x42]);
  expect(host.describe().devices).toHaveLength(1);
  expect(log).toHaveBeenCalledTimes(2);
  log.mockRestore();
});
