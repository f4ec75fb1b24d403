/** The README's example, kept runnable: if this file changes, update README.md to match. */
import type { EventFdContext } from '@vfio-ts/platform';
import { expect, it } from 'vitest';
import { createVirqfdContext, createVirqfdSlot } from '../src/index.js';

/** A minimal EventFdContext (a platform such as @vfio-ts/sim provides the real one). */
function tinyEventFd(): EventFdContext {
  let count = 0n;
  let closed = false;
  const waiters = new Set<{ onSignal(): void; onClose(): void }>();
  return {
    id: 1,
    get count() {
      return count;
    },
    get closed() {
      return closed;
    },
    signal(n = 1n) {
      count += n;
      for (const w of [...waiters]) w.onSignal();
    },
    take() {
      const v = count;
      count = 0n;
      return v === 0n ? undefined : v;
    },
    close() {
      closed = true;
      for (const w of [...waiters]) w.onClose();
    },
    addWaiter(w) {
      waiters.add(w);
      return () => waiters.delete(w);
    },
  };
}

it('README example', async () => {
  const log: string[] = [];

  // --- README example start
  const virqfd = createVirqfdContext();
  const unmask = createVirqfdSlot(); // like vfio-pci's ctx->unmask
  const eventfd = tinyEventFd();

  virqfd.enable({
    slot: unmask,
    eventfd,
    data: { irq: 0 },
    // Runs inside eventfd.signal(): decide quickly, never await.
    handler: ({ irq }) => {
      log.push(`unmask irq ${irq}`);
      return true; // true queues the thread callback
    },
    // Runs later on the context's workqueue.
    thread: ({ irq }) => {
      log.push(`re-check irq ${irq}`);
    },
  });

  eventfd.signal(); // handler runs now
  await virqfd.flushThread(unmask); // the thread callback has run
  await virqfd.disable(unmask); // shut down: nothing of it runs any more
  eventfd.signal(); // ignored
  // --- README example end

  expect(log).toEqual(['unmask irq 0', 're-check irq 0']);
  expect(unmask.active).toBe(false);
});
