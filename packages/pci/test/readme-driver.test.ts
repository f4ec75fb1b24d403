/** The README's driver example, kept runnable. */
import { expect, it, vi } from 'vitest';
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_TYPE1v2_IOMMU, vfioPciOffset } from '@vfio-ts/uapi';
import { vfioPci } from '../src/index.js';

it('runs the README driver example', () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // --- README example start
  const platform = simPlatform({ devices: [{ bdf: '0000:00:03.0', fn: eduFunction() }] });
  const host = createHost({ platform, plugins: [type1(), vfioPci()] });
  const p = host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });

  const echo = (path: string, text: string): void => {
    const fd = p.open(path, 1);
    p.write(fd, new TextEncoder().encode(text));
    p.close(fd);
  };
  echo('/sys/bus/pci/devices/0000:00:03.0/driver_override', 'vfio-pci');
  echo('/sys/bus/pci/drivers_probe', '0000:00:03.0');

  const group = Number(p.readlink('/sys/bus/pci/devices/0000:00:03.0/iommu_group').split('/').pop());
  const { device } = openVfioDevice(p, { group, device: '0000:00:03.0', iommuType: VFIO_TYPE1v2_IOMMU });
  console.log(p.pread(device, 4, vfioPciOffset(0)));
  const va = p.mmap({ length: 0x1000, fd: device, offset: vfioPciOffset(0) });
  p.memory.write(va + 4n, new Uint8Array([1, 0, 0, 0]));
  console.log(p.memory.read(va + 4n, 4));
  // --- README example end
  expect(log.mock.calls.map((c) => [...(c[0] as Uint8Array)])).toEqual([
    [0xed, 0x00, 0x00, 0x01],
    [0xfe, 0xff, 0xff, 0xff],
  ]);
  log.mockRestore();
});
