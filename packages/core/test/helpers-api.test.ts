/**
 * Helpers exported for drivers: validateSetIrqs (§1.4.2) and checkFeature (§1.5) against reference models,
 * the emulated-IOMMU DMA helpers (§2.10) and the backend registry (§2.5).
 */
import { simPlatform } from '@vfio-ts/sim';
import {
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  SysError,
  vfioIrqSet,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkFeature, createHost, validateSetIrqs } from '../src/index.js';
import type { HostPluginApi, VfioDevice } from '../src/index.js';
import { cstr, expectErrno, s32, testBackend } from './helpers.js';

/** Reference model of vfio_set_irqs_validate_and_prepare in BigInt arithmetic. */
function model(h: { argsz: number; flags: number; index: number; start: number; count: number }, len: number, num: number, max: number): string | number {
  const U32 = 0xffffffffn;
  if (len < 20) return 'EFAULT';
  if (h.argsz < 20 || h.index >= max || BigInt(h.count) >= U32 - BigInt(h.start) || (h.flags & ~0x3f) !== 0) return 'EINVAL';
  if (h.start >= num || BigInt(h.start) + BigInt(h.count) > BigInt(num)) return 'EINVAL';
  const t = h.flags & 7;
  const size = t === 1 ? 0 : t === 2 ? 1 : t === 4 ? 4 : -1;
  if (size < 0) return 'EINVAL';
  if (size > 0 && BigInt(h.argsz) - 20n < BigInt(h.count) * BigInt(size)) return 'EINVAL';
  if (len < 20 + h.count * size) return 'EFAULT';
  return h.count * size;
}

describe('validateSetIrqs', () => {
  it('accepts a well-formed call and copies its data', () => {
    const buf = new Uint8Array(28);
    vfioIrqSet.write(buf, { argsz: 28, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index: 1, start: 0, count: 2 });
    buf[20] = 7;
    const v = validateSetIrqs(buf, 4, 5);
    expect(v.dataSize).toBe(8);
    expect(v.data[0]).toBe(7);
    expect(v.header.index).toBe(1);
  });

  it('rejects start + count that would wrap', () => {
    const buf = vfioIrqSet.encode({ argsz: 20, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index: 0, start: 1, count: 0xfffffffe });
    expectErrno(() => validateSetIrqs(buf, 0xffffffff, 5), 'EINVAL');
    // count 0 with start == num_irqs == 0 fails the start check (§1.4.2 note).
    const zero = vfioIrqSet.encode({ argsz: 20, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index: 0, start: 0, count: 0 });
    expectErrno(() => validateSetIrqs(zero, 0, 5), 'EINVAL');
    expect(validateSetIrqs(zero, (i) => (i === 0 ? 1 : 0), 5).dataSize).toBe(0);
  });

  it('matches the reference model', () => {
    const u32 = fc.oneof(fc.constantFrom(0, 1, 2, 4, 19, 20, 24, 0x7fffffff, 0xfffffffe, 0xffffffff), fc.nat(64));
    fc.assert(
      fc.property(
        fc.record({ argsz: u32, flags: fc.oneof(fc.nat(0x7f), fc.constantFrom(VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 1 << 20)), index: fc.nat(6), start: u32, count: u32 }),
        fc.nat(60),
        fc.nat(8),
        fc.integer({ min: 1, max: 6 }),
        (h, extra, num, max) => {
          const len = 20 + extra;
          const buf = new Uint8Array(len);
          vfioIrqSet.write(buf, h);
          const want = model(h, len, num, max);
          let got: string | number;
          try {
            got = validateSetIrqs(buf, num, max).dataSize;
          } catch (e) {
            got = (e as SysError).errno;
          }
          expect(got).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
    expectErrno(() => validateSetIrqs(new Uint8Array(10), 1, 1), 'EFAULT');
  });
});

describe('checkFeature', () => {
  it('matches vfio_check_feature', () => {
    const G = VFIO_DEVICE_FEATURE_GET;
    const S = VFIO_DEVICE_FEATURE_SET;
    const P = VFIO_DEVICE_FEATURE_PROBE;
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(3), fc.nat(16), fc.nat(16), (g, s, pr, ops, size, minsz) => {
        const flags = (g ? G : 0) | (s ? S : 0) | (pr ? P : 0);
        const supported = (ops & 1 ? G : 0) | (ops & 2 ? S : 0);
        let want: boolean | 'EINVAL';
        if ((flags & (G | S) & ~supported) !== 0) want = 'EINVAL';
        else if (pr) want = false;
        else if (!g && !s) want = 'EINVAL';
        else if (size < minsz) want = 'EINVAL';
        else want = true;
        let got: boolean | string;
        try {
          got = checkFeature(flags, size, supported, minsz);
        } catch (e) {
          got = (e as SysError).errno;
        }
        expect(got).toBe(want);
      }),
    );
  });
});

describe('emulated devices: pinPages, unpinPages, dmaRw', () => {
  function make(withDmaUnmap = true) {
    const backend = testBackend();
    let api!: HostPluginApi;
    const unmaps: string[] = [];
    const platform = simPlatform({});
    const host = createHost({
      platform,
      plugins: [
        backend.plugin,
        {
          name: 'mdev-like',
          setup(a) {
            api = a;
          },
        },
      ],
    });
    const dev: VfioDevice<null> = api.allocDevice({
      name: 'c0ffee00-0000-0000-0000-000000000001',
      ops: withDmaUnmap
        ? {
            dmaUnmap(_d, iova, len) {
              unmaps.push(`${iova}+${len}`);
            },
          }
        : {},
      data: null,
    });
    api.registerEmulatedDevice(dev);
    const p = host.spawn({ uid: 0 });
    const c = p.open('/dev/vfio/vfio');
    const g = p.open(`/dev/vfio/${dev.group!.id}`);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    return { backend, dev, p, g, host, unmaps };
  }

  it('needs an open device, a dma_unmap op and at most 512 pages', () => {
    const { backend, dev, p, g, unmaps } = make();
    expect(dev.group!.type).toBe('emulated-iommu');
    expectErrno(() => dev.pinPages(0x1000n, 1, 3), 'EINVAL');
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(dev.name));
    expect(dev.pinPages(0x10000n, 2, 3)).toEqual([0x1010n, 0x1011n]);
    expectErrno(() => dev.pinPages(0x10000n, 0, 3), 'EINVAL');
    expectErrno(() => dev.pinPages(0x10000n, 513, 3), 'E2BIG');
    expect(backend.log.instances[0]!.pins.size).toBe(2);
    dev.unpinPages(0x10000n, 2);
    expect(backend.log.instances[0]!.pins.size).toBe(0);
    dev.dmaRw(0x5000n, new Uint8Array([1, 2, 3]), true);
    const back = new Uint8Array(3);
    dev.dmaRw(0x5000n, back, false);
    expect([...back]).toEqual([1, 2, 3]);
    expectErrno(() => {
      dev.dmaRw(0x5000n, new Uint8Array(0), false);
    }, 'EINVAL');
    // The backend got the device registered with its dma_unmap.
    const ref = backend.log.instances[0]!.devices[0]!;
    ref.dmaUnmap!(0x10000n, 0x2000n);
    expect(unmaps).toEqual(['65536+8192']);
    p.close(d);
    expect(backend.log.instances[0]!.devices).toEqual([]);
    expectErrno(() => { dev.dmaRw(0x5000n, back, false); }, 'EINVAL');
  });

  it('without dma_unmap pinning is EINVAL', () => {
    const { dev, p, g } = make(false);
    p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(dev.name));
    expectErrno(() => dev.pinPages(0x10000n, 1, 3), 'EINVAL');
  });
});

describe('IOMMU backend registry', () => {
  it('refuses a duplicate name and unregisters only when unused', () => {
    const b = testBackend();
    let api!: HostPluginApi;
    createHost({
      platform: simPlatform({}),
      plugins: [
        b.plugin,
        {
          name: 'x',
          setup(a) {
            api = a;
          },
        },
      ],
    });
    expectErrno(() => api.registerIommuDriver(b.ops), 'EINVAL');
    expectErrno(() => api.registerIommuDriver({ ...b.ops, name: 'vfio-noiommu' }), 'EINVAL');
    const undo = api.registerIommuDriver({ ...b.ops, name: 'other' });
    undo();
    expect(() => api.registerIommuDriver({ ...b.ops, name: 'other' })).not.toThrow();
  });

  it('two hosts never see each other', () => {
    const b1 = testBackend();
    const h1 = createHost({ platform: simPlatform({}), plugins: [b1.plugin] });
    const h2 = createHost({ platform: simPlatform({}) });
    expect(h1.describe().iommuDrivers).toEqual(['test-iommu', 'vfio-noiommu']);
    expect(h2.describe().iommuDrivers).toEqual(['vfio-noiommu']);
    expect(h1.spawn({ uid: 0 }).pid).toBe(h2.spawn({ uid: 0 }).pid);
    expect(SysError).toBeDefined();
  });
});
