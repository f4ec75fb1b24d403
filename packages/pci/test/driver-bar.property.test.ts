/**
 * BAR read/write against a reference model (inventory §3.3 P9): random pread/pwrite on the e1000e's MSI-X BAR
 * (a 16 KiB RAM BAR whose first 80 bytes are the MSI-X table) agree with "RAM, except the table window reads
 * all-ones and drops writes; clipped at the BAR end; EINVAL past it".
 */
import fc from 'fast-check';
import { isSysError, vfioPciOffset } from '@vfio-ts/uapi';
import { expect, it } from 'vitest';
import { E1000E_BDF, e1000eFunction, makeHost, openDev } from './driver-helpers.js';

const SIZE = 0x4000;
const TABLE_END = 80;
const BAR3 = vfioPciOffset(3);

// Offsets cluster around the table window and the BAR end, where the rules are.
const offset = fc.oneof(fc.integer({ min: 0, max: 128 }), fc.integer({ min: SIZE - 32, max: SIZE + 8 }), fc.integer({ min: 0, max: SIZE + 8 }));
const op = fc.oneof(
  fc.record({ kind: fc.constant('r' as const), offset, length: fc.integer({ min: 1, max: 24 }) }),
  fc.record({ kind: fc.constant('w' as const), offset, data: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
);

it('BAR accesses match the reference model', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const t = makeHost([{ bdf: E1000E_BDF, fn: e1000eFunction(), driver: 'vfio-pci' }]);
      const fd = openDev(t, E1000E_BDF).device;
      const ram = new Uint8Array(SIZE);
      for (const o of ops) {
        if (o.offset >= SIZE) {
          let errno: string | undefined;
          try {
            if (o.kind === 'r') t.p.pread(fd, o.length, BAR3 + BigInt(o.offset));
            else t.p.pwrite(fd, o.data, BAR3 + BigInt(o.offset));
          } catch (e) {
            errno = isSysError(e) ? e.errno : String(e);
          }
          expect(errno).toBe('EINVAL');
          continue;
        }
        if (o.kind === 'r') {
          const n = Math.min(o.length, SIZE - o.offset);
          const want = Array.from({ length: n }, (_, i) => (o.offset + i < TABLE_END ? 0xff : ram[o.offset + i]!));
          expect([...t.p.pread(fd, o.length, BAR3 + BigInt(o.offset))]).toEqual(want);
        } else {
          const n = Math.min(o.data.length, SIZE - o.offset);
          expect(t.p.pwrite(fd, o.data, BAR3 + BigInt(o.offset))).toBe(n);
          for (let i = 0; i < n; i++) if (o.offset + i >= TABLE_END) ram[o.offset + i] = o.data[i]!;
        }
      }
    }),
    { numRuns: 60 },
  );
});
