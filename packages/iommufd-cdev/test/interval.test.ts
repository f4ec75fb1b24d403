/** The ordered interval tree behind IOAS areas, against a sorted array. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntervalTree } from '../src/index.js';

describe('IntervalTree', () => {
  it('first/next/overlapping agree with a linear scan under random inserts and removes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(200), fc.integer({ min: 1, max: 20 })), { maxLength: 80 }), fc.nat(220), fc.nat(40), (ops, qs, ql) => {
        const t = new IntervalTree<{ start: bigint; last: bigint }>();
        let ref: { start: bigint; last: bigint }[] = [];
        for (const [add, s, l] of ops) {
          const start = BigInt(s);
          const last = start + BigInt(l) - 1n;
          if (add) {
            if (ref.some((r) => r.start <= last && r.last >= start)) continue;
            const it = { start, last };
            t.insert(it);
            ref.push(it);
          } else {
            const victim = ref.find((r) => r.start <= start && r.last >= start);
            if (victim) {
              expect(t.remove(victim)).toBe(true);
              ref = ref.filter((r) => r !== victim);
            }
          }
        }
        ref.sort((a, b) => Number(a.start - b.start));
        expect(t.toArray()).toEqual(ref);
        expect(t.size).toBe(ref.length);
        const qStart = BigInt(qs);
        const qLast = qStart + BigInt(ql);
        expect([...t.overlapping(qStart, qLast)]).toEqual(ref.filter((r) => r.start <= qLast && r.last >= qStart));
        // Gaps of at least `ql` addresses within [0, 255], against a linear walk.
        const min = BigInt(ql + 1);
        const want: { start: bigint; last: bigint }[] = [];
        let cursor = 0n;
        for (const r of ref) {
          if (r.start - cursor >= min) want.push({ start: cursor, last: r.start - 1n });
          cursor = r.last + 1n;
        }
        if (255n - cursor + 1n >= min) want.push({ start: cursor, last: 255n });
        expect([...t.gaps(min, 255n)]).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});
