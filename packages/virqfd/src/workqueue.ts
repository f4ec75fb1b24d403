/**
 * A small model of Linux workqueues (kernel/workqueue.c), just enough for virqfd (inventory §3.7): work items
 * are queued from synchronous code (a wake-up callback, an ioctl) and run later, off the caller's stack.
 *
 * The rules kept from Linux:
 * - queueing a work item that is already pending does nothing and returns false (queue_work);
 * - a work item is never run concurrently with itself; queued again while it runs, it runs once more afterwards;
 * - an ordered queue (create_singlethread_workqueue / alloc_ordered_workqueue) runs one item at a time, in
 *   queueing order, an asynchronous item holding the queue until it settles;
 * - flush() waits for every item queued before the call (flush_workqueue), flushWork() for the last queued
 *   instance of one item (flush_work).
 */

/**
 * A unit of deferred work (Linux struct work_struct). Its pending/running state lives in the queue, so queue a
 * given item on one queue only (as Linux requires while it is pending).
 */
export interface Work {
  /** Shown in error reports. */
  readonly name: string;
  /** The work function; a returned promise keeps the item running (a kernel worker that sleeps). */
  readonly run: () => void | Promise<void>;
}

/** How a queue hands its drain loop to the event loop; defaults to a macrotask (setImmediate / setTimeout 0). */
export type Defer = (drain: () => void) => void;

/** Options of {@link Workqueue}. */
export interface WorkqueueOptions {
  /** The queue's name, as in Linux (`events`, `vfio-irqfd-cleanup`). */
  readonly name: string;
  /** One item at a time, in order (a single-threaded workqueue). Default false: items run as soon as queued. */
  readonly ordered?: boolean;
  /** Schedules the drain loop; inject `queueMicrotask` or a test scheduler if wanted. */
  readonly defer?: Defer;
  /** Receives what a work function threw or rejected with; the queue carries on. */
  readonly onError?: (error: unknown, work: Work) => void;
}

/** The state of one queued or running instance of a work item. */
interface Instance {
  readonly work: Work;
  readonly done: Promise<void>;
  readonly resolve: () => void;
}

/** Per-work bookkeeping, present only while the item is pending or running. */
interface WorkState {
  pending: Instance | undefined;
  running: Instance | undefined;
}

/** The default drain scheduler: a macrotask, so a work item that re-queues itself cannot starve I/O. */
export function defaultDefer(drain: () => void): void {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (typeof g.setImmediate === 'function') g.setImmediate(drain);
  else setTimeout(drain, 0);
}

function newInstance(work: Work): Instance {
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  return { work, done, resolve };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** A workqueue (Linux struct workqueue_struct); owned by whoever creates it, no shared state. */
export class Workqueue {
  /** The queue's name. */
  readonly name: string;
  /** True for a single-threaded, ordered queue. */
  readonly ordered: boolean;
  readonly #defer: Defer;
  readonly #onError: ((error: unknown, work: Work) => void) | undefined;
  /** Instances waiting to start, in queueing order. */
  #queue: Instance[] = [];
  /** Every instance queued or running: what flush() waits for. */
  readonly #outstanding = new Set<Instance>();
  readonly #states = new Map<Work, WorkState>();
  #active = 0;
  #scheduled = false;
  #completed = 0;

  constructor(options: WorkqueueOptions) {
    this.name = options.name;
    this.ordered = options.ordered ?? false;
    this.#defer = options.defer ?? defaultDefer;
    this.#onError = options.onError;
  }

  /**
   * Queues `work` unless it is already pending (Linux queue_work). Returns true when it was queued. Never runs
   * the work synchronously.
   */
  queue(work: Work): boolean {
    let state = this.#states.get(work);
    if (state?.pending) return false;
    if (!state) {
      state = { pending: undefined, running: undefined };
      this.#states.set(work, state);
    }
    const inst = newInstance(work);
    state.pending = inst;
    this.#queue.push(inst);
    this.#outstanding.add(inst);
    this.#schedule();
    return true;
  }

  /** True while `work` is queued on this queue and has not started (work_pending). */
  isPending(work: Work): boolean {
    return this.#states.get(work)?.pending !== undefined;
  }

  /** True while `work`'s function runs (or its promise is unsettled). */
  isRunning(work: Work): boolean {
    return this.#states.get(work)?.running !== undefined;
  }

  /** Number of instances queued or running. */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /** Number of instances that finished since the queue was created. */
  get completed(): number {
    return this.#completed;
  }

  /**
   * Resolves once every instance queued before this call has finished (Linux flush_workqueue). Items queued
   * later, even by those work functions, are not waited for.
   */
  async flush(): Promise<void> {
    if (this.#outstanding.size === 0) return;
    await Promise.all(Array.from(this.#outstanding, (i) => i.done));
  }

  /**
   * Waits until the last queued instance of `work` has finished (Linux flush_work): the pending one if any, else
   * the running one. Resolves to false when there was nothing to wait for.
   */
  async flushWork(work: Work): Promise<boolean> {
    const state = this.#states.get(work);
    const inst = state?.pending ?? state?.running;
    if (!inst) return false;
    await inst.done;
    return true;
  }

  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0) return;
    if (this.ordered && this.#active > 0) return; // the running item re-schedules when it settles
    this.#scheduled = true;
    this.#defer(() => {
      this.#scheduled = false;
      this.#drain();
    });
  }

  /** Starts what may start now: the instances queued when the drain began (so a self-requeuing item yields). */
  #drain(): void {
    const batch = this.#queue;
    this.#queue = [];
    let i = 0;
    for (; i < batch.length; i++) {
      if (this.ordered && this.#active > 0) break;
      const inst = batch[i]!;
      const state = this.#states.get(inst.work)!;
      if (state.running) {
        // Non-reentrant: this instance waits for the running one of the same item to settle.
        this.#queue.push(inst);
        continue;
      }
      this.#start(inst, state);
    }
    // Keep order: whatever did not start goes before instances queued meanwhile.
    if (i < batch.length) this.#queue = batch.slice(i).concat(this.#queue);
    this.#schedule();
  }

  #start(inst: Instance, state: WorkState): void {
    state.pending = undefined; // Linux clears PENDING before calling the function: it may be re-queued now
    state.running = inst;
    this.#active++;
    let result: unknown;
    try {
      result = inst.work.run();
    } catch (e) {
      this.#report(e, inst.work);
      this.#finish(inst, state);
      return;
    }
    if (isThenable(result)) {
      result.then(
        () => {
          this.#finish(inst, state);
        },
        (e: unknown) => {
          this.#report(e, inst.work);
          this.#finish(inst, state);
        },
      );
    } else {
      this.#finish(inst, state);
    }
  }

  #finish(inst: Instance, state: WorkState): void {
    this.#active--;
    state.running = undefined;
    if (!state.pending) this.#states.delete(inst.work);
    this.#outstanding.delete(inst);
    this.#completed++;
    inst.resolve();
    this.#schedule();
  }

  #report(error: unknown, work: Work): void {
    if (!this.#onError) return;
    try {
      this.#onError(error, work);
    } catch {
      // An error reporter that throws must not wedge the queue.
    }
  }
}
