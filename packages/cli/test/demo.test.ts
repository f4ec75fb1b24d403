import { describe, expect, test } from 'vitest';
import { vfio } from './helpers.js';

interface DemoJson {
  ok: boolean;
  device: { bdf: string; group: number; flags: string; num_regions: number; num_irqs: number };
  steps: { id: string; title: string; detail: string; calls: string[] }[];
  results: { id: string; liveness: { wrote: string; read: string }; factorial: { n: number; value: number }; dma: { to_device: number; from_device: number; verified: boolean }; reset: boolean };
  dma_bytes: number;
  interrupts: { msi: number; mode: string };
  syscalls: number;
  mmio: string;
}

describe('vfio demo', () => {
  test('narrates the QEMU-style open, DMA, factorial with MSI and reset, then a closing table; exit 0', async () => {
    const r = await vfio(['demo']);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const order = ['Open the container', 'Open IOMMU group 2', 'Select the type1v2 IOMMU', 'Get the device fd for 0000:01:00.0',
      'Read the region infos', 'Read the IRQ infos', 'Map BAR0', 'Enable memory decoding and bus mastering', 'Map DMA memory',
      'Identify the device', 'Liveness check', 'Route MSI to an eventfd', 'Compute 10! with an interrupt', 'DMA into the device',
      'DMA out of the device', 'Reset the device', 'Close everything'];
    let at = -1;
    for (const title of order) {
      const i = r.out.indexOf(title);
      expect(i, title).toBeGreaterThan(at);
      at = i;
    }
    expect(r.out).toContain('10! = 3628800');
    expect(r.out).toContain('0x12345678 → 0xedcba987');
    expect(r.out).toContain('4096 bytes, identical to what was sent');
    expect(r.out).toMatch(/DMA bytes: +8192/);
    expect(r.out).toMatch(/interrupts: +3 MSI through an eventfd/);
    expect(r.out).toMatch(/result: +every check passed/);
    expect(r.out).not.toContain('FAILED');
    // Without --trace the system calls stay hidden.
    expect(r.out).not.toContain('VFIO_IOMMU_MAP_DMA');
  });

  test('--json: every step, the results, DMA bytes and interrupt counts for machines', async () => {
    const r = await vfio(['demo', '--json']);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.out) as DemoJson;
    expect(d.ok).toBe(true);
    expect(d.device).toEqual({ bdf: '0000:01:00.0', group: 2, flags: '0x3', num_regions: 9, num_irqs: 5 });
    expect(d.steps.map((s) => s.id)).toEqual(['container', 'group', 'iommu', 'device', 'regions', 'irqs', 'bar0', 'bus-master', 'dma-map',
      'identify', 'liveness', 'msi', 'factorial', 'dma-to-device', 'dma-from-device', 'reset', 'close']);
    expect(d.results).toEqual({
      id: '0x10000ed',
      liveness: { wrote: '0x12345678', read: '0xedcba987' },
      factorial: { n: 10, value: 3628800 },
      dma: { iova: '0x100000', to_device: 4096, from_device: 4096, verified: true },
      reset: true,
    });
    expect(d.dma_bytes).toBe(8192);
    // One MSI for the factorial and one per DMA transfer.
    expect(d.interrupts).toEqual({ msi: 3, mode: 'msi' });
    expect(d.mmio).toBe('mmap');
    expect(d.syscalls).toBe(d.steps.reduce((n, s) => n + s.calls.length, 0));
    const calls = d.steps.flatMap((s) => s.calls).join('\n');
    for (const call of ['VFIO_GET_API_VERSION', 'VFIO_GROUP_GET_STATUS', 'VFIO_GROUP_SET_CONTAINER', 'VFIO_SET_IOMMU', 'VFIO_IOMMU_GET_INFO',
      'VFIO_GROUP_GET_DEVICE_FD', 'VFIO_DEVICE_GET_INFO', 'VFIO_DEVICE_GET_REGION_INFO', 'VFIO_DEVICE_GET_IRQ_INFO', 'VFIO_IOMMU_MAP_DMA',
      'VFIO_DEVICE_SET_IRQS', 'VFIO_DEVICE_RESET', 'VFIO_IOMMU_UNMAP_DMA']) {
      expect(calls, call).toContain(call);
    }
  });

  test('--factorial and --dma-bytes change the work; --trace lists the system calls', async () => {
    const r = await vfio(['demo', '--factorial', '12', '--dma-bytes', '100', '--trace']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('12! = 479001600');
    expect(r.out).toMatch(/DMA bytes: +200/);
    expect(r.out).toContain('ioctl(3, VFIO_IOMMU_MAP_DMA, {vaddr');
    expect(r.out).toContain('ioctl(5, VFIO_DEVICE_RESET) = 0');
  });

  test('a bad option value is a usage error (exit 2) with nothing on stdout', async () => {
    for (const argv of [['demo', '--factorial', 'ten'], ['demo', '--dma-bytes', '0'], ['demo', '--dma-bytes', '4097']]) {
      const r = await vfio(argv);
      expect(r.status, argv.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/^vfio: --(factorial|dma-bytes) must be a whole number/);
    }
  });
});
