/**
 * A fuzz of the device cdev and /dev/iommu together (common rules): random VFIO and iommufd requests from uapi's
 * IOCTLS table (and random numbers) with random buffers, on a bound cdev, an unbound cdev, /dev/iommu and an
 * eventfd. Only SysError may come out; a refused call leaves the host (devices, bindings, open files, pinned
 * pages) exactly as it was; and closing every fd afterwards releases every pin.
 */
import { createHost } from '@vfio-ts/core';
import type { HostPlugin } from '@vfio-ts/core';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  IOCTLS,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  SysError,
  iommuIoasAlloc,
  iommuIoasMap,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { iommufd } from '../src/index.js';
import { attachIommufdPt, bindIommufd } from '../src/cdev.js';

const A = '0000:00:03.0';
const B = '0000:00:04.0';
const PAGE = 4096n;

function fn() {
  const config = new Uint8Array(256);
  config.set([0x34, 0x12, 0x78, 0x56], 0);
  return pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
}

/** A VFIO bus driver with the stock iommufd ops and no ioctl op of its own. */
function driver(): HostPlugin {
  return {
    name: 'vfio-fuzz',
    setup(api) {
      api.registerPciDriver({
        name: 'vfio-fuzz',
        driverManagedDma: true,
        probe(pdev) {
          api.registerGroupDevice(api.allocDevice({ name: pdev.bdf, data: undefined, ops: { name: 'vfio-fuzz' } }));
        },
        async remove() {},
      });
    },
  };
}

function setup() {
  const platform = simPlatform({ iommu: 'vtd', devices: [A, B].map((bdf) => ({ bdf, fn: fn(), driver: 'vfio-fuzz' })) });
  const host = createHost({ platform, plugins: [iommufd(), driver()] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n << 20n });
  const index = (bdf: string): string => p.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`)[0]!;
  const ifd = p.open('/dev/iommu');
  const dev = p.open(`/dev/vfio/devices/${index(A)}`);
  const unbound = p.open(`/dev/vfio/devices/${index(B)}`);
  bindIommufd(p, dev, ifd);
  const alloc = iommuIoasAlloc.encode({ size: 12 });
  p.ioctl(ifd, IOMMU_IOAS_ALLOC, alloc);
  const ioas = iommuIoasAlloc.decode(alloc).out_ioas_id;
  attachIommufdPt(p, dev, ioas);
  const buf = p.mmap({ length: 8n * PAGE });
  p.ioctl(ifd, IOMMU_IOAS_MAP, iommuIoasMap.encode({
    size: 40, flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, user_va: buf, length: 4n * PAGE, iova: 1n << 20n,
  }));
  const scratch = p.mmap({ length: PAGE });
  const ev = p.eventfd(0);
  const pins = (): number[] => {
    const out: number[] = [];
    for (let i = 0n; i < 8n; i++) {
      const page = p.mm.lookup(buf + i * PAGE);
      out.push(page ? platform.memory.pinCount(page.pfn) : -1);
    }
    return out;
  };
  const snapshot = (): string => JSON.stringify({ h: host.describe(), fds: p.fds(), pins: pins() });
  return { p, ifd, dev, unbound, ev, ioas, buf, scratch, pins, snapshot };
}

const REQUESTS = [...new Set(IOCTLS.map((i) => i.request))];

describe('cdev + /dev/iommu fuzz', () => {
  it('only SysErrors; refused calls change nothing; closing everything releases every pin', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            fd: fc.nat(3),
            request: fc.oneof(fc.constantFrom(...REQUESTS), fc.integer({ min: 0, max: 0xffffffff })),
            bytes: fc.uint8Array({ minLength: 0, maxLength: 64 }),
            size: fc.constantFrom(-1, 8, 12, 16, 24, 32, 40, 48),
            ids: fc.constantFrom(0, 1, 2, 3),
            pointer: fc.boolean(),
          }),
          { minLength: 1, maxLength: 25 },
        ),
        (calls) => {
          const s = setup();
          const { p } = s;
          expect(s.pins().slice(0, 4)).toEqual([1, 1, 1, 1]);
          const targets = [s.dev, s.ifd, s.unbound, s.ev];
          for (const c of calls) {
            const b = new Uint8Array(Math.max(64, c.bytes.length));
            b.set(c.bytes);
            const dv = new DataView(b.buffer);
            if (c.size >= 0) dv.setUint32(0, c.size, true);
            // Plausible ids (the IOAS, the device) some of the time, so calls get past the lookups.
            if (c.ids > 0) dv.setUint32(4 * c.ids, s.ioas, true);
            let arg: Uint8Array | bigint = b;
            if (c.pointer) {
              p.memory.write(s.scratch, b);
              arg = s.scratch;
            }
            const before = s.snapshot();
            try {
              p.ioctl(targets[c.fd]!, c.request | 0, arg);
            } catch (e) {
              if (!(e instanceof SysError)) throw e;
              expect(s.snapshot(), `request 0x${(c.request >>> 0).toString(16)} refused with ${e.errno} but changed the host`).toBe(before);
            }
          }
          for (const fd of p.fds()) p.close(fd);
          expect(s.pins().every((n) => n <= 0)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});
