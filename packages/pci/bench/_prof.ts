import { createHost, openVfioDevice } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_TYPE1v2_IOMMU, vfioPciOffset } from '@vfio-ts/uapi';
import { vfioPci } from '/work/main/packages/pci/src/index.js';
const BDF = '0000:00:03.0';
const fn = eduFunction();
const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn, driver: 'vfio-pci' }] });
const host = createHost({ platform, plugins: [type1(), vfioPci()] });
const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: null });
const group = platform.pci.device(BDF)!.iommuGroup!.id;
const { device } = openVfioDevice(p, { group, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
const configOffset = vfioPciOffset(VFIO_PCI_CONFIG_REGION_INDEX);
const bar0 = vfioPciOffset(VFIO_PCI_BAR0_REGION_INDEX);
const cmd = p.pread(device, 2, configOffset + 4n);
p.pwrite(device, new Uint8Array([cmd[0]! | 0x2, cmd[1]!]), configOffset + 4n);
const barAt = bar0 + 0x04n;
const buf4 = new Uint8Array(4);
let sink = 0;
const cfgAt = configOffset + 4n;
function loopB(n: number) { for (let i = 0; i < n; i++) sink ^= p.preadInto(device, buf4, barAt) + buf4[0]!; }
function loopC(n: number) { for (let i = 0; i < n; i++) sink ^= p.preadInto(device, buf4, cfgAt) + buf4[0]!; }
const dv = new DataView(new ArrayBuffer(256));
function loopR(n: number) { for (let i = 0; i < n; i++) sink ^= dv.getUint32(4, true) + i; }
const res: string[] = [];
for (const [name, f] of [['bar', loopB], ['cfg', loopC], ['raw', loopR]] as const) {
  let best = 1e9;
  for (let k = 0; k < 15; k++) { const t = process.hrtime.bigint(); f(1_000_000); const dt = Number(process.hrtime.bigint() - t) / 1e6; if (dt < best) best = dt; }
  res.push(`${name}=${best.toFixed(1)}`);
}
console.log(res.join(' '), sink === 7 ? '' : '');
