/**
 * Bad input never crashes: random requests with random arguments on every kind of fd only ever throw SysError,
 * and a well-formed call afterwards still behaves.
 */
import { simPlatform } from '@vfio-ts/sim';
import { SysError, VFIO_TYPE } from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost, openVfioDevice } from '../src/index.js';
import { VFIO_TYPE1v2_IOMMU } from '@vfio-ts/uapi';
import { bindTo, fn, testBackend, testDriver } from './helpers.js';

const A = '0000:00:03.0';

describe('fuzzing the system-call surface', () => {
  it('only SysErrors come out', () => {
    const argArb = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.integer({ min: -5, max: 1 << 20 }),
      fc.bigInt({ min: -1n, max: 1n << 64n }),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(5), fc.integer({ min: 0, max: 30 }), argArb), { minLength: 1, maxLength: 30 }),
        (calls) => {
          const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
          const host = createHost({ platform, plugins: [testBackend().plugin, testDriver().plugin] });
          bindTo(platform, A);
          const p = host.spawn({ uid: 0 });
          const fds = openVfioDevice(p, { group: platform.pci.device(A)!.iommuGroup!.id, device: A, iommuType: VFIO_TYPE1v2_IOMMU });
          const targets = [fds.container, fds.group, fds.device, p.eventfd(), p.open('/dev/null'), p.open('/dev/vfio/vfio')];
          for (const [t, n, arg] of calls) {
            try {
              p.ioctl(targets[t]!, (VFIO_TYPE << 8) | (100 + n), arg);
            } catch (e) {
              expect(e).toBeInstanceOf(SysError);
            }
          }
          // The device fd (if still open) keeps working.
          if (p.fds().includes(fds.device)) {
            expect(p.pwrite(fds.device, new Uint8Array([1]), 0n)).toBe(1);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
