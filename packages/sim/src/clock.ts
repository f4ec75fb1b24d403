/**
 * Simulated time. Three modes, chosen with `simPlatform({ clock })`:
 * - `'virtual'` (default): time stands still until a timer is due; then, on the next turn of the real event loop
 *   (after every ready promise and I/O callback ran), time jumps to the earliest deadline and that timer fires.
 *   Sleeps cost no real time and timers fire in deadline order, deterministically.
 * - `'manual'`: time moves only with {@link SimClock.advance}; timers never fire on their own.
 * - `{ scale }`: real timers, `scale` simulated milliseconds per real millisecond (e.g. 1000 → a 1 s sleep takes
 *   1 ms). Use it when simulated timeouts race real I/O (sockets).
 */
import type { Clock } from '@vfio-ts/platform';

/** How a {@link SimClock} moves. */
export type ClockMode = 'virtual' | 'manual' | { readonly scale: number };

interface Timer {
  readonly seq: number;
  readonly due: number;
  readonly fn: () => void;
  cancelled: boolean;
  real?: ReturnType<typeof setTimeout>;
}

/** A {@link Clock} with the modes above; `advance(ms)` works in every mode. */
export class SimClock implements Clock {
  private time = 0;
  private seq = 0;
  private readonly timers: Timer[] = [];
  private pumpScheduled = false;
  private readonly realStart = performance.now();
  private realOffset = 0;

  constructor(readonly mode: ClockMode = 'virtual') {
    if (typeof mode === 'object' && !(mode.scale > 0)) throw new RangeError('clock scale must be positive');
  }

  now(): number {
    if (typeof this.mode === 'object') {
      return this.realOffset + (performance.now() - this.realStart) * this.mode.scale;
    }
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const delay = Math.max(0, Number.isFinite(ms) ? ms : 0);
    const timer: Timer = { seq: this.seq++, due: this.now() + delay, fn, cancelled: false };
    if (typeof this.mode === 'object') {
      timer.real = setTimeout(() => {
        if (!timer.cancelled) {
          timer.cancelled = true;
          fn();
        }
      }, delay / this.mode.scale);
    } else {
      this.timers.push(timer);
      this.schedulePump();
    }
    return {
      cancel: () => {
        timer.cancelled = true;
        if (timer.real !== undefined) clearTimeout(timer.real);
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.setTimeout(resolve, ms);
    });
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in deadline order. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('advance needs a non-negative number');
    if (typeof this.mode === 'object') {
      this.realOffset += ms;
      return;
    }
    const target = this.time + ms;
    for (;;) {
      const next = this.earliest();
      if (!next || next.due > target) break;
      this.fire(next);
    }
    this.time = target;
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  private earliest(): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.timers) if (!best || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    return best;
  }

  private fire(t: Timer): void {
    this.timers.splice(this.timers.indexOf(t), 1);
    if (t.due > this.time) this.time = t.due;
    if (!t.cancelled) t.fn();
  }

  private schedulePump(): void {
    if (this.mode !== 'virtual' || this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      const next = this.earliest();
      if (next) this.fire(next);
      if (this.timers.length > 0) this.schedulePump();
    });
  }
}
