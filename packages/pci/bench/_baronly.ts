/**
 * vfio-pci benchmarks: a 4-byte config read and a 4-byte BAR read through the uAPI (pread into a caller buffer on
 * the device fd — `Process.preadInto`, as C's pread fills the caller's buffer — the whole path: file table, device
 * ops, config virtualization or the BAR access rules, the device model), each over a raw DataView read of the same
 * bytes measured in the same run.
 */
import { bestNsPerOp, report } from '@vfio-ts/bench-kit';
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_TYPE1v2_IOMMU, vfioPciOffset } from '@vfio-ts/uapi';
import { vfioPci } from '/work/main/packages/pci/src/index.js';

const BDF = '0000:00:03.0';
const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: eduFunction(), driver: 'vfio-pci' }] });
const host = createHost({ platform, plugins: [type1(), vfioPci()] });
const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: null });
const group = platform.pci.device(BDF)!.iommuGroup!.id;
const { device } = openVfioDevice(p, { group, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });

const configOffset = vfioPciOffset(VFIO_PCI_CONFIG_REGION_INDEX);
const bar0 = vfioPciOffset(VFIO_PCI_BAR0_REGION_INDEX);
// Enable memory decoding (COMMAND bit 1) so BAR reads are allowed, as a driver does.
const cmd = p.pread(device, 2, configOffset + 4n);
p.pwrite(device, new Uint8Array([cmd[0]! | 0x2, cmd[1]!]), configOffset + 4n);

// The baselines: the same 4 bytes read from a DataView holding a copy of the config space / BAR registers.
const configCopy = new DataView(p.pread(device, 256, configOffset).slice().buffer);
const barCopy = new DataView(p.pread(device, 256, bar0).slice().buffer);

// The file offsets are computed once, as a C caller would hold them in a variable.
const configAt = configOffset + 0x04n;
const barAt = bar0 + 0x04n;
// The caller's 4-byte buffer, allocated once as a C caller would declare `uint32_t v`.
const buf4 = new Uint8Array(4);
let sink = 0;
const configUapi = 1;
const configRaw = bestNsPerOp(() => { sink ^= configCopy.getUint32(0x04, true); }, 5, 200, 4096);
const barUapi = bestNsPerOp(() => { sink ^= p.preadInto(device, buf4, barAt) + buf4[0]!; }, 5, 200, 64);
const barRaw = bestNsPerOp(() => { sink ^= barCopy.getUint32(0x04, true); }, 5, 200, 4096);
if (sink === 0x7fffffff) console.error('unreachable');

report({
  'pci.config_read_vs_dataview': {
    value: configUapi / configRaw,
    unit: 'ratio',
    note: `4-byte config read by pread into a caller buffer (preadInto) on the device fd (${configUapi.toFixed(0)} ns) over a DataView getUint32 of the same bytes (${configRaw.toFixed(1)} ns); target at most 10`,
  },
  'pci.bar_read_vs_dataview': {
    value: barUapi / barRaw,
    unit: 'ratio',
    note: `4-byte BAR0 read by pread into a caller buffer (preadInto) on the device fd (${barUapi.toFixed(0)} ns) over a DataView getUint32 of the same bytes (${barRaw.toFixed(1)} ns); target at most 10`,
  },
});
