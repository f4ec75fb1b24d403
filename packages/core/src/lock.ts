/**
 * An async mutex: the TypeScript stand-in for the kernel mutexes VFIO holds across work that may sleep
 * (the device-set lock of inventory §2.6). Waiters are served in FIFO order.
 */
import { SysError } from '@vfio-ts/uapi';

/** A FIFO async lock. `run` waits for it; `tryAcquire` takes it only when free (synchronous paths). */
export class AsyncLock {
  #held = false;
  readonly #waiters: (() => void)[] = [];
  #head = 0;

  /** True while someone holds the lock. */
  get locked(): boolean {
    return this.#held;
  }

  /** Takes the lock if it is free; returns whether it did. */
  tryAcquire(): boolean {
    if (this.#held) return false;
    this.#held = true;
    return true;
  }

  /** Resolves once the lock is held by the caller. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Releases the lock, handing it to the oldest waiter if any. */
  release(): void {
    if (!this.#held) throw new SysError('EINVAL', 'release of a lock that is not held');
    if (this.#head < this.#waiters.length) {
      const next = this.#waiters[this.#head]!;
      this.#waiters[this.#head] = noop;
      this.#head++;
      if (this.#head > 64 && this.#head * 2 > this.#waiters.length) {
        this.#waiters.splice(0, this.#head);
        this.#head = 0;
      }
      next(); // ownership passes directly; #held stays true
      return;
    }
    this.#held = false;
  }

  /** Runs `fn` holding the lock (waiting for it first); releases it however `fn` ends. */
  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

function noop(): void {
  /* consumed waiter slot */
}
