/**
 * Property test: random sequences of field changes, register accesses, bridge writes, clock steps and resets,
 * checked after every step against a small reference model of the card written from the register table.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IDIO16_BAR, IDIO16_BRIDGE_INTCSR } from '../src/index.js';
import { inb, outb, setup } from './helpers.js';

const FILTER_MS = 5;

type Op =
  | { kind: 'set'; line: number; level: boolean }
  | { kind: 'setAll'; mask: number }
  | { kind: 'read'; reg: number }
  | { kind: 'write'; reg: number; value: number }
  | { kind: 'intcsr'; value: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'reset' };

/** The card as the ACCES table describes it, in the plainest form. */
class Reference {
  out = 0;
  field = 0;
  reported = 0;
  enabled = false;
  status = 0;
  filterAll = false;
  filterLow = 0;
  intcsr = 0x43;
  now = 0;
  /** Time at which each settling filtered input reports its field level. */
  deadline = new Map<number, number>();

  filtered(line: number): boolean {
    return this.filterAll || (line < 8 && (this.filterLow & (1 << line)) !== 0);
  }

  commit(mask: number): void {
    if (!mask) return;
    this.reported ^= mask;
    if (!this.enabled) return;
    this.status |= 4 | (mask & 0xff ? 1 : 0) | (mask & 0xff00 ? 2 : 0);
  }

  drive(levels: number): void {
    const changed = this.field ^ levels;
    this.field = levels;
    let now = 0;
    for (let line = 0; line < 16; line++) {
      const bit = 1 << line;
      if (!(changed & bit)) continue;
      if (!this.filtered(line)) now |= bit;
      else if ((this.field ^ this.reported) & bit) this.deadline.set(line, this.now + FILTER_MS);
      else this.deadline.delete(line);
    }
    this.commit(now);
  }

  setFilters(all: boolean, low: number): void {
    this.filterAll = all;
    this.filterLow = low;
    let settle = 0;
    for (const line of [...this.deadline.keys()]) {
      if (this.filtered(line)) continue;
      this.deadline.delete(line);
      settle |= 1 << line;
    }
    this.commit(settle & (this.field ^ this.reported));
  }

  advance(ms: number): void {
    this.now += ms;
    let due = 0;
    for (const [line, at] of [...this.deadline]) {
      if (at > this.now) continue;
      this.deadline.delete(line);
      due |= 1 << line;
    }
    this.commit(due);
  }

  read(reg: number): number {
    switch (reg) {
      case 0:
        return this.out & 0xff;
      case 1:
        return this.reported & 0xff;
      case 2:
        this.enabled = true;
        return 0xff;
      case 3:
        this.setFilters(true, 0);
        return 0xff;
      case 4:
        return this.out >> 8;
      case 5:
        return this.reported >> 8;
      case 6:
        return this.status;
      default:
        return this.filterAll ? 0xff : this.filterLow;
    }
  }

  write(reg: number, value: number): void {
    if (reg === 0) this.out = (this.out & 0xff00) | value;
    else if (reg === 1) this.status = 0;
    else if (reg === 2) this.enabled = false;
    else if (reg === 3) this.setFilters(false, 0);
    else if (reg === 4) this.out = (this.out & 0xff) | (value << 8);
    else if (reg === 7 && !this.filterAll) this.setFilters(false, value);
  }

  reset(): void {
    this.out = 0;
    this.reported = this.field;
    this.enabled = false;
    this.status = 0;
    this.filterAll = false;
    this.filterLow = 0;
    this.intcsr = 0x43;
    this.deadline.clear();
  }

  intx(): boolean {
    const card = this.enabled && (this.status & 4) !== 0;
    const lint1 = card === ((this.intcsr & 0x02) !== 0);
    if (!(this.intcsr & 0x40)) return false;
    return (this.intcsr & 0x80) !== 0 || ((this.intcsr & 0x01) !== 0 && lint1);
  }
}

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), line: fc.nat(15), level: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setAll' as const), mask: fc.nat(0xffff) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), reg: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('write' as const), reg: fc.nat(7), value: fc.nat(0xff) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('intcsr' as const), value: fc.nat(0xff) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

describe('PCI-IDIO-16 against a reference model', () => {
  it('agrees on every register read, the output latch, reported inputs and INTx', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const sim = setup({ filterMs: FILTER_MS });
        const ref = new Reference();
        for (const o of ops) {
          switch (o.kind) {
            case 'set': {
              sim.inputs.set(o.line, o.level);
              const bit = 1 << o.line;
              ref.drive(o.level ? ref.field | bit : ref.field & ~bit);
              break;
            }
            case 'setAll':
              sim.inputs.setAll(o.mask);
              ref.drive(o.mask);
              break;
            case 'read':
              expect(inb(sim.dev, o.reg)).toBe(ref.read(o.reg));
              break;
            case 'write':
              outb(sim.dev, o.reg, o.value);
              ref.write(o.reg, o.value);
              break;
            case 'intcsr':
              sim.dev.barWrite(IDIO16_BAR.BRIDGE_IO, BigInt(IDIO16_BRIDGE_INTCSR), Uint8Array.of(o.value));
              ref.intcsr = o.value & 0xdb;
              break;
            case 'advance':
              sim.host.clock.advance(o.ms);
              ref.advance(o.ms);
              break;
            case 'reset':
              sim.dev.reset('bus');
              sim.dev.configWrite(0x04, 2, 0x3);
              ref.reset();
              break;
          }
          expect(sim.outputs()).toBe(ref.out);
          expect(sim.inputs.reported()).toBe(ref.reported);
          expect(sim.state().irqStatus).toBe(ref.status);
          expect(sim.host.intxLevel).toBe(ref.intx());
        }
      }),
      { numRuns: 400 },
    );
  });
});
