/**
 * Acceptance (vfio-pci issue) 4, edu half: the TypeScript user-space edu driver opens QEMU's edu device through
 * vfio-pci and type1 the way QEMU would, computes a factorial with an MSI delivered to an eventfd, moves a pattern
 * by DMA into the device and back, resets it, and closing gives everything back.
 */
import { describe, expect, it } from 'vitest';
import { createHost } from '@vfio-ts/core';
import type { Host, Process } from '@vfio-ts/core';
import { EDU_DMA_BUFFER_SIZE, eduFunction } from '@vfio-ts/device-edu';
import { EduVfioDriver, eduFactorial, runEduDemo } from '@vfio-ts/device-edu/driver';
import type { EduStep } from '@vfio-ts/device-edu/driver';
import { type1 } from '@vfio-ts/iommu-type1';
import { vfioPci } from '@vfio-ts/pci';
import { simPlatform } from '@vfio-ts/sim';
import type { SimPlatform } from '@vfio-ts/sim';

const BDF = '0000:00:04.0';
const MiB = 1n << 20n;

function eduHost(): { host: Host; p: Process; platform: SimPlatform } {
  const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: eduFunction(), driver: 'vfio-pci' }] });
  const host = createHost({ platform, plugins: [type1(), vfioPci()] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_RAWIO'], memlockLimit: 64n * MiB });
  return { host, p, platform };
}

function expectClean(host: Host, p: Process): void {
  expect(p.fds()).toEqual([]);
  const d = host.describe();
  expect(d.processes.find((x) => x.pid === p.pid)?.lockedPages).toBe(0);
  expect(d.containers).toEqual([]);
  expect((d.devices as { openCount: number }[]).every((x) => x.openCount === 0)).toBe(true);
}

describe('edu driven through VFIO', () => {
  it('runs the demo end to end: factorial with MSI, DMA both ways through type1, reset, clean close', async () => {
    const { host, p, platform } = eduHost();
    const steps: EduStep[] = [];
    const r = await runEduDemo(p, { bdf: BDF, factorialOf: 12, now: () => host.platform.clock.now(), onStep: (s) => steps.push(s) });

    expect(r.ok).toBe(true);
    expect(r.factorial).toEqual({ n: 12, value: 479001600, expected: 479001600, ok: true });
    expect(r.dma).toMatchObject({ iova: 0x100000n, toDevice: EDU_DMA_BUFFER_SIZE, fromDevice: EDU_DMA_BUFFER_SIZE, verified: true });
    // One MSI each for the factorial and the two DMA transfers, counted on the eventfd and by the host.
    expect(r.interrupts).toEqual({ msi: 3, mode: 'msi' });
    expect(platform.pci.device(BDF)?.interruptCounts.msi).toBe(3);
    expect(r.reset.ok).toBe(true);
    expect(steps.map((s) => s.id)).toEqual([
      'container', 'group', 'iommu', 'device', 'regions', 'irqs', 'bar0', 'bus-master', 'dma-map', 'identify',
      'liveness', 'msi', 'factorial', 'dma-to-device', 'dma-from-device', 'reset', 'close',
    ]);
    expect(host.platform.iommu!.faults()).toEqual([]);
    expectClean(host, p);
  });

  it('drives DMA both ways with its own data and counts one MSI per completion', async () => {
    const { host, p } = eduHost();
    const edu = await EduVfioDriver.open(p, { bdf: BDF, mmio: 'pread' });
    const buf = await edu.mapDma(2n * 4096n, 0x300000n);
    await edu.enableMsi();
    expect((await edu.factorial(5)).value).toBe(eduFactorial(5));
    const data = new Uint8Array(1000).map((_, i) => (i * 31 + 7) & 0xff);
    await edu.dmaToDevice(buf, data);
    // Back into the second page, so the bytes really came from the device and not the source buffer.
    const back = await edu.dmaFromDevice(buf, data.length, 4096n);
    expect(back).toEqual(data);
    expect(p.memory.read(buf.vaddr + 4096n, data.length)).toEqual(data);
    expect(edu.msiSignals).toBe(3);
    expect(edu.mmio).toBe('pread');
    await edu.close();
    expectClean(host, p);
  });
});
