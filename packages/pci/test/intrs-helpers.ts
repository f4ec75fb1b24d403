/**
 * A small bench for the interrupt layer: a PCI function behind a fake PciDeviceHandle, its VfioPciConfig, sim
 * eventfds resolved through a fake system-call context, a virqfd context and BAR access with vfio-pci's
 * memory-decode rule.
 */
import type { SyscallContext, ValidatedSetIrqs } from '@vfio-ts/core';
import { validateSetIrqs } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import type { EduFunction } from '@vfio-ts/device-edu';
import type { EventFdContext, PciDeviceHandle, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { pciFunctionFromConfig, SimEventFd } from '@vfio-ts/sim';
import type { ConfigSpaceFunction } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_IOEVENTFD_32,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_NUM_IRQS,
  vfioDeviceIoeventfd,
  vfioIrqSet,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { createVirqfdContext } from '@vfio-ts/virqfd';
import type { VirqfdContext } from '@vfio-ts/virqfd';
import { expect } from 'vitest';
import { VfioPciConfig } from '../src/config/index.js';
import { createVfioPciIrqLayer } from '../src/intrs/index.js';
import type { VfioPciIrqLayer, VfioPciIrqLayerOptions, VfioPciIrqState } from '../src/intrs/index.js';
import { E1000E_BARS, fixture } from './helpers.js';

/** A PCI function plugged into a fake handle: the model's setIntx/msiNotify reach whoever listens. */
export class FakePciHandle {
  readonly bdf = '0000:00:03.0';
  intxHandler: ((level: boolean) => void) | undefined;
  msiHandler: ((vector: number) => void) | undefined;
  level = false;
  readonly ctx: PciFunctionContext;

  constructor(readonly fn: PciFunction) {
    this.ctx = {
      bdf: this.bdf,
      dma: {
        read: () => {
          throw new SysError('EIO', 'no DMA in this bench');
        },
        write: () => {
          throw new SysError('EIO', 'no DMA in this bench');
        },
      },
      setIntx: (level) => {
        if (level === this.level) return;
        this.level = level;
        this.intxHandler?.(level);
      },
      msiNotify: (vector) => {
        this.msiHandler?.(vector);
      },
      clock: {
        now: () => 0,
        setTimeout: (fn) => {
          queueMicrotask(fn);
          return { cancel: () => undefined };
        },
        sleep: () => Promise.resolve(),
      },
    };
    fn.attach?.(this.ctx);
  }

  onIntx(handler: ((level: boolean) => void) | undefined): void {
    this.intxHandler = handler;
  }

  onMsi(handler: ((vector: number) => void) | undefined): void {
    this.msiHandler = handler;
  }

  get handle(): PciDeviceHandle {
    return this as unknown as PciDeviceHandle;
  }
}

/** Eventfds of a fake process: fd numbers from 3, EBADF for unknown ones, EINVAL for a non-eventfd. */
export class FakeCall {
  readonly #fds = new Map<number, EventFdContext | 'file'>();
  #next = 3;
  readonly call: SyscallContext;

  constructor() {
    this.call = {
      eventfd: (fd: number) => {
        const f = this.#fds.get(fd);
        if (f === undefined) throw new SysError('EBADF', `fd ${fd}`);
        if (f === 'file') throw new SysError('EINVAL', `fd ${fd} is not an eventfd`);
        return f;
      },
    } as unknown as SyscallContext;
  }

  /** A new eventfd: its fd and its kernel object. */
  eventfd(): { fd: number; efd: SimEventFd } {
    const fd = this.#next++;
    const efd = new SimEventFd(fd, 0n, false, () => undefined);
    this.#fds.set(fd, efd);
    return { fd, efd };
  }

  /** An fd that is open but no eventfd. */
  file(): number {
    const fd = this.#next++;
    this.#fds.set(fd, 'file');
    return fd;
  }

  /** close(2): the last reference goes away (EPOLLHUP to virqfds). */
  close(fd: number): void {
    const f = this.#fds.get(fd);
    this.#fds.delete(fd);
    if (f && f !== 'file') f.close();
  }
}

/** Everything one test needs. */
export interface Bench<F extends PciFunction = PciFunction> {
  readonly fn: F;
  readonly pdev: FakePciHandle;
  readonly config: VfioPciConfig;
  readonly virqfd: VirqfdContext;
  readonly layer: VfioPciIrqLayer;
  readonly proc: FakeCall;
  readonly log: string[];
  /** SET_IRQS through the core's validation, as the driver does it; returns the ioctl result. */
  setIrqs(flags: number, index: number, start: number, count: number, data?: readonly number[]): number;
  /** VFIO_DEVICE_IOEVENTFD. */
  ioeventfd(bar: number, offset: bigint, data: bigint, fd: number, flags?: number): number;
  /** The typed state snapshot. */
  state(): VfioPciIrqState;
  /** Waits for virqfd threads and teardowns. */
  settle(): Promise<void>;
}

/** Options for a bench: the layer's extra options. */
export type BenchOptions = Partial<Omit<VfioPciIrqLayerOptions, 'pdev' | 'config' | 'virqfd' | 'bars' | 'log'>>;

/** Builds the SET_IRQS argument bytes. */
export function irqSetBytes(flags: number, index: number, start: number, count: number, data: readonly number[] = []): Uint8Array {
  const type = flags & 0x7;
  const size = type === VFIO_IRQ_SET_DATA_EVENTFD ? 4 : type === VFIO_IRQ_SET_DATA_BOOL ? 1 : 0;
  const bytes = new Uint8Array(20 + data.length * size);
  bytes.set(vfioIrqSet.encode({ argsz: bytes.length, flags, index, start, count }));
  const view = new DataView(bytes.buffer);
  data.forEach((v, i) => {
    if (size === 4) view.setInt32(20 + 4 * i, v, true);
    else if (size === 1) view.setUint8(20 + i, v);
  });
  return bytes;
}

export function bench<F extends PciFunction>(fn: F, options: BenchOptions = {}): Bench<F> {
  const pdev = new FakePciHandle(fn);
  const ref: { layer?: VfioPciIrqLayer } = {};
  const config = new VfioPciConfig(fn, {
    hooks: {
      intxMask: (masked) => {
        ref.layer?.onConfigIntxMask(masked);
      },
    },
  });
  const virqfd = createVirqfdContext({ defer: queueMicrotask });
  const log: string[] = [];
  const proc = new FakeCall();
  const l = createVfioPciIrqLayer({
    pdev: pdev.handle,
    config,
    virqfd,
    log: (text) => log.push(text),
    bars: {
      barSize: (bar) => fn.bars[bar]?.size ?? 0n,
      barIsMem: (bar) => (fn.bars[bar]?.size ?? 0n) > 0n && fn.bars[bar]?.type !== 'io',
      write: (bar, offset, data) => {
        const b = fn.bars[bar];
        if (!b || b.size === 0n) throw new SysError('EINVAL', 'no BAR');
        if (b.type !== 'io' && !config.memoryEnabled) throw new SysError('EIO', 'memory decoding off');
        fn.barWrite?.(bar, offset, data);
      },
    },
    ...options,
  });
  ref.layer = l;
  return {
    fn,
    pdev,
    config,
    virqfd,
    layer: l,
    proc,
    log,
    setIrqs(flags, index, start, count, data = []) {
      const v: ValidatedSetIrqs = validateSetIrqs(
        irqSetBytes(flags, index, start, count, data),
        (i) => l.irqCount(i),
        VFIO_PCI_NUM_IRQS,
      );
      return l.setIrqs(v, proc.call);
    },
    ioeventfd(bar, offset, data, fd, flags = VFIO_DEVICE_IOEVENTFD_32) {
      const arg = vfioDeviceIoeventfd.encode({ argsz: 32, flags, offset: vfioPciOffset(bar) + offset, data, fd });
      return l.ioeventfd(arg, proc.call);
    },
    state() {
      const s = l.state?.();
      if (!s) throw new Error('layer without state()');
      return s;
    },
    async settle() {
      await virqfd.flush();
      await l.flush?.();
      await virqfd.flush();
    },
  };
}

/** The QEMU edu model (INTx with DisINTx and STATUS.INTERRUPT, one MSI vector) on a bench. */
export function eduBench(options: BenchOptions = {}): Bench<EduFunction> {
  return bench(eduFunction(), options);
}

/** The captured e1000e config space as a passive function (MSI-X with 5 vectors in BAR3, PCIe). */
export function e1000eBench(options: BenchOptions = {}): Bench<ConfigSpaceFunction> {
  return bench(pciFunctionFromConfig({ config: fixture('e1000e'), bars: E1000E_BARS }), options);
}

/** Reads the eventfd counter (a read(2)): the value, or 0 when nothing was signalled. */
export function take(efd: EventFdContext): number {
  return Number(efd.take() ?? 0n);
}

/** Expects a SysError with `errno`. */
export function expectErrno(fn: () => unknown, errno: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${errno}`).toBeInstanceOf(SysError);
  expect((caught as SysError).errno).toBe(errno);
}

export const TRIGGER_EVENTFD = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
export const TRIGGER_NONE = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
export const TRIGGER_BOOL = VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER;
