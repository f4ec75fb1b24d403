/**
 * Bad input never crashes and never corrupts state (common rules): random commands with random bytes on
 * /dev/iommu only ever fail with a SysError, and afterwards the context still maps, pins and cleans up exactly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSysError } from '@vfio-ts/uapi';
import { MiB, PAGE, setup } from './helpers.js';

describe('fuzzed ioctls on /dev/iommu', () => {
  it('only SysErrors, and a working context afterwards', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            nr: fc.oneof(fc.integer({ min: 0x80, max: 0x8f }), fc.integer({ min: 0x60, max: 0x7f })),
            size: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(8, 12, 24, 32, 40, 48)),
            bytes: fc.uint8Array({ minLength: 0, maxLength: 64 }),
            ids: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 4, maxLength: 4 }),
          }),
          { maxLength: 30 },
        ),
        (cmds) => {
          const f = setup();
          const ioas = f.ioasAlloc();
          f.device(ioas);
          const buf = f.buffer(8n * PAGE);
          for (const c of cmds) {
            const b = new Uint8Array(Math.max(64, c.bytes.length));
            b.set(c.bytes);
            const dv = new DataView(b.buffer);
            dv.setUint32(0, c.size, true);
            // Make ids and pointers plausible some of the time, so the commands get past the lookups.
            dv.setUint32(4, c.ids[0]!, true);
            dv.setUint32(8, c.ids[1]!, true);
            if (c.ids[2]! > 2) dv.setBigUint64(16, buf, true);
            if (c.ids[3]! > 2) dv.setBigUint64(24, PAGE * BigInt(c.ids[3]!), true);
            try {
              f.p.ioctl(f.fd, (0x3b << 8) | c.nr, b);
            } catch (e) {
              if (!isSysError(e)) throw e;
            }
          }
          // Still works: a fresh IOAS on the same device maps and pins; everything goes away on close.
          const fresh = f.ioasAlloc();
          const va = f.buffer(4n * PAGE);
          f.map(fresh, va, 4n * PAGE, { iova: MiB });
          expect(f.unmap(fresh, MiB, 4n * PAGE)).toBe(4n * PAGE);
          f.p.close(f.fd);
          expect(f.ctx.objectCount).toBe(0);
          expect(f.sub.userLockedPages(1000)).toBe(0);
          for (let i = 0n; i < 8n; i++) {
            const page = f.p.mm.lookup(buf + i * PAGE);
            if (page) expect(f.platform.memory.pinCount(page.pfn)).toBe(0);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
