/**
 * SET_IRQS against a small reference model (inventory §1.4.2, §3.4): random sequences of SET_IRQS calls, device
 * messages and ERR/REQ events on the e1000e layout (INTx 1, MSI 1, MSI-X 5 with and without dynamic allocation,
 * ERR 1, REQ 1).
 * The model predicts the errno of every call, the active type, each vector's eventfd and every eventfd's counter;
 * a failing call must leave the layer's state exactly as it was.
 */
import fc from 'fast-check';
import { SysError } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { e1000eBench } from './intrs-helpers.js';

const NONE = 1;
const BOOL = 2;
const EVENTFD = 4;
const MASK = 8;
const UNMASK = 16;
const TRIGGER = 32;
const COUNTS = [1, 1, 5, 1, 1];

/** The reference model: only what user space can observe. */
interface Model {
  type: 'none' | 0 | 1 | 2;
  intxTrigger: number | null;
  unmaskSlot: boolean;
  vectors: Map<number, number>;
  allocated: Set<number>;
  err: number | undefined;
  req: number | undefined;
  signals: Map<number, number>;
}

type Op =
  | { kind: 'set'; index: number; flags: number; start: number; count: number; data: number[] }
  | { kind: 'msi'; vector: number }
  | { kind: 'err' }
  | { kind: 'req' };

/** 'ok' or an errno name. */
type Outcome = string;

function bump(m: Model, fd: number | null | undefined): void {
  if (fd === null || fd === undefined) return;
  m.signals.set(fd, (m.signals.get(fd) ?? 0) + 1);
}

/** What the kernel does with one SET_IRQS call (validation, then vfio_pci_set_irqs_ioctl). */
function modelSet(m: Model, op: Extract<Op, { kind: 'set' }>, resolve: (fd: number) => Outcome, dyn: boolean): Outcome {
  const { index, flags, start, count, data } = op;
  if (count >= 0xffffffff - start) return 'EINVAL';
  const n = COUNTS[index]!;
  if (start >= n || start + count > n) return 'EINVAL';
  const type = flags & 7;
  if (type !== NONE && type !== BOOL && type !== EVENTFD) return 'EINVAL';
  const action = flags & 0x38;
  if (index === 0) {
    if (action === MASK || action === UNMASK) {
      if (m.type !== 0 || start !== 0 || count !== 1) return 'EINVAL';
      if (type !== EVENTFD) return 'ok';
      if (action === MASK) return 'ENOTTY';
      const fd = data[0]!;
      if (fd < 0) {
        m.unmaskSlot = false;
        return 'ok';
      }
      const r = resolve(fd);
      if (r !== 'ok') return r;
      if (m.unmaskSlot) return 'EBUSY';
      m.unmaskSlot = true;
      return 'ok';
    }
    if (action !== TRIGGER) return 'ENOTTY';
    if (m.type === 0 && count === 0 && type === NONE) {
      m.type = 'none';
      m.intxTrigger = null;
      m.unmaskSlot = false;
      return 'ok';
    }
    if (!(m.type === 0 || m.type === 'none') || start !== 0 || count !== 1) return 'EINVAL';
    if (type === EVENTFD) {
      const fd = data[0]!;
      if (fd >= 0) {
        const r = resolve(fd);
        if (r !== 'ok') return r;
      }
      m.type = 0;
      m.intxTrigger = fd >= 0 ? fd : null;
      return 'ok';
    }
    if (m.type !== 0) return 'EINVAL';
    if (type === NONE || data[0]) bump(m, m.intxTrigger);
    return 'ok';
  }
  if (index === 1 || index === 2) {
    if (action !== TRIGGER) return 'ENOTTY';
    if (m.type === index && count === 0 && type === NONE) {
      m.type = 'none';
      m.vectors.clear();
      m.allocated.clear();
      return 'ok';
    }
    if (!(m.type === index || m.type === 'none')) return 'EINVAL';
    if (type === EVENTFD) {
      for (const fd of data) {
        if (fd < 0) continue;
        const r = resolve(fd);
        if (r !== 'ok') return r;
      }
      if (m.type === index) {
        for (let i = 0; i < count; i++) {
          const v = start + i;
          if (data[i]! >= 0 && !m.vectors.has(v) && !m.allocated.has(v) && (index !== 2 || !dyn)) return 'EINVAL';
        }
      } else {
        if (start + count < 1) return 'ERANGE';
        m.type = index;
        for (let v = 0; v < start + count; v++) m.allocated.add(v);
      }
      for (let i = 0; i < count; i++) {
        const v = start + i;
        m.vectors.delete(v);
        if (data[i]! >= 0) {
          m.allocated.add(v);
          m.vectors.set(v, data[i]!);
        }
      }
      return 'ok';
    }
    if (m.type !== index) return 'EINVAL';
    for (let i = 0; i < count; i++) {
      if (type === NONE || data[i]) bump(m, m.vectors.get(start + i));
    }
    return 'ok';
  }
  // ERR (the e1000e is PCIe) and REQ.
  if (action !== TRIGGER) return 'ENOTTY';
  const key = index === 3 ? 'err' : 'req';
  const cur = m[key];
  if (type === NONE) {
    if (cur === undefined) return 'EINVAL';
    if (count) bump(m, cur);
    else m[key] = undefined;
    return 'ok';
  }
  if (!count) return 'EINVAL';
  if (type === BOOL) {
    if (data[0]) bump(m, cur);
    return 'ok';
  }
  const fd = data[0]!;
  if (fd === -1) m[key] = undefined;
  else if (fd >= 0) {
    const r = resolve(fd);
    if (r !== 'ok') return r;
    m[key] = fd;
  }
  return 'ok';
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .record({
        index: fc.constantFrom(0, 1, 2, 2, 2, 3, 4),
        action: fc.constantFrom(TRIGGER, TRIGGER, TRIGGER, TRIGGER, MASK, UNMASK, UNMASK, 0, MASK | UNMASK),
        type: fc.constantFrom(EVENTFD, EVENTFD, EVENTFD, EVENTFD, NONE, NONE, NONE, BOOL, BOOL, 0, NONE | BOOL),
        // Mostly calls that pass validation, so that the state machine is exercised, plus the edge cases.
        start: fc.oneof(
          { weight: 12, arbitrary: fc.constant(0) },
          { weight: 3, arbitrary: fc.integer({ min: 1, max: 5 }) },
          { weight: 1, arbitrary: fc.constant(0xffffffff) },
        ),
        count: fc.oneof(
          { weight: 10, arbitrary: fc.constant(1) },
          { weight: 3, arbitrary: fc.constant(0) },
          { weight: 3, arbitrary: fc.integer({ min: 2, max: 6 }) },
        ),
        // Eventfds 3..5, -1 (de-assign), -2, an fd that is no eventfd (6), an unknown fd (99).
        values: fc.array(fc.constantFrom(3, 4, 5, 3, 4, 5, -1, -1, -2, 6, 99), { minLength: 6, maxLength: 6 }),
      })
      .map(({ index, action, type, start, count, values }) => ({
        kind: 'set' as const,
        index,
        flags: action | type,
        start,
        count,
        data: type === BOOL ? values.slice(0, count).map((v) => (v > 3 ? 1 : 0)) : type === EVENTFD ? values.slice(0, count) : [],
      })),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 5 }).map((vector) => ({ kind: 'msi' as const, vector })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'err' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'req' as const }) },
);

describe.each([true, false])('SET_IRQS against a reference model (dynamic MSI-X: %s)', (dyn) => {
  it('predicts every errno, the active type, each vector and every eventfd counter', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 40, size: 'max' }), (ops) => {
        const b = e1000eBench({ dynamicMsix: dyn });
        const efds = [b.proc.eventfd(), b.proc.eventfd(), b.proc.eventfd()];
        const fileFd = b.proc.file();
        expect(fileFd).toBe(6);
        const resolve = (fd: number): Outcome => (fd >= 3 && fd <= 5 ? 'ok' : fd === fileFd ? 'EINVAL' : 'EBADF');
        const m: Model = {
          type: 'none',
          intxTrigger: null,
          unmaskSlot: false,
          vectors: new Map(),
          allocated: new Set(),
          err: undefined,
          req: undefined,
          signals: new Map(),
        };
        for (const op of ops) {
          if (op.kind === 'msi') {
            if (m.type === 1 || m.type === 2) bump(m, m.vectors.get(op.vector));
            b.pdev.ctx.msiNotify(op.vector);
          } else if (op.kind === 'err') {
            bump(m, m.err);
            expect(b.layer.errSignal()).toBe(m.err !== undefined);
          } else if (op.kind === 'req') {
            bump(m, m.req);
            expect(b.layer.requestSignal(1)).toBe(m.req !== undefined);
          } else {
            const before = JSON.stringify(b.state());
            const expected = modelSet(m, op, resolve, dyn);
            let got: Outcome = 'ok';
            try {
              expect(b.setIrqs(op.flags, op.index, op.start, op.count, op.data)).toBe(0);
            } catch (e) {
              if (!(e instanceof SysError)) throw e;
              got = e.errno;
            }
            expect(got, JSON.stringify(op)).toBe(expected);
            if (got !== 'ok') expect(JSON.stringify(b.state())).toBe(before);
          }
          const s = b.state();
          const typeName = m.type === 'none' ? 'none' : (['intx', 'msi', 'msix'] as const)[m.type];
          expect(s.irqType).toBe(typeName);
          expect(b.config.irqType).toBe(typeName);
          expect(s.intx?.eventfd ?? null).toBe(m.type === 0 ? m.intxTrigger : null);
          expect(s.intx?.unmaskEventfd !== undefined && s.intx?.unmaskEventfd !== null).toBe(m.unmaskSlot);
          expect(s.msi?.vectors.map((v) => [v.vector, v.eventfd]) ?? []).toEqual([...m.vectors].sort((x, y) => x[0] - y[0]));
          expect(s.msi?.allocated ?? 0).toBe(m.allocated.size);
          expect(s.err.eventfd ?? undefined).toBe(m.err);
          expect(s.req.eventfd ?? undefined).toBe(m.req);
          // The function's MSI/MSI-X enable bits follow the active type.
          expect((b.fn.configRead(0xa2, 2) & 0x8000) !== 0).toBe(m.type === 2);
          expect((b.fn.configRead(0xd2, 2) & 1) !== 0).toBe(m.type === 1);
          efds.forEach((e) => {
            expect(Number(e.efd.count), `eventfd ${e.fd}`).toBe(m.signals.get(e.fd) ?? 0);
          });
        }
      }),
      { numRuns: 150 },
    );
  });
});
