import { describe, expect, test } from 'vitest';
import { vfio } from './helpers.js';

interface StatusJson {
  activity: string;
  iommu_drivers: string[];
  groups: { id: number; viable: boolean; open: boolean; container: number | null; devices: string[] }[];
  devices: { name: string; driver: string; open_count: number; mmaps: number; dev_set_open: number }[];
  containers: { id: number; groups: number[]; backend: string; mappings: number; locked_pages: number }[];
  processes: { pid: number; fds: number; locked_pages: number; locked_bytes: number }[];
  interrupts: { device: string; intx: number; msi: number }[];
  totals: { dma_mappings: number; locked_pages: number; locked_bytes: number };
}

describe('vfio status', () => {
  test('after part of the demo: the open device, its group and container, the DMA mapping, locked pages and MSIs', async () => {
    const r = await vfio(['status', '--json']);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.out) as StatusJson;
    expect(d.activity).toContain('still running');
    expect(d.iommu_drivers).toContain('vfio-iommu-type1');
    expect(d.groups).toEqual([{ id: 2, node: '/dev/vfio/2', type: 'iommu', viable: true, open: true, container: 1, devices: ['0000:01:00.0'] }]);
    expect(d.devices).toEqual([expect.objectContaining({ name: '0000:01:00.0', driver: 'vfio-pci', open_count: 1, mmaps: 1, dev_set_open: 1 })]);
    expect(d.containers).toEqual([expect.objectContaining({ id: 1, groups: [2], backend: 'vfio-iommu-type1', mappings: 1, locked_pages: 2, version: 'v2', domains: 1 })]);
    // VT-d page sizes (4K|2M|1G) and the usable IOVA space around the MSI window.
    expect(d.containers[0]).toMatchObject({ pgsizes: '0x40201000', iova_ranges: [{ start: '0x0', end: '0xfedfffff' }, { start: '0xfef00000', end: '0xffffffffffff' }] });
    // container, group, device and eventfd are open; 8 KiB are pinned for DMA.
    expect(d.processes).toEqual([expect.objectContaining({ fds: 4, locked_pages: 2, locked_bytes: 8192 })]);
    // The factorial and the one DMA each raised an MSI; the host's NIC raised nothing.
    expect(d.interrupts).toEqual([{ device: '0000:00:02.0', intx: 0, msi: 0 }, { device: '0000:01:00.0', intx: 0, msi: 2 }]);
    expect(d.totals).toEqual({ dma_mappings: 1, locked_pages: 2, locked_bytes: 8192 });
  });

  test('the tables for people', async () => {
    const r = await vfio(['status']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('simulated demo host (not this machine)');
    expect(r.out).toMatch(/│ +2 │ \/dev\/vfio\/2 │ iommu +│ in use +│ yes +│ 1 +│ 0000:01:00\.0 │/);
    expect(r.out).toMatch(/│ 0000:01:00\.0 │ vfio-pci │ \w+ +│ +2 │ +1 │ +1 │ 1 open of 1 +│/);
    expect(r.out).toMatch(/│ +1 │ vfio-iommu-type1 │ 2 +│ +1 │ +2 │/);
    expect(r.out).toMatch(/locked memory: +2 pages \(8 KiB\)/);
    expect(r.out).toMatch(/│ 0000:01:00\.0 │ +0 │ +2 │/);
  });

  test('--idle: nothing is open yet', async () => {
    const r = await vfio(['status', '--idle', '--json']);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.out) as StatusJson;
    expect(d.containers).toEqual([]);
    expect(d.devices).toEqual([expect.objectContaining({ name: '0000:01:00.0', open_count: 0 })]);
    expect(d.totals).toEqual({ dma_mappings: 0, locked_pages: 0, locked_bytes: 0 });
    const text = await vfio(['status', '--idle']);
    expect(text.out).toContain('Containers: none open');
  });
});
