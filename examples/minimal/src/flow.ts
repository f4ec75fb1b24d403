/**
 * The whole program as a function: build a simulated host (VT-d-like IOMMU, QEMU's edu device bound to vfio-pci),
 * start a process, and let the edu user-space driver open the device through VFIO, compute a factorial with an MSI
 * and move a page by DMA both ways.
 */
import { createHost } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { runEduDemo } from '@vfio-ts/device-edu/driver';
import type { EduDemoResult } from '@vfio-ts/device-edu/driver';
import { type1 } from '@vfio-ts/iommu-type1';
import { vfioPci } from '@vfio-ts/pci';
// The simulated machine. On a real machine the platform would be the hardware; vfio-ts needs *a* platform, and
// @vfio-ts/sim is the one that ships, so the example depends on it too.
import { simPlatform } from '@vfio-ts/sim';

/** Runs the flow; `log` receives one line per driver step. */
export async function runMinimal(log: (line: string) => void = () => undefined): Promise<EduDemoResult> {
  const host = createHost({
    platform: simPlatform({
      iommu: 'vtd',
      devices: [
        // A root port with ACS, and edu alone behind it: its own IOMMU group, and a bus reset serves as its reset.
        { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
        { bdf: '0000:01:00.0', fn: eduFunction(), driver: 'vfio-pci' },
      ],
    }),
    plugins: [type1(), vfioPci()],
  });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
  return runEduDemo(p, {
    bdf: '0000:01:00.0',
    factorialOf: 5,
    onStep: (s) => { log(`${s.title}: ${s.detail}`); },
  });
}
