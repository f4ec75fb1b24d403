/**
 * vfio-pci's interrupt layer for one open device (inventory §1.4.2, §3.4, §3.7, §8.4 P29–P39; Linux 6.12
 * drivers/vfio/pci/vfio_pci_intrs.c and the IRQ parts of vfio_pci_core.c): GET_IRQ_INFO, SET_IRQS on INTx, MSI,
 * MSI-X, ERR and REQ, the routing of the model's interrupts to the user's eventfds, ioeventfds, and teardown.
 *
 * Linux serializes all of this with `igate`; every entry point here is synchronous, so one call is one critical
 * section. Only virqfd teardown is asynchronous: the slot is emptied at once and the shutdown is tracked until
 * {@link VfioPciIrqs.closeAll} (or {@link VfioPciIrqs.flush}) awaits it.
 */
import type { SyscallContext, ValidatedSetIrqs } from '@vfio-ts/core';
import type { EventFdContext, PciDeviceHandle } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_REQ_IRQ_INDEX,
} from '@vfio-ts/uapi';
import { createVirqfdSlot } from '@vfio-ts/virqfd';
import type { VirqfdContext, VirqfdSlot } from '@vfio-ts/virqfd';
import type { Work } from '@vfio-ts/virqfd';
import type { VfioPciConfig } from '../config/index.js';
import * as R from '../config/regs.js';
import { PciHardware } from './hw.js';
import type { MsixTableLocation } from './hw.js';
import { IoeventfdTable } from './ioeventfd.js';
import type {
  VfioPciIrqInfo,
  VfioPciIrqLayer,
  VfioPciIrqLayerOptions,
  VfioPciIrqState,
  VfioPciVectorState,
} from './types.js';

/** The active interrupt type: an IRQ index, or none (Linux irq_type, VFIO_PCI_NUM_IRQS meaning none). */
type IrqType = typeof VFIO_PCI_INTX_IRQ_INDEX | typeof VFIO_PCI_MSI_IRQ_INDEX | typeof VFIO_PCI_MSIX_IRQ_INDEX | 'none';

/** INTx state while INTx is the active type (Linux vfio_pci_irq_ctx at index 0). */
interface IntxContext {
  trigger: EventFdContext | undefined;
  /** Automasked by an interrupt or masked by the user; cleared by unmask. */
  masked: boolean;
  readonly unmask: VirqfdSlot;
  readonly mask: VirqfdSlot;
  /** Interrupts taken from the device, and signals sent to the trigger (taken + loopback + re-sends). */
  interrupts: number;
  signals: number;
}

/** One MSI/MSI-X vector with a trigger (Linux vfio_pci_irq_ctx in the xarray). */
interface VectorContext {
  readonly trigger: EventFdContext;
  /** The host IRQ name, as /proc/interrupts would show it. */
  readonly name: string;
  interrupts: number;
  signals: number;
}

/** MSI or MSI-X state while it is the active type. */
interface MsiContext {
  readonly msix: boolean;
  /** Vectors the host allocated (they stay allocated until disable, Linux's "cache" of IRQs). */
  readonly allocated: Set<number>;
  readonly vectors: Map<number, VectorContext>;
  /** Messages from the device for which no trigger is set up (masked at the host). */
  spurious: number;
}

/** A single-eventfd trigger (ERR, REQ). */
interface SingleTrigger {
  eventfd: EventFdContext | undefined;
  signals: number;
}

const INDEX_NAMES = ['intx', 'msi', 'msix', 'err', 'req'] as const;

function s32At(data: Uint8Array, i: number): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getInt32(4 * i, true);
}

/** The interrupt layer of one open vfio-pci device. Create it with `createVfioPciIrqLayer`. */
export class VfioPciIrqs implements VfioPciIrqLayer {
  readonly #pdev: PciDeviceHandle;
  readonly #config: VfioPciConfig;
  readonly #virqfd: VirqfdContext;
  readonly #log: (text: string) => void;
  readonly #hw: PciHardware;
  readonly #noIntx: boolean;
  readonly #pci23: boolean;
  readonly #pcie: boolean;
  readonly #nointxQuirk: boolean;
  readonly #dynMsix: boolean;
  readonly #vectorLimit: number;
  readonly #msiCap: number | undefined;
  readonly #msixCap: number | undefined;
  readonly #msixTable: MsixTableLocation | undefined;
  readonly #ioeventfds: IoeventfdTable;
  readonly #pending = new Set<Promise<void>>();
  /** Replays a still-asserted level interrupt after enable_irq (non-PCI-2.3 INTx), off the caller's stack. */
  readonly #intxReplay: Work;

  #irqType: IrqType = 'none';
  #intx: IntxContext | undefined;
  #msi: MsiContext | undefined;
  readonly #err: SingleTrigger = { eventfd: undefined, signals: 0 };
  readonly #req: SingleTrigger = { eventfd: undefined, signals: 0 };
  /** Host IRQ line enabled (non-PCI-2.3 devices mask INTx at the interrupt controller: disable_irq). */
  #hostIrqEnabled = true;
  /** The INTx pin level as last reported by the function. */
  #line: boolean;
  #spuriousIntx = 0;
  #spuriousMsi = 0;
  #closed = false;

  constructor(options: VfioPciIrqLayerOptions) {
    this.#pdev = options.pdev;
    this.#config = options.config;
    this.#virqfd = options.virqfd;
    this.#log = (text) => {
      options.log(text);
    };
    this.#hw = new PciHardware(options.pdev.fn);
    this.#nointxQuirk = options.nointx ?? false;
    this.#noIntx = this.#nointxQuirk || (options.virtfn ?? false);
    // pci_2_3: DisINTx masking works. Linux probes it at open unless the nointx quirk or nointxmask applies.
    this.#pci23 = options.pci23 ?? (!this.#nointxQuirk && this.#hw.intxMaskSupported());
    const caps = this.#config.capabilities().filter((c) => !c.extended);
    this.#pcie = options.pcie ?? caps.some((c) => c.id === R.PCI_CAP_ID.EXP);
    this.#msiCap = caps.find((c) => c.id === R.PCI_CAP_ID.MSI)?.offset;
    this.#msixCap = caps.find((c) => c.id === R.PCI_CAP_ID.MSIX)?.offset;
    this.#msixTable = this.#msixCap === undefined ? undefined : this.#hw.msixTable(this.#msixCap);
    // has_dyn_msix: the sim's interrupt domain can add MSI-X vectors to an enabled function.
    this.#dynMsix = this.#msixCap !== undefined && (options.dynamicMsix ?? true);
    this.#vectorLimit = options.irqVectorLimit ?? Number.POSITIVE_INFINITY;
    this.#line = this.#hw.intxPending && !this.#hw.intxDisabled;
    this.#ioeventfds = new IoeventfdTable({
      bars: options.bars,
      virqfd: options.virqfd,
      msix: this.#msixTable,
      track: (p) => {
        this.#track(p);
      },
    });
    this.#intxReplay = {
      name: `vfio-intx-replay(${options.pdev.bdf})`,
      run: () => {
        if (this.#line) this.#intxInterrupt();
      },
    };
    this.#pdev.onIntx((level) => {
      this.#onIntxLevel(level);
    });
    this.#pdev.onMsi((vector) => {
      this.#onMsiMessage(vector);
    });
  }

  // ---------------------------------------------------------------- GET_IRQ_INFO

  irqCount(index: number): number {
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        // The virtual pin (0 for VFs, the nointx quirk, or no routed IRQ).
        return !this.#noIntx && this.#config.interruptPin !== 0 ? 1 : 0;
      case VFIO_PCI_MSI_IRQ_INDEX:
        if (this.#msiCap === undefined) return 0;
        return 1 << ((this.#hw.read(this.#msiCap + R.PCI_MSI_FLAGS, 2) & R.PCI_MSI_FLAGS_QMASK) >> 1);
      case VFIO_PCI_MSIX_IRQ_INDEX:
        if (this.#msixCap === undefined) return 0;
        return (this.#hw.read(this.#msixCap + R.PCI_MSIX_FLAGS, 2) & R.PCI_MSIX_FLAGS_QSIZE) + 1;
      case VFIO_PCI_ERR_IRQ_INDEX:
        return this.#pcie ? 1 : 0;
      case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
      default:
        return 0;
    }
  }

  irqInfo(index: number): VfioPciIrqInfo {
    if (!Number.isInteger(index) || index < 0 || index >= VFIO_PCI_NUM_IRQS) {
      throw new SysError('EINVAL', `IRQ index ${index}`);
    }
    // The ERR index exists only for PCI Express functions (§3.4).
    if (index === VFIO_PCI_ERR_IRQ_INDEX && !this.#pcie) throw new SysError('EINVAL', 'no ERR index without PCIe');
    let flags = VFIO_IRQ_INFO_EVENTFD;
    if (index === VFIO_PCI_INTX_IRQ_INDEX) flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    else if (index !== VFIO_PCI_MSIX_IRQ_INDEX || !this.#dynMsix) flags |= VFIO_IRQ_INFO_NORESIZE;
    return { flags, count: this.irqCount(index) };
  }

  // ---------------------------------------------------------------- SET_IRQS dispatch

  setIrqs(irqSet: ValidatedSetIrqs, call: SyscallContext): number {
    const { flags, index, start, count } = irqSet.header;
    const action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    const req: SetRequest = { start, count, dataType: flags & VFIO_IRQ_SET_DATA_TYPE_MASK, data: irqSet.data, call };
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_MASK) return this.#setIntxMask(req);
        if (action === VFIO_IRQ_SET_ACTION_UNMASK) return this.#setIntxUnmask(req);
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER) return this.#setIntxTrigger(req);
        break;
      case VFIO_PCI_MSI_IRQ_INDEX:
      case VFIO_PCI_MSIX_IRQ_INDEX:
        // MSI/MSI-X masking is not exported by Linux ("XXX Need masking support exported"): ENOTTY.
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER) return this.#setMsiTrigger(index, req);
        break;
      case VFIO_PCI_ERR_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER && this.#pcie) return this.#setSingle(this.#err, req);
        break;
      case VFIO_PCI_REQ_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER) return this.#setSingle(this.#req, req);
        break;
      default:
        break;
    }
    throw new SysError('ENOTTY', `SET_IRQS action 0x${action.toString(16)} not supported on index ${index}`);
  }

  // ---------------------------------------------------------------- INTx

  #setIntxMask(r: SetRequest): number {
    if (!this.#intx || r.start !== 0 || r.count !== 1) throw new SysError('EINVAL', 'INTx is not enabled or not 0+1');
    if (r.dataType === VFIO_IRQ_SET_DATA_EVENTFD) throw new SysError('ENOTTY', 'INTx mask through an eventfd');
    if (r.dataType === VFIO_IRQ_SET_DATA_NONE || r.data[0]) this.#intxMask();
    return 0;
  }

  #setIntxUnmask(r: SetRequest): number {
    const ctx = this.#intx;
    if (!ctx || r.start !== 0 || r.count !== 1) throw new SysError('EINVAL', 'INTx is not enabled or not 0+1');
    if (r.dataType === VFIO_IRQ_SET_DATA_EVENTFD) {
      const fd = s32At(r.data, 0);
      if (fd >= 0) {
        // Unmask through an eventfd (§3.7): the handler unmasks in the signal; a still-pending interrupt is
        // re-sent from the thread, never from inside the unmask eventfd's own wake-up.
        this.#virqfd.enable({
          slot: ctx.unmask,
          eventfd: r.call.eventfd(fd),
          data: ctx,
          handler: (c: IntxContext) => this.#intxUnmaskHandler(c),
          thread: (c: IntxContext) => {
            this.#sendIntx(c);
          },
        });
      } else {
        this.#track(this.#virqfd.disable(ctx.unmask));
      }
      return 0;
    }
    if (r.dataType === VFIO_IRQ_SET_DATA_NONE || r.data[0]) this.#intxUnmask();
    return 0;
  }

  #setIntxTrigger(r: SetRequest): number {
    if (this.#intx && r.count === 0 && r.dataType === VFIO_IRQ_SET_DATA_NONE) {
      this.#intxDisable();
      return 0;
    }
    if (!(this.#intx || this.#irqType === 'none') || r.start !== 0 || r.count !== 1) {
      throw new SysError('EINVAL', 'INTx trigger needs INTx or no interrupt type active, vector 0+1');
    }
    if (r.dataType === VFIO_IRQ_SET_DATA_EVENTFD) {
      const fd = s32At(r.data, 0);
      const trigger = fd >= 0 ? r.call.eventfd(fd) : undefined;
      if (this.#intx) this.#intxSetSignal(this.#intx, trigger);
      else this.#intxEnable(trigger);
      return 0;
    }
    const ctx = this.#intx;
    if (!ctx) throw new SysError('EINVAL', 'INTx loopback needs INTx enabled');
    // Loopback (§1.4.2): signal as the hardware would, without masking.
    if (r.dataType === VFIO_IRQ_SET_DATA_NONE || (r.dataType === VFIO_IRQ_SET_DATA_BOOL && r.data[0])) {
      this.#sendIntx(ctx);
    }
    return 0;
  }

  /** vfio_intx_enable: the initial mask follows the user's INTx-disable bit; the IRQ is then requested. */
  #intxEnable(trigger: EventFdContext | undefined): void {
    const masked = this.#config.intxMasked;
    const ctx: IntxContext = {
      trigger,
      masked,
      unmask: createVirqfdSlot(),
      mask: createVirqfdSlot(),
      interrupts: 0,
      signals: 0,
    };
    // irq_type is set before the handler can run.
    this.#intx = ctx;
    this.#setType(VFIO_PCI_INTX_IRQ_INDEX);
    if (this.#pci23) {
      this.#hw.intx(!masked);
    } else {
      // An exclusive IRQ that starts disabled when masked (IRQF_NO_AUTOEN).
      this.#hostIrqEnabled = !masked;
    }
    // request_irq on a level-triggered line that is already asserted: the handler runs at once.
    if (this.#line) this.#intxInterrupt();
  }

  /**
   * vfio_intx_set_signal: swaps the trigger. The unmask thread may still be about to signal the old one; Linux
   * flushes it before dropping the old eventfd, and so does this (the flush is awaited at close).
   */
  #intxSetSignal(ctx: IntxContext, trigger: EventFdContext | undefined): void {
    const old = ctx.trigger;
    ctx.trigger = trigger;
    if (old) this.#track(this.#virqfd.flushThread(ctx.unmask));
  }

  /** vfio_intx_disable: tear down the unmask/mask virqfds, free the IRQ, back to no interrupt type. */
  #intxDisable(): void {
    const ctx = this.#intx;
    if (!ctx) return;
    this.#track(this.#virqfd.disable(ctx.unmask));
    this.#track(this.#virqfd.disable(ctx.mask));
    this.#intx = undefined;
    this.#hostIrqEnabled = true;
    this.#setType('none');
  }

  /** vfio_send_intx_eventfd: only while INTx is active, not disabled by the user, and a trigger is set. */
  #sendIntx(ctx: IntxContext): void {
    if (this.#intx !== ctx || this.#config.intxMasked || !ctx.trigger) return;
    ctx.signals++;
    ctx.trigger.signal();
  }

  /**
   * __vfio_pci_intx_mask: mask now, whether or not anything is pending. Without INTx active, the hardware
   * DisINTx just follows the user's bit. Returns whether the mask state changed.
   */
  #intxMask(): boolean {
    const ctx = this.#intx;
    if (!ctx) {
      if (this.#pci23) this.#hw.intx(false);
      return false;
    }
    if (ctx.masked) return false;
    if (this.#pci23) this.#hw.intx(false);
    else this.#hostIrqEnabled = false;
    ctx.masked = true;
    return true;
  }

  /**
   * vfio_pci_intx_unmask_handler: unmask unless the user's INTx-disable bit holds it. With DisINTx, an interrupt
   * still pending keeps the line masked and is re-sent instead (true = "signal the trigger").
   */
  #intxUnmaskHandler(ctx: IntxContext | undefined = this.#intx): boolean {
    if (!this.#intx) {
      if (this.#pci23) this.#hw.intx(true);
      return false;
    }
    if (ctx !== this.#intx || !ctx.masked || this.#config.intxMasked) return false;
    let resend = false;
    if (this.#pci23) {
      resend = !this.#hw.checkAndSetIntxMask(false);
    } else {
      this.#hostIrqEnabled = true;
      // enable_irq on a line still asserted: the level interrupt is delivered again, after this call.
      if (this.#line) this.#virqfd.workqueues.system.queue(this.#intxReplay);
    }
    ctx.masked = resend;
    return resend;
  }

  /** __vfio_pci_intx_unmask: unmask, and re-send a pending interrupt from here (not from an eventfd wake-up). */
  #intxUnmask(): void {
    const ctx = this.#intx;
    if (this.#intxUnmaskHandler() && ctx) this.#sendIntx(ctx);
  }

  /** The function's INTx pin changed level (the host interrupt controller sees the edge of a level IRQ). */
  #onIntxLevel(level: boolean): void {
    this.#line = level;
    if (level && !this.#closed) this.#intxInterrupt();
  }

  /**
   * vfio_intx_handler — the automask (§3.4): mask the line (DisINTx after checking the function really
   * asserts, since the IRQ may be shared; else disable_irq) and signal the trigger.
   */
  #intxInterrupt(): void {
    const ctx = this.#intx;
    if (!ctx) {
      this.#spuriousIntx++;
      return;
    }
    let handled = false;
    if (!this.#pci23) {
      if (!this.#hostIrqEnabled) return; // disabled at the controller: stays pending until enable_irq
      this.#hostIrqEnabled = false;
      ctx.masked = true;
      handled = true;
    } else if (!ctx.masked && this.#hw.checkAndSetIntxMask(true)) {
      ctx.masked = true;
      handled = true;
    }
    if (!handled) {
      this.#spuriousIntx++;
      return;
    }
    ctx.interrupts++;
    this.#sendIntx(ctx);
  }

  intxMask(): boolean {
    return this.#closed ? false : this.#intxMask();
  }

  intxUnmask(): void {
    if (!this.#closed) this.#intxUnmask();
  }

  onConfigIntxMask(masked: boolean): void {
    if (this.#closed) return;
    if (masked) this.#intxMask();
    else this.#intxUnmask();
  }

  // ---------------------------------------------------------------- MSI / MSI-X

  #setMsiTrigger(index: typeof VFIO_PCI_MSI_IRQ_INDEX | typeof VFIO_PCI_MSIX_IRQ_INDEX, r: SetRequest): number {
    const msix = index === VFIO_PCI_MSIX_IRQ_INDEX;
    if (this.#irqType === index && r.count === 0 && r.dataType === VFIO_IRQ_SET_DATA_NONE) {
      this.#msiDisable();
      return 0;
    }
    // Only one of INTx, MSI and MSI-X at a time (§3.4, P39).
    if (!(this.#irqType === index || this.#irqType === 'none')) {
      throw new SysError('EINVAL', `another interrupt type (${String(this.#irqType)}) is active`);
    }
    if (r.dataType === VFIO_IRQ_SET_DATA_EVENTFD) {
      // Every eventfd is resolved before anything changes, so a bad fd leaves the vectors as they were (Linux
      // releases the block's vectors on that path; the errno is the same).
      const triggers: (EventFdContext | undefined)[] = [];
      for (let i = 0; i < r.count; i++) {
        const fd = s32At(r.data, i);
        triggers.push(fd >= 0 ? r.call.eventfd(fd) : undefined);
      }
      if (this.#msi) {
        this.#checkVectors(this.#msi, r.start, triggers);
        this.#setBlock(this.#msi, r.start, triggers);
        return 0;
      }
      const got = this.#msiEnable(r.start + r.count, msix);
      if (got !== 0) return got;
      // Enabled with start+count vectors: every vector of the block is allocated, so nothing below can fail.
      this.#setBlock(this.#msiActive(), r.start, triggers);
      return 0;
    }
    const m = this.#msi;
    if (this.#irqType !== index || !m) throw new SysError('EINVAL', `${msix ? 'MSI-X' : 'MSI'} is not enabled`);
    // Loopback: signal the vectors that have a trigger.
    for (let i = r.start; i < r.start + r.count; i++) {
      const ctx = m.vectors.get(i);
      if (!ctx) continue;
      if (r.dataType === VFIO_IRQ_SET_DATA_NONE || r.data[i - r.start]) {
        ctx.signals++;
        ctx.trigger.signal();
      }
    }
    return 0;
  }

  #msiActive(): MsiContext {
    const m = this.#msi;
    if (!m) throw new SysError('EINVAL', 'MSI is not enabled');
    return m;
  }

  /**
   * vfio_msi_enable: allocate `nvec` vectors. A host that can give only fewer returns that number from the ioctl
   * (positive, nothing enabled); `nvec` 0 is ERANGE, as pci_alloc_irq_vectors(1, 0) is.
   */
  #msiEnable(nvec: number, msix: boolean): number {
    if (nvec < 1) throw new SysError('ERANGE', 'no vectors requested');
    if (this.#vectorLimit < 1) throw new SysError('ENOSPC', 'no interrupt vectors left on the host');
    if (nvec > this.#vectorLimit) return Math.floor(this.#vectorLimit);
    const allocated = new Set<number>();
    for (let i = 0; i < nvec; i++) allocated.add(i);
    if (msix) {
      const cap = this.#msixCap;
      const table = this.#msixTable;
      if (cap === undefined || !table) throw new SysError('EINVAL', 'no MSI-X capability');
      this.#hw.msixEnable(cap, table, allocated);
    } else {
      const cap = this.#msiCap;
      if (cap === undefined) throw new SysError('EINVAL', 'no MSI capability');
      this.#hw.msiEnable(cap, nvec);
      // The user's Multiple Message Enable is clipped to what was enabled (msi_qmax, §3.2).
      this.#config.msiEnabled(nvec);
    }
    this.#msi = { msix, allocated, vectors: new Map(), spurious: 0 };
    this.#setType(msix ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_MSI_IRQ_INDEX);
    return 0;
  }

  /**
   * The checks vfio_msi_alloc_irq makes for each vector that gets a trigger: an MSI vector beyond those enabled,
   * or an unallocated MSI-X vector without dynamic allocation, is EINVAL.
   */
  #checkVectors(m: MsiContext, start: number, triggers: readonly (EventFdContext | undefined)[]): void {
    triggers.forEach((t, i) => {
      const vector = start + i;
      if (!t || m.vectors.has(vector) || m.allocated.has(vector)) return;
      if (!m.msix || !this.#dynMsix) {
        throw new SysError('EINVAL', `vector ${vector} was not allocated when ${m.msix ? 'MSI-X' : 'MSI'} was enabled`);
      }
    });
  }

  /** vfio_msi_set_block after the checks: each vector of the block gets its new trigger (or none). */
  #setBlock(m: MsiContext, start: number, triggers: readonly (EventFdContext | undefined)[]): void {
    triggers.forEach((t, i) => {
      this.#setVector(m, start + i, t);
    });
  }

  /** vfio_msi_set_vector_signal: free the vector's IRQ (masking it), then request it with the new trigger. */
  #setVector(m: MsiContext, vector: number, trigger: EventFdContext | undefined): void {
    if (m.vectors.delete(vector)) this.#maskVector(m, vector, true);
    if (!trigger) return;
    if (!m.allocated.has(vector)) {
      // Dynamic MSI-X (pci_msix_alloc_irq_at): the vector joins the enabled function.
      m.allocated.add(vector);
      if (this.#msixTable) this.#hw.msixAllocate(this.#msixTable, vector);
    }
    const name = `vfio-msi${m.msix ? 'x' : ''}[${vector}](${this.#pdev.bdf})`;
    m.vectors.set(vector, { trigger, name, interrupts: 0, signals: 0 });
    this.#maskVector(m, vector, false);
  }

  #maskVector(m: MsiContext, vector: number, masked: boolean): void {
    if (m.msix) {
      if (this.#msixTable) this.#hw.msixMaskVector(this.#msixTable, vector, masked);
    } else if (this.#msiCap !== undefined) {
      this.#hw.msiMaskVector(this.#msiCap, vector, masked);
    }
  }

  /** vfio_msi_disable: every vector released, the vectors freed, DisINTx restored for nointx devices. */
  #msiDisable(): void {
    const m = this.#msi;
    if (!m) return;
    for (const vector of [...m.vectors.keys()]) this.#setVector(m, vector, undefined);
    if (m.msix) {
      if (this.#msixCap !== undefined && this.#msixTable) this.#hw.msixDisable(this.#msixCap, this.#msixTable, m.allocated);
    } else if (this.#msiCap !== undefined) {
      this.#hw.msiDisable(this.#msiCap);
    }
    if (this.#nointxQuirk) this.#hw.intx(false);
    this.#msi = undefined;
    this.#setType('none');
  }

  /**
   * A message from the function: vector n goes to the eventfd bound to vector n. Vectors without a trigger are
   * masked at the host (in the MSI-X table, or the MSI mask bits) — a message for one anyway is spurious. The
   * mask bits are not read here: as with real hardware, the function itself holds back a masked vector (and sets
   * its pending bit); the host delivers whatever arrives for a requested IRQ.
   */
  #onMsiMessage(vector: number): void {
    const m = this.#msi;
    if (!m || this.#closed) {
      this.#spuriousMsi++;
      return;
    }
    const ctx = m.vectors.get(vector);
    if (!ctx) {
      m.spurious++;
      return;
    }
    ctx.interrupts++;
    ctx.signals++;
    ctx.trigger.signal();
  }

  // ---------------------------------------------------------------- ERR / REQ

  /** vfio_pci_set_ctx_trigger_single: one eventfd, with loopback. */
  #setSingle(t: SingleTrigger, r: SetRequest): number {
    if (r.start !== 0 || r.count > 1) throw new SysError('EINVAL', 'ERR/REQ have one vector');
    switch (r.dataType) {
      case VFIO_IRQ_SET_DATA_NONE:
        if (!t.eventfd) break; // nothing to signal or drop: EINVAL below
        if (r.count) {
          t.signals++;
          t.eventfd.signal();
        } else {
          t.eventfd = undefined;
        }
        return 0;
      case VFIO_IRQ_SET_DATA_BOOL:
        if (!r.count) throw new SysError('EINVAL', 'BOOL with count 0');
        if (r.data[0] && t.eventfd) {
          t.signals++;
          t.eventfd.signal();
        }
        return 0;
      case VFIO_IRQ_SET_DATA_EVENTFD: {
        if (!r.count) throw new SysError('EINVAL', 'EVENTFD with count 0');
        const fd = s32At(r.data, 0);
        if (fd === -1) t.eventfd = undefined;
        else if (fd >= 0) t.eventfd = r.call.eventfd(fd);
        // Other negative fds change nothing, as in Linux.
        return 0;
      }
      default:
        break;
    }
    throw new SysError('EINVAL', 'no trigger set');
  }

  /** The request count is the driver's: it logs "Relaying device request to user (#count)" every tenth time. */
  requestSignal(): boolean {
    const t = this.#req;
    if (!t.eventfd) return false;
    t.signals++;
    t.eventfd.signal();
    return true;
  }

  errSignal(): boolean {
    const t = this.#err;
    if (!t.eventfd) return false;
    t.signals++;
    t.eventfd.signal();
    return true;
  }

  // ---------------------------------------------------------------- ioeventfd

  ioeventfd(arg: Uint8Array, call: SyscallContext): number {
    return this.#ioeventfds.ioctl(arg, call);
  }

  // ---------------------------------------------------------------- resets, close, observability

  afterReset(): void {
    if (this.#closed) return;
    this.#line = this.#hw.intxPending && !this.#hw.intxDisabled;
    const m = this.#msi;
    if (m) {
      // pci_restore_msi_state: the function forgot its MSI/MSI-X programming in the reset.
      if (m.msix) {
        if (this.#msixCap !== undefined && this.#msixTable) this.#hw.msixEnable(this.#msixCap, this.#msixTable, m.allocated);
      } else if (this.#msiCap !== undefined) {
        this.#hw.msiEnable(this.#msiCap, m.allocated.size);
      }
      for (const vector of m.vectors.keys()) this.#maskVector(m, vector, false);
    } else if (this.#intx && this.#pci23) {
      this.#hw.intx(!this.#intx.masked);
    }
  }

  async closeAll(): Promise<void> {
    if (!this.#closed) {
      // vfio_pci_core_disable: SET_IRQS(TRIGGER | DATA_NONE, irq_type, 0, 0), then the ioeventfds.
      if (this.#intx) this.#intxDisable();
      if (this.#msi) this.#msiDisable();
      this.#track(this.#ioeventfds.clear());
      // vfio_pci_core_close_device drops the ERR and REQ eventfds.
      this.#err.eventfd = undefined;
      this.#req.eventfd = undefined;
      this.#pdev.onIntx(undefined);
      this.#pdev.onMsi(undefined);
      this.#closed = true;
    }
    await this.flush();
  }

  /** Resolves once every virqfd teardown started so far, and a queued INTx replay, have completed. */
  async flush(): Promise<void> {
    await this.#virqfd.workqueues.system.flushWork(this.#intxReplay);
    while (this.#pending.size) await Promise.all([...this.#pending]);
  }

  describe(): Record<string, unknown> {
    const state: VfioPciIrqState = this.state();
    return { ...state };
  }

  /** The typed snapshot behind {@link describe}. */
  state(): VfioPciIrqState {
    const counts: Record<string, number> = {};
    INDEX_NAMES.forEach((name, index) => {
      counts[name] = this.irqCount(index);
    });
    const ctx = this.#intx;
    const m = this.#msi;
    const vectors = (mm: MsiContext): VfioPciVectorState[] =>
      [...mm.vectors.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([vector, v]) => ({ vector, name: v.name, eventfd: v.trigger.id, interrupts: v.interrupts, signals: v.signals }));
    return {
      bdf: this.#pdev.bdf,
      irqType: this.#irqType === 'none' ? 'none' : INDEX_NAMES[this.#irqType],
      counts,
      pci23: this.#pci23,
      intx: ctx
        ? {
            masked: ctx.masked,
            virqDisabled: this.#config.intxMasked,
            eventfd: ctx.trigger?.id ?? null,
            unmaskEventfd: ctx.unmask.eventfd?.id ?? null,
            interrupts: ctx.interrupts,
            signals: ctx.signals,
          }
        : null,
      msi: m
        ? { msix: m.msix, allocated: m.allocated.size, vectors: vectors(m), spurious: m.spurious }
        : null,
      err: { eventfd: this.#err.eventfd?.id ?? null, signals: this.#err.signals },
      req: { eventfd: this.#req.eventfd?.id ?? null, signals: this.#req.signals },
      ioeventfds: this.#ioeventfds.describe(),
      spurious: { intx: this.#spuriousIntx, msi: this.#spuriousMsi },
      closed: this.#closed,
    };
  }

  // ---------------------------------------------------------------- helpers

  #setType(type: IrqType): void {
    this.#irqType = type;
    this.#config.irqType =
      type === 'none' ? 'none' : type === VFIO_PCI_INTX_IRQ_INDEX ? 'intx' : type === VFIO_PCI_MSI_IRQ_INDEX ? 'msi' : 'msix';
  }

  #track(p: Promise<void>): void {
    const tracked = p.then(
      () => {
        this.#pending.delete(tracked);
      },
      (e: unknown) => {
        this.#pending.delete(tracked);
        this.#log(`vfio-pci ${this.#pdev.bdf}: virqfd teardown failed: ${String(e)}`);
      },
    );
    this.#pending.add(tracked);
  }
}

/** One SET_IRQS call after validation, as the per-index handlers see it. */
interface SetRequest {
  readonly start: number;
  readonly count: number;
  /** Exactly one of DATA_NONE, DATA_BOOL, DATA_EVENTFD. */
  readonly dataType: number;
  readonly data: Uint8Array;
  readonly call: SyscallContext;
}
