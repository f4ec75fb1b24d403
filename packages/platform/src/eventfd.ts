/**
 * eventfd contract (Linux eventfd(2)): a 64-bit counter, signalled from the kernel side, read from user space.
 */

// The eventfd(2) flags are ABI: they live in @vfio-ts/uapi and are re-exported here for platform users.
export { EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE } from '@vfio-ts/uapi';

/** The kernel side of an eventfd (Linux struct eventfd_ctx). */
export interface EventFdContext {
  readonly id: number;
  /** Adds `n` (default 1) to the counter and wakes waiters (eventfd_signal). Never throws. */
  signal(n?: bigint): void;
  /** Current counter value. */
  readonly count: bigint;
  /**
   * User read(2): returns the counter and resets it to 0 (in semaphore mode returns 1 and decrements), or
   * `undefined` when the counter is 0 (the caller blocks or fails with EAGAIN).
   */
  take(): bigint | undefined;
  /** Marks the eventfd closed (its last file reference went away) and runs every waiter's onClose once. */
  close(): void;
  /** True once the last file reference to the eventfd was closed. */
  readonly closed: boolean;
  /**
   * Registers a wait-queue callback, as virqfd/irqfd do: `onSignal` runs after every signal, `onClose` once when
   * the eventfd's last file reference goes away (EPOLLHUP). Returns a function that removes the callbacks.
   */
  addWaiter(waiter: { onSignal(): void; onClose(): void }): () => void;
}
