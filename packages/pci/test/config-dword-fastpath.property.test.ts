/**
 * The per-dword read descriptors of VfioPciConfig.readInto (an aligned 4-byte read answered by one mask-combine)
 * against the handler path of readBytes: after any sequence of user writes and device-side changes, every dword of
 * config space reads the same bytes both ways, and reaches the device with the same accesses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VfioPciConfig } from '../src/index.js';
import { e1000e, edu } from './helpers.js';
import type { FakeFunction } from './helpers.js';

type Step =
  | { readonly kind: 'write'; readonly offset: number; readonly bytes: readonly number[] }
  | { readonly kind: 'poke'; readonly offset: number; readonly value: number };

function steps(size: number): fc.Arbitrary<Step[]> {
  const write = fc.record({
    kind: fc.constant('write' as const),
    offset: fc.integer({ min: 0, max: size - 4 }),
    bytes: fc.array(fc.integer({ min: 0, max: 0xff }), { minLength: 1, maxLength: 4 }),
  });
  const poke = fc.record({
    kind: fc.constant('poke' as const),
    offset: fc.integer({ min: 0, max: size / 4 - 1 }).map((d) => d * 4),
    value: fc.integer({ min: 0, max: 0xffffffff }),
  });
  return fc.array(fc.oneof({ arbitrary: write, weight: 3 }, { arbitrary: poke, weight: 1 }), { maxLength: 30 });
}

/** Reads every dword both ways, comparing the bytes and the device accesses each way makes. */
function compareAll(fn: FakeFunction, cfg: VfioPciConfig): void {
  const buf = new Uint8Array(4);
  for (let off = 0; off < cfg.size; off += 4) {
    fn.log.length = 0;
    const slow = cfg.readBytes(off, 4);
    const slowLog = fn.log.slice();
    fn.log.length = 0;
    buf.fill(0xa5);
    cfg.readInto(off, buf, 4);
    expect({ off, bytes: [...buf], log: fn.log.slice() }).toEqual({ off, bytes: [...slow], log: slowLog });
  }
}

function run(make: () => FakeFunction, list: Step[]): void {
  const fn = make();
  const cfg = new VfioPciConfig(fn);
  for (const s of list) {
    if (s.kind === 'write') {
      if (s.offset + s.bytes.length <= cfg.size) cfg.writeBytes(s.offset, new Uint8Array(s.bytes));
    } else {
      fn.poke(s.offset, 4, s.value);
    }
  }
  compareAll(fn, cfg);
}

describe('config dword fast path', () => {
  it('matches the handler path on edu (standard config space)', () => {
    fc.assert(fc.property(steps(256), (list) => {
      run(edu, list);
    }), { numRuns: 40 });
  });

  it('matches the handler path on e1000e (PM, MSI, PCIe, MSI-X, extended capabilities)', () => {
    fc.assert(fc.property(steps(4096), (list) => {
      run(e1000e, list);
    }), { numRuns: 25 });
  });
});
