/**
 * Bad input at every type1 container entry point, through the system-call surface (common rules): short argsz,
 * unknown flags, overflow and wrap, wrong fd types, use after close — each row checks the errno Linux 6.12's
 * vfio_iommu_type1_ioctl / vfio_fops_unl_ioctl gives, that it is a SysError, and that the host (mappings, locked
 * pages, pinned pages, open files, groups) is exactly as before. A fast-check fuzz of random requests and buffers
 * on every fd type closes it.
 */
import { createHost } from '@vfio-ts/core';
import type { HostPlugin, HostPluginApi } from '@vfio-ts/core';
import type { PciFunction } from '@vfio-ts/platform';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_GET_INFO,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE,
  VFIO_TYPE1v2_IOMMU,
  vfioIommuType1DirtyBitmap,
  vfioIommuType1DirtyBitmapGet,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type1 } from '../src/index.js';
import { RW } from './helpers.js';

const BDF = '0000:00:03.0';
const P = 4096n;

type Row = readonly [name: string, call: () => unknown, errno: string];

function fn(): PciFunction {
  const config = new Uint8Array(256);
  config.set([0x34, 0x12, 0x11, 0x11], 0);
  return pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
}

/** A VFIO bus driver with no ioctl op (the core answers EINVAL for its device requests, as Linux does). */
function miniDriver(): HostPlugin {
  let api: HostPluginApi | undefined;
  return {
    name: 'mini-vfio',
    setup(a) {
      api = a;
      a.registerPciDriver({
        name: 'mini-vfio',
        ids: [],
        driverManagedDma: true,
        probe(pdev) {
          const dev = api!.allocDevice({ name: pdev.bdf, data: undefined, ops: { name: 'mini-vfio' } });
          api!.registerGroupDevice(dev);
        },
        async remove() {},
      });
    },
  };
}

function s32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

function rejects(f: () => unknown, errno: string, name = ''): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `${name}: expected ${errno}`).toBeInstanceOf(SysError);
  expect((err as SysError).errno, name).toBe(errno);
}

const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

const map = (iova: bigint, vaddr: bigint, size: bigint, flags = RW, argsz = 32): Uint8Array =>
  vfioIommuType1DmaMap.encode({ argsz, flags, vaddr, iova, size });
const unmap = (iova: bigint, size: bigint, flags = 0, argsz = 24): Uint8Array =>
  vfioIommuType1DmaUnmap.encode({ argsz, flags, iova, size });

/** GET_BITMAP request: the header, then the range struct; `argsz` defaults to the whole. */
function getBitmap(iova: bigint, size: bigint, pgsize: bigint, bitmapSize: bigint, data: bigint, argsz = 48): Uint8Array {
  const b = new Uint8Array(48);
  b.set(vfioIommuType1DirtyBitmap.encode({ argsz, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP }));
  b.set(vfioIommuType1DirtyBitmapGet.encode({ iova, size, bitmap_pgsize: pgsize, bitmap_size: bitmapSize, bitmap_data: data }), 8);
  return b;
}

/**
 * A host with type1, one device opened the QEMU way, 64 KiB mapped at IOVA 1 MiB (pinned and accounted), a
 * 4 KiB mapping at 2 MiB, and a spare anonymous buffer for bitmaps.
 */
function setup(memlock = 64n << 20n) {
  const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: fn() }] });
  const host = createHost({ platform, plugins: [type1(), miniDriver()] });
  const pdev = platform.pci.device(BDF)!;
  pdev.driverOverride = 'mini-vfio';
  platform.pci.bind(BDF, 'mini-vfio');
  const p = host.spawn({ uid: 0, capabilities: [], memlockLimit: memlock });
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${pdev.iommuGroup!.id}`);
  p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
  p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${BDF}\0`));
  const va = p.mmap({ length: 0x20000 });
  p.memory.write(va, new Uint8Array([1, 2, 3, 4]));
  p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x100000n, va, 0x10000n));
  p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x200000n, va + 0x10000n, P));
  const scratch = p.mmap({ length: 0x1000 });
  const devnull = p.open('/dev/null');
  const ev = p.eventfd(0);
  const domain = (): unknown => {
    const dom = (pdev.iommuGroup as unknown as { domain?: { translate(iova: bigint): { pa: bigint } | undefined } }).domain;
    return [0x100000n, 0x10f000n, 0x200000n, 0x300000n].map((iova) => dom?.translate(iova)?.pa ?? null);
  };
  const snapshot = (): string => json({ d: host.describe(), fds: p.fds(), dom: domain(), mem: [...p.memory.read(va, 4)] });
  return { platform, host, p, c, g, d, va, scratch, devnull, ev, snapshot };
}

function runRows(snapshot: () => string, rows: readonly Row[]): void {
  for (const [name, call, errno] of rows) {
    const before = snapshot();
    rejects(call, errno, name);
    expect(snapshot(), `${name}: state changed`).toBe(before);
  }
}

describe('type1 container fd: bad input through the system-call surface', () => {
  it('short argsz and short buffers: EINVAL, or EFAULT when the header itself is cut', () => {
    const s = setup();
    const { p, c } = s;
    runRows(s.snapshot, [
      ['GET_INFO argsz 15', () => p.ioctl(c, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: 15 })), 'EINVAL'],
      ['MAP_DMA argsz 31', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P, RW, 31)), 'EINVAL'],
      ['MAP_DMA argsz 0', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P, RW, 0)), 'EINVAL'],
      ['UNMAP_DMA argsz 23', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0x100000n, 0x10000n, 0, 23)), 'EINVAL'],
      // GET_DIRTY_BITMAP needs the vfio_bitmap after the header.
      ['UNMAP_DMA dirty bitmap without room for it', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0x100000n, 0x10000n, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 24)), 'EINVAL'],
      ['DIRTY_PAGES argsz 7', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 7, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START })), 'EINVAL'],
      ['DIRTY_PAGES get bitmap argsz 47', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, getBitmap(0x100000n, 0x10000n, P, 8n, s.scratch, 47)), 'EINVAL'],
      ...[VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_IOMMU_DIRTY_PAGES].map((req): Row =>
        [`request ${req.toString(16)} with a 3-byte buffer`, () => p.ioctl(c, req, new Uint8Array(3)), 'EFAULT']),
      ['MAP_DMA at an unmapped address', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, 0x1000), 'EFAULT'],
    ]);
  });

  it('unknown and conflicting flags', () => {
    const s = setup();
    const { p, c } = s;
    runRows(s.snapshot, [
      ['MAP_DMA flag 8', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P, RW | 8)), 'EINVAL'],
      ['MAP_DMA flag bit 31', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P, RW | 0x80000000)), 'EINVAL'],
      ['MAP_DMA no READ/WRITE', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P, 0)), 'EINVAL'],
      ['MAP_DMA VADDR with READ', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x100000n, s.va, 0x10000n, VFIO_DMA_MAP_FLAG_VADDR | 1)), 'EINVAL'],
      ['UNMAP_DMA flag 8', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0x100000n, 0x10000n, 8)), 'EINVAL'],
      ['UNMAP_DMA ALL with GET_DIRTY_BITMAP', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)), 'EINVAL'],
      ['DIRTY_PAGES no flag', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: 0 })), 'EINVAL'],
      ['DIRTY_PAGES flag 8', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: 8 })), 'EINVAL'],
      ['DIRTY_PAGES START|STOP', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP })), 'EINVAL'],
      // Reading a bitmap while nothing is tracked.
      ['DIRTY_PAGES GET_BITMAP untracked', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, getBitmap(0x100000n, 0x10000n, P, 8n, s.scratch)), 'EINVAL'],
      // A second SET_IOMMU on a container that already has a backend.
      // vfio_ioctl_set_iommu: a container that already has a backend → EINVAL.
      ['SET_IOMMU again', () => p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'EINVAL'],
    ]);
  });

  it('overflow and wrap: IOVA and vaddr ranges, sizes, bitmaps', () => {
    const s = setup(0x14000n);
    const { p, c } = s;
    const top = 1n << 64n;
    p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START }));
    const holey = p.mmap({ length: 3n * P });
    p.munmap(holey + P, P);
    runRows(s.snapshot, [
      ['MAP_DMA size 0', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, 0n)), 'EINVAL'],
      ['MAP_DMA iova wraps', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(top - P, s.va, 2n * P)), 'EINVAL'],
      ['MAP_DMA vaddr wraps', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, top - P, 2n * P)), 'EINVAL'],
      ['MAP_DMA size 2^64-4096', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0n, s.va, top - P)), 'EINVAL'],
      ['MAP_DMA iova past the aperture', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(1n << 60n, s.va, P)), 'EINVAL'],
      ['MAP_DMA unaligned size', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P + 1n)), 'EINVAL'],
      ['MAP_DMA overlapping an existing mapping', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x10f000n, s.va, 2n * P)), 'EEXIST'],
      // Pins taken before the failure are undone: the hole in the middle faults, the first page is released.
      ['MAP_DMA over an unmapped page', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, holey, 3n * P)), 'EFAULT'],
      ['MAP_DMA of unmapped memory', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, 0x7000_0000_0000n, P)), 'EFAULT'],
      // 17 pages locked already; the limit is 20 pages: 4 more pages pin three, then fail and release them.
      ['MAP_DMA over RLIMIT_MEMLOCK', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va + 0x11000n, 4n * P)), 'ENOMEM'],
      ['UNMAP_DMA size 0', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0x100000n, 0n)), 'EINVAL'],
      ['UNMAP_DMA wraps', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(top - P, 2n * P)), 'EINVAL'],
      ['UNMAP_DMA unaligned', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0x100800n, P)), 'EINVAL'],
      ['UNMAP_DMA bisecting a mapping', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0x104000n, P)), 'EINVAL'],
      ['UNMAP_DMA ALL with a size', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, P, VFIO_DMA_UNMAP_FLAG_ALL)), 'EINVAL'],
      ['GET_BITMAP iova + size wraps', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, getBitmap(top - P, 2n * P, P, 8n, s.scratch)), 'EINVAL'],
      ['GET_BITMAP size 0', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, getBitmap(0x100000n, 0n, P, 8n, s.scratch)), 'EINVAL'],
      ['GET_BITMAP wrong pgsize', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, getBitmap(0x100000n, 0x10000n, 2n * P, 8n, s.scratch)), 'EINVAL'],
      ['GET_BITMAP bitmap too small', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, getBitmap(0x100000n, 0x10000n * 64n, P, 8n, s.scratch)), 'EINVAL'],
      ['GET_BITMAP bisecting a mapping', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, getBitmap(0x104000n, P, P, 8n, s.scratch)), 'EINVAL'],
    ]);
  });

  it('wrong fd types: container requests on other files, other files where a container is expected', () => {
    const s = setup();
    const { p, c, g, d } = s;
    const containerReqs: [string, number, Uint8Array][] = [
      ['GET_INFO', VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: 16 })],
      ['MAP_DMA', VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P)],
      ['UNMAP_DMA', VFIO_IOMMU_UNMAP_DMA, unmap(0x100000n, 0x10000n)],
      ['DIRTY_PAGES', VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START })],
    ];
    const fresh = p.open('/dev/vfio/vfio');
    runRows(s.snapshot, [
      ...containerReqs.flatMap(([name, req, arg]): Row[] => [
        [`${name} on the group`, () => p.ioctl(g, req, arg.slice()), 'ENOTTY'],
        [`${name} on /dev/null`, () => p.ioctl(s.devnull, req, arg.slice()), 'ENOTTY'],
        [`${name} on an eventfd`, () => p.ioctl(s.ev, req, arg.slice()), 'ENOTTY'],
        // A container with no backend yet answers EINVAL to everything it does not know.
        [`${name} on a container without a backend`, () => p.ioctl(fresh, req, arg.slice()), 'EINVAL'],
      ]),
      // On a device fd these numbers are device requests (112 = HOT_RESET_INFO, 113 = PCI_HOT_RESET, 114 =
      // QUERY_GFX_PLANE): a driver without an ioctl op answers EINVAL.
      ['GET_INFO on the device', () => p.ioctl(d, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: 16 })), 'EINVAL'],
      ['MAP_DMA on the device', () => p.ioctl(d, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P)), 'EINVAL'],
      ['UNMAP_DMA on the device', () => p.ioctl(d, VFIO_IOMMU_UNMAP_DMA, unmap(0x100000n, 0x10000n)), 'EINVAL'],
      ['GET_API_VERSION on the group', () => p.ioctl(g, VFIO_GET_API_VERSION), 'ENOTTY'],
      ['SET_IOMMU on the group', () => p.ioctl(g, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'ENOTTY'],
      ['CHECK_EXTENSION on /dev/null', () => p.ioctl(s.devnull, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 'ENOTTY'],
      ['group request on the container', () => p.ioctl(c, VFIO_GROUP_GET_STATUS, new Uint8Array(8).fill(8, 0, 1)), 'ENOTTY'],
      ['device request on the container', () => p.ioctl(c, VFIO_DEVICE_GET_INFO, new Uint8Array(24).fill(24, 0, 1)), 'ENOTTY'],
      // vfio_group_ioctl_set_container checks "already has a container" (EINVAL) before the fd's type (EBADFD).
      ['SET_CONTAINER with a device fd', () => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(d)), 'EINVAL'],
      ['SET_CONTAINER with an eventfd', () => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(s.ev)), 'EINVAL'],
      ['SET_CONTAINER with /dev/null on an attached group', () => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(s.devnull)), 'EINVAL'],
      ['mmap of the container', () => p.mmap({ length: 0x1000, fd: c }), 'ENODEV'],
    ]);
  });

  it('use after close: EBADF on the closed fd; the container lives on while its group holds it', () => {
    const s = setup();
    const { p, c, g, host } = s;
    p.close(c);
    runRows(s.snapshot, [
      ['MAP_DMA', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x400000n, s.va, P)), 'EBADF'],
      ['UNMAP_DMA', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0x100000n, 0x10000n)), 'EBADF'],
      ['GET_INFO', () => p.ioctl(c, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: 16 })), 'EBADF'],
      ['DIRTY_PAGES', () => p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: 1 })), 'EBADF'],
      ['CHECK_EXTENSION', () => p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 'EBADF'],
      ['SET_CONTAINER with the closed fd', () => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c)), 'EBADF'],
      ['close again', () => { p.close(c); }, 'EBADF'],
    ]);
    const containers = host.describe().containers as { iommu: { mappings: number; lockedPages: number } }[];
    expect(containers[0]!.iommu).toMatchObject({ mappings: 2, lockedPages: 17 });
  });

  it('closing the last group releases the backend: the container fd then has none (EINVAL) and nothing stays pinned', async () => {
    const s = setup();
    const { p, c, g, d, host } = s;
    p.close(d);
    p.close(g);
    // The device and group release may run after close returns: wait for the backend to go.
    for (let i = 0; i < 100 && (host.describe().containers as { groups: number[] }[])[0]?.groups.length; i++) {
      await new Promise<void>((r) => { setImmediate(r); });
    }
    expect(host.describe().processes[0]!.lockedPages).toBe(0);
    const before = s.snapshot();
    rejects(() => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x100000n, s.va, P)), 'EINVAL');
    rejects(() => p.ioctl(c, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: 16 })), 'EINVAL');
    expect(s.snapshot()).toBe(before);
  });

  it('structured fuzz: MAP/UNMAP/DIRTY_PAGES with boundary values; every refused call leaves the host as it was', () => {
    const top = 1n << 64n;
    const iovas = [0n, 0x100000n, 0x10f000n, 0x110000n, 0x200000n, 0x400000n, 0xfee00000n, 1n << 48n, top - P, top - 1n, 0x100800n];
    const sizes = [0n, 1n, P, 2n * P, 0x10000n, 0x20000n, top - P, 1n << 63n, P + 1n];
    const flagsArb = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 7, 8), fc.integer({ min: 0, max: 0xffffffff }));
    const op = fc.record({
      kind: fc.constantFrom('map' as const, 'unmap' as const, 'dirty' as const, 'bitmap' as const),
      iova: fc.constantFrom(...iovas),
      size: fc.constantFrom(...sizes),
      vaddr: fc.nat(5),
      flags: flagsArb,
      argsz: fc.constantFrom(0, 8, 23, 24, 31, 32, 40, 47, 48, 0xffffffff),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 20 }), (ops) => {
        const s = setup(0x18000n);
        const { p, c } = s;
        const holey = p.mmap({ length: 3n * P });
        p.munmap(holey + P, P);
        const vaddrs = [s.va, s.va + 0x10000n, holey, 0n, top - P, 0x7000_0000_0000n];
        for (const o of ops) {
          let arg: Uint8Array;
          let req: number;
          if (o.kind === 'map') {
            req = VFIO_IOMMU_MAP_DMA;
            arg = map(o.iova, vaddrs[o.vaddr]!, o.size, o.flags & 0xf, o.argsz);
          } else if (o.kind === 'unmap') {
            req = VFIO_IOMMU_UNMAP_DMA;
            // Unmapping everything is legal; keep one of the two ranges out of reach so the check has work.
            if ((o.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0 || (o.iova <= 0x100000n && o.iova + o.size > 0x100000n)) continue;
            arg = unmap(o.iova, o.size, o.flags & 0x7, Math.min(o.argsz, 48));
            if (arg.length < 48) {
              const big = new Uint8Array(48);
              big.set(arg);
              arg = big;
            }
          } else if (o.kind === 'dirty') {
            req = VFIO_IOMMU_DIRTY_PAGES;
            arg = vfioIommuType1DirtyBitmap.encode({ argsz: o.argsz, flags: o.flags & 0xf });
          } else {
            req = VFIO_IOMMU_DIRTY_PAGES;
            arg = getBitmap(o.iova, o.size, o.vaddr === 0 ? P : 2n * P, BigInt(o.argsz & 0xff), s.scratch, o.argsz);
          }
          const before = s.snapshot();
          try {
            p.ioctl(c, req, arg);
          } catch (e) {
            if (!(e instanceof SysError)) throw e;
            expect(s.snapshot(), `${o.kind} refused with ${e.errno} but changed the host`).toBe(before);
          }
        }
        const containers = s.host.describe().containers as { iommu: { mappings: number; lockedPages: number } }[];
        const { mappings, lockedPages } = containers[0]!.iommu;
        expect(mappings).toBeGreaterThanOrEqual(1);
        // Locked pages are what the mappings pin: never more than the limit (0x18000 = 24 pages).
        expect(lockedPages).toBeLessThanOrEqual(24);
      }),
      { numRuns: 150 },
    );
  });
});

describe('type1 ioctl fuzz', () => {
  it('random VFIO requests and buffers on every fd type throw only SysError and leave the mappings intact', () => {
    const argArb = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 64 }),
      fc.integer({ min: -2, max: 0xffff }),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(5), fc.integer({ min: 0, max: 40 }), argArb, fc.boolean()), { minLength: 1, maxLength: 30 }),
        (calls) => {
          const s = setup();
          const { p } = s;
          const targets = [s.c, s.g, s.d, s.ev, s.devnull, p.open('/dev/vfio/vfio')];
          // Protect the two existing mappings: any call that would legitimately unmap them is skipped below.
          for (const [t, n, arg0, fixArgsz] of calls) {
            const req = (VFIO_TYPE << 8) | (100 + n);
            let arg = arg0;
            if (arg instanceof Uint8Array && fixArgsz && arg.length >= 4) {
              arg = arg.slice();
              new DataView(arg.buffer).setUint32(0, arg.length, true);
            }
            if (req === VFIO_IOMMU_UNMAP_DMA || (req === VFIO_GROUP_SET_CONTAINER) || n === 5) continue;
            const before = s.snapshot();
            try {
              p.ioctl(targets[t]!, req | 0, arg);
            } catch (e) {
              if (!(e instanceof SysError)) throw e;
              // A refused call changes nothing.
              expect(s.snapshot()).toBe(before);
            }
          }
          const containers = s.host.describe().containers as { iommu: { mappings: number } | null }[];
          expect(containers[0]!.iommu?.mappings).toBeGreaterThanOrEqual(2);
          // The backend still answers.
          const info = vfioIommuType1Info.encode({ argsz: 16 });
          expect(p.ioctl(s.c, VFIO_IOMMU_GET_INFO, info)).toBe(0);
          rejects(() => p.ioctl(s.c, VFIO_IOMMU_MAP_DMA, map(0x100000n, s.va, P)), 'EEXIST');
        },
      ),
      { numRuns: 80 },
    );
  });
});

