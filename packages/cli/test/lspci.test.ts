import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { vfio } from './helpers.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const E1000E_BARS = '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000,rom:0x40000';

interface LspciJson {
  host: string;
  devices: { bdf: string; vendor: string; device: string; class: string; driver: string | null; iommu_group: number | null; secondary_bus?: number; capabilities?: { id: string; name: string; offset: string }[]; ext_capabilities?: { id: string; name: string; offset: string }[]; resources?: { name: string; kind: string; size: string }[] }[];
  iommu_groups: { id: number; devices: string[] }[];
}

describe('vfio lspci', () => {
  test('lists the demo host\'s devices with class, ids, driver and IOMMU group, and says the host is simulated', async () => {
    const r = await vfio(['lspci']);
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/0000:00:02\.0 +│ Ethernet controller +│ 8086:100e +│ .*82540EM.*│ e1000 +│ +0 │/);
    expect(r.out).toMatch(/0000:00:1c\.0 +│ PCI bridge +│ 1b36:000c +│ .*│ pcieport +│ +1 │/);
    expect(r.out).toMatch(/0000:01:00\.0 +│ Unclassified device +│ 1234:11e8 +│ .*edu.*│ vfio-pci +│ +2 │/);
    expect(r.out).toContain('simulated demo host');
  });

  test('-t draws the bus tree (edu under the root port) and the IOMMU groups with drivers and viability', async () => {
    const r = await vfio(['lspci', '-t']);
    expect(r.status).toBe(0);
    const lines = r.out.split('\n');
    const port = lines.findIndex((l) => l.includes('00:1c.0') && l.includes('→ bus 01'));
    expect(port).toBeGreaterThan(0);
    expect(lines[port + 1]).toMatch(/^ +└─ 01:00\.0 .*\[1234:11e8\] — driver vfio-pci, IOMMU group 2$/);
    expect(r.out).toContain('IOMMU groups');
    expect(r.out).toMatch(/group 0 \(\/dev\/vfio\/0\) — not viable: a device is owned by a host driver\n│ {2}└─ 00:02\.0 .* — driver e1000/);
    expect(r.out).toMatch(/group 2 \(\/dev\/vfio\/2\) — usable through VFIO\n {3}└─ 01:00\.0 .* — driver vfio-pci/);
  });

  test('-v shows BARs and capabilities as lspci words them', async () => {
    const r = await vfio(['lspci', '-v']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('01:00.0 Unclassified device [00ff]:');
    expect(r.out).toMatch(/Region 0: +Memory \(32-bit, non-prefetchable\) at [0-9a-f]{8} \[size=1M\]/);
    expect(r.out).toMatch(/Capabilities \[40\]: +MSI/);
    expect(r.out).toMatch(/Capabilities \[100 v\]: +Access Control Services/);
    expect(r.out).toMatch(/Kernel driver in use: +vfio-pci/);
  });

  test('--json with -v, and --config-image/--bars add a device bound to vfio-pci', async () => {
    const r = await vfio(['lspci', '-v', '--json', '--config-image', fixture('e1000e.config.bin'), '--bars', E1000E_BARS]);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.out) as LspciJson;
    expect(d.devices.map((x) => x.bdf)).toEqual(['0000:00:02.0', '0000:00:05.0', '0000:00:1c.0', '0000:01:00.0']);
    const nic = d.devices.find((x) => x.bdf === '0000:00:05.0')!;
    expect(nic).toMatchObject({ vendor: '0x8086', device: '0x10d3', class: '0x20000', driver: 'vfio-pci' });
    expect(nic.iommu_group).toBeTypeOf('number');
    expect(nic.capabilities?.map((c) => [c.name, c.offset])).toEqual([['Power Management', '0xc8'], ['MSI', '0xd0'], ['Express', '0xe0'], ['MSI-X', '0xa0']]);
    expect(nic.ext_capabilities?.map((c) => c.name)).toEqual(['Advanced Error Reporting', 'Device Serial Number']);
    expect(nic.resources?.map((x) => [x.name, x.kind, x.size])).toEqual([
      ['bar0', 'mem32', '0x20000'], ['bar1', 'mem32', '0x20000'], ['bar2', 'io', '0x20'], ['bar3', 'mem32', '0x4000'], ['rom', 'rom', '0x40000'],
    ]);
    expect(d.devices.find((x) => x.bdf === '0000:00:1c.0')?.secondary_bus).toBe(1);
    const edu = d.devices.find((x) => x.bdf === '0000:01:00.0')!;
    expect(d.iommu_groups.find((g) => g.devices.includes('0000:01:00.0'))?.id).toBe(edu.iommu_group);
    expect(new Set(d.iommu_groups.map((g) => g.id)).size).toBe(4);
  });

  test('--bars without --config-image, or an unreadable image, fails with one line', async () => {
    const a = await vfio(['lspci', '--bars', '0:mem32:0x1000']);
    expect(a.status).toBe(2);
    expect(a.err).toMatch(/^vfio: --bars needs --config-image FILE too — /);
    const b = await vfio(['lspci', '--config-image', fixture('missing.bin'), '--bars', '0:mem32:0x1000']);
    expect(b.status).toBe(1);
    expect(b.err).toMatch(/^vfio: cannot read '.*missing\.bin' \(ENOENT\)/);
    expect(b.out).toBe('');
  });
});
