import { describe, expect, it } from 'vitest';
import { SimClock, simPlatform } from '../src/index.js';

describe('eventfd', () => {
  it('counts, takes (semaphore mode too) and runs waiters synchronously', () => {
    const p = simPlatform();
    const e = p.createEventFd(2n, false);
    const seen: string[] = [];
    const remove = e.addWaiter({ onSignal: () => seen.push(`signal ${e.count}`), onClose: () => seen.push('close') });
    e.signal();
    expect(seen).toEqual(['signal 3']);
    expect(e.take()).toBe(3n);
    expect(e.take()).toBeUndefined();
    remove();
    e.signal(5n);
    expect(seen).toEqual(['signal 3']);
    const s = p.createEventFd(2n, true);
    expect(s.take()).toBe(1n);
    expect(s.take()).toBe(1n);
    expect(s.take()).toBeUndefined();
    expect(s.id).not.toBe(e.id);
  });

  it('saturates at 2^64-1, survives throwing waiters, closes once', () => {
    const p = simPlatform();
    const e = p.createEventFd((1n << 64n) - 2n, false);
    let closes = 0;
    e.addWaiter({
      onSignal: () => {
        throw new Error('boom');
      },
      onClose: () => closes++,
    });
    e.signal(10n);
    expect(e.count).toBe((1n << 64n) - 1n);
    expect(p.logEntries().some((l) => l.text.includes('boom'))).toBe(true);
    e.close();
    e.close();
    expect(closes).toBe(1);
    expect(e.closed).toBe(true);
  });
});

describe('clock', () => {
  it('virtual: sleeps resolve in deadline order without real waiting; log lines carry the time', async () => {
    const p = simPlatform();
    const order: string[] = [];
    const a = p.clock.sleep(5000).then(() => order.push(`a@${p.clock.now()}`));
    const b = p.clock.sleep(10).then(() => order.push(`b@${p.clock.now()}`));
    const cancelled = p.clock.setTimeout(() => order.push('never'), 1);
    cancelled.cancel();
    await Promise.all([a, b]);
    expect(order).toEqual(['b@10', 'a@5000']);
    p.log('hello');
    expect(p.logEntries().at(-1)).toEqual({ time: 5000, text: 'hello' });
  });

  it('manual: time moves only with advance', () => {
    const c = new SimClock('manual');
    const fired: number[] = [];
    c.setTimeout(() => fired.push(c.now()), 30);
    c.setTimeout(() => fired.push(c.now()), 10);
    c.advance(20);
    expect(fired).toEqual([10]);
    expect(c.now()).toBe(20);
    expect(c.pendingTimers).toBe(1);
    c.advance(100);
    expect(fired).toEqual([10, 30]);
    expect(c.now()).toBe(120);
  });

  it('scaled: real timers, sped up', async () => {
    const c = new SimClock({ scale: 1000 });
    const t0 = c.now();
    await c.sleep(200);
    expect(c.now() - t0).toBeGreaterThan(0);
  });
});
