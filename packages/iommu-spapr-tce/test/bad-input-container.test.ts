/**
 * Bad input at every sPAPR TCE container entry point through the system-call surface (common rules): short argsz
 * and short buffers, unknown flags, overflow and wrap, wrong fd types and use after close. Each row checks the
 * errno of Linux 6.12's tce_iommu_ioctl / vfio_spapr_iommu_eeh_ioctl, that the error is a SysError, and that the
 * container (windows, pre-registered memory, TCEs as the device sees them, open files) is unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost } from '@vfio-ts/core';
import type { HostPlugin, HostPluginApi, Process } from '@vfio-ts/core';
import type { PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { pciFunctionFromConfig, simPlatform, spaprTableGroupOf } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_GET_INFO,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_OP,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO,
  VFIO_IOMMU_SPAPR_TCE_REMOVE,
  VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  VFIO_TYPE,
  vfioEehPeOp,
  vfioIommuSpaprRegisterMemory,
  vfioIommuSpaprTceCreate,
  vfioIommuSpaprTceInfo,
  vfioIommuSpaprTceRemove,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import { spaprTce } from '../src/index.js';

const BDF = '0000:00:03.0';
const MiB = 1n << 20n;
const P = 0x1000n; // the TCE page size of the default window (and of the second one created here)
const RW = 3;

type Row = readonly [name: string, call: () => unknown, errno: string];

/** A DMA engine: a PCI function that reads and writes bus addresses through the context the bus hands it. */
class DmaEngine implements PciFunction {
  private readonly cfg: PciFunction;
  private ctx: PciFunctionContext | undefined;

  constructor() {
    const config = new Uint8Array(256);
    config.set([0x34, 0x12, 0x11, 0x11], 0); // 1234:1111
    config.set([0x00, 0x00, 0xff, 0x00], 8); // class 00ff00
    this.cfg = pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
  }

  get bars(): readonly PciBarInfo[] {
    return this.cfg.bars;
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    return this.cfg.configRead(offset, size);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.cfg.configWrite(offset, size, value);
  }

  attach(ctx: PciFunctionContext): void {
    this.ctx = ctx;
  }

  /** A DMA read of `length` bytes at bus address `addr` (device ← memory). */
  dmaRead(addr: bigint, length: number): Uint8Array {
    return this.ctx!.dma.read(addr, length);
  }

  /** A DMA write at bus address `addr` (device → memory). */
  dmaWrite(addr: bigint, data: Uint8Array): void {
    this.ctx!.dma.write(addr, data);
  }
}

/** A tiny VFIO bus driver: every probed function becomes a VFIO device in its IOMMU group. */
function miniVfio(): HostPlugin {
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

const reg = (vaddr: bigint, size: bigint, flags = 0, argsz = 24): Uint8Array =>
  vfioIommuSpaprRegisterMemory.encode({ argsz, flags, vaddr, size });
const map = (iova: bigint, vaddr: bigint, size: bigint, flags = RW, argsz = 32): Uint8Array =>
  vfioIommuType1DmaMap.encode({ argsz, flags, vaddr, iova, size });
const unmap = (iova: bigint, size: bigint, flags = 0, argsz = 24): Uint8Array =>
  vfioIommuType1DmaUnmap.encode({ argsz, flags, iova, size });
const create = (pageShift: number, windowSize: bigint, levels: number, flags = 0, argsz = 40): Uint8Array =>
  vfioIommuSpaprTceCreate.encode({ argsz, flags, page_shift: pageShift, window_size: windowSize, levels });
const remove = (start: bigint, flags = 0, argsz = 16): Uint8Array => vfioIommuSpaprTceRemove.encode({ argsz, flags, start_addr: start });
const eeh = (op: number, flags = 0, argsz = 40): Uint8Array => vfioEehPeOp.encode({ argsz, flags, op });

/**
 * A POWER host, a v2 container with 1 MiB pre-registered, the default window holding a 4-page mapping at 0, a
 * second 4 KiB-page window, and the device opened.
 */
function setup() {
  const dev = new DmaEngine();
  const platform = simPlatform({ iommu: 'spapr', devices: [{ bdf: BDF, fn: dev, driver: 'mini-vfio' }] });
  const host = createHost({ platform, plugins: [spaprTce(), miniVfio()] });
  const group = platform.pci.device(BDF)!.iommuGroup!;
  const pe = spaprTableGroupOf(group)!;
  const p: Process = host.spawn({ uid: 0, capabilities: [], memlockLimit: 256n * MiB });
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${group.id}`);
  p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
  p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU);
  const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${BDF}\0`));
  const va = p.mmap({ length: MiB });
  p.memory.write(va, new Uint8Array([9, 8, 7, 6]));
  p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(va, MiB));
  p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0n, va, 4n * P));
  const cb = create(12, 1n << 30n, 1);
  p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, cb);
  const win2 = vfioIommuSpaprTceCreate.decode(cb).start_addr;
  p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(win2, va + 4n * P, P));
  const unregistered = p.mmap({ length: MiB });
  const devnull = p.open('/dev/null');
  const ev = p.eventfd(0);
  const seen = (iova: bigint): string => {
    try {
      return [...dev.dmaRead(iova, 4)].join(',');
    } catch (e) {
      if (e instanceof SysError) return e.errno;
      throw e;
    }
  };
  // Only mapped IOVAs are probed: a DMA fault would freeze the PE (EEH) and change the state under test.
  const snapshot = (): string =>
    json({ h: host.describe(), fds: p.fds(), dma: [0n, 3n * P, win2].map(seen) });
  return { host, p, c, g, d, va, win2, unregistered, devnull, ev, pe, snapshot };
}

function runRows(snapshot: () => string, rows: readonly Row[]): void {
  for (const [name, call, errno] of rows) {
    const before = snapshot();
    rejects(call, errno, name);
    expect(snapshot(), `${name}: state changed`).toBe(before);
  }
}

describe('sPAPR TCE container fd: bad input through the system-call surface', () => {
  it('short argsz and short buffers', () => {
    const s = setup();
    const { p, c } = s;
    runRows(s.snapshot, [
      ['GET_INFO argsz 15', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_GET_INFO, vfioIommuSpaprTceInfo.encode({ argsz: 15 })), 'EINVAL'],
      ['MAP_DMA argsz 31', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va, P, RW, 31)), 'EINVAL'],
      ['UNMAP_DMA argsz 23', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, 4n * P, 0, 23)), 'EINVAL'],
      ['REGISTER_MEMORY argsz 23', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(s.unregistered, P, 0, 23)), 'EINVAL'],
      ['UNREGISTER_MEMORY argsz 23', () => p.ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(s.va, MiB, 0, 23)), 'EINVAL'],
      ['TCE_CREATE argsz 39', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, create(16, 1n << 30n, 1, 0, 39)), 'EINVAL'],
      ['TCE_REMOVE argsz 15', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(s.win2, 0, 15)), 'EINVAL'],
      ['EEH_PE_OP argsz 11', () => p.ioctl(c, VFIO_EEH_PE_OP, eeh(VFIO_EEH_PE_GET_STATE, 0, 11)), 'EINVAL'],
      ...[VFIO_IOMMU_SPAPR_TCE_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
        VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, VFIO_IOMMU_SPAPR_TCE_CREATE, VFIO_IOMMU_SPAPR_TCE_REMOVE, VFIO_EEH_PE_OP,
      ].map((req): Row => [`request ${req.toString(16)} with a 3-byte buffer`, () => p.ioctl(c, req, new Uint8Array(3)), 'EFAULT']),
      ['MAP_DMA by value', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, 0), 'EFAULT'],
    ]);
  });

  it('unknown flags', () => {
    const s = setup();
    const { p, c } = s;
    runRows(s.snapshot, [
      ['MAP_DMA flag 4', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va, P, RW | 4)), 'EINVAL'],
      ['MAP_DMA flag bit 31', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va, P, RW | 0x80000000)), 'EINVAL'],
      ['MAP_DMA no direction', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va, P, 0)), 'EINVAL'],
      ['UNMAP_DMA flag 1', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, 4n * P, 1)), 'EINVAL'],
      ['UNMAP_DMA ALL (type1 only)', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, 0n, 2)), 'EINVAL'],
      ['REGISTER_MEMORY flag 1', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(s.unregistered, P, 1)), 'EINVAL'],
      ['UNREGISTER_MEMORY flag 1', () => p.ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(s.va, MiB, 1)), 'EINVAL'],
      ['TCE_CREATE flag 1', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, create(16, 1n << 30n, 1, 1)), 'EINVAL'],
      ['TCE_REMOVE flag 1', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(s.win2, 1)), 'EINVAL'],
      ['EEH_PE_OP flag 1', () => p.ioctl(c, VFIO_EEH_PE_OP, eeh(VFIO_EEH_PE_GET_STATE, 1)), 'EINVAL'],
      ['EEH_PE_OP unknown op', () => p.ioctl(c, VFIO_EEH_PE_OP, eeh(0x7fff)), 'EINVAL'],
      // v1-only requests on a v2 container fall through to ENOTTY.
      ['ENABLE on v2', () => p.ioctl(c, VFIO_IOMMU_ENABLE), 'ENOTTY'],
      ['DISABLE on v2', () => p.ioctl(c, VFIO_IOMMU_DISABLE), 'ENOTTY'],
    ]);
  });

  it('overflow and wrap', () => {
    const s = setup();
    const { p, c } = s;
    const top = 1n << 64n;
    runRows(s.snapshot, [
      ['REGISTER_MEMORY vaddr + size wraps', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(top - P, 2n * P)), 'EINVAL'],
      ['REGISTER_MEMORY unaligned vaddr', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(s.unregistered + 0x800n, P)), 'EINVAL'],
      ['REGISTER_MEMORY unaligned size', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(s.unregistered, P + 1n)), 'EINVAL'],
      // mm_iommu_new: a range overlapping a registration is EINVAL; the same range again is EBUSY.
      ['REGISTER_MEMORY overlapping a registration', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(s.va + P, P)), 'EINVAL'],
      ['REGISTER_MEMORY of the same range twice', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(s.va, MiB)), 'EBUSY'],
      // Pinning runs before the overlap check: a range running into unmapped memory faults.
      ['REGISTER_MEMORY over unmapped memory', () => p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(0x7000_0000_0000n, P)), 'EFAULT'],
      ['UNREGISTER_MEMORY unaligned', () => p.ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(s.va + 0x800n, P)), 'EINVAL'],
      ['UNREGISTER_MEMORY of nothing registered', () => p.ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(s.unregistered, P)), 'ENOENT'],
      ['MAP_DMA outside every window', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(top - P, s.va, P)), 'ENXIO'],
      ['MAP_DMA unaligned size', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va, P + 0x800n)), 'EINVAL'],
      ['MAP_DMA unaligned vaddr', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va + 0x800n, P)), 'EINVAL'],
      ['MAP_DMA past the end of the window', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(0x8000_0000n - P, s.va, 2n * P)), 'EINVAL'],
      ['MAP_DMA size near 2^64', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va, top - P)), 'EINVAL'],
      ['UNMAP_DMA outside every window', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(top - P, P)), 'ENXIO'],
      ['UNMAP_DMA unaligned size', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, P + 1n)), 'EINVAL'],
      ['UNMAP_DMA size near 2^64', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, top - P)), 'EINVAL'],
      // tce_iommu_find_free_table runs first: with both windows in use even a bad page shift is ENOSPC.
      ['TCE_CREATE with every window in use', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, create(13, 1n << 30n, 1)), 'ENOSPC'],
      ['TCE_CREATE window_size 2^64-1', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, create(12, top - 1n, 1)), 'ENOSPC'],
      // tce_iommu_find_table takes any address inside a window; one between the windows matches none.
      ['TCE_REMOVE of no window', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(0x9000_0000n)), 'EINVAL'],
      ['TCE_REMOVE start ~0', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(top - 1n)), 'EINVAL'],
    ]);
  });

  it('wrong fd types', () => {
    const s = setup();
    const { p, g, d } = s;
    const reqs: [string, number, Uint8Array][] = [
      ['GET_INFO', VFIO_IOMMU_SPAPR_TCE_GET_INFO, vfioIommuSpaprTceInfo.encode({ argsz: 32 })],
      ['REGISTER_MEMORY', VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(s.unregistered, P)],
      ['TCE_CREATE', VFIO_IOMMU_SPAPR_TCE_CREATE, create(16, 1n << 30n, 1)],
      ['TCE_REMOVE', VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(s.win2)],
      ['EEH_PE_OP', VFIO_EEH_PE_OP, eeh(VFIO_EEH_PE_GET_STATE)],
    ];
    const fresh = p.open('/dev/vfio/vfio');
    runRows(s.snapshot, [
      ...reqs.flatMap(([name, req, arg]): Row[] => [
        [`${name} on the group`, () => p.ioctl(g, req, arg.slice()), 'ENOTTY'],
        [`${name} on /dev/null`, () => p.ioctl(s.devnull, req, arg.slice()), 'ENOTTY'],
        [`${name} on an eventfd`, () => p.ioctl(s.ev, req, arg.slice()), 'ENOTTY'],
        [`${name} on a container without a backend`, () => p.ioctl(fresh, req, arg.slice()), 'EINVAL'],
      ]),
      // The sPAPR numbers 112, 117-121 are device requests on a device fd; this driver has no ioctl op.
      ['GET_INFO on the device', () => p.ioctl(d, VFIO_IOMMU_SPAPR_TCE_GET_INFO, vfioIommuSpaprTceInfo.encode({ argsz: 32 })), 'EINVAL'],
      ['device request on the container', () => p.ioctl(s.c, VFIO_DEVICE_GET_INFO, new Uint8Array(24).fill(24, 0, 1)), 'ENOTTY'],
      ['group request on the container', () => p.ioctl(s.c, VFIO_GROUP_GET_STATUS, new Uint8Array(8).fill(8, 0, 1)), 'ENOTTY'],
    ]);
  });

  it('use after close: EBADF, and the container lives on through its group', () => {
    const s = setup();
    const { p, c } = s;
    p.close(c);
    runRows(s.snapshot, [
      ['MAP_DMA', () => p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(4n * P, s.va, P)), 'EBADF'],
      ['UNMAP_DMA', () => p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(0n, 4n * P)), 'EBADF'],
      ['TCE_REMOVE', () => p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(s.win2)), 'EBADF'],
      ['UNREGISTER_MEMORY', () => p.ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(s.va, MiB)), 'EBADF'],
      ['EEH_PE_OP', () => p.ioctl(c, VFIO_EEH_PE_OP, eeh(VFIO_EEH_PE_GET_STATE)), 'EBADF'],
      ['close again', () => { p.close(c); }, 'EBADF'],
    ]);
  });
});

describe('sPAPR ioctl fuzz', () => {
  it('random requests and buffers on every fd type throw only SysError and the container keeps working', () => {
    const argArb = fc.oneof(fc.uint8Array({ maxLength: 48 }), fc.integer({ min: -2, max: 0xffff }), fc.constant(undefined));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(4), fc.integer({ min: 0, max: 40 }), argArb, fc.boolean()), { minLength: 1, maxLength: 25 }), (calls) => {
        const s = setup();
        const { p } = s;
        const targets = [s.c, s.g, s.d, s.ev, s.devnull];
        for (const [t, n, arg0, fixArgsz] of calls) {
          // UNSET_CONTAINER (105) legitimately tears the container down; skip it.
          if (n === 5) continue;
          let arg = arg0;
          if (arg instanceof Uint8Array && fixArgsz && arg.length >= 4) {
            arg = arg.slice();
            new DataView(arg.buffer).setUint32(0, arg.length, true);
          }
          const before = s.snapshot();
          try {
            p.ioctl(targets[t]!, (VFIO_TYPE << 8) | (100 + n), arg);
          } catch (e) {
            if (!(e instanceof SysError)) throw e;
            // A refused call changes nothing.
            expect(s.snapshot()).toBe(before);
          }
        }
        const info = vfioIommuSpaprTceInfo.encode({ argsz: 32 });
        expect(p.ioctl(s.c, VFIO_IOMMU_SPAPR_TCE_GET_INFO, info)).toBe(0);
        expect(vfioIommuSpaprTceInfo.decode(info).dma32_window_size).toBeGreaterThan(0);
      }),
      { numRuns: 60 },
    );
  });
});

describe('sPAPR structured fuzz', () => {
  it('MAP/UNMAP/REGISTER/UNREGISTER/CREATE/REMOVE with boundary values: a refused call changes nothing', () => {
    const top = 1n << 64n;
    const op = fc.record({
      kind: fc.constantFrom('map' as const, 'unmap' as const, 'reg' as const, 'unreg' as const, 'create' as const, 'remove' as const),
      iova: fc.constantFrom(0n, P, 3n * P, 4n * P, 0x7fff_f000n, 0x8000_0000n, 1n << 59n, (1n << 59n) + P, top - P),
      size: fc.constantFrom(0n, 1n, P, 2n * P, 4n * P, MiB, 2n * MiB, top - P),
      vaddr: fc.nat(4),
      flags: fc.constantFrom(0, 1, 2, 3, 4, 0x80000000),
      shift: fc.constantFrom(12, 16, 21, 13, 64),
      levels: fc.constantFrom(0, 1, 2, 5, 6),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 15 }), (ops) => {
        const s = setup();
        const { p, c } = s;
        const vaddrs = [s.va, s.va + 4n * P, s.unregistered, 0x7000_0000_0000n, top - P];
        // The TCEs themselves: every used entry of every window with the user address behind it.
        const tces = (): unknown =>
          [0n, s.win2, 1n << 59n].map((start) => {
            const t = s.pe.windowAt(start);
            return t ? t.usedEntries(t.offset, t.size).map((i) => [i, String(t.getUserspaceEntry(i))]) : null;
          });
        const snap = (): string => json({ h: s.host.describe(), fds: p.fds(), tces: tces() });
        expect((tces() as unknown[][])[0]).toHaveLength(4);
        for (const o of ops) {
          const va = vaddrs[o.vaddr]!;
          const call = (): unknown => {
            switch (o.kind) {
              case 'map': return p.ioctl(c, VFIO_IOMMU_MAP_DMA, map(o.iova, va, o.size, o.flags & 7 || RW));
              case 'unmap': return p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, unmap(o.iova, o.size, o.flags === 1 ? 1 : 0));
              case 'reg': return p.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(va, o.size, o.flags === 1 ? 1 : 0));
              case 'unreg': return p.ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(va, o.size, o.flags === 1 ? 1 : 0));
              case 'create': return p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, create(o.shift, o.size, o.levels, o.flags === 1 ? 1 : 0));
              default: return p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(o.iova, o.flags === 1 ? 1 : 0));
            }
          };
          const before = snap();
          try {
            call();
          } catch (e) {
            if (!(e instanceof SysError)) throw e;
            expect(snap(), `${o.kind} refused with ${e.errno} but changed the host`).toBe(before);
          }
        }
        const info = vfioIommuSpaprTceInfo.encode({ argsz: 32 });
        expect(p.ioctl(c, VFIO_IOMMU_SPAPR_TCE_GET_INFO, info)).toBe(0);
      }),
      { numRuns: 120 },
    );
  });
});
