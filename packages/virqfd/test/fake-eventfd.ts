/**
 * A tiny EventFdContext that follows the platform contract: signal() adds to the counter and runs every waiter's
 * onSignal synchronously; close() runs every waiter's onClose once. It also counts waiter removals so tests can
 * see a virqfd being released.
 */
import type { EventFdContext } from '@vfio-ts/platform';

interface Waiter {
  onSignal(): void;
  onClose(): void;
}

export interface FakeEventFd extends EventFdContext {
  /** Waiters currently installed. */
  readonly waiters: number;
  /** Times a remover returned by addWaiter was called (a second call on one waiter counts too). */
  readonly removals: number;
}

export function fakeEventFd(id = 1, initval = 0n, semaphore = false): FakeEventFd {
  let count = initval;
  let closed = false;
  let removals = 0;
  const waiters = new Set<Waiter>();
  return {
    id,
    get count() {
      return count;
    },
    get closed() {
      return closed;
    },
    get waiters() {
      return waiters.size;
    },
    get removals() {
      return removals;
    },
    signal(n = 1n) {
      count += n;
      for (const w of [...waiters]) if (waiters.has(w)) w.onSignal();
    },
    take() {
      if (count === 0n) return undefined;
      const v = semaphore ? 1n : count;
      count -= v;
      return v;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const w of [...waiters]) if (waiters.has(w)) w.onClose();
    },
    addWaiter(waiter) {
      const w: Waiter = { onSignal: () => { waiter.onSignal(); }, onClose: () => { waiter.onClose(); } };
      waiters.add(w);
      return () => {
        removals++;
        waiters.delete(w);
      };
    },
  };
}
