/**
 * Property: for any BAR layout, `vfio inspect` reports vfio-pci's sizing values — what Linux's vfio_bar_fixup makes
 * a BAR read back after all-ones were written: `~(size-1)` with the type bits, the upper half of a 64-bit BAR in
 * the next register, 0 for unimplemented BARs — and every register holds its original value afterwards.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { inspectDevice } from '../src/index.js';

type Kind = 'mem32' | 'mem32-pref' | 'mem64' | 'mem64-pref' | 'io';
interface Bar { index: number; kind: Kind; log2: number }

const MASK32 = 0xffffffffn;

/** Non-overlapping BARs: a 64-bit BAR takes its index and the next. */
const layout = fc.array(
  fc.record({
    kind: fc.constantFrom<Kind>('mem32', 'mem32-pref', 'mem64', 'mem64-pref', 'io'),
    memLog2: fc.integer({ min: 4, max: 30 }),
    ioLog2: fc.integer({ min: 2, max: 8 }),
    skip: fc.boolean(),
  }),
  { minLength: 1, maxLength: 6 },
).map((specs) => {
  const bars: Bar[] = [];
  let index = 0;
  for (const s of specs) {
    if (s.skip) index++;
    const wide = s.kind.startsWith('mem64');
    if (index > 5 || (wide && index > 4)) break;
    bars.push({ index, kind: s.kind, log2: s.kind === 'io' ? s.ioLog2 : s.memLog2 });
    index += wide ? 2 : 1;
  }
  return bars;
}).filter((bars) => bars.length > 0);

function configFor(bars: readonly Bar[]): Uint8Array {
  const c = new Uint8Array(256);
  const v = new DataView(c.buffer);
  v.setUint16(0, 0x1af4, true);
  v.setUint16(2, 0x10f0, true);
  for (const b of bars) {
    const size = 1n << BigInt(b.log2);
    // Firmware put each BAR at a naturally aligned address.
    const addr = b.kind === 'io' ? 0xc000n : size >= 0x10000000n ? size * 2n : 0xe0000000n;
    const reg = 0x10 + 4 * b.index;
    const low = b.kind === 'io' ? (addr & 0xfffcn) | 1n : (addr & 0xfffffff0n) | (b.kind.startsWith('mem64') ? 4n : 0n) | (b.kind.endsWith('pref') ? 8n : 0n);
    v.setUint32(reg, Number(low), true);
    if (b.kind.startsWith('mem64')) v.setUint32(reg + 4, Number(addr >> 32n), true);
  }
  return c;
}

function expected(bars: readonly Bar[]): Record<string, string> {
  const out: Record<string, string> = { bar0: '0x0', bar1: '0x0', bar2: '0x0', bar3: '0x0', bar4: '0x0', bar5: '0x0', rom: '0x0' };
  for (const b of bars) {
    const mask = ~((1n << BigInt(b.log2)) - 1n);
    if (b.kind === 'io') out[`bar${b.index}`] = `0x${((mask & MASK32) | 1n).toString(16)}`;
    else {
      const flags = (b.kind.startsWith('mem64') ? 4n : 0n) | (b.kind.endsWith('pref') ? 8n : 0n);
      out[`bar${b.index}`] = `0x${((mask & 0xfffffff0n) | flags).toString(16)}`;
      if (b.kind.startsWith('mem64')) out[`bar${b.index + 1}`] = `0x${((mask >> 32n) & MASK32).toString(16)}`;
    }
  }
  return out;
}

describe('vfio inspect, BAR sizing (property)', () => {
  test('reads back ~(size-1) with the type bits, and leaves every BAR register as it was', () => {
    fc.assert(
      fc.property(layout, (bars) => {
        const config = configFor(bars);
        const spec = bars.map((b) => `${b.index}:${b.kind}:0x${(1n << BigInt(b.log2)).toString(16)}`).join(',');
        const view = inspectDevice({ config, bars: spec });
        expect(view.bar_sizing).toEqual(expected(bars));
        expect(view.config.slice(0x10 * 2, 0x28 * 2)).toBe(Buffer.from(config.subarray(0x10, 0x28)).toString('hex'));
        // One region per BAR, of the BAR's size; the upper half of a 64-bit BAR is no region.
        for (const b of bars) {
          expect(view.regions[b.index]).toMatchObject({ size: `0x${(1n << BigInt(b.log2)).toString(16)}` });
          if (b.kind.startsWith('mem64')) expect(view.regions[b.index + 1]).toMatchObject({ size: '0x0', flags: '0x0' });
        }
      }),
      { numRuns: 40 },
    );
  });
});
