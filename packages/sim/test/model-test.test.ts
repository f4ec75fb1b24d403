import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { isSysError } from '@vfio-ts/uapi';
import { ManualClock, ModelTestContext, fromLe, modelTestContext, toLe } from '../src/index.js';

/** A toy model: on a BAR0 write it DMAs 4 bytes from IOVA 0x1000 to 0x2000 after 5 ms and raises MSI 0 + INTx. */
function toyModel(): PciFunction & { ctx?: PciFunctionContext } {
  const m: PciFunction & { ctx?: PciFunctionContext } = {
    bars: [],
    configRead: () => 0,
    configWrite: () => undefined,
    attach(ctx) {
      m.ctx = ctx;
    },
    barWrite() {
      const ctx = m.ctx!;
      ctx.clock.setTimeout(() => {
        ctx.dma.write(0x2000n, ctx.dma.read(0x1000n, 4));
        ctx.msiNotify(0);
        ctx.setIntx(true);
      }, 5);
    },
  };
  return m;
}

describe('modelTestContext', () => {
  it('runs a model against manual time, windowed RAM and recorded interrupts', () => {
    const ctx = modelTestContext();
    expect(ctx).toBeInstanceOf(ModelTestContext);
    expect(ctx.bdf).toBe('0000:00:03.0');
    const fn = toyModel();
    fn.attach!(ctx);
    ctx.map(0x1000n, 0x2000n);
    ctx.poke(0x1000n, Uint8Array.of(1, 2, 3, 4));
    fn.barWrite!(0, 0n, Uint8Array.of(1));
    expect(ctx.clock.pending).toBe(1);
    ctx.clock.advance(4);
    expect(ctx.msi).toEqual([]);
    ctx.clock.advance(1);
    expect(ctx.clock.now()).toBe(5);
    expect(ctx.clock.pending).toBe(0);
    expect(ctx.peek(0x2000n, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(ctx.msi).toEqual([0]);
    expect(ctx.intx).toEqual([true]);
    expect(ctx.intxLevel).toBe(true);
    expect(ctx.faults).toEqual([]);
  });

  it('faults DMA outside the mapped windows and records the IOVA', () => {
    const ctx = modelTestContext({ bdf: '0000:00:07.0' });
    expect(ctx.bdf).toBe('0000:00:07.0');
    ctx.map(0x1000n, 0x1000n);
    expect(() => ctx.dma.read(0xfffn, 2)).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
    expect(() => {
      ctx.dma.write(0x1ffen, new Uint8Array(4));
    }).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
    expect(ctx.faults).toEqual([0xfffn, 0x1ffen]);
    ctx.dma.write(0x1ffcn, Uint8Array.of(9, 9, 9, 9));
    expect(ctx.peek(0x1ffcn, 4)).toEqual(Uint8Array.of(9, 9, 9, 9));
  });

  it('a target-only device gets EFAULT from any DMA and no faults are recorded', () => {
    const ctx = modelTestContext({ dma: false, noDmaReason: 'target only' });
    ctx.map(0n, 0x10000n);
    let err: unknown;
    try {
      ctx.dma.read(0n, 1);
    } catch (e) {
      err = e;
    }
    expect(isSysError(err, 'EFAULT') && err.message.includes('target only')).toBe(true);
    expect(() => {
      ctx.dma.write(0n, new Uint8Array(1));
    }).toThrow();
    expect(ctx.faults).toEqual([]);
  });

  it('fake RAM matches a byte map across page boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 3n * 4096n }), fc.uint8Array({ minLength: 0, maxLength: 6000 })), { maxLength: 8 }),
        (writes) => {
          const ctx = modelTestContext();
          const ref = new Uint8Array(5 * 4096 + 16);
          for (const [addr, data] of writes) {
            ctx.poke(addr, data);
            ref.set(data, Number(addr));
          }
          expect(Buffer.from(ctx.peek(0n, ref.length)).equals(ref)).toBe(true);
          expect(ctx.peek(4095n, 3)).toEqual(ref.subarray(4095, 4098));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('ManualClock fires timers in deadline order, including ones armed by a firing timer', () => {
    const clock = new ManualClock();
    const log: string[] = [];
    clock.setTimeout(() => log.push('b'), 10);
    clock.setTimeout(() => {
      log.push('a');
      clock.setTimeout(() => log.push('c'), 3);
    }, 5);
    const d = clock.setTimeout(() => log.push('d'), 7);
    d.cancel();
    expect(clock.pending).toBe(2);
    clock.advance(20);
    expect(log).toEqual(['a', 'c', 'b']);
    expect(clock.now()).toBe(20);
    expect(clock.pending).toBe(0);
  });

  it('toLe / fromLe round-trip little-endian values', () => {
    expect(toLe(0x11223344, 4)).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    expect(toLe(0x1ff, 1)).toEqual(Uint8Array.of(0xff));
    expect(fromLe(Uint8Array.of(0x44, 0x33, 0x22, 0x11, 0x00, 0x00, 0x00, 0x80))).toBe(0x8000000011223344n);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => fromLe(toLe(v, 8)) === v),
      { numRuns: 100 },
    );
  });
});
