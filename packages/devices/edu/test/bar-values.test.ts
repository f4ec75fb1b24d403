/**
 * barReadValue / barWriteValue (the array-free register accessors vfio-pci uses for 1/2/4-byte accesses) against
 * barRead / barWrite: two models run the same random sequence, one through each pair, and every answer, error and
 * the state left behind agree — registers, the DMA buffer window, memory decoding off, misaligned and out-of-range
 * accesses, other BARs.
 */
import fc from 'fast-check';
import { isSysError } from '@vfio-ts/uapi';
import { expect, it } from 'vitest';
import { EDU_DMA_BUFFER_ADDR, EDU_REG, eduFunction } from '../src/index.js';
import type { EduFunction } from '../src/index.js';
import { FakeHost, fromLe, le } from './helpers.js';

type Op =
  | { kind: 'r'; bar: number; offset: number; size: 1 | 2 | 4 }
  | { kind: 'w'; bar: number; offset: number; size: 1 | 2 | 4; value: number }
  | { kind: 'cmd'; value: number };

const BUF = Number(EDU_DMA_BUFFER_ADDR);
const offset = fc.oneof(
  fc.constantFrom(...Object.values(EDU_REG), 0x84, 0x9c, 0x100000 - 4, 0x100000 - 1, 0x100000, 0x100004),
  fc.integer({ min: 0, max: 0xa0 }),
  fc.integer({ min: BUF - 8, max: BUF + 4100 }),
);
const size = fc.constantFrom<1 | 2 | 4>(1, 2, 4);
const bar = fc.oneof({ arbitrary: fc.constant(0), weight: 9 }, { arbitrary: fc.constant(1), weight: 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('r' as const), bar, offset, size }),
  fc.record({ kind: fc.constant('w' as const), bar, offset, size, value: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ kind: fc.constant('cmd' as const), value: fc.constantFrom(0x0006, 0x0004, 0x0002) }),
);

function outcome(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    return isSysError(e) ? e.errno : `not a SysError: ${String(e)}`;
  }
}

function model(mmioDmaBuffer: boolean): EduFunction {
  const dev = eduFunction({ mmioDmaBuffer });
  dev.attach(new FakeHost());
  dev.configWrite(0x04, 2, 0x0006);
  return dev;
}

it.each([false, true])('barReadValue/barWriteValue answer exactly as barRead/barWrite (mmioDmaBuffer %s)', (mmioDmaBuffer) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const a = model(mmioDmaBuffer);
      const b = model(mmioDmaBuffer);
      for (const o of ops) {
        if (o.kind === 'cmd') {
          a.configWrite(0x04, 2, o.value);
          b.configWrite(0x04, 2, o.value);
        } else if (o.kind === 'r') {
          expect(outcome(() => a.barReadValue(o.bar, o.offset, o.size))).toEqual(
            outcome(() => Number(fromLe(b.barRead(o.bar, BigInt(o.offset), o.size)))),
          );
        } else {
          expect(
            outcome(() => {
              a.barWriteValue(o.bar, o.offset, o.size, o.value);
            }),
          ).toEqual(
            outcome(() => {
              b.barWrite(o.bar, BigInt(o.offset), le(o.value, o.size));
            }),
          );
        }
      }
      // The state behind the registers and the buffer.
      a.configWrite(0x04, 2, 0x0006);
      b.configWrite(0x04, 2, 0x0006);
      for (const reg of Object.values(EDU_REG)) {
        expect(a.barRead(0, BigInt(reg), 4)).toEqual(b.barRead(0, BigInt(reg), 4));
      }
      expect(a.dmaBuffer()).toEqual(b.dmaBuffer());
    }),
    { numRuns: 80 },
  );
});
