/**
 * @vfio-ts/virqfd — eventfd-triggered handlers with the kernel's workqueue semantics (Linux drivers/vfio/virqfd.c,
 * inventory §3.7 and §8.5): a handler in the waker's context, a deferred thread callback, release on eventfd
 * close, and a disable that returns once the virqfd is fully shut down.
 * @packageDocumentation
 */
export {
  createVirqfdContext,
  createVirqfdSlot,
  virqfdDisable,
  virqfdEnable,
  virqfdFlushThread,
  VirqfdSlot,
} from './virqfd.js';
export type {
  VirqfdContext,
  VirqfdContextOptions,
  VirqfdContextState,
  VirqfdEnableOptions,
  VirqfdErrorSource,
  VirqfdHandler,
  VirqfdThread,
  VirqfdWorkqueues,
} from './virqfd.js';
export { defaultDefer, Workqueue } from './workqueue.js';
export type { Defer, Work, WorkqueueOptions } from './workqueue.js';
