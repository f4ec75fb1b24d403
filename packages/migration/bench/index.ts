/**
 * `migration.stop_copy_vs_copy`: how fast a device's STOP_COPY stream can be read through the system-call
 * surface (MIG_DEVICE_STATE → data fd → read(2) until EOF, framing and CRC-32 included) for a device holding
 * 1 GiB of state, against a plain copy of the same 1 GiB into a fresh Buffer, in the same run.
 */
import { report, timeOnce } from '@vfio-ts/bench-kit';
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { HostPlugin } from '@vfio-ts/core';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import { VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_STOP_COPY, VFIO_MIGRATION_STOP_COPY, VFIO_NOIOMMU_IOMMU } from '@vfio-ts/uapi';
import { MigrationStateMachine, migration, setDeviceState } from '../src/index.js';

const GiB = 1 << 30;
const CHUNK = 16 << 20;
const RECORD = 1 << 20;

// 1 GiB of device state in 16 MiB pieces, with something other than zeros in it.
const state: Buffer[] = [];
for (let at = 0; at < GiB; at += CHUNK) {
  const b = Buffer.allocUnsafeSlow(CHUNK);
  b.fill(at / CHUNK + 1);
  state.push(b);
}

/** A device whose STOP_COPY stream is the 1 GiB, handed over as 1 MiB views (no copy before the record's). */
const big: HostPlugin = {
  name: 'bench-device',
  setup(api) {
    api.registerPciDriver({
      name: 'bench-device',
      driverManagedDma: true,
      probe(pdev) {
        const machine = new MigrationStateMachine(
          {
            migrationFlags: VFIO_MIGRATION_STOP_COPY,
            setState(arc) {
              if (arc.to !== VFIO_DEVICE_STATE_STOP_COPY) return undefined;
              return {
                *finalState() {
                  for (const b of state) for (let at = 0; at < b.length; at += RECORD) yield b.subarray(at, at + RECORD);
                },
              };
            },
            dataSize: () => GiB,
          },
          { tag: 'bench:1g', maxRecordPayload: RECORD },
        );
        const dev = api.allocDevice({ name: pdev.bdf, ops: {}, data: null, migrationOps: machine, migrationFlags: VFIO_MIGRATION_STOP_COPY });
        api.registerGroupDevice(dev);
      },
      remove: () => undefined,
    });
  },
};

const BDF = '0000:00:03.0';
const config = new Uint8Array(256);
config.set([0x34, 0x12, 0x11, 0x11]);
const platform = simPlatform({ iommu: 'none', devices: [{ bdf: BDF, fn: pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' }) }] });
const host = createHost({ platform, plugins: [big, migration()], params: { 'vfio.enable_unsafe_noiommu_mode': true } });
platform.pci.device(BDF)!.driverOverride = 'bench-device';
platform.pci.bind(BDF, 'bench-device');
const p = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'], memlockLimit: 64n << 20n });
const group = p.readdir('/dev/vfio').find((n) => n.startsWith('noiommu-'))!;
const { device } = openVfioDevice(p, { group: `/dev/vfio/${group}`, device: BDF, iommuType: VFIO_NOIOMMU_IOMMU });

let streamed = 0;
const streamNs = timeOnce(() => {
  const fd = setDeviceState(p, device, VFIO_DEVICE_STATE_STOP_COPY);
  streamed = 0;
  for (let chunk = p.read(fd, 4 << 20); chunk.length > 0; chunk = p.read(fd, 4 << 20)) streamed += chunk.length;
  p.close(fd);
  setDeviceState(p, device, VFIO_DEVICE_STATE_RUNNING);
}, 3);

const copyNs = timeOnce(() => {
  const copy = Buffer.allocUnsafeSlow(GiB);
  let at = 0;
  for (const b of state) {
    copy.set(b, at);
    at += b.length;
  }
  if (copy[GiB - 1] !== state.length) throw new Error('copy went wrong');
}, 3);

const ratio = copyNs / streamNs;
const gbps = (bytes: number, ns: number): string => ((bytes / ns) * 1e9 / GiB).toFixed(2);
report({
  'migration.stop_copy_vs_copy': {
    value: Number(ratio.toFixed(3)),
    unit: 'x',
    note:
      `STOP_COPY stream of a device with 1 GiB of state read through read(2) on the data fd (${streamed} bytes with framing ` +
      `and CRC-32, ${gbps(streamed, streamNs)} GiB/s) over a plain copy of the same 1 GiB into a fresh Buffer ` +
      `(${gbps(GiB, copyNs)} GiB/s); throughput ratio, higher is better (target ≥ 0.5)`,
  },
});
