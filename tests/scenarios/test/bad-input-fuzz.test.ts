/**
 * Bad input never crashes and never corrupts state, across the whole stack (core + type1 + vfio-pci on the
 * simulated host): random requests — every VFIO/iommufd request number from uapi's IOCTLS table and random ones —
 * with random buffers, integers and pointers, plus random read/write/pread/pwrite/mmap, on every kind of fd a
 * process holds (container, group, vfio-pci device, a backend-less container, eventfd, /dev/null, a sysfs file).
 * Only SysError may come out; afterwards the DMA mapping, the locked pages and the device still work as before.
 */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { vfioPci } from '@vfio-ts/pci';
import { simPlatform } from '@vfio-ts/sim';
import {
  IOCTLS,
  SysError,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1v2_IOMMU,
  vfioIommuType1DmaMap,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dmaTestFunction, REG } from './fixtures.js';

const BDF = '0000:00:03.0';
const IOVA = 0x100000n;

function setup() {
  const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: dmaTestFunction(), driver: 'vfio-pci' }] });
  const host = createHost({ platform, plugins: [type1(), vfioPci()] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n << 20n });
  const fds = openVfioDevice(p, { group: platform.pci.device(BDF)!.iommuGroup!.id, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
  const va = p.mmap({ length: 0x10000 });
  p.ioctl(fds.container, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({
    argsz: 32, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr: va, iova: IOVA, size: 0x10000n,
  }));
  const scratch = p.mmap({ length: 0x1000 });
  const targets = [
    fds.container,
    fds.group,
    fds.device,
    p.open('/dev/vfio/vfio'),
    p.eventfd(0),
    p.open('/dev/null'),
    p.open(`/sys/bus/pci/devices/${BDF}/vendor`, 0),
  ];
  return { host, p, ...fds, va, scratch, targets };
}

/** Drives the device's DMA engine through BAR0: write `value` at IOVA + `offset`; STATUS 0 means it landed. */
function deviceDma(p: ReturnType<typeof setup>['p'], device: number, offset: bigint, value: bigint): number {
  const le64 = (v: bigint): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  // The fuzz may have reset the function: turn memory decode and bus mastering back on, as a driver would.
  p.pwrite(device, new Uint8Array([0x06, 0x00]), vfioPciOffset(7) + 4n);
  p.pwrite(device, le64(IOVA + offset), vfioPciOffset(0) + BigInt(REG.ADDR));
  // vfio-pci splits an 8-byte BAR write into dwords and the engine fires on the low one: high half first.
  p.pwrite(device, le64(value).subarray(4), vfioPciOffset(0) + BigInt(REG.WRITE + 4));
  p.pwrite(device, le64(value), vfioPciOffset(0) + BigInt(REG.WRITE));
  return new DataView(p.pread(device, 4, vfioPciOffset(0) + BigInt(REG.STATUS)).buffer).getUint32(0, true);
}

const REQUESTS = [...new Set(IOCTLS.map((i) => i.request))];
// Requests that legitimately tear down what the check afterwards relies on.
const SKIP = new Set([VFIO_GROUP_UNSET_CONTAINER, VFIO_IOMMU_UNMAP_DMA, VFIO_GROUP_SET_CONTAINER]);

const argArb = fc.oneof(
  fc.uint8Array({ maxLength: 96 }),
  fc.integer({ min: -2, max: 0xffff }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.constant('pointer' as const),
  fc.constant(undefined),
);

const action = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('ioctl' as const),
      fd: fc.nat(6),
      request: fc.oneof(fc.constantFrom(...REQUESTS), fc.integer({ min: 0, max: 0xffffffff })),
      arg: argArb,
      fixArgsz: fc.boolean(),
      bytes: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom('read' as const, 'write' as const, 'pread' as const, 'pwrite' as const, 'mmap' as const),
      fd: fc.nat(6),
      n: fc.integer({ min: 0, max: 64 }),
      offset: fc.oneof(fc.bigInt({ min: 0n, max: 10n << 40n }), fc.bigInt({ min: -1n, max: (1n << 63n) - 1n })),
    }),
  },
);

describe('fuzzing every fd type of a full host', () => {
  it('only SysErrors come out, and the mapping, locked pages and device DMA survive', () => {
    fc.assert(
      fc.property(fc.array(action, { minLength: 1, maxLength: 30 }), (actions) => {
        const s = setup();
        const { p } = s;
        const locked = (): number => s.host.describe().processes[0]!.lockedPages;
        const lockedBefore = locked();
        for (const a of actions) {
          const fd = s.targets[a.fd]!;
          try {
            if (a.kind === 'ioctl') {
              if (SKIP.has(a.request)) continue;
              let arg: Uint8Array | number | bigint | undefined;
              if (a.arg === 'pointer') {
                p.memory.write(s.scratch, a.bytes);
                arg = s.scratch;
              } else if (a.arg instanceof Uint8Array) {
                arg = a.arg.slice();
                if (a.fixArgsz && arg.length >= 4) new DataView(arg.buffer).setUint32(0, arg.length, true);
              } else {
                arg = a.arg;
              }
              p.ioctl(fd, a.request | 0, arg);
            } else if (a.kind === 'read') {
              p.read(fd, a.n);
            } else if (a.kind === 'write') {
              // Never write the sysfs file (it is read-only anyway) with real effects: random bytes only.
              p.write(fd, new Uint8Array(a.n));
            } else if (a.kind === 'pread') {
              p.pread(fd, a.n, a.offset);
            } else if (a.kind === 'pwrite') {
              // Config space COMMAND is restored before the check; other random config writes are fair game.
              p.pwrite(fd, new Uint8Array(a.n).fill(0xff), a.offset);
            } else {
              const va = p.mmap({ length: 0x1000 * (1 + (a.n % 4)), fd, offset: a.offset & ~0xfffn });
              p.munmap(va, 0x1000 * (1 + (a.n % 4)));
            }
          } catch (e) {
            if (!(e instanceof SysError)) throw e;
          }
        }
        // The mapping is still there and still backed by the same pages: the device's DMA lands in process memory.
        const containers = s.host.describe().containers as { iommu: { mappings: number } | null }[];
        expect(containers[0]!.iommu?.mappings).toBeGreaterThanOrEqual(1);
        expect(locked()).toBeGreaterThanOrEqual(lockedBefore);
        expect(deviceDma(p, s.device, 0x80n, 0x1122334455667788n)).toBe(0);
        expect(new DataView(p.memory.read(s.va + 0x80n, 8).buffer).getBigUint64(0, true)).toBe(0x1122334455667788n);
      }),
      { numRuns: 60 },
    );
  });
});
