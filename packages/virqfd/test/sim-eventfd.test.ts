/** The same guarantees against the simulator's real eventfd object (@vfio-ts/sim SimEventFd). */
import { SimEventFd } from '@vfio-ts/sim';
import { describe, expect, it } from 'vitest';
import { createVirqfdContext, createVirqfdSlot } from '../src/index.js';

function simEventFd(id: number, initval = 0n): { efd: SimEventFd; log: string[] } {
  const log: string[] = [];
  return { efd: new SimEventFd(id, initval, false, (t) => log.push(t)), log };
}

describe('virqfd on @vfio-ts/sim eventfds', () => {
  it('handler, thread, pending-at-enable and disable', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const { efd, log: kernelLog } = simEventFd(1, 1n);
    const calls: string[] = [];
    ctx.enable({
      slot,
      eventfd: efd,
      data: 'intx',
      handler: (d) => {
        calls.push(`handler:${d}`);
        return true;
      },
      thread: (d) => {
        calls.push(`thread:${d}`);
      },
    });
    expect(calls).toEqual(['handler:intx']); // the pending count was seen at enable
    await ctx.flushThread(slot);
    expect(calls).toEqual(['handler:intx', 'thread:intx']);
    efd.signal();
    expect(efd.count).toBe(0n);
    await ctx.disable(slot);
    expect(calls).toEqual(['handler:intx', 'thread:intx', 'handler:intx', 'thread:intx']);
    expect(efd.waiterCount).toBe(0);
    efd.signal();
    await ctx.flush();
    expect(calls).toHaveLength(4);
    expect(kernelLog).toEqual([]);
  });

  for (const order of ['close-then-disable', 'disable-then-close'] as const) {
    it(`${order} with a thread pending releases once and stays quiet after disable`, async () => {
      const ctx = createVirqfdContext();
      const slot = createVirqfdSlot();
      const { efd } = simEventFd(2);
      const calls: string[] = [];
      ctx.enable({
        slot,
        eventfd: efd,
        data: 0,
        thread: () => {
          calls.push('thread');
        },
      });
      efd.signal();
      let done: Promise<void>;
      if (order === 'close-then-disable') {
        efd.close();
        done = ctx.disable(slot);
      } else {
        done = ctx.disable(slot);
        efd.close();
      }
      expect(slot.active).toBe(false);
      expect(ctx.describe().pendingCleanup).toBe(1);
      await done;
      calls.push('disabled');
      efd.signal();
      await ctx.flush();
      expect(calls).toEqual(['thread', 'disabled']);
      expect(ctx.describe()).toMatchObject({ active: 0, released: 1, pendingCleanup: 0 });
      expect(efd.waiterCount).toBe(0);
    });
  }
});
