/**
 * The region-access fast path (src/driver/region-io.ts) against the general path (inventory §3.3): two identical
 * hosts run the same random pread/pwrite sequence, one through the device fd (which takes the fast path whenever it
 * applies) and one through regionRw directly; every result, errno and the state left behind must agree. The
 * operations cluster where the rules are: the config header, capability boundaries and extended capabilities, COMMAND (memory decoding
 * on and off), the MSI-X table window, I/O and memory BARs, BAR ends, the ROM, and lengths around the fast path's
 * limit.
 */
import fc from 'fast-check';
import type { VfioDevice } from '@vfio-ts/core';
import { isSysError, vfioPciOffset } from '@vfio-ts/uapi';
import { expect, it } from 'vitest';
import type { VfioPciCoreDevice } from '../src/index.js';
import { pmGet, pmPut } from '../src/driver/pm.js';
import { readBound, regionRw } from '../src/driver/regs-access.js';
import { E1000E_BDF, EDU_BDF, e1000eFunction, eduHost, makeHost, openDev } from './driver-helpers.js';
import type { TestHost } from './driver-helpers.js';

type Op = { kind: 'r'; index: number; offset: number; length: number } | { kind: 'w'; index: number; offset: number; data: Uint8Array };

function coreDevice(t: TestHost, bdf: string): VfioPciCoreDevice {
  const d = [...t.host.vfio.devices.values()].find((x) => x.name === bdf) as VfioDevice<VfioPciCoreDevice> | undefined;
  return d!.data;
}

/** The general path as vfio_pci_rw runs it (resume, bound, access, idle), without the fast path. */
function slowRead(dev: VfioPciCoreDevice, length: number, offset: bigint): Uint8Array {
  pmGet(dev);
  try {
    const buf = new Uint8Array(readBound(dev, offset, length));
    return buf.subarray(0, regionRw(dev, offset, buf, false));
  } finally {
    pmPut(dev);
  }
}

function slowWrite(dev: VfioPciCoreDevice, data: Uint8Array, offset: bigint): number {
  pmGet(dev);
  try {
    return regionRw(dev, offset, data.slice(), true);
  } finally {
    pmPut(dev);
  }
}

function outcome(fn: () => Uint8Array | number): unknown {
  try {
    const r = fn();
    return typeof r === 'number' ? r : [...r];
  } catch (e) {
    return isSysError(e) ? e.errno : `not a SysError: ${String(e)}`;
  }
}

function ops(barSizes: Record<number, number>, hot: readonly number[], configSize = 256): fc.Arbitrary<Op[]> {
  const indexes = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const offsetFor = (index: number): fc.Arbitrary<number> => {
    const size = index === 7 ? configSize : (barSizes[index] ?? 0x100);
    return fc.oneof(
      fc.integer({ min: 0, max: 0x48 }),
      fc.constantFrom(...hot.map((h) => Math.min(h, size + 4))),
      fc.integer({ min: Math.max(0, size - 70), max: size + 4 }),
    );
  };
  const length = fc.oneof(fc.constantFrom(1, 2, 4, 8), fc.integer({ min: 1, max: 72 }));
  const op = fc.constantFrom(...indexes).chain((index) =>
    fc.oneof(
      fc.record({ kind: fc.constant('r' as const), index: fc.constant(index), offset: offsetFor(index), length }),
      fc.record({
        kind: fc.constant('w' as const),
        index: fc.constant(index),
        offset: offsetFor(index),
        data: fc.uint8Array({ minLength: 1, maxLength: 72 }),
      }),
    ),
  );
  // COMMAND writes toggle memory decoding, so both the EIO path and the enabled path are exercised.
  const command = fc.record({
    kind: fc.constant('w' as const),
    index: fc.constant(7),
    offset: fc.constant(4),
    data: fc.constantFrom(new Uint8Array([0x07, 0x00]), new Uint8Array([0x05, 0x00]), new Uint8Array([0x03, 0x04])),
  });
  return fc.array(fc.oneof({ arbitrary: op, weight: 5 }, { arbitrary: command, weight: 1 }), { maxLength: 50 });
}

function run(make: () => { t: TestHost; bdf: string }, list: Op[]): void {
  const a = make();
  const b = make();
  const fdA = openDev(a.t, a.bdf).device;
  openDev(b.t, b.bdf);
  const devB = coreDevice(b.t, b.bdf);
  for (const o of list) {
    const at = vfioPciOffset(o.index) + BigInt(o.offset);
    if (o.kind === 'r') {
      expect(outcome(() => a.t.p.pread(fdA, o.length, at))).toEqual(outcome(() => slowRead(devB, o.length, at)));
    } else {
      expect(outcome(() => a.t.p.pwrite(fdA, o.data, at))).toEqual(outcome(() => slowWrite(devB, o.data, at)));
    }
  }
  // The state left behind: the whole config space and the start of every BAR, read the general way.
  const devA = coreDevice(a.t, a.bdf);
  for (const index of [0, 1, 2, 3, 7]) {
    const at = vfioPciOffset(index);
    const n = index === 7 ? devA.opened.config.size : 256;
    expect(outcome(() => slowRead(devA, n, at))).toEqual(outcome(() => slowRead(devB, n, at)));
  }
}

it('the fast path answers exactly as the general path on the e1000e (MSI-X window, I/O BAR, ROM)', () => {
  // BAR3 holds the MSI-X table (0..80); BAR2 is an I/O BAR; capabilities from 0xc8, extended ones from 0x100.
  const arb = ops(
    { 0: 0x20000, 1: 0x20000, 2: 0x20, 3: 0x4000 },
    [0x3c, 0x4e, 0x50, 0x7c, 0x80, 0xa0, 0xc8, 0xe0, 0x100, 0x104, 0x140, 0x150],
    4096,
  );
  fc.assert(
    fc.property(arb, (list) => {
      run(() => ({ t: makeHost([{ bdf: E1000E_BDF, fn: e1000eFunction(), driver: 'vfio-pci' }]), bdf: E1000E_BDF }), list);
    }),
    { numRuns: 40 },
  );
});

it('the fast path answers exactly as the general path on edu (registers, MSI capability)', () => {
  const arb = ops({ 0: 0x100000 }, [0x04, 0x08, 0x20, 0x24, 0x40, 0x44, 0x4c, 0x80, 0x98]);
  fc.assert(
    fc.property(arb, (list) => {
      run(() => ({ t: eduHost(), bdf: EDU_BDF }), list);
    }),
    { numRuns: 40 },
  );
});
