function bestNsPerOp(fn: () => void, rounds: number, ms: number, batch: number): number {
  for (let i = 0; i < 1000; i++) fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    let calls = 0;
    const c0 = process.cpuUsage();
    let used = 0;
    do {
      for (let i = 0; i < batch; i++) fn();
      calls += batch;
      const c = process.cpuUsage(c0);
      used = c.user + c.system;
    } while (used < ms * 1000);
    best = Math.min(best, (used * 1000) / calls);
  }
  return best;
}
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_TYPE1v2_IOMMU, vfioPciOffset } from '@vfio-ts/uapi';
import { vfioPci, VfioPciConfig } from '../src/index.js';
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
const edu = eduFunction();
edu.configWrite(4, 2, 6);
const cfg = new VfioPciConfig(edu);
const dv = new DataView(new ArrayBuffer(256));
let sink = 0;
const c4 = configOffset + 4n, b4 = bar0 + 4n;
import { vfioPciCoreRead } from '../src/index.js';
import type { VfioDevice } from '@vfio-ts/core';
import type { VfioPciCoreDevice } from '../src/index.js';
const vd = [...host.vfio.devices.values()][0] as VfioDevice<VfioPciCoreDevice>;
const io = vd.data.open!.io;
const rows: [string, () => void, number][] = [
  ['io.read cfg', () => { sink ^= io.read(4, c4)![0]!; }, 256],
  ['coreRead cfg', () => { sink ^= vfioPciCoreRead(vd.data, 4, c4)[0]!; }, 256],
  ['ops.read cfg', () => { sink ^= vd.ops.read!(vd, 4, c4, undefined as never)[0]!; }, 256],
  ['io.read bar', () => { sink ^= io.read(4, b4)![0]!; }, 256],
  ['dataview', () => { sink ^= dv.getUint32(4, true); }, 4096],
  ['bigint add', () => { sink ^= (configOffset + 0x04n) === 0n ? 1 : 0; }, 256],
  ['new Uint8Array(4)', () => { sink ^= new Uint8Array(4)[0]!; }, 256],
  ['edu.configRead', () => { sink ^= edu.configRead(4, 4); }, 256],
  ['cfg.readBytes', () => { sink ^= cfg.readBytes(4, 4)[0]!; }, 256],
  ['edu.barRead', () => { sink ^= edu.barRead(0, 4n, 4)[0]!; }, 256],
  ['pread cfg (hoisted off)', () => { sink ^= p.pread(device, 4, c4)[0]!; }, 256],
  ['pread cfg', () => { sink ^= p.pread(device, 4, configOffset + 0x04n)[0]!; }, 256],
  ['pread bar (hoisted off)', () => { sink ^= p.pread(device, 4, b4)[0]!; }, 256],
  ['pread bar', () => { sink ^= p.pread(device, 4, bar0 + 0x04n)[0]!; }, 256],
  ['pwrite cfg', () => { sink ^= p.pwrite(device, new Uint8Array([0x06, 0x01]), configOffset + 0x04n); }, 256],
  ['pwrite bar', () => { sink ^= p.pwrite(device, new Uint8Array([1, 2, 3, 4]), bar0 + 0x04n); }, 256],
];
const only = process.argv[2];
for (const [name, fn, batch] of rows) {
  if (only && !name.includes(only)) continue;
  console.log(name.padEnd(26), bestNsPerOp(fn, 5, 150, batch).toFixed(1));
}
if (sink === 0x7fffffff) console.log('x');
