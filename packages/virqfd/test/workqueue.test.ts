import { describe, expect, it } from 'vitest';
import { Workqueue } from '../src/index.js';
import type { Work } from '../src/index.js';

function work(name: string, log: string[], body?: () => void | Promise<void>): Work {
  return {
    name,
    run: () => {
      log.push(name);
      return body?.();
    },
  };
}

/** A promise plus its resolver, to hold an async work item open. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

describe('Workqueue', () => {
  it('never runs work synchronously, and coalesces a pending item (queue_work returns false)', async () => {
    const log: string[] = [];
    const wq = new Workqueue({ name: 'events' });
    const a = work('a', log);
    expect(wq.queue(a)).toBe(true);
    expect(wq.queue(a)).toBe(false);
    expect(wq.isPending(a)).toBe(true);
    expect(log).toEqual([]);
    await wq.flush();
    expect(log).toEqual(['a']);
    expect(wq.isPending(a)).toBe(false);
    expect(wq.completed).toBe(1);
  });

  it('runs an item queued again while it runs once more afterwards, never concurrently with itself', async () => {
    const log: string[] = [];
    const wq = new Workqueue({ name: 'events' });
    const g = gate();
    let running = 0;
    let maxRunning = 0;
    const a: Work = {
      name: 'a',
      run: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        log.push('start');
        if (log.length === 1) await g.promise;
        running--;
      },
    };
    wq.queue(a);
    await new Promise<void>((r) => setImmediate(r));
    expect(wq.isRunning(a)).toBe(true);
    expect(wq.queue(a)).toBe(true); // PENDING was cleared when it started
    const flushed = wq.flushWork(a);
    g.open();
    expect(await flushed).toBe(true);
    expect(log).toEqual(['start', 'start']);
    expect(maxRunning).toBe(1);
    expect(await wq.flushWork(a)).toBe(false);
  });

  it('an ordered queue runs items one at a time in order, async items included', async () => {
    const log: string[] = [];
    const wq = new Workqueue({ name: 'cleanup', ordered: true });
    const g = gate();
    wq.queue(
      work('a', log, async () => {
        await g.promise;
        log.push('a-end');
      }),
    );
    wq.queue(work('b', log));
    wq.queue(work('c', log));
    const f = wq.flush();
    await new Promise<void>((r) => setImmediate(r));
    await new Promise<void>((r) => setImmediate(r));
    expect(log).toEqual(['a']);
    g.open();
    await f;
    expect(log).toEqual(['a', 'a-end', 'b', 'c']);
  });

  it('flush waits only for items queued before it', async () => {
    const log: string[] = [];
    const wq = new Workqueue({ name: 'cleanup', ordered: true });
    const later = work('later', log);
    wq.queue(work('first', log, () => void wq.queue(later)));
    await wq.flush();
    expect(log).toEqual(['first']);
    expect(wq.isPending(later)).toBe(true);
    await wq.flush();
    expect(log).toEqual(['first', 'later']);
  });

  it('reports a throwing or rejecting item and carries on', async () => {
    const errors: unknown[] = [];
    const log: string[] = [];
    const wq = new Workqueue({ name: 'events', ordered: true, onError: (e) => errors.push(e) });
    wq.queue(work('boom', log, () => {
      throw new Error('sync');
    }));
    wq.queue(work('reject', log, () => Promise.reject(new Error('async'))));
    wq.queue(work('ok', log));
    await wq.flush();
    expect(log).toEqual(['boom', 'reject', 'ok']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['sync', 'async']);
    expect(wq.outstanding).toBe(0);
  });

  it('a self-requeuing item yields between runs (the drain takes a batch)', async () => {
    const wq = new Workqueue({ name: 'events' });
    let runs = 0;
    const loop: Work = {
      name: 'loop',
      run: () => {
        runs++;
        if (runs < 5) wq.queue(loop);
      },
    };
    wq.queue(loop);
    await wq.flush();
    expect(runs).toBe(1);
    while (wq.outstanding > 0) await wq.flush();
    expect(runs).toBe(5);
  });

  it('uses the injected scheduler', async () => {
    const drains: (() => void)[] = [];
    const wq = new Workqueue({ name: 'manual', defer: (d) => drains.push(d) });
    const log: string[] = [];
    wq.queue(work('a', log));
    wq.queue(work('b', log));
    expect(drains).toHaveLength(1);
    expect(log).toEqual([]);
    drains.shift()!();
    expect(log).toEqual(['a', 'b']);
    await wq.flush();
  });
});
