/**
 * The kernel side of eventfd(2) (Linux struct eventfd_ctx): a 64-bit counter whose wait-queue callbacks run
 * synchronously on every signal, as irqfd/virqfd wake functions do.
 */
import type { EventFdContext } from '@vfio-ts/platform';

/** ULLONG_MAX: eventfd_signal saturates the counter here. */
const COUNTER_MAX = (1n << 64n) - 1n;

interface Waiter {
  onSignal(): void;
  onClose(): void;
}

/** A simulated eventfd kernel object. */
export class SimEventFd implements EventFdContext {
  private counter: bigint;
  private isClosed = false;
  private readonly waiters = new Set<Waiter>();

  constructor(
    readonly id: number,
    initval: bigint,
    readonly semaphore: boolean,
    /** Where a waiter's exception is reported (signal never throws). */
    private readonly report: (text: string) => void,
  ) {
    this.counter = initval < 0n ? 0n : initval > COUNTER_MAX ? COUNTER_MAX : initval;
  }

  get count(): bigint {
    return this.counter;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  signal(n = 1n): void {
    if (n <= 0n) return;
    // eventfd_signal_mask: the counter saturates at ULLONG_MAX instead of wrapping.
    this.counter = COUNTER_MAX - this.counter < n ? COUNTER_MAX : this.counter + n;
    for (const w of [...this.waiters]) {
      try {
        w.onSignal();
      } catch (e) {
        this.report(`eventfd ${this.id}: waiter failed: ${String(e)}`);
      }
    }
  }

  take(): bigint | undefined {
    if (this.counter === 0n) return undefined;
    if (this.semaphore) {
      this.counter -= 1n;
      return 1n;
    }
    const v = this.counter;
    this.counter = 0n;
    return v;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const list = [...this.waiters];
    this.waiters.clear();
    for (const w of list) {
      try {
        w.onClose();
      } catch (e) {
        this.report(`eventfd ${this.id}: waiter close failed: ${String(e)}`);
      }
    }
  }

  addWaiter(waiter: Waiter): () => void {
    const entry: Waiter = { onSignal: () => { waiter.onSignal(); }, onClose: () => { waiter.onClose(); } };
    this.waiters.add(entry);
    return () => {
      this.waiters.delete(entry);
    };
  }

  /** Number of registered waiters (for tests). */
  get waiterCount(): number {
    return this.waiters.size;
  }
}
