/**
 * virqfd: an eventfd whose signal runs a handler in the waker's context and, when the handler asks for it, a
 * thread callback on a workqueue (Linux drivers/vfio/virqfd.c, inventory §3.7 and §8.5 V1–V8).
 *
 * JavaScript is single-threaded, so Linux's global `virqfd_lock` becomes "one synchronous section": every
 * check-and-clear of a slot happens without an intervening await, which is exactly what the lock guarantees.
 */
import type { EventFdContext } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import { Workqueue } from './workqueue.js';
import type { Defer, Work } from './workqueue.js';

/** Key of the slot's internal operations; not exported, so only this module can move a slot's pointer. */
const SLOT: unique symbol = Symbol('virqfd-slot');

/**
 * Decides in the waker's context whether the thread callback must run (Linux `handler(opaque, data)`; a non-zero
 * return queues the thread). Must not block or await: it runs inside `eventfd.signal()`.
 */
export type VirqfdHandler<D> = (data: D) => boolean;

/** Deferred work run on the context's system workqueue (Linux `thread(opaque, data)`); may return a promise. */
export type VirqfdThread<D> = (data: D) => void | Promise<void>;

/** Arguments of {@link VirqfdContext.enable} (Linux vfio_virqfd_enable). */
export interface VirqfdEnableOptions<D> {
  /** Where the virqfd is recorded (Linux `struct virqfd **pvirqfd`); must be empty. */
  readonly slot: VirqfdSlot;
  /** The eventfd to watch (Linux resolves `fd` to its eventfd_ctx; resolve fds before calling). */
  readonly eventfd: EventFdContext;
  /** Runs synchronously on every signal; absent means "always run the thread". */
  readonly handler?: VirqfdHandler<D> | undefined;
  /** Runs asynchronously after a signal whose handler returned true (or when there is no handler). */
  readonly thread?: VirqfdThread<D> | undefined;
  /** Passed to handler and thread (Linux's `opaque` and `data` folded into one value). */
  readonly data: D;
}

/** What a virqfd context reports through {@link VirqfdContextOptions.onError}. */
export type VirqfdErrorSource = 'handler' | 'thread' | 'work';

/** Options of {@link createVirqfdContext}. */
export interface VirqfdContextOptions {
  /**
   * The workqueue thread callbacks run on (Linux's system workqueue, `schedule_work`). Pass a host-wide queue to
   * share it; by default the context creates its own unordered `events` queue.
   */
  readonly systemWorkqueue?: Workqueue;
  /** How the context's own queues schedule their drain loops (default: a macrotask). */
  readonly defer?: Defer;
  /**
   * Receives an exception thrown by a handler (treated as "do not run the thread") or a thread callback. In Linux
   * either would be a kernel oops; here the eventfd and the queues carry on. Default: `console.error`, so a
   * failing callback is never silent.
   */
  readonly onError?: (error: unknown, source: VirqfdErrorSource) => void;
}

/** A snapshot of a virqfd context, for observability (DESIGN idea 7). */
export interface VirqfdContextState {
  /** virqfds enabled through this context and not yet shut down. */
  readonly active: number;
  /** Thread callbacks queued or running on the system workqueue. */
  readonly pendingThreads: number;
  /** Shutdown and flush jobs queued or running on the cleanup workqueue. */
  readonly pendingCleanup: number;
  /** virqfds shut down (released) so far. */
  readonly released: number;
}

/** The queues of a virqfd context (Linux: the system workqueue and `vfio-irqfd-cleanup`). */
export interface VirqfdWorkqueues {
  /** Where thread callbacks run (unordered, like `system_wq`). */
  readonly system: Workqueue;
  /** Single-threaded, ordered: shutdowns and thread flushes (`vfio-irqfd-cleanup`). */
  readonly cleanup: Workqueue;
}

/**
 * The virqfd machinery of one host: a single-threaded `vfio-irqfd-cleanup` queue plus the system queue thread
 * callbacks run on. Nothing is shared between contexts unless a system workqueue is passed in.
 */
export interface VirqfdContext {
  /** The queues this context uses. */
  readonly workqueues: VirqfdWorkqueues;
  /**
   * Hooks `handler`/`thread` to `eventfd` and records the virqfd in `slot` (Linux vfio_virqfd_enable). A signal
   * already pending on the eventfd is handled at once (§3.7 V4). Throws `SysError`: EBADF when the eventfd was
   * closed, EBUSY when the slot is occupied, EINVAL for a malformed argument; nothing changes on failure.
   */
  enable<D>(options: VirqfdEnableOptions<D>): void;
  /**
   * Detaches the slot's virqfd (if any) and resolves once every shutdown queued so far has completed (Linux
   * vfio_virqfd_disable + flush_workqueue): after that no handler or thread of it runs. A thread callback still
   * queued runs before the shutdown completes (the kernel flushes, it does not cancel).
   */
  disable(slot: VirqfdSlot): Promise<void>;
  /** Resolves once a thread callback queued on the slot's virqfd has run (Linux vfio_virqfd_flush_thread). */
  flushThread(slot: VirqfdSlot): Promise<void>;
  /** Resolves once the thread and cleanup work queued before the call has completed. */
  flush(): Promise<void>;
  /** Current counters. */
  describe(): VirqfdContextState;
}

/** One enabled virqfd (Linux struct virqfd). Internal: users only ever see the slot. */
class Virqfd {
  readonly owner: ContextImpl;
  readonly slot: VirqfdSlot;
  readonly eventfd: EventFdContext;
  readonly #fire: () => boolean;
  readonly hasThread: boolean;
  removeWaiter: (() => void) | undefined;
  readonly inject: Work;
  readonly shutdown: Work;
  readonly flushInject: Work;

  /**
   * `handler` and `thread` arrive bound to the caller's data, so this class needs no type parameter.
   */
  constructor(
    owner: ContextImpl,
    slot: VirqfdSlot,
    eventfd: EventFdContext,
    handler: (() => unknown) | undefined,
    thread: (() => void | Promise<void>) | undefined,
  ) {
    this.owner = owner;
    this.slot = slot;
    this.eventfd = eventfd;
    this.hasThread = thread !== undefined;
    // The handler decides, in the waker's context, whether the thread work is queued (§3.7 V3).
    this.#fire = () => {
      if (!handler) return true;
      try {
        // Linux queues the thread on any non-zero return; keep that for untyped callers too.
        return handler() ? true : false;
      } catch (e) {
        owner.report(e, 'handler');
        return false;
      }
    };
    this.inject = {
      name: 'virqfd-inject',
      // A failing thread is reported as such (not as a generic work error) and never stops the queue.
      run: async () => {
        try {
          await thread?.();
        } catch (e) {
          owner.report(e, 'thread');
        }
      },
    };
    this.shutdown = {
      name: 'virqfd-shutdown',
      run: async () => {
        // Unhook from the eventfd first so no new signal can queue the thread, then let a queued thread finish.
        this.removeWaiter?.();
        this.removeWaiter = undefined;
        await owner.workqueues.system.flushWork(this.inject);
        owner.released(this);
      },
    };
    this.flushInject = {
      name: 'virqfd-flush-inject',
      run: async () => {
        await owner.workqueues.system.flushWork(this.inject);
      },
    };
  }

  /** A signal (or one pending at enable time): run the handler, queue the thread if asked to. */
  trigger(): void {
    if (this.#fire() && this.hasThread) this.owner.workqueues.system.queue(this.inject);
  }

  /** EPOLLIN: consume the counter (eventfd_ctx_do_read), then trigger. */
  onSignal(): void {
    this.eventfd.take();
    this.trigger();
  }

  /**
   * EPOLLHUP: the eventfd's last reference went away. Only the path that still finds this virqfd in the slot
   * queues the shutdown, so a racing disable and close release it exactly once (§3.7 V5).
   */
  onClose(): void {
    if (this.slot[SLOT].clearIf(this)) this.owner.workqueues.cleanup.queue(this.shutdown);
  }
}

/**
 * The holder a driver keeps a virqfd in (Linux `struct virqfd *`, e.g. `ctx->unmask`). Enabling into an occupied
 * slot fails with EBUSY; disable, or the eventfd closing, empties it — exactly once.
 */
export class VirqfdSlot {
  #current: Virqfd | undefined;
  /**
   * Every context that enabled a virqfd here (normally one). Linux's disable flushes its one global cleanup queue;
   * flushing these queues covers every shutdown this slot can have caused.
   */
  readonly #owners = new Set<ContextImpl>();

  /** True while a virqfd is recorded in the slot. */
  get active(): boolean {
    return this.#current !== undefined;
  }

  /** The eventfd of the recorded virqfd, if any. */
  get eventfd(): EventFdContext | undefined {
    return this.#current?.eventfd;
  }

  /**
   * Internal slot operations: each one is a `virqfd_lock` critical section (a synchronous check-and-set). Keyed by
   * an unexported symbol so only this module can move the pointer.
   */
  readonly [SLOT]: SlotOps = {
    current: () => this.#current,
    owners: () => this.#owners,
    claim: (v) => {
      if (this.#current) return false;
      this.#current = v;
      this.#owners.add(v.owner);
      return true;
    },
    clearIf: (v) => {
      if (this.#current !== v) return false;
      this.#current = undefined;
      return true;
    },
  };
}

/** The slot's internal operations (see {@link VirqfdSlot}). */
interface SlotOps {
  current(): Virqfd | undefined;
  owners(): ReadonlySet<ContextImpl>;
  /** Records `v` when the slot is empty (Linux: EBUSY otherwise). */
  claim(v: Virqfd): boolean;
  /** Empties the slot if it still holds `v`; true when this call emptied it. */
  clearIf(v: Virqfd): boolean;
}

/** Creates an empty {@link VirqfdSlot}. */
export function createVirqfdSlot(): VirqfdSlot {
  return new VirqfdSlot();
}

function checkCallback(v: unknown, what: string): void {
  if (v !== undefined && typeof v !== 'function') throw sysError('EINVAL', `virqfd ${what} must be a function`);
}

function isEventFd(v: unknown): v is EventFdContext {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Partial<Record<keyof EventFdContext, unknown>>;
  return typeof e.addWaiter === 'function' && typeof e.take === 'function';
}

class ContextImpl implements VirqfdContext {
  readonly workqueues: VirqfdWorkqueues;
  readonly #onError: (error: unknown, source: VirqfdErrorSource) => void;
  readonly #active = new Set<Virqfd>();
  #released = 0;

  constructor(options: VirqfdContextOptions) {
    this.#onError =
      options.onError ??
      ((error, source) => {
        console.error(`virqfd: ${source} failed:`, error);
      });
    const defer = options.defer;
    const onWorkError = (e: unknown): void => {
      this.report(e, 'work');
    };
    const system =
      options.systemWorkqueue ??
      new Workqueue({ name: 'events', onError: onWorkError, ...(defer ? { defer } : {}) });
    this.workqueues = {
      system,
      cleanup: new Workqueue({
        name: 'vfio-irqfd-cleanup',
        ordered: true,
        onError: onWorkError,
        ...(defer ? { defer } : {}),
      }),
    };
  }

  report(error: unknown, source: VirqfdErrorSource): void {
    try {
      this.#onError(error, source);
    } catch {
      // A reporter that throws must not break eventfd_signal().
    }
  }

  released(v: Virqfd): void {
    if (this.#active.delete(v)) this.#released++;
  }

  enable<D>(options: VirqfdEnableOptions<D>): void {
    if (typeof options !== 'object' || options === null) throw sysError('EINVAL', 'virqfd options missing');
    const { slot, eventfd, handler, thread } = options;
    if (!(slot instanceof VirqfdSlot)) throw sysError('EINVAL', 'virqfd slot must be a VirqfdSlot');
    checkCallback(handler, 'handler');
    checkCallback(thread, 'thread');
    // Linux: fdget fails with EBADF, eventfd_ctx_fileget with EINVAL, both before the slot is looked at.
    if (!isEventFd(eventfd)) throw sysError('EINVAL', 'not an eventfd');
    if (eventfd.closed) throw sysError('EBADF', 'eventfd is closed');

    const { data } = options;
    const v = new Virqfd(
      this,
      slot,
      eventfd,
      handler ? () => handler(data) : undefined,
      thread ? () => thread(data) : undefined,
    );
    const ops = slot[SLOT];
    if (!ops.claim(v)) throw sysError('EBUSY', 'virqfd slot already in use');
    try {
      v.removeWaiter = eventfd.addWaiter({
        onSignal: () => {
          v.onSignal();
        },
        onClose: () => {
          v.onClose();
        },
      });
    } catch (e) {
      ops.clearIf(v);
      throw e;
    }
    this.#active.add(v);
    // Linux installs the wait entry first, then checks for an event that arrived before (§3.7 V4). Like
    // vfs_poll, this looks at the counter without consuming it.
    if (eventfd.count > 0n) v.trigger();
  }

  async disable(slot: VirqfdSlot): Promise<void> {
    if (!(slot instanceof VirqfdSlot)) throw sysError('EINVAL', 'virqfd slot must be a VirqfdSlot');
    const ops = slot[SLOT];
    // Check-and-clear under "the lock": only one of disable/close ever queues the shutdown.
    const v = ops.current();
    if (v && ops.clearIf(v)) v.owner.workqueues.cleanup.queue(v.shutdown);
    // Flush even when nothing was queued here: a close may have queued this slot's shutdown already.
    await this.#flushCleanup(ops.owners());
  }

  /** flush_workqueue on this context's cleanup queue and the slot's owners', all snapshotted now. */
  #flushCleanup(owners: ReadonlySet<ContextImpl>): Promise<unknown> {
    const queues = new Set<Workqueue>([this.workqueues.cleanup]);
    for (const o of owners) queues.add(o.workqueues.cleanup);
    return Promise.all(Array.from(queues, (q) => q.flush()));
  }

  async flushThread(slot: VirqfdSlot): Promise<void> {
    if (!(slot instanceof VirqfdSlot)) throw sysError('EINVAL', 'virqfd slot must be a VirqfdSlot');
    const ops = slot[SLOT];
    const v = ops.current();
    if (v?.hasThread) v.owner.workqueues.cleanup.queue(v.flushInject);
    await this.#flushCleanup(ops.owners());
  }

  async flush(): Promise<void> {
    await this.workqueues.system.flush();
    await this.workqueues.cleanup.flush();
  }

  describe(): VirqfdContextState {
    return {
      active: this.#active.size,
      pendingThreads: this.workqueues.system.outstanding,
      pendingCleanup: this.workqueues.cleanup.outstanding,
      released: this.#released,
    };
  }
}

/** Creates the virqfd machinery for one host (no module state: two contexts never share a queue or a lock). */
export function createVirqfdContext(options: VirqfdContextOptions = {}): VirqfdContext {
  return new ContextImpl(options);
}

/** Linux-named form of {@link VirqfdContext.enable}. */
export function virqfdEnable<D>(context: VirqfdContext, options: VirqfdEnableOptions<D>): void {
  context.enable(options);
}

/**
 * Linux-named form of {@link VirqfdContext.disable} that needs only the slot: it flushes the cleanup queues of
 * the contexts that enabled a virqfd in it (a slot never used resolves at once).
 */
export async function virqfdDisable(slot: VirqfdSlot): Promise<void> {
  if (!(slot instanceof VirqfdSlot)) throw sysError('EINVAL', 'virqfd slot must be a VirqfdSlot');
  const [owner] = slot[SLOT].owners();
  if (owner) await owner.disable(slot);
}

/** Linux-named form of {@link VirqfdContext.flushThread}, needing only the slot. */
export async function virqfdFlushThread(slot: VirqfdSlot): Promise<void> {
  if (!(slot instanceof VirqfdSlot)) throw sysError('EINVAL', 'virqfd slot must be a VirqfdSlot');
  const [owner] = slot[SLOT].owners();
  if (owner) await owner.flushThread(slot);
}
