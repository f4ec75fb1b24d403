/**
 * The edu user-space driver (@vfio-ts/device-edu/driver) against a real simulated host: the happy path in both
 * BAR0 access modes, and failures that must unwind everything the driver opened.
 */
import { createHost } from '@vfio-ts/core';
import { EDU_DMA_BUFFER_SIZE, eduFunction } from '@vfio-ts/device-edu';
import { EduDriverError, EduVfioDriver, eduFactorial, runEduDemo } from '@vfio-ts/device-edu/driver';
import type { EduDriverProcess } from '@vfio-ts/device-edu/driver';
import { type1 } from '@vfio-ts/iommu-type1';
import { vfioPci } from '@vfio-ts/pci';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import { describe, expect, test } from 'vitest';
import { buildDemoHost } from '../src/sim-host.js';

describe('edu driver', () => {
  test('the demo through pread/pwrite instead of mmap gives the same results', async () => {
    const { root, eduBdf, host } = buildDemoHost();
    const steps: string[] = [];
    const p: EduDriverProcess = root;
    const r = await runEduDemo(p, { bdf: eduBdf, mmio: 'pread', factorialOf: 13, dmaBytes: 512, onStep: (s) => steps.push(s.id) });
    expect(r.ok).toBe(true);
    expect(r.mmio).toBe('pread');
    expect(r.factorial).toEqual({ n: 13, value: eduFactorial(13), expected: eduFactorial(13), ok: true });
    expect(eduFactorial(13)).toBe(Number((6227020800n) & 0xffffffffn));
    expect(r.dma).toMatchObject({ toDevice: 512, fromDevice: 512, verified: true });
    expect(r.interrupts).toEqual({ msi: 3, mode: 'msi' });
    expect(steps).toContain('reset');
    expect(steps.at(-1)).toBe('close');
    expect(r.steps.find((s) => s.id === 'bar0')?.detail).toContain('pread/pwrite');
    // Everything was given back: no fds, no locked pages, no open device, no container.
    expect(root.fds()).toEqual([]);
    const d = host.describe();
    expect(d.processes[0]?.lockedPages).toBe(0);
    expect(d.containers).toEqual([]);
    expect((d.devices as { openCount: number }[])[0]?.openCount).toBe(0);
  });

  test('the driver keeps the device open between calls and close() releases it', async () => {
    const { root, eduBdf, host, platform } = buildDemoHost();
    const edu = await EduVfioDriver.open(root, { bdf: eduBdf });
    expect(edu.group).toBe(2);
    expect(edu.deviceInfo).toEqual({ flags: 0x3, numRegions: 9, numIrqs: 5 });
    const buf = await edu.mapDma(4096n, 0x200000n);
    await edu.enableMsi();
    expect(edu.msiEnabled).toBe(true);
    const data = new Uint8Array(EDU_DMA_BUFFER_SIZE).map((_, i) => i * 7);
    await edu.dmaToDevice(buf, data);
    const back = await edu.dmaFromDevice(buf, EDU_DMA_BUFFER_SIZE);
    expect(back).toEqual(data);
    expect(edu.msiSignals).toBe(2);
    expect(platform.pci.device(eduBdf)?.interruptCounts.msi).toBe(2);
    const mid = host.describe();
    expect((mid.devices as { openCount: number }[])[0]?.openCount).toBe(1);
    expect((mid.containers as { iommu: { mappings: number } }[])[0]?.iommu.mappings).toBe(1);
    await edu.close();
    await edu.close(); // idempotent
    expect(root.fds()).toEqual([]);
    expect(host.describe().containers).toEqual([]);
  });

  test('a group shared with a host-driver device is not viable: EPERM at the group step, nothing left open', async () => {
    const nic = new Uint8Array(256);
    const v = new DataView(nic.buffer);
    v.setUint16(0, 0x8086, true);
    v.setUint16(2, 0x100e, true);
    v.setUint32(8, 0x02000000, true);
    nic[0x0e] = 0x80; // multifunction: functions of one device without ACS share a group
    const platform = simPlatform({
      iommu: 'vtd',
      devices: [
        { bdf: '0000:00:03.0', fn: eduFunction(), driver: 'vfio-pci' },
        { bdf: '0000:00:03.1', fn: pciFunctionFromConfig({ config: nic, bars: '0:mem32:0x20000' }), driver: 'e1000' },
      ],
      hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }],
    });
    const host = createHost({ platform, plugins: [type1(), vfioPci()] });
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
    const err = await EduVfioDriver.open(p, { bdf: '0000:00:03.0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EduDriverError);
    expect((err as EduDriverError).step).toBe('group');
    expect((err as EduDriverError).message).toContain('not viable');
    expect(p.fds()).toEqual([]);
  });

  test('DMA mapping beyond RLIMIT_MEMLOCK fails with the kernel errno at dma-map and unwinds the open', async () => {
    const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: '0000:00:03.0', fn: eduFunction(), driver: 'vfio-pci' }] });
    const host = createHost({ platform, plugins: [type1(), vfioPci()] });
    const p = host.spawn({ uid: 0, capabilities: [], memlockLimit: 0 });
    const err = await runEduDemo(p, { bdf: '0000:00:03.0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EduDriverError);
    expect((err as EduDriverError).step).toBe('dma-map');
    expect((err as { cause: { errno: string } }).cause.errno).toBe('ENOMEM');
    expect(p.fds()).toEqual([]);
    expect(host.describe().containers).toEqual([]);
  });

  test('a device on a root bus offers no reset: the driver says so and skips it', async () => {
    const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: '0000:00:03.0', fn: eduFunction(), driver: 'vfio-pci' }] });
    const host = createHost({ platform, plugins: [type1(), vfioPci()] });
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
    const r = await runEduDemo(p, { bdf: '0000:00:03.0' });
    expect(r.device.flags & 1).toBe(0);
    expect(r.reset.done).toBe(false);
    expect(r.steps.find((s) => s.id === 'reset')?.detail).toContain('skipped');
    expect(r.ok).toBe(true);
  });

  test('bad arguments are refused before anything is touched', async () => {
    const { root, eduBdf } = buildDemoHost();
    await expect(runEduDemo(root, { bdf: eduBdf, dmaBytes: 0 })).rejects.toThrow(EduDriverError);
    expect(root.fds()).toEqual([]);
    const edu = await EduVfioDriver.open(root, { bdf: eduBdf });
    // Beyond edu's 28-bit DMA mask.
    await expect(edu.mapDma(4096n, 1n << 28n)).rejects.toMatchObject({ step: 'dma-map' });
    await expect(edu.factorial(-1)).rejects.toMatchObject({ step: 'factorial' });
    await edu.close();
    expect(root.fds()).toEqual([]);
  });
});
