import { bestNsPerOp } from '@vfio-ts/bench-kit';
import { eduFunction } from '@vfio-ts/device-edu';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, vfioPciOffset } from '@vfio-ts/uapi';
import { VfioPciConfig } from '/work/main/packages/pci/src/config/index.js';
import { VfioPciRegionIo } from '/work/main/packages/pci/src/driver/region-io.js';
const fn = eduFunction();
simPlatform({ iommu: 'vtd', devices: [{ bdf: '0000:00:03.0', fn, driver: 'vfio-pci' }] });
const cfg = new VfioPciConfig(fn);
cfg.write(4, 2, cfg.read(4, 2) | 2);
const io = new VfioPciRegionIo(fn, cfg, undefined, 'x');
const barAt = vfioPciOffset(VFIO_PCI_BAR0_REGION_INDEX) + 4n;
const configAt = vfioPciOffset(VFIO_PCI_CONFIG_REGION_INDEX) + 4n;
const buf4 = new Uint8Array(4);
let sink = 0;
const r: Record<string, number> = {};
for (let k = 0; k < 2; k++) {
r.edu = bestNsPerOp(() => { sink ^= fn.barReadValue(0, 4, 4); }, 5, 200, 4096);
r.memen = bestNsPerOp(() => { sink ^= cfg.memoryEnabled ? 1 : 0; }, 5, 200, 4096);
r.bar = bestNsPerOp(() => { sink ^= io.readInto(buf4, barAt)! + buf4[0]!; }, 5, 200, 64);
r.cfg = bestNsPerOp(() => { sink ^= io.readInto(buf4, configAt)! + buf4[0]!; }, 5, 200, 64);
}
console.log(Object.entries(r).map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' '), buf4, sink === 7 ? '' : '');
