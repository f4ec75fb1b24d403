import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_FIFO_SIZE, MttyUarts, UART_LSR, UART_LSR_DR, UART_RX, UART_TX } from '../src/index.js';

type Access = { write: boolean; port: number; offset: number; value: number };

const accessArb: fc.Arbitrary<Access> = fc.record({
  write: fc.boolean(),
  port: fc.nat(1),
  offset: fc.nat(7),
  value: fc.nat(255),
});

describe('UART emulation under random register traffic', () => {
  it('keeps every FIFO consistent and never throws', () => {
    fc.assert(
      fc.property(fc.constantFrom<'loopback' | 'null-modem'>('loopback', 'null-modem'), fc.array(accessArb, { maxLength: 200 }), (wiring, accesses) => {
        let irqs = 0;
        const u = new MttyUarts(2, wiring, () => {
          irqs++;
        });
        for (const a of accesses) {
          if (a.write) u.write(a.port, a.offset, a.value);
          else {
            const v = u.read(a.port, a.offset);
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(255);
          }
          for (const s of u.ports) {
            expect(s.count).toBeGreaterThanOrEqual(0);
            expect(s.count).toBeLessThanOrEqual(MAX_FIFO_SIZE);
            expect((s.head - s.tail - s.count) & (MAX_FIFO_SIZE - 1)).toBe(0);
          }
        }
        expect(irqs).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 200 },
    );
  });

  it('delivers bytes in order against a queue model (loopback, FIFO enabled, DLAB clear)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.nat(255).map((b) => ({ tx: b })), fc.constant({ rx: true as const })), { maxLength: 100 }), (ops) => {
        const u = new MttyUarts(1, 'loopback', () => undefined);
        u.write(0, 2, 0x01); // FCR: FIFO on
        const model: number[] = [];
        for (const op of ops) {
          if ('tx' in op) {
            u.write(0, UART_TX, op.tx);
            if (model.length < MAX_FIFO_SIZE) model.push(op.tx);
          } else {
            const dr = (u.read(0, UART_LSR) & UART_LSR_DR) !== 0;
            expect(dr).toBe(model.length > 0);
            const v = u.read(0, UART_RX);
            if (model.length > 0) expect(v).toBe(model.shift());
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
