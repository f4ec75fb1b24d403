/**
 * Property test: random interleavings of enable, signal, close, disable, flushThread and partial queue progress
 * against a small model of the slots. Checks the virqfd.c guarantees (inventory §3.7): EBUSY exactly when the
 * model's slot is taken, every virqfd is released at most once (exactly once when closed or disabled), and no
 * handler or thread of a virqfd runs after a disable that detached it — or a later one — has resolved.
 */
import fc from 'fast-check';
import { isSysError } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { createVirqfdContext, createVirqfdSlot } from '../src/index.js';
import { fakeEventFd } from './fake-eventfd.js';
import type { FakeEventFd } from './fake-eventfd.js';

const SLOTS = 2;
const EFDS = 4;

type Op =
  | { kind: 'enable'; slot: number; reuse: number | null; pending: boolean; handlerSays: boolean; thread: boolean; asyncThread: boolean }
  | { kind: 'signal'; efd: number }
  | { kind: 'close'; efd: number }
  | { kind: 'disable'; slot: number }
  | { kind: 'flushThread'; slot: number }
  | { kind: 'tick' }
  | { kind: 'flush' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: enableArb(), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('signal' as const), efd: fc.nat(EFDS - 1) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('close' as const), efd: fc.nat(EFDS - 1) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('disable' as const), slot: fc.nat(SLOTS - 1) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('flushThread' as const), slot: fc.nat(SLOTS - 1) }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'tick' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'flush' as const }), weight: 1 },
);

function enableArb(): fc.Arbitrary<Op> {
  return fc.record({
    kind: fc.constant('enable' as const),
    slot: fc.nat(SLOTS - 1),
    reuse: fc.option(fc.nat(EFDS - 1), { nil: null }),
    pending: fc.boolean(),
    handlerSays: fc.boolean(),
    thread: fc.boolean(),
    asyncThread: fc.boolean(),
  });
}

interface Tracked {
  readonly efd: FakeEventFd;
  readonly slot: number;
  /** Clock of the last handler call that returned true, and of the last thread start. */
  lastTrueAt: number;
  lastThreadStart: number;
  removals: number;
  /** Set when a disable that found this virqfd in its slot (or any later disable of that slot) resolved. */
  disabledAt: number | undefined;
  detached: boolean;
  handlerTrue: number;
  threads: number;
  lastCallback: number;
  readonly hasThread: boolean;
}

const tick = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

describe('virqfd close/disable races (property)', () => {
  it('never double-releases and never calls back after disable resolved', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const ctx = createVirqfdContext();
        const slots = Array.from({ length: SLOTS }, () => createVirqfdSlot());
        const model: (Tracked | undefined)[] = Array.from({ length: SLOTS }, () => undefined);
        const efds: FakeEventFd[] = [];
        const all: Tracked[] = [];
        const promises: Promise<void>[] = [];
        let clock = 0;
        const violations: string[] = [];
        /** Eventfds are picked counting back from the newest, so ops keep hitting live ones. */
        const recent = (k: number): FakeEventFd | undefined => efds[efds.length - 1 - k];

        const callback = (t: Tracked, what: string): void => {
          clock++;
          t.lastCallback = clock;
          if (t.disabledAt !== undefined) violations.push(`${what} after disable resolved`);
        };

        for (const op of ops) {
          switch (op.kind) {
            case 'enable': {
              let efd: FakeEventFd;
              const reused = op.reuse !== null ? recent(op.reuse) : undefined;
              if (reused && !reused.closed) efd = reused;
              else {
                efd = fakeEventFd(efds.length + 1, op.pending ? 1n : 0n);
                efds.push(efd);
              }
              const t: Tracked = { efd, slot: op.slot, lastTrueAt: 0, lastThreadStart: 0, removals: 0, disabledAt: undefined, detached: false, handlerTrue: 0, threads: 0, lastCallback: 0, hasThread: op.thread };
              // Count removals per virqfd by wrapping this one registration.
              const add = efd.addWaiter.bind(efd);
              const wrapped = Object.create(efd) as FakeEventFd;
              Object.defineProperty(wrapped, 'addWaiter', {
                value: (w: { onSignal(): void; onClose(): void }) => {
                  const remove = add(w);
                  return () => {
                    t.removals++;
                    remove();
                  };
                },
              });
              let caught: unknown;
              try {
                ctx.enable({
                  slot: slots[op.slot]!,
                  eventfd: wrapped,
                  data: t,
                  handler: (d) => {
                    callback(d, 'handler');
                    if (op.handlerSays) {
                      d.handlerTrue++;
                      d.lastTrueAt = clock;
                    }
                    return op.handlerSays;
                  },
                  thread: op.thread
                    ? op.asyncThread
                      ? async (d) => {
                          callback(d, 'thread');
                          d.lastThreadStart = clock;
                          d.threads++;
                          await tick();
                          callback(d, 'thread-end');
                        }
                      : (d) => {
                          callback(d, 'thread');
                          d.lastThreadStart = clock;
                          d.threads++;
                        }
                    : undefined,
                });
              } catch (e) {
                caught = e;
              }
              if (model[op.slot]) {
                expect(isSysError(caught, 'EBUSY')).toBe(true);
              } else {
                expect(caught).toBeUndefined();
                model[op.slot] = t;
                all.push(t);
              }
              break;
            }
            case 'signal':
              recent(op.efd)?.signal();
              break;
            case 'close': {
              const efd = recent(op.efd);
              if (!efd) break;
              efd.close();
              for (let s = 0; s < SLOTS; s++) {
                const t = model[s];
                if (t && t.efd === efd) {
                  t.detached = true;
                  model[s] = undefined;
                }
              }
              break;
            }
            case 'disable': {
              const t = model[op.slot];
              model[op.slot] = undefined;
              if (t) t.detached = true;
              // Whatever the slot held before (closed or disabled earlier) must be quiet once this resolves too.
              const victims = all.filter((v) => v.detached && v.disabledAt === undefined && v.slot === op.slot);
              promises.push(
                ctx.disable(slots[op.slot]!).then(() => {
                  clock++;
                  for (const v of victims) v.disabledAt ??= clock;
                }),
              );
              break;
            }
            case 'flushThread': {
              const t = model[op.slot];
              const trueAt = t ? t.lastTrueAt : 0;
              promises.push(
                ctx.flushThread(slots[op.slot]!).then(() => {
                  // The thread asked for by the last true handler before the call has started (and finished) now.
                  if (t?.hasThread && trueAt > 0 && !(t.lastThreadStart > trueAt)) violations.push('flushThread too early');
                }),
              );
              break;
            }
            case 'tick':
              await tick();
              break;
            case 'flush':
              await ctx.flush();
              break;
          }
          for (const t of all) expect(t.removals).toBeLessThanOrEqual(1);
          for (let s = 0; s < SLOTS; s++) expect(slots[s]!.active).toBe(model[s] !== undefined);
        }

        await Promise.all(promises);
        await ctx.flush();
        // Signals after everything settled reach only virqfds still attached.
        for (const efd of efds) efd.signal();
        await ctx.flush();

        expect(violations).toEqual([]);
        for (const t of all) {
          expect(t.removals).toBe(t.detached ? 1 : 0);
          expect(t.threads).toBeLessThanOrEqual(t.handlerTrue);
        }
        const detached = all.filter((t) => t.detached).length;
        expect(ctx.describe()).toMatchObject({ active: all.length - detached, released: detached, pendingThreads: 0, pendingCleanup: 0 });
        for (let s = 0; s < SLOTS; s++) await ctx.disable(slots[s]!);
        expect(ctx.describe()).toMatchObject({ active: 0, released: all.length });
        for (const efd of efds) expect(efd.waiters).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
