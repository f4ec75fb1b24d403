import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { vfio } from './helpers.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const E1000E_BARS = '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000,rom:0x40000';
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface InspectJson {
  device: { flags: string; num_regions: number; num_irqs: number };
  regions: ({ index: number; flags: string; size: string; offset: string; caps: { id: number; version: number }[] } | { index: number; errno: string })[];
  irqs: ({ index: number; flags: string; count: number } | { index: number; errno: string })[];
  config: string;
  bar_sizing: Record<string, string>;
}

async function inspect(file: string, bars: string): Promise<InspectJson> {
  const r = await vfio(['inspect', '--config-image', fixture(file), '--bars', bars, '--json']);
  expect(r.err).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.out) as InspectJson;
}

describe('vfio inspect', () => {
  test('edu: the JSON has exactly the specified shape, one entry per region and irq index', async () => {
    const d = await inspect('edu.config.bin', '0:mem32:0x100000');
    expect(Object.keys(d)).toEqual(['device', 'regions', 'irqs', 'config', 'bar_sizing']);
    expect(Object.keys(d.device)).toEqual(['flags', 'num_regions', 'num_irqs']);
    expect(d.device).toMatchObject({ num_regions: 9, num_irqs: 5 });
    expect(d.device.flags).toMatch(/^0x[0-9a-f]+$/);
    expect(Number(d.device.flags) & 0x2).toBe(0x2); // VFIO_DEVICE_FLAGS_PCI
    expect(d.regions.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(d.irqs.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    // §3.3: BAR0 read/write/mmap at offset 0; unimplemented BARs size 0, flags 0; config READ|WRITE at 7<<40;
    // no VGA on a non-VGA device.
    expect(d.regions[0]).toEqual({ index: 0, flags: '0x7', size: '0x100000', offset: '0x0', caps: [] });
    for (const i of [1, 2, 3, 4, 5, 6]) expect(d.regions[i]).toEqual({ index: i, flags: '0x0', size: '0x0', offset: `0x${i}0000000000`, caps: [] });
    expect(d.regions[7]).toEqual({ index: 7, flags: '0x3', size: '0x100', offset: '0x70000000000', caps: [] });
    expect(d.regions[8]).toEqual({ index: 8, errno: 'EINVAL' });
    // §3.4: INTx EVENTFD|MASKABLE|AUTOMASKED; MSI one vector, NORESIZE; no MSI-X; ERR only on PCIe.
    expect(d.irqs[0]).toEqual({ index: 0, flags: '0x7', count: 1 });
    expect(d.irqs[1]).toEqual({ index: 1, flags: '0x9', count: 1 });
    expect(d.irqs[2]).toMatchObject({ index: 2, count: 0 });
    expect(d.irqs[3]).toEqual({ index: 3, errno: 'EINVAL' });
    expect(d.irqs[4]).toMatchObject({ index: 4, count: 1 });
    // 256 bytes of config, lower-case hex, ids first; the BAR register holds its firmware address again.
    expect(d.config).toMatch(/^[0-9a-f]{512}$/);
    const image = new Uint8Array(readFileSync(fixture('edu.config.bin')));
    expect(d.config.slice(0, 8)).toBe('3412e811');
    expect(d.config.slice(0x10 * 2, 0x14 * 2)).toBe(hexOf(image.subarray(0x10, 0x14)));
    expect(d.config.slice(0x40 * 2, 0x41 * 2)).toBe('05'); // MSI capability
    // A 1 MiB 32-bit memory BAR sizes to 0xfff00000; the rest are unimplemented.
    expect(d.bar_sizing).toEqual({ bar0: '0xfff00000', bar1: '0x0', bar2: '0x0', bar3: '0x0', bar4: '0x0', bar5: '0x0', rom: '0x0' });
  });

  test('e1000e: MSI-X BAR with MSIX_MAPPABLE, PCIe ERR index, 4 KiB of config, every BAR and the ROM sized and restored', async () => {
    const d = await inspect('e1000e.config.bin', E1000E_BARS);
    expect(d.regions[0]).toEqual({ index: 0, flags: '0x7', size: '0x20000', offset: '0x0', caps: [] });
    expect(d.regions[1]).toEqual({ index: 1, flags: '0x7', size: '0x20000', offset: '0x10000000000', caps: [] });
    // I/O BARs are never mmap-able.
    expect(d.regions[2]).toEqual({ index: 2, flags: '0x3', size: '0x20', offset: '0x20000000000', caps: [] });
    // The MSI-X table lives in BAR3: mappable whole, announced by capability 3 version 1 (§1.4.1).
    expect(d.regions[3]).toEqual({ index: 3, flags: '0xf', size: '0x4000', offset: '0x30000000000', caps: [{ id: 3, version: 1 }] });
    // The ROM named in SPEC holds a valid image (as on the captured device), so it is a READ-only region of its BAR size.
    expect(d.regions[6]).toEqual({ index: 6, flags: '0x1', size: '0x40000', offset: '0x60000000000', caps: [] });
    expect(d.regions[7]).toEqual({ index: 7, flags: '0x3', size: '0x1000', offset: '0x70000000000', caps: [] });
    expect(d.irqs[2]).toMatchObject({ index: 2, count: 5 });
    expect(d.irqs[3]).toEqual({ index: 3, flags: '0x9', count: 1 });
    expect(d.config).toMatch(/^[0-9a-f]{8192}$/);
    expect(d.config.slice(0, 8)).toBe('8680d310');
    const image = new Uint8Array(readFileSync(fixture('e1000e.config.bin')));
    // Sizing restored every register: the BARs and the ROM address read as before.
    expect(d.config.slice(0x10 * 2, 0x28 * 2)).toBe(hexOf(image.subarray(0x10, 0x28)));
    expect(d.config.slice(0x30 * 2, 0x34 * 2)).toBe(hexOf(image.subarray(0x30, 0x34)));
    expect(d.bar_sizing).toEqual({
      bar0: '0xfffe0000',
      bar1: '0xfffe0000',
      bar2: '0xffffffe1',
      bar3: '0xffffc000',
      bar4: '0x0',
      bar5: '0x0',
      rom: '0xfffc0000',
    });
  });

  test('the text view: device, regions, irqs, BAR sizing and a hex dump', async () => {
    const r = await vfio(['inspect', '--config-image', fixture('e1000e.config.bin'), '--bars', E1000E_BARS]);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/regions: +9/);
    expect(r.out).toMatch(/│ +3 │ BAR3 +│ 0xf READ\|WRITE\|MMAP\|CAPS │ +0x4000 │ 0x30000000000 │ MSIX_MAPPABLE v1 │/);
    expect(r.out).toMatch(/│ +3 │ ERR +│ 0x9 EVENTFD\|NORESIZE +│ +1 │/);
    expect(r.out).toMatch(/ROM \(0x30, wrote 0xfffff800\) +│ 0xfffc0000/);
    expect(r.out).toContain('000: 86 80 d3 10');
    expect(r.out).toContain('Config space through the VFIO config region (4096 bytes)');
  });

  test('a mem64 BAR sizes across two registers', async () => {
    const cfg = new Uint8Array(256);
    const v = new DataView(cfg.buffer);
    v.setUint32(0, 0x12341af4, true);
    v.setUint32(0x10, 0xfe00000c, true); // mem64, prefetchable
    v.setUint32(0x14, 0x00000001, true);
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'vfio-inspect-')), 'mem64.bin');
    writeFileSync(file, cfg);
    const r = await vfio(['inspect', '--config-image', file, '--bars', '0:mem64-pref:0x200000', '--json']);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.out) as InspectJson;
    expect(d.bar_sizing.bar0).toBe('0xffe0000c');
    expect(d.bar_sizing.bar1).toBe('0xffffffff');
    expect(d.regions[0]).toMatchObject({ flags: '0x7', size: '0x200000' });
    expect(d.regions[1]).toMatchObject({ flags: '0x0', size: '0x0' });
  });

  test('missing options and bad specs are usage errors', async () => {
    const a = await vfio(['inspect', '--bars', '0:mem32:0x1000']);
    expect(a.status).toBe(2);
    expect(a.err).toContain("required option '--config-image <file>'");
    const b = await vfio(['inspect', '--config-image', fixture('edu.config.bin'), '--bars', '0:mem33:0x1000']);
    expect(b.status).toBe(2);
    expect(b.err).toMatch(/^vfio: .*edu\.config\.bin cannot be used: EINVAL: bad BAR type/);
    expect(b.out).toBe('');
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'vfio-inspect-'));
    writeFileSync(join(dir, 'short.bin'), new Uint8Array(100));
    writeFileSync(join(dir, 'blank.bin'), new Uint8Array(256));
    const c = await vfio(['inspect', '--config-image', join(dir, 'short.bin'), '--bars', '0:mem32:0x1000']);
    expect(c.status).toBe(2);
    expect(c.err).toMatch(/short\.bin cannot be used: EINVAL: config must hold 256 or 4096 bytes/);
    const d = await vfio(['inspect', '--config-image', join(dir, 'blank.bin'), '--bars', '0:mem32:0x1000']);
    expect(d.status).toBe(2);
    expect(d.err).toMatch(/blank\.bin cannot be used: EINVAL: .*no vendor id/);
  });
});
