import { createHost, openVfioDevice } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_TYPE1v2_IOMMU, vfioPciOffset } from '@vfio-ts/uapi';
import { vfioPci } from '../src/index.js';
const BDF = '0000:00:03.0';
const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: eduFunction(), driver: 'vfio-pci' }] });
const host = createHost({ platform, plugins: [type1(), vfioPci()] });
const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: null });
const group = platform.pci.device(BDF)!.iommuGroup!.id;
const { device } = openVfioDevice(p, { group, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
const configOffset = vfioPciOffset(VFIO_PCI_CONFIG_REGION_INDEX);
const bar0 = vfioPciOffset(VFIO_PCI_BAR0_REGION_INDEX);
const cmd = p.pread(device, 2, configOffset + 4n);
p.pwrite(device, new Uint8Array([cmd[0]! | 0x2, cmd[1]!]), configOffset + 4n);
const which = process.argv[2] ?? 'both';
let sink = 0;
const N = Number(process.argv[3] ?? 2_000_000);
for (const w of ['config', 'bar']) {
  if (which !== 'both' && which !== w) continue;
  const off = w === 'config' ? configOffset : bar0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink ^= p.pread(device, 4, off + 0x04n)[0]!;
  console.log(w, Number(process.hrtime.bigint() - t0) / N, 'ns');
}
if (sink === 0x7fffffff) console.log('x');
