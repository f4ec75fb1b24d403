/**
 * Benchmarks of iommufd on the simulated host. `iommufd.ioas_vs_type1`: the cost of IOMMU_IOAS_MAP + IOAS_UNMAP over
 * the cost of type1's VFIO_IOMMU_MAP_DMA + UNMAP_DMA for the same sequence in the same run. Both go through the
 * system-call surface of one host: a device opened through its cdev and attached to an IOAS on one side, a device of
 * another group in a type1v2 container on the other — one VT-d domain each, both pinning and accounting.
 */
import { bestNsPerOp, report } from '@vfio-ts/bench-kit';
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { HostPlugin, Process } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1v2_IOMMU,
  iommuIoasAlloc,
  iommuIoasMap,
  iommuIoasUnmap,
  vfioDeviceAttachIommufdPt,
  vfioDeviceBindIommufd,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import { iommufd } from '../src/index.js';

const PAGE = 4096n;
const BASE = 1n << 32n; // above the MSI window
const EXISTING = 2_000;
const PROBES = 1 << 15;
const BDF_CDEV = '0000:00:03.0';
const BDF_GROUP = '0000:00:04.0';

/** A pass-through VFIO driver: registers every function it probes as an IOMMU-backed device. */
function passthrough(indexes: Map<string, number>): HostPlugin {
  return {
    name: 'vfio-bench',
    setup(api) {
      api.registerPciDriver({
        name: 'vfio-bench',
        driverManagedDma: true,
        probe(pdev) {
          const dev = api.allocDevice({ name: pdev.bdf, data: undefined, ops: { name: 'vfio-bench' } });
          api.registerGroupDevice(dev);
          indexes.set(pdev.bdf, dev.index);
        },
        remove() {
          // The bench never unbinds.
        },
      });
    },
  };
}

function host(): { p: Process; indexes: Map<string, number> } {
  const config = new Uint8Array(256);
  config.set([0x34, 0x12, 0x11, 0x11]);
  const fn = (): ReturnType<typeof pciFunctionFromConfig> => pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
  const platform = simPlatform({
    iommu: 'vtd',
    devices: [
      { bdf: BDF_CDEV, fn: fn(), driver: 'vfio-bench' },
      { bdf: BDF_GROUP, fn: fn(), driver: 'vfio-bench' },
    ],
  });
  const indexes = new Map<string, number>();
  const h = createHost({ platform, plugins: [iommufd(), type1({ dmaEntryLimit: EXISTING + 16 }), passthrough(indexes)] });
  return { p: h.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_RAWIO'], memlockLimit: null }), indexes };
}

type Probe = () => number;

function probe(p: Process, map: (iova: bigint, va: bigint) => void, unmap: (iova: bigint) => void): Probe {
  const existingVa = p.mmap({ length: BigInt(EXISTING) * PAGE });
  const probeVa = p.mmap({ length: BigInt(PROBES) * PAGE });
  for (let i = 0; i < EXISTING; i++) map(BASE + BigInt(i) * 2n * PAGE, existingVa + BigInt(i) * PAGE);
  let k = 0;
  // Probes go to the odd pages between the existing mappings and cycle through distinct user pages, so the
  // simulator's per-frame pin maps are not what is measured.
  return () =>
    bestNsPerOp(() => {
      const i = k++ % PROBES;
      const iova = BASE + (BigInt(i % EXISTING) * 2n + 1n) * PAGE;
      map(iova, probeVa + BigInt(i) * PAGE);
      unmap(iova);
    }, 2, 100, 50);
}

function iommufdSide(p: Process, index: number): Probe {
  const fd = p.open('/dev/iommu');
  const alloc = iommuIoasAlloc.encode({ size: 12 });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, alloc);
  const ioas = iommuIoasAlloc.decode(alloc).out_ioas_id;
  const dev = p.open(`/dev/vfio/devices/vfio${index}`);
  p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, vfioDeviceBindIommufd.encode({ argsz: 16, iommufd: fd }));
  p.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfioDeviceAttachIommufdPt.encode({ argsz: 12, pt_id: ioas }));
  const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
  const mapBytes = new Uint8Array(40);
  const unmapBytes = new Uint8Array(24);
  return probe(
    p,
    (iova, va) => {
      iommuIoasMap.write(mapBytes, { size: 40, flags, ioas_id: ioas, user_va: va, length: PAGE, iova });
      p.ioctl(fd, IOMMU_IOAS_MAP, mapBytes);
    },
    (iova) => {
      iommuIoasUnmap.write(unmapBytes, { size: 24, ioas_id: ioas, iova, length: PAGE });
      p.ioctl(fd, IOMMU_IOAS_UNMAP, unmapBytes);
    },
  );
}

function type1Side(p: Process): Probe {
  const group = Number(p.readlink(`/sys/bus/pci/devices/${BDF_GROUP}/iommu_group`).split('/').pop());
  const { container } = openVfioDevice(p, { group, device: BDF_GROUP, iommuType: VFIO_TYPE1v2_IOMMU });
  const mapBytes = new Uint8Array(32);
  const unmapBytes = new Uint8Array(24);
  return probe(
    p,
    (iova, vaddr) => {
      vfioIommuType1DmaMap.write(mapBytes, { argsz: 32, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr, iova, size: PAGE });
      p.ioctl(container, VFIO_IOMMU_MAP_DMA, mapBytes);
    },
    (iova) => {
      vfioIommuType1DmaUnmap.write(unmapBytes, { argsz: 24, flags: 0, iova, size: PAGE });
      p.ioctl(container, VFIO_IOMMU_UNMAP_DMA, unmapBytes);
    },
  );
}

const { p, indexes } = host();
const ioasSide = iommufdSide(p, indexes.get(BDF_CDEV)!);
const containerSide = type1Side(p);
let a = Infinity;
let b = Infinity;
// Interleaved rounds so warm-up and machine noise hit both sides alike.
for (let r = 0; r < 7; r++) {
  a = Math.min(a, ioasSide());
  b = Math.min(b, containerSide());
}

report({
  'iommufd.ioas_vs_type1': {
    value: a / b,
    unit: 'ratio',
    note: `IOMMU_IOAS_MAP+IOAS_UNMAP of one 4 KiB page on /dev/iommu, device bound through its cdev (${Math.round(a)} ns), over VFIO_IOMMU_MAP_DMA+UNMAP_DMA of the same page on a type1v2 container with a group (${Math.round(b)} ns); ${EXISTING} mappings present, one VT-d domain each; target ≤ 1.5`,
  },
});
