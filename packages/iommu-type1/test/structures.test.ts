import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DmaTree } from '../src/dma-tree.js';
import { newBitmap, setBits, shiftedBytes, testBit } from '../src/bitmap.js';
import { excludeReserved, resizeToAperture } from '../src/iova-list.js';
import { parseBoolParam, parseUintParam } from '../src/params.js';
import { errnoOf } from './helpers.js';

interface Iv {
  iova: bigint;
  size: bigint;
}

describe('DmaTree', () => {
  it('agrees with a sorted array under random inserts and removes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 5 })), { maxLength: 200 }), (ops) => {
        const tree = new DmaTree<Iv>();
        let ref: Iv[] = [];
        for (const [insert, at, n] of ops) {
          const start = BigInt(at);
          const size = BigInt(n);
          const hit = tree.findOverlap(start, size);
          const refHit = ref.find((x) => x.iova < start + size && start < x.iova + x.size);
          expect(hit).toBe(refHit === undefined ? undefined : hit);
          expect(hit === undefined).toBe(refHit === undefined);
          if (insert && !hit) {
            const iv = { iova: start, size };
            tree.insert(iv);
            ref.push(iv);
            ref.sort((a, b) => (a.iova < b.iova ? -1 : 1));
          } else if (!insert && hit) {
            tree.remove(hit);
            ref = ref.filter((x) => x !== hit);
          }
          expect(tree.toArray()).toEqual(ref);
          expect(tree.size).toBe(ref.length);
          const first = tree.firstFrom(start, size);
          const refFirst = ref.find((x) => x.iova + x.size > start);
          expect(first).toBe(refFirst && refFirst.iova < start + size ? refFirst : undefined);
          if (first) expect(tree.next(first)).toBe(ref[ref.indexOf(first) + 1]);
          if (first) expect(tree.prev(first)).toBe(ref[ref.indexOf(first) - 1]);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('stays shallow with 100k sequential inserts (no recursion overflow)', () => {
    const tree = new DmaTree<Iv>();
    for (let i = 0n; i < 100_000n; i++) tree.insert({ iova: i * 4096n, size: 4096n });
    expect(tree.findOverlap(77_777n * 4096n + 5n, 1n)?.iova).toBe(77_777n * 4096n);
    expect(tree.size).toBe(100_000);
  });
});

describe('dirty bitmaps', () => {
  it('sets ranges word-wise and shifts into user layout', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 63 }), fc.array(fc.integer({ min: 0, max: 299 })), (nbits, shift, bits) => {
        const bm = newBitmap(nbits);
        const set = new Set(bits.filter((b) => b < nbits));
        for (const b of set) setBits(bm, b, 1);
        const out = shiftedBytes(bm, nbits, shift);
        expect(out.length).toBe(Math.ceil((nbits + shift) / 64) * 8);
        for (let i = 0; i < out.length * 8; i++) {
          const v = ((out[i >> 3]! >> (i & 7)) & 1) === 1;
          expect(v).toBe(i >= shift && set.has(i - shift));
        }
      }),
    );
    const bm = newBitmap(200);
    setBits(bm, 3, 150);
    expect(testBit(bm, 2)).toBe(false);
    expect(testBit(bm, 3)).toBe(true);
    expect(testBit(bm, 152)).toBe(true);
    expect(testBit(bm, 153)).toBe(false);
  });
});

describe('valid IOVA list', () => {
  it('narrows to apertures and carves reserved regions', () => {
    const l = resizeToAperture([], 0n, 0xffffn);
    expect(excludeReserved(l, [{ start: 0x1000n, end: 0x1fffn, type: 'msi' }])).toEqual([
      { start: 0n, end: 0xfffn },
      { start: 0x2000n, end: 0xffffn },
    ]);
    expect(excludeReserved(l, [{ start: 0n, end: 0xffffn, type: 'reserved' }])).toBeUndefined();
    expect(excludeReserved(l, [{ start: 0n, end: 0xffffn, type: 'direct-relaxable' }])).toEqual(l);
    expect(resizeToAperture([{ start: 0n, end: 0xfffn }, { start: 0x2000n, end: 0xffffn }], 0x800n, 0x2fffn)).toEqual([
      { start: 0x800n, end: 0xfffn },
      { start: 0x2000n, end: 0x2fffn },
    ]);
  });
});

describe('module parameters', () => {
  it('parse bools and uints like Linux', () => {
    expect(['Y', 'y', '1', 'yes', 'on', 'ON'].map(parseBoolParam)).toEqual(['Y', 'Y', 'Y', 'Y', 'Y', 'Y']);
    expect(['N', 'n', '0', 'no', 'off\n'].map(parseBoolParam)).toEqual(['N', 'N', 'N', 'N', 'N']);
    expect(errnoOf(() => parseBoolParam('maybe'))).toBe('EINVAL');
    expect(parseUintParam('0x10')).toBe('16');
    expect(parseUintParam('8\n')).toBe('8');
    expect(errnoOf(() => parseUintParam('-1'))).toBe('EINVAL');
    expect(errnoOf(() => parseUintParam('4294967296'))).toBe('ERANGE');
  });
});
