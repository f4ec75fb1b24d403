import { eduFunction } from '@vfio-ts/device-edu';
import { simPlatform } from '@vfio-ts/sim';
const fn = eduFunction();
simPlatform({ iommu: 'vtd', devices: [{ bdf: '0000:00:03.0', fn, driver: 'vfio-pci' }] });
fn.configWrite(4, 2, 2);
let sink = 0;
function lb(n: number) { for (let i = 0; i < n; i++) sink ^= fn.barReadValue(0, 4, 4); }
function lc(n: number) { for (let i = 0; i < n; i++) sink ^= fn.configRead(4, 4); }
const dv = new DataView(new ArrayBuffer(256));
function lr(n: number) { for (let i = 0; i < n; i++) sink ^= dv.getUint32(4, true) + i; }
const res: string[] = [];
for (const [name, f] of [['bar', lb], ['cfg', lc], ['raw', lr]] as const) {
  let best = 1e9;
  for (let k = 0; k < 15; k++) { const t = process.hrtime.bigint(); f(1_000_000); const dt = Number(process.hrtime.bigint() - t) / 1e6; if (dt < best) best = dt; }
  res.push(`${name}=${best.toFixed(2)}`);
}
console.log(res.join(' '), sink === 7 ? '' : '');
