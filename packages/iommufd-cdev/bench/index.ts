/**
 * Benchmarks of iommufd on the simulated host. `iommufd.ioas_vs_type1`: the cost of IOMMU_IOAS_MAP + IOAS_UNMAP
 * over the cost of type1's VFIO_IOMMU_MAP_DMA + UNMAP_DMA for the same sequence in the same run, both with one
 * IOMMU domain on the same simulated VT-d (so both pin, account and program page tables).
 */
import { bestNsPerOp, report } from '@vfio-ts/bench-kit';
import { createHost } from '@vfio-ts/core';
import type { CallContext, IommuBackendEnv } from '@vfio-ts/core';
import { type1DriverOps } from '@vfio-ts/iommu-type1';
import type { Task } from '@vfio-ts/platform';
import { SimIommuGroup, simPlatform } from '@vfio-ts/sim';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  iommuIoasAlloc,
  iommuIoasMap,
  iommuIoasUnmap,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import { iommufd, iommufdContextOf } from '../src/index.js';

const PAGE = 4096n;
const BASE = 1n << 32n; // above the MSI window
const EXISTING = 2_000;
const PROBES = 1 << 15;

/** One page map+unmap per call, at odd IOVA pages between `EXISTING` mappings on the even pages. */
type Probe = () => number;

function iommufdProbe(): Probe {
  const plugin = iommufd();
  const platform = simPlatform({ iommu: 'vtd' });
  const host = createHost({ platform, plugins: [plugin] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: null });
  const fd = p.open('/dev/iommu');
  const ctx = iommufdContextOf(p.file(fd))!;
  const alloc = iommuIoasAlloc.encode({ size: 12 });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, alloc);
  const ioas = iommuIoasAlloc.decode(alloc).out_ioas_id;
  const dev = ctx.bindDevice({ name: '0000:00:03.0', iommuGroup: new SimIommuGroup(7, platform.iommu, undefined) });
  ctx.attach(dev, ioas);
  const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
  const mapBytes = new Uint8Array(40);
  const unmapBytes = new Uint8Array(24);
  const map = (iova: bigint, va: bigint): void => {
    iommuIoasMap.write(mapBytes, { size: 40, flags, ioas_id: ioas, user_va: va, length: PAGE, iova });
    p.ioctl(fd, IOMMU_IOAS_MAP, mapBytes);
  };
  const unmap = (iova: bigint): void => {
    iommuIoasUnmap.write(unmapBytes, { size: 24, ioas_id: ioas, iova, length: PAGE });
    p.ioctl(fd, IOMMU_IOAS_UNMAP, unmapBytes);
  };
  return probe(p.mmap({ length: BigInt(EXISTING) * PAGE }), p.mmap({ length: BigInt(PROBES) * PAGE }), map, unmap);
}

function type1Probe(): Probe {
  const platform = simPlatform({ iommu: 'vtd' });
  const mm = platform.createAddressSpace();
  const task: Task = { pid: 1, uid: 0, gid: 0, mm, memlockLimit: null, capable: () => true, log: () => undefined };
  const values: Record<string, string> = { dma_entry_limit: String(EXISTING + 16), disable_hugepages: 'N', allow_unsafe_interrupts: 'N' };
  const env: IommuBackendEnv = { param: (n) => values[n] ?? '', log: () => undefined };
  const ops = type1DriverOps();
  const call: CallContext = { task };
  const c = ops.open(3, env, call);
  ops.attachGroup(c, { id: 7, type: 'iommu', iommuGroup: new SimIommuGroup(7, platform.iommu, undefined) }, call);
  const mapBytes = new Uint8Array(32);
  const unmapBytes = new Uint8Array(24);
  const map = (iova: bigint, vaddr: bigint): void => {
    vfioIommuType1DmaMap.write(mapBytes, { argsz: 32, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr, iova, size: PAGE });
    ops.ioctl(c, VFIO_IOMMU_MAP_DMA, mapBytes, call);
  };
  const unmap = (iova: bigint): void => {
    vfioIommuType1DmaUnmap.write(unmapBytes, { argsz: 24, flags: 0, iova, size: PAGE });
    ops.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmapBytes, call);
  };
  return probe(mm.mmapAnonymous(BigInt(EXISTING) * PAGE), mm.mmapAnonymous(BigInt(PROBES) * PAGE), map, unmap);
}

function probe(existingVa: bigint, probeVa: bigint, map: (iova: bigint, va: bigint) => void, unmap: (iova: bigint) => void): Probe {
  for (let i = 0; i < EXISTING; i++) map(BASE + BigInt(i) * 2n * PAGE, existingVa + BigInt(i) * PAGE);
  let k = 0;
  // Probes cycle through distinct user pages so the simulator's per-frame pin maps are not what is measured.
  return () =>
    bestNsPerOp(() => {
      const i = k++ % PROBES;
      const iova = BASE + (BigInt(i % EXISTING) * 2n + 1n) * PAGE;
      map(iova, probeVa + BigInt(i) * PAGE);
      unmap(iova);
    }, 2, 100, 50);
}

const ioasSide = iommufdProbe();
const type1Side = type1Probe();
let a = Infinity;
let b = Infinity;
// Interleaved rounds so warm-up and machine noise hit both sides alike.
for (let r = 0; r < 7; r++) {
  a = Math.min(a, ioasSide());
  b = Math.min(b, type1Side());
}

report({
  'iommufd.ioas_vs_type1': {
    value: a / b,
    unit: 'ratio',
    note: `IOMMU_IOAS_MAP+IOAS_UNMAP of one 4 KiB page through the /dev/iommu file (${Math.round(a)} ns) over type1 VFIO_IOMMU_MAP_DMA+UNMAP_DMA of the same page through the backend's ioctl op (${Math.round(b)} ns), ${EXISTING} mappings present, one VT-d domain each; target ≤ 1.5`,
  },
});
