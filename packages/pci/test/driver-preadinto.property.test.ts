/**
 * `Process.preadInto` on vfio-pci devices (inventory §3.3): the caller's buffer gets exactly what pread returns, with
 * the same errno, whether vfio-pci's allocation-free path (config reads, aligned ≤ 8-byte BAR reads) or the general
 * path plus a copy serves it. Two identical hosts run the same random sequence, one reading with preadInto and one
 * with pread; COMMAND writes toggle memory decoding so the EIO path is covered too.
 */
import fc from 'fast-check';
import { isSysError, vfioPciOffset } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { E1000E_BDF, EDU_BDF, e1000eFunction, eduHost, makeHost, openDev } from './driver-helpers.js';
import type { TestHost } from './driver-helpers.js';

type Op = { kind: 'r'; index: number; offset: number; length: number } | { kind: 'w'; index: number; offset: number; data: Uint8Array };

function outcome(fn: () => Uint8Array | number): unknown {
  try {
    const r = fn();
    return typeof r === 'number' ? r : [...r];
  } catch (e) {
    return isSysError(e) ? e.errno : `not a SysError: ${String(e)}`;
  }
}

function ops(barSizes: Record<number, number>, hot: readonly number[], configSize: number): fc.Arbitrary<Op[]> {
  const offsetFor = (index: number): fc.Arbitrary<number> => {
    const size = index === 7 ? configSize : (barSizes[index] ?? 0x100);
    return fc.oneof(
      fc.integer({ min: 0, max: 0x48 }),
      fc.constantFrom(...hot.map((h) => Math.min(h, size + 4))),
      fc.integer({ min: Math.max(0, size - 20), max: size + 4 }),
    );
  };
  const length = fc.oneof(fc.constantFrom(0, 1, 2, 4, 8), fc.integer({ min: 1, max: 72 }));
  const read = fc
    .constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    .chain((index) => fc.record({ kind: fc.constant('r' as const), index: fc.constant(index), offset: offsetFor(index), length }));
  const command = fc.record({
    kind: fc.constant('w' as const),
    index: fc.constant(7),
    offset: fc.constant(4),
    data: fc.constantFrom(new Uint8Array([0x07, 0x00]), new Uint8Array([0x05, 0x00]), new Uint8Array([0x03, 0x04])),
  });
  return fc.array(fc.oneof({ arbitrary: read, weight: 8 }, { arbitrary: command, weight: 1 }), { maxLength: 60 });
}

function run(make: () => { t: TestHost; bdf: string }, list: Op[]): void {
  const a = make();
  const b = make();
  const fdA = openDev(a.t, a.bdf).device;
  const fdB = openDev(b.t, b.bdf).device;
  // One caller buffer reused for every read, with guard bytes after the view handed to preadInto.
  const backing = new Uint8Array(80);
  for (const o of list) {
    const at = vfioPciOffset(o.index) + BigInt(o.offset);
    if (o.kind === 'w') {
      expect(outcome(() => a.t.p.pwrite(fdA, o.data, at))).toEqual(outcome(() => b.t.p.pwrite(fdB, o.data, at)));
      continue;
    }
    backing.fill(0xa5);
    const view = backing.subarray(0, o.length);
    const got = outcome(() => view.subarray(0, a.t.p.preadInto(fdA, view, at)));
    expect(got).toEqual(outcome(() => b.t.p.pread(fdB, o.length, at)));
    expect(backing.subarray(o.length).every((x) => x === 0xa5)).toBe(true);
  }
}

describe('preadInto on vfio-pci', () => {
  it('equals pread on edu (registers, MSI capability), random offsets and lengths', () => {
    const arb = ops({ 0: 0x100000 }, [0x00, 0x04, 0x08, 0x20, 0x24, 0x40, 0x44, 0x4c, 0x80, 0x98], 256);
    fc.assert(
      fc.property(arb, (list) => {
        run(() => ({ t: eduHost(), bdf: EDU_BDF }), list);
      }),
      { numRuns: 30 },
    );
  });

  it('equals pread on the e1000e (MSI-X window, I/O BAR, ROM, extended config)', () => {
    const arb = ops(
      { 0: 0x20000, 1: 0x20000, 2: 0x20, 3: 0x4000 },
      [0x3c, 0x4e, 0x50, 0x7c, 0x80, 0xa0, 0xc8, 0xe0, 0x100, 0x104, 0x140, 0x150],
      4096,
    );
    fc.assert(
      fc.property(arb, (list) => {
        run(() => ({ t: makeHost([{ bdf: E1000E_BDF, fn: e1000eFunction(), driver: 'vfio-pci' }]), bdf: E1000E_BDF }), list);
      }),
      { numRuns: 30 },
    );
  });

  it('answers pread’s errno for bad fds and offsets', () => {
    const t = eduHost();
    const fds = openDev(t, EDU_BDF);
    const { p } = t;
    const buf = new Uint8Array(4);
    const cases: [number, bigint][] = [
      [999, 0n],
      [-1, 0n],
      [fds.container, 0n],
      [fds.group, 0n],
      [fds.device, -1n],
      [fds.device, vfioPciOffset(7) + 0x100n], // beyond edu's 256-byte config space
      [fds.device, vfioPciOffset(8)], // VGA: edu is no VGA device
      [fds.device, vfioPciOffset(9)], // no such region
      [fds.device, vfioPciOffset(1)], // BAR1 not implemented
      [fds.device, vfioPciOffset(0) + 0x100000n], // past BAR0's end
      [fds.device, vfioPciOffset(0) + 2n], // misaligned, general path
    ];
    for (const [fd, off] of cases) {
      expect(outcome(() => buf.subarray(0, p.preadInto(fd, buf, off))), `fd ${fd} @ ${off.toString(16)}`).toEqual(
        outcome(() => p.pread(fd, 4, off)),
      );
    }
    p.close(fds.device);
    expect(outcome(() => p.preadInto(fds.device, buf, 0n))).toBe('EBADF');
  });
});
