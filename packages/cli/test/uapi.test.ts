import { IOCTLS, STRUCTS } from '@vfio-ts/uapi';
import { describe, expect, test } from 'vitest';
import { makeUapiCommand, type UapiTables } from '../src/index.js';
import { vfio } from './helpers.js';

interface JsonIoctl { name: string; number: string; fd: string; struct: unknown }

describe('vfio uapi', () => {
  test('lists every ioctl of @vfio-ts/uapi with its hex number, fd type and struct', async () => {
    const r = await vfio(['uapi']);
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
    expect(IOCTLS.length).toBeGreaterThan(0);
    const lines = r.out.split('\n');
    for (const io of IOCTLS) {
      const line = lines.find((l) => l.includes(` ${io.name} `));
      expect(line, io.name).toBeDefined();
      expect(line).toContain(` 0x${io.request.toString(16)} `);
      expect(line).toContain(` ${io.fd} `);
      if (io.struct !== null) expect(line).toContain(io.struct);
    }
    expect(r.out).toContain(`ioctls: ${IOCTLS.length}`);
  });

  test('--json lists the same ioctls', async () => {
    const r = await vfio(['uapi', '--json']);
    expect(r.status).toBe(0);
    const data = JSON.parse(r.out) as { ioctls: JsonIoctl[] };
    expect(data.ioctls.map((i) => i.name)).toEqual(IOCTLS.map((i) => i.name));
    expect(data.ioctls.find((i) => i.name === 'VFIO_IOMMU_MAP_DMA')).toMatchObject({ number: '0x3b71', fd: 'container', struct: 'vfio_iommu_type1_dma_map' });
  });

  test('VFIO_IOMMU_MAP_DMA --json: number 0x3b71, container fd, the full vfio_iommu_type1_dma_map layout', async () => {
    const r = await vfio(['uapi', 'VFIO_IOMMU_MAP_DMA', '--json']);
    expect(r.status).toBe(0);
    // Linux: include/uapi/linux/vfio.h, _IO(VFIO_TYPE, VFIO_BASE + 13); inventory §1.7.
    expect(JSON.parse(r.out)).toMatchObject({
      name: 'VFIO_IOMMU_MAP_DMA',
      number: '0x3b71',
      fd: 'container',
      struct: {
        name: 'vfio_iommu_type1_dma_map',
        size: 32,
        minsz: 32,
        fields: [
          { name: 'argsz', offset: 0, size: 4 },
          { name: 'flags', offset: 4, size: 4 },
          { name: 'vaddr', offset: 8, size: 8 },
          { name: 'iova', offset: 16, size: 8 },
          { name: 'size', offset: 24, size: 8 },
        ],
      },
    });
  });

  test('the text view shows the struct fields with offsets and sizes', async () => {
    const r = await vfio(['uapi', 'VFIO_IOMMU_MAP_DMA']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('struct vfio_iommu_type1_dma_map: size 32, minsz 32');
    expect(r.out).toMatch(/ iova +│ +16 │ +8 │ u64 /);
    expect(r.out).toMatch(/number: +0x3b71/);
  });

  test('every ioctl can be shown, and its JSON matches uapi', async () => {
    for (const io of IOCTLS) {
      const r = await vfio(['uapi', io.name, '--json']);
      expect(r.status, io.name).toBe(0);
      const data = JSON.parse(r.out) as JsonIoctl;
      expect(data.name).toBe(io.name);
      expect(data.number).toBe(`0x${io.request.toString(16)}`);
      expect(data.fd).toBe(io.fd);
      const codec = io.struct === null ? undefined : (STRUCTS as Record<string, { size: number; minsz: number } | undefined>)[io.struct];
      if (codec) expect(data.struct).toMatchObject({ name: io.struct, size: codec.size, minsz: codec.minsz });
      else expect(data.struct).toBe(io.struct);
    }
  });

  test('names are found in any case and without VFIO_, by number, and structs by their Linux name', async () => {
    for (const q of ['vfio_iommu_map_dma', 'IOMMU_MAP_DMA', 'VFIO_IOMMU_MAP_DMA']) {
      const r = await vfio(['uapi', q, '--json']);
      expect(r.status, q).toBe(0);
      expect((JSON.parse(r.out) as JsonIoctl).name).toBe('VFIO_IOMMU_MAP_DMA');
    }
    // 0x3b71 is VFIO_BASE + 13: MAP_DMA on a container fd and PCI_HOT_RESET on a device fd (inventory §1.6, §1.7).
    for (const q of ['0x3b71', String(0x3b71)]) {
      const r = await vfio(['uapi', q, '--json']);
      expect(r.status, q).toBe(0);
      const names = (JSON.parse(r.out) as { ioctls: JsonIoctl[] }).ioctls.map((i) => i.name);
      expect(names.sort()).toEqual(IOCTLS.filter((i) => i.request === 0x3b71).map((i) => i.name).sort());
      expect(names).toContain('VFIO_IOMMU_MAP_DMA');
    }
    const unique = IOCTLS.find((i) => IOCTLS.filter((j) => j.request === i.request).length === 1)!;
    const one = await vfio(['uapi', `0x${unique.request.toString(16)}`, '--json']);
    expect((JSON.parse(one.out) as JsonIoctl).name).toBe(unique.name);
    const s = await vfio(['uapi', 'vfio_iommu_type1_dma_map', '--json']);
    expect(s.status).toBe(0);
    const data = JSON.parse(s.out) as { struct: { name: string; size: number }; ioctls: string[] };
    expect(data.struct).toMatchObject({ name: 'vfio_iommu_type1_dma_map', size: 32 });
    expect(data.ioctls).toContain('VFIO_IOMMU_MAP_DMA');
  });

  test('an unknown name fails with close matches, and prints nothing on stdout', async () => {
    const r = await vfio(['uapi', 'VFIO_IOMMU_MAP_DAM']);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^vfio: no ioctl or struct named 'VFIO_IOMMU_MAP_DAM' — did you mean VFIO_IOMMU_MAP_DMA[,?]/);
    const frag = await vfio(['uapi', 'map_dma', '--json']);
    expect(frag.status).toBe(2);
    expect(frag.out).toBe('');
    expect(frag.err).toContain('VFIO_IOMMU_MAP_DMA');
    const num = await vfio(['uapi', '0xffff']);
    expect(num.status).toBe(2);
    expect(num.err).toMatch(/^vfio: no ioctl has request number 0xffff — /);
    const none = await vfio(['uapi', 'qqqqqqqqqqqqqqqqqqqq']);
    expect(none.err).toBe("vfio: no ioctl or struct named 'qqqqqqqqqqqqqqqqqqqq' — run 'vfio uapi' to list every ioctl\n");
  });

  test('--fd lists the ioctls of one fd type; a wrong type or a NAME with it is a usage error', async () => {
    const r = await vfio(['uapi', '--fd', 'group', '--json']);
    expect(r.status).toBe(0);
    const names = (JSON.parse(r.out) as { ioctls: JsonIoctl[] }).ioctls.map((i) => i.name);
    expect(names).toEqual(IOCTLS.filter((i) => i.fd === 'group').map((i) => i.name));
    expect(names).toContain('VFIO_GROUP_GET_STATUS');
    const bad = await vfio(['uapi', '--fd', 'socket']);
    expect(bad.status).toBe(2);
    expect(bad.err).toMatch(/^vfio: no ioctl is issued on a 'socket' fd — the fd types are container, group, device/);
    const both = await vfio(['uapi', 'VFIO_IOMMU_MAP_DMA', '--fd', 'container']);
    expect(both.status).toBe(2);
    expect(both.err).toMatch(/^vfio: --fd filters the list, so it takes no NAME — /);
  });

  test('an ioctl whose struct has no layout in uapi still shows, with the struct name', async () => {
    const tables: UapiTables = {
      ioctls: [{ name: 'VFIO_X', nr: 1, request: 0x3b65, fd: 'device', struct: 'vfio_x', arg: 'struct vfio_x', summary: 'x' },
        { name: 'VFIO_Y', nr: 2, request: 0x3b66, fd: 'group', struct: null, arg: 'none', summary: 'y' }],
      structs: {},
    };
    const cmd = [makeUapiCommand(tables)];
    const x = await vfio(['uapi', 'VFIO_X', '--json'], cmd);
    expect(JSON.parse(x.out)).toMatchObject({ number: '0x3b65', struct: 'vfio_x' });
    expect((await vfio(['uapi', 'VFIO_X'], cmd)).out).toContain('vfio_x (layout not in @vfio-ts/uapi)');
    expect(JSON.parse((await vfio(['uapi', 'VFIO_Y', '--json'], cmd)).out)).toMatchObject({ struct: null, fd: 'group' });
    expect((await vfio(['uapi'], cmd)).out).toMatch(/VFIO_Y +│ +0x3b66 │ group +│ - /);
  });
});
