import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DirtyBitmap, IovaBitmap, clearBits, setBits } from '../src/index.js';

const PAGE_SHIFTS = [12, 13, 16, 21];

describe('word helpers', () => {
  it('setBits/clearBits match a bit-by-bit model (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(200), fc.nat(80)), { maxLength: 30 }), (ops) => {
        const words = new Uint32Array(10);
        const model = new Array<boolean>(320).fill(false);
        for (const [set, start, len] of ops) {
          const end = Math.min(320, start + len);
          if (set) setBits(words, start, end);
          else clearBits(words, start, end);
          for (let i = start; i < end; i++) model[i] = set;
        }
        const got = Array.from({ length: 320 }, (_, i) => ((words[i >>> 5]! >>> (i & 31)) & 1) === 1);
        expect(got).toEqual(model);
      }),
      { numRuns: 200 },
    );
  });
});

describe('DirtyBitmap vs a Set of pages', () => {
  it('set/clear ranges, test, count, runs and readAndClear agree with the model (property)', () => {
    const op = fc.record({
      kind: fc.constantFrom('set', 'clear', 'read'),
      // Pages spread over several 32 Ki-page chunks, lengths crossing word and chunk boundaries.
      page: fc.oneof(fc.nat(100), fc.integer({ min: 32_700, max: 32_800 }), fc.integer({ min: 1_000_000, max: 1_000_100 })),
      offset: fc.nat(4095),
      length: fc.integer({ min: 0, max: 80 * 4096 }),
    });
    fc.assert(
      fc.property(fc.constantFrom(...PAGE_SHIFTS), fc.array(op, { maxLength: 40 }), (shift, ops) => {
        const ps = 1n << BigInt(shift);
        const bm = new DirtyBitmap(ps);
        const model = new Set<number>();
        const touched = (iova: bigint, len: bigint): number[] => {
          if (len <= 0n) return [];
          const first = Number(iova >> BigInt(shift));
          const last = Number((iova + len - 1n) >> BigInt(shift));
          return Array.from({ length: last - first + 1 }, (_, i) => first + i);
        };
        for (const o of ops) {
          const iova = (BigInt(o.page) << 12n) + BigInt(o.offset);
          const len = BigInt(o.length);
          if (o.kind === 'set') {
            bm.setRange(iova, len);
            for (const p of touched(iova, len)) model.add(p);
          } else if (o.kind === 'clear') {
            bm.clearRange(iova, len);
            for (const p of touched(iova, len)) model.delete(p);
          } else {
            const got = new Set<number>();
            bm.readAndClear(iova, len, {
              set: (a, l) => {
                // Whole pages, never below the window start.
                expect(a >= iova && a + l <= ((iova + len + ps - 1n) / ps) * ps).toBe(true);
                for (const p of touched(a, l)) got.add(p);
              },
            });
            const want = new Set(touched(iova, len).filter((p) => model.has(p)));
            expect([...got].sort((a, b) => a - b)).toEqual([...want].sort((a, b) => a - b));
            for (const p of want) model.delete(p);
          }
        }
        const sorted = [...model].sort((a, b) => a - b);
        expect([...bm.pages()]).toEqual(sorted);
        expect(bm.count()).toBe(model.size);
        expect(bm.isEmpty()).toBe(model.size === 0);
        for (const p of sorted.slice(0, 20)) expect(bm.test(BigInt(p) << BigInt(shift))).toBe(true);
        // Runs are maximal and ordered.
        let prevEnd = -2;
        for (const r of bm.runs()) {
          expect(r.start > prevEnd).toBe(true);
          prevEnd = r.start + r.count;
        }
      }),
      { numRuns: 150 },
    );
  });

  it('is sparse: a page near 1 TiB costs one chunk', () => {
    const bm = new DirtyBitmap(4096n);
    bm.setRange(1n << 40n, 4096n);
    expect(bm.count()).toBe(1);
    expect(bm.test((1n << 40n) + 100n)).toBe(true);
    expect([...bm.runs()]).toEqual([{ start: 2 ** 28, count: 1 }]);
    bm.clearAll();
    expect(bm.isEmpty()).toBe(true);
    expect(() => new DirtyBitmap(3000n)).toThrow(RangeError);
  });

  it('respects a base address', () => {
    const bm = new DirtyBitmap(4096n, 0x10000n);
    bm.setRange(0n, 0x11000n);
    expect([...bm.pages()]).toEqual([0]);
    expect(bm.test(0x10000n)).toBe(true);
    expect(bm.test(0x1000n)).toBe(false);
  });
});

describe('IovaBitmap: reporting at a different page size', () => {
  it('replicates and aggregates bits exactly like a per-byte model (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PAGE_SHIFTS),
        fc.constantFrom(...PAGE_SHIFTS),
        fc.nat(1 << 20),
        fc.integer({ min: 1, max: 1 << 24 }),
        fc.array(fc.tuple(fc.nat(1 << 25), fc.integer({ min: 0, max: 1 << 18 })), { maxLength: 15 }),
        (logShift, repShift, iovaOff, length, writes) => {
          // The device logged at logShift; its dirty pages are reported at repShift.
          const tracker = new DirtyBitmap(1n << BigInt(logShift));
          const dirtyBytes: [bigint, bigint][] = [];
          for (const [a, l] of writes) {
            tracker.setRange(BigInt(a), BigInt(l));
            dirtyBytes.push([BigInt(a), BigInt(l)]);
          }
          const iova = BigInt(iovaOff) << 12n;
          const len = BigInt(length);
          const report = new IovaBitmap(iova, len, 1n << BigInt(repShift));
          tracker.readAndClear(iova, len, report);
          // Model: report bit k set iff some logged page overlapping report page k (inside the window) was dirty.
          const logPs = 1n << BigInt(logShift);
          const repPs = 1n << BigInt(repShift);
          const loggedPages = new Set<bigint>();
          for (const [a, l] of dirtyBytes) if (l > 0n) for (let p = a / logPs; p <= (a + l - 1n) / logPs; p++) loggedPages.add(p);
          const got: boolean[] = [];
          const want: boolean[] = [];
          for (let k = 0; k < report.bits; k++) {
            const lo = iova + BigInt(k) * repPs;
            const hi = (lo + repPs < iova + len ? lo + repPs : iova + len) - 1n;
            let dirty = false;
            for (let p = lo / logPs; p <= hi / logPs && !dirty; p++) dirty = loggedPages.has(p);
            want.push(dirty);
            got.push(report.testBit(k));
          }
          expect(got).toEqual(want);
          expect(report.byteLength).toBe(Math.ceil(report.bits / 64) * 8);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps bits that were already set and serializes u64 little-endian words', () => {
    const initial = new Uint8Array(16);
    initial[0] = 0x01;
    const b = new IovaBitmap(0n, 100n * 4096n, 4096n, initial);
    b.set(64n * 4096n + 10n, 1n);
    const bytes = b.toBytes();
    expect(bytes[0]).toBe(0x01);
    expect(bytes[8]).toBe(0x01);
    expect(b.testBit(64)).toBe(true);
    b.set(1000n * 4096n, 4096n);
    expect(b.toBytes()).toEqual(bytes);
  });
});
