import { isSysError } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import {
  createVirqfdContext,
  createVirqfdSlot,
  virqfdDisable,
  virqfdEnable,
  virqfdFlushThread,
  VirqfdSlot,
} from '../src/index.js';
import type { VirqfdEnableOptions } from '../src/index.js';
import { fakeEventFd } from './fake-eventfd.js';

function expectErrno(fn: () => unknown, errno: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isSysError(caught) ? caught.errno : caught).toBe(errno);
}

describe('enable and trigger (§3.7 V1, V3)', () => {
  it('runs the handler synchronously in signal() and the thread later, after it', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    const log: string[] = [];
    ctx.enable({
      slot,
      eventfd: efd,
      data: 'unmask',
      handler: (d) => {
        log.push(`handler:${d}`);
        return true;
      },
      thread: (d) => {
        log.push(`thread:${d}`);
      },
    });
    expect(slot.active).toBe(true);
    expect(slot.eventfd).toBe(efd);
    efd.signal();
    expect(log).toEqual(['handler:unmask']);
    expect(efd.count).toBe(0n); // the wake-up consumed the counter (eventfd_ctx_do_read)
    await ctx.flush();
    expect(log).toEqual(['handler:unmask', 'thread:unmask']);
  });

  it('does not queue the thread when the handler returns false', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let threads = 0;
    let decide = false;
    ctx.enable({
      slot,
      eventfd: efd,
      data: null,
      handler: () => decide,
      thread: () => {
        threads++;
      },
    });
    efd.signal();
    await ctx.flush();
    expect(threads).toBe(0);
    expect(ctx.describe().pendingThreads).toBe(0);
    decide = true;
    efd.signal();
    await ctx.flush();
    expect(threads).toBe(1);
  });

  it('queues the thread on every signal when there is no handler', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let threads = 0;
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      thread: () => {
        threads++;
      },
    });
    efd.signal();
    await ctx.flush();
    efd.signal();
    await ctx.flush();
    expect(threads).toBe(2);
  });

  it('coalesces signals that arrive while the thread is still pending (schedule_work)', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let handlers = 0;
    let threads = 0;
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      handler: () => {
        handlers++;
        return true;
      },
      thread: () => {
        threads++;
      },
    });
    efd.signal();
    efd.signal(3n);
    efd.signal();
    expect(handlers).toBe(3);
    await ctx.flush();
    expect(threads).toBe(1);
  });

  it('a handler-only virqfd never touches the workqueue', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let handlers = 0;
    ctx.enable({ slot, eventfd: efd, data: 0, handler: () => ++handlers > 0 });
    efd.signal();
    expect(handlers).toBe(1);
    expect(ctx.describe().pendingThreads).toBe(0);
    await ctx.flushThread(slot); // nothing to flush: no thread
    expect(ctx.describe().pendingCleanup).toBe(0);
  });

  it('semaphore eventfds are consumed one unit per wake-up', () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd(1, 0n, true);
    ctx.enable({ slot, eventfd: efd, data: 0, handler: () => false });
    efd.signal(3n);
    expect(efd.count).toBe(2n);
  });
});

describe('signal pending at enable time (§3.7 V4)', () => {
  it('triggers the handler during enable and the thread afterwards, leaving the counter as poll saw it', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd(7, 2n);
    const log: string[] = [];
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      handler: () => {
        log.push('handler');
        return true;
      },
      thread: () => {
        log.push('thread');
      },
    });
    expect(log).toEqual(['handler']);
    expect(efd.count).toBe(2n); // vfs_poll only looks; the next wake-up reads it
    await ctx.flush();
    expect(log).toEqual(['handler', 'thread']);
    efd.signal();
    expect(efd.count).toBe(0n);
  });

  it('does nothing at enable when the counter is zero', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    let calls = 0;
    ctx.enable({
      slot,
      eventfd: fakeEventFd(),
      data: 0,
      handler: () => ++calls > 0,
      thread: () => {
        calls++;
      },
    });
    await ctx.flush();
    expect(calls).toBe(0);
  });
});

describe('enable errors (§3.7 V2)', () => {
  it('EBUSY into an occupied slot; the existing virqfd keeps working', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const a = fakeEventFd(1);
    const b = fakeEventFd(2, 1n);
    let aCalls = 0;
    let bCalls = 0;
    ctx.enable({ slot, eventfd: a, data: 0, handler: () => ++aCalls > 0 });
    expectErrno(() => {
      ctx.enable({ slot, eventfd: b, data: 0, handler: () => ++bCalls > 0 });
    }, 'EBUSY');
    expect(b.waiters).toBe(0);
    expect(bCalls).toBe(0); // the pending signal on b was not handled: nothing was installed
    expect(slot.eventfd).toBe(a);
    a.signal();
    expect(aCalls).toBe(1);
    expect(ctx.describe().active).toBe(1);
    await ctx.disable(slot);
    ctx.enable({ slot, eventfd: b, data: 0, handler: () => ++bCalls > 0 });
    expect(bCalls).toBe(1);
  });

  it('EBADF for a closed eventfd, EINVAL for malformed arguments; the slot stays empty', () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const closed = fakeEventFd();
    closed.close();
    expectErrno(() => {
      ctx.enable({ slot, eventfd: closed, data: 0 });
    }, 'EBADF');
    expectErrno(() => {
      ctx.enable({ slot, eventfd: fakeEventFd(), data: 0, handler: 5 } as unknown as VirqfdEnableOptions<number>);
    }, 'EINVAL');
    expectErrno(() => {
      ctx.enable({ slot, eventfd: fakeEventFd(), data: 0, thread: 'x' } as unknown as VirqfdEnableOptions<number>);
    }, 'EINVAL');
    expectErrno(() => {
      ctx.enable({ slot, eventfd: {}, data: 0 } as unknown as VirqfdEnableOptions<number>);
    }, 'EINVAL');
    expectErrno(() => {
      ctx.enable({ slot: {}, eventfd: fakeEventFd(), data: 0 } as unknown as VirqfdEnableOptions<number>);
    }, 'EINVAL');
    expectErrno(() => {
      ctx.enable(null as unknown as VirqfdEnableOptions<number>);
    }, 'EINVAL');
    expect(slot.active).toBe(false);
    expect(ctx.describe().active).toBe(0);
  });

  it('an addWaiter that throws leaves the slot empty', () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    efd.addWaiter = () => {
      throw new Error('no wait queue');
    };
    expect(() => {
      ctx.enable({ slot, eventfd: efd, data: 0 });
    }).toThrow('no wait queue');
    expect(slot.active).toBe(false);
  });

  it('disable and flushThread reject a non-slot with EINVAL', async () => {
    const ctx = createVirqfdContext();
    const bogus = {} as unknown as VirqfdSlot;
    await expect(ctx.disable(bogus)).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(ctx.flushThread(bogus)).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(virqfdDisable(bogus)).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(virqfdFlushThread(bogus)).rejects.toMatchObject({ errno: 'EINVAL' });
  });
});

describe('flushThread (§3.7 V7)', () => {
  it('resolves only after the queued thread callback, async ones included, has finished', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    const log: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      thread: async () => {
        log.push('thread-start');
        await held;
        log.push('thread-end');
      },
    });
    efd.signal();
    const flushed = ctx.flushThread(slot).then(() => log.push('flushed'));
    await new Promise<void>((r) => setImmediate(r));
    expect(log).toEqual(['thread-start']);
    release();
    await flushed;
    expect(log).toEqual(['thread-start', 'thread-end', 'flushed']);
    expect(slot.active).toBe(true); // flushing does not detach
  });

  it('on an empty slot resolves without doing anything', async () => {
    const slot = new VirqfdSlot();
    await virqfdFlushThread(slot);
    await createVirqfdContext().flushThread(slot);
    expect(slot.active).toBe(false);
  });
});

describe('disable (§3.7 V6)', () => {
  it('stops further triggers, clears the slot and removes the waiter once', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let calls = 0;
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      handler: () => ++calls > 0,
      thread: () => {
        calls++;
      },
    });
    efd.signal();
    await ctx.flush();
    expect(calls).toBe(2);
    const done = ctx.disable(slot);
    expect(slot.active).toBe(false); // cleared synchronously, under "the lock"
    await done;
    expect(efd.waiters).toBe(0);
    expect(efd.removals).toBe(1);
    efd.signal();
    await ctx.flush();
    expect(calls).toBe(2);
    expect(ctx.describe()).toEqual({ active: 0, pendingThreads: 0, pendingCleanup: 0, released: 1 });
    await ctx.disable(slot); // an empty slot: nothing more happens
    expect(efd.removals).toBe(1);
  });

  it('lets a pending thread callback run before resolving (flush, not cancel)', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    const log: string[] = [];
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      thread: () => {
        log.push('thread');
      },
    });
    efd.signal();
    await ctx.disable(slot).then(() => log.push('disabled'));
    expect(log).toEqual(['thread', 'disabled']);
  });

  it('virqfdDisable(slot) works with only the slot; the slot can be enabled again', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const a = fakeEventFd(1);
    virqfdEnable(ctx, { slot, eventfd: a, data: 0 });
    await virqfdDisable(slot);
    expect(a.waiters).toBe(0);
    const b = fakeEventFd(2);
    virqfdEnable(ctx, { slot, eventfd: b, data: 0 });
    expect(slot.eventfd).toBe(b);
    await virqfdDisable(createVirqfdSlot()); // never used: resolves at once
  });

  it('a handler may disable its own virqfd; the thread it asked for still runs before disable resolves', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    const log: string[] = [];
    let disabled: Promise<void> | undefined;
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      handler: () => {
        disabled = ctx.disable(slot).then(() => {
        log.push('disabled');
      });
        return true;
      },
      thread: () => {
        log.push('thread');
      },
    });
    efd.signal();
    expect(slot.active).toBe(false);
    await disabled;
    expect(log).toEqual(['thread', 'disabled']);
    expect(efd.waiters).toBe(0);
  });
});

describe('release on eventfd close (§3.7 V5)', () => {
  it('clears the slot at once and removes the waiter exactly once via the cleanup queue', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    ctx.enable({ slot, eventfd: efd, data: 0, thread: () => undefined });
    efd.close();
    expect(slot.active).toBe(false);
    expect(ctx.describe().pendingCleanup).toBe(1);
    expect(efd.waiters).toBe(1); // the shutdown work unhooks it, later
    await ctx.flush();
    expect(efd.waiters).toBe(0);
    expect(efd.removals).toBe(1);
    expect(ctx.describe()).toMatchObject({ active: 0, released: 1 });
    const again = fakeEventFd(2);
    ctx.enable({ slot, eventfd: again, data: 0 }); // the slot is free again
    expect(slot.eventfd).toBe(again);
  });

  it('a handler that closes its own eventfd releases once', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let threads = 0;
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      handler: () => {
        efd.close();
        return true;
      },
      thread: () => {
        threads++;
      },
    });
    efd.signal();
    await ctx.flush();
    expect(threads).toBe(1);
    expect(efd.removals).toBe(1);
    expect(ctx.describe().released).toBe(1);
  });
});

describe('close/disable race: one release, nothing after disable resolves', () => {
  for (const order of ['close-then-disable', 'disable-then-close'] as const) {
    for (const pendingThread of [false, true]) {
      it(`${order}${pendingThread ? ' with a thread pending' : ''}`, async () => {
        const ctx = createVirqfdContext();
        const slot = createVirqfdSlot();
        const efd = fakeEventFd();
        const log: string[] = [];
        ctx.enable({
          slot,
          eventfd: efd,
          data: 0,
          handler: () => {
            log.push('handler');
            return true;
          },
          thread: () => {
        log.push('thread');
      },
        });
        if (pendingThread) efd.signal();
        let disabled: Promise<void>;
        if (order === 'close-then-disable') {
          efd.close();
          disabled = ctx.disable(slot);
        } else {
          disabled = ctx.disable(slot);
          efd.close();
        }
        expect(slot.active).toBe(false);
        expect(ctx.describe().pendingCleanup).toBe(1); // exactly one shutdown was queued
        await disabled;
        log.push('disabled');
        expect(efd.waiters).toBe(0);
        efd.signal();
        await ctx.flush();
        expect(efd.removals).toBe(1);
        expect(ctx.describe().released).toBe(1);
        expect(log).toEqual(pendingThread ? ['handler', 'thread', 'disabled'] : ['disabled']);
      });
    }
  }

  it('close while a slow thread runs and a disable waits: still one release, disable waits for the thread', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    const log: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      thread: async () => {
        log.push('thread-start');
        await held;
        log.push('thread-end');
      },
    });
    efd.signal();
    await new Promise<void>((r) => setImmediate(r));
    expect(log).toEqual(['thread-start']);
    efd.signal(); // queued again while running
    const d1 = ctx.disable(slot).then(() => {
        log.push('d1');
      });
    efd.close();
    const d2 = ctx.disable(slot).then(() => {
        log.push('d2');
      });
    await new Promise<void>((r) => setImmediate(r));
    expect(log).toEqual(['thread-start']);
    release();
    await Promise.all([d1, d2]);
    expect(log).toEqual(['thread-start', 'thread-end', 'thread-start', 'thread-end', 'd1', 'd2']);
    expect(efd.removals).toBe(1);
    expect(ctx.describe().released).toBe(1);
  });

  it('a late close of a disabled virqfd leaves the new occupant of its slot alone', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const old = fakeEventFd(1);
    const next = fakeEventFd(2);
    ctx.enable({ slot, eventfd: old, data: 0 });
    const disabled = ctx.disable(slot); // shutdown queued, not yet run: old still has its waiter
    ctx.enable({ slot, eventfd: next, data: 0 });
    old.close(); // EPOLLHUP reaches the old virqfd, which is no longer the one in the slot
    expect(slot.eventfd).toBe(next);
    await disabled;
    await ctx.flush();
    expect(old.removals).toBe(1);
    expect(next.waiters).toBe(1);
    expect(ctx.describe()).toMatchObject({ active: 1, released: 1 });
  });

  it('disable of an empty slot still waits for a shutdown queued by a close', async () => {
    const ctx = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    ctx.enable({ slot, eventfd: efd, data: 0 });
    efd.close();
    expect(slot.active).toBe(false);
    await virqfdDisable(slot);
    expect(efd.waiters).toBe(0);
  });
});

describe('errors and isolation', () => {
  it('reports a throwing handler (no thread) and a failing thread; the virqfd keeps working', async () => {
    const errors: [string, string][] = [];
    const ctx = createVirqfdContext({
      onError: (e, source) => errors.push([source, (e as Error).message]),
    });
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let mode: 'throw' | 'sync-fail' | 'async-fail' = 'throw';
    ctx.enable({
      slot,
      eventfd: efd,
      data: 0,
      handler: () => {
        if (mode === 'throw') throw new Error('handler');
        return true;
      },
      thread: () => {
        if (mode === 'sync-fail') throw new Error('thread-sync');
        return Promise.reject(new Error('thread-async'));
      },
    });
    expect(() => {
      efd.signal();
    }).not.toThrow();
    await ctx.flush();
    mode = 'sync-fail';
    efd.signal();
    await ctx.flush();
    mode = 'async-fail';
    efd.signal();
    await ctx.flush();
    expect(errors).toEqual([
      ['handler', 'handler'],
      ['thread', 'thread-sync'],
      ['thread', 'thread-async'],
    ]);
    await ctx.disable(slot);
    expect(ctx.describe().released).toBe(1);
  });

  it('a slot used by two contexts: disable waits for the shutdowns queued on both', async () => {
    const a = createVirqfdContext();
    const b = createVirqfdContext();
    const slot = createVirqfdSlot();
    const first = fakeEventFd(1);
    const second = fakeEventFd(2);
    a.enable({ slot, eventfd: first, data: 0 });
    first.close(); // shutdown queued on a's cleanup queue
    b.enable({ slot, eventfd: second, data: 0 });
    await b.disable(slot);
    expect(first.waiters).toBe(0);
    expect(second.waiters).toBe(0);
    expect(a.describe().released + b.describe().released).toBe(2);
  });

  it('two contexts share nothing; a shared system workqueue is honoured', async () => {
    const a = createVirqfdContext();
    const b = createVirqfdContext({ systemWorkqueue: a.workqueues.system });
    expect(b.workqueues.system).toBe(a.workqueues.system);
    expect(b.workqueues.cleanup).not.toBe(a.workqueues.cleanup);
    const c = createVirqfdContext();
    const slot = createVirqfdSlot();
    const efd = fakeEventFd();
    let threads = 0;
    c.enable({
      slot,
      eventfd: efd,
      data: 0,
      thread: () => {
        threads++;
      },
    });
    efd.signal();
    expect(a.describe().pendingThreads).toBe(0);
    expect(c.describe().pendingThreads).toBe(1);
    await a.disable(slot); // through another context: the owner's cleanup queue is flushed too
    expect(threads).toBe(1);
    expect(c.describe()).toMatchObject({ active: 0, released: 1 });
    expect(a.describe().released).toBe(0);
  });
});
