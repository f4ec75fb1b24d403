// The README's example, kept running.
import { expect, it } from 'vitest';
import type { PciBarInfo, PciFunction, PciFunctionContext } from '../src/index.js';

function scratchDevice(): PciFunction {
  const config = new DataView(new ArrayBuffer(256));
  config.setUint16(0x00, 0x1234, true);
  config.setUint16(0x02, 0xbeef, true);
  let reg = 0;
  let ctx: PciFunctionContext | undefined;
  const bars: PciBarInfo[] = [{ index: 0, type: 'mem32', prefetchable: false, size: 0x1000n }];
  return {
    bars,
    configRead: (offset, size) => (size === 1 ? config.getUint8(offset) : size === 2 ? config.getUint16(offset, true) : config.getUint32(offset, true)),
    configWrite: () => {},
    attach(c) { ctx = c; },
    barRead: () => new Uint8Array(new Uint32Array([reg]).buffer),
    barWrite(_bar, _offset, data) {
      reg = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
      ctx?.msiNotify(0);
    },
  };
}

it('runs the README example: a PciFunction written against the contract', () => {
  const fn = scratchDevice();
  const msis: number[] = [];
  fn.attach!({
    bdf: '0000:00:03.0',
    dma: { read: () => new Uint8Array(0), write: () => {} },
    setIntx: () => {},
    msiNotify: (v) => { msis.push(v); },
    clock: { now: () => 0, setTimeout: () => ({ cancel() {} }), sleep: () => Promise.resolve() },
  });
  expect(fn.configRead(0, 2).toString(16)).toBe('1234');
  expect(fn.configRead(2, 2)).toBe(0xbeef);
  fn.barWrite!(0, 0n, new Uint8Array([7, 0, 0, 0]));
  expect([...fn.barRead!(0, 0n, 4)]).toEqual([7, 0, 0, 0]);
  expect(msis).toEqual([0]);
});
