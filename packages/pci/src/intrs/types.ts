/**
 * The contract between the vfio-pci driver (packages/pci/src/driver/**) and its interrupt layer
 * (packages/pci/src/intrs/**): INTx with mask/unmask and unmask-through-eventfd (virqfd), MSI, MSI-X with dynamic
 * allocation, the ERR and REQ indexes and ioeventfds (inventory §3.3, §3.4, §3.7; Linux vfio_pci_intrs.c and the
 * ioeventfd half of vfio_pci_rdwr.c).
 *
 * The driver creates one layer per open of the device (Linux keeps the IRQ state in vfio_pci_core_device from
 * vfio_pci_core_enable to vfio_pci_core_disable), after it built the {@link VfioPciConfig} of that open, and drops
 * it after {@link VfioPciIrqLayer.closeAll} at last close.
 *
 * Additions by the interrupt layer (all additive; the driver needs to pass nothing new):
 * - `setIrqs` returns a number: 0, or — like Linux — the positive count of vectors the host could give when an
 *   MSI/MSI-X enable asked for more (nothing is enabled then). The driver's ioctl should return it.
 * - options `dynamicMsix` (has_dyn_msix, default true) and `irqVectorLimit` (host vector budget, default none);
 *   `pci23` is probed like pci_intx_mask_supported when not given.
 * - `flush()` (await pending virqfd teardowns) and the typed `state()` behind `describe()`.
 * - `intxMask()` / `intxUnmask()` (vfio_pci_intx_mask / _unmask) for runtime suspend/resume (`pm_intx_masked`).
 */
import type { ValidatedSetIrqs } from '@vfio-ts/core';
import type { SyscallContext } from '@vfio-ts/core';
import type { PciDeviceHandle } from '@vfio-ts/platform';
import type { VirqfdContext } from '@vfio-ts/virqfd';
import type { VfioPciConfig } from '../config/index.js';

/** One IRQ index as VFIO_DEVICE_GET_IRQ_INFO reports it (`struct vfio_irq_info` flags and count). */
export interface VfioPciIrqInfo {
  /** VFIO_IRQ_INFO_* bits (EVENTFD, MASKABLE, AUTOMASKED, NORESIZE). */
  readonly flags: number;
  /** Number of vectors of the index (0 when the device does not offer it). */
  readonly count: number;
}

/**
 * How the interrupt layer reaches BAR space for ioeventfd writes (Linux vfio_pci_ioeventfd_do_write, with
 * `test_mem` for memory BARs): the driver supplies it so both paths apply the same memory-decode rules.
 */
export interface VfioPciBarAccess {
  /** Size of BAR `bar` (0 when not implemented). */
  barSize(bar: number): bigint;
  /** True for a memory BAR (false for I/O or not implemented). */
  barIsMem(bar: number): boolean;
  /**
   * Writes `data` at `offset` of BAR `bar`, as a user pwrite of the region would (EIO while memory decoding is
   * off for a memory BAR, EINVAL out of range). Used by the ioeventfd handler, which swallows the error as Linux
   * skips the write when memory is disabled.
   */
  write(bar: number, offset: bigint, data: Uint8Array): void;
}

/** What the driver hands the interrupt layer (Linux: fields of vfio_pci_core_device the IRQ code uses). */
export interface VfioPciIrqLayerOptions {
  /** The PCI function: `onIntx` / `onMsi` route the model's interrupts to the layer; `fn` for raw config. */
  readonly pdev: PciDeviceHandle;
  /** This open's config-space virtualization (irqType, msiEnabled, intxMasked, msiState, findCapability). */
  readonly config: VfioPciConfig;
  /** The host's virqfd context (unmask-through-eventfd, ioeventfd threads). */
  readonly virqfd: VirqfdContext;
  /** The BAR access ioeventfd writes go through. */
  readonly bars: VfioPciBarAccess;
  /** Host log (dmesg-like). */
  log(text: string): void;
  /** `nointx` quirk or module parameter: INTx is not offered (count 0). */
  readonly nointx?: boolean;
  /** The function is an SR-IOV VF: no INTx (count 0). */
  readonly virtfn?: boolean;
  /**
   * DisINTx masking works (Linux pci_2_3, probed with pci_intx_mask_supported unless `nointxmask`); otherwise
   * INTx masking disables the host IRQ line. Default: probed on the function like pci_intx_mask_supported (false
   * with `nointx`); pass `false` for the `nointxmask` module parameter.
   */
  readonly pci23?: boolean;
  /** The function is PCI Express (ERR index count 1, else 0). Default: the config has a PCIe capability. */
  readonly pcie?: boolean;
  /**
   * The host can add MSI-X vectors to an enabled function (Linux has_dyn_msix via pci_msix_can_alloc_dyn): the
   * MSI-X index then drops NORESIZE and SET_IRQS may bind vectors beyond those enabled first. Default: true.
   */
  readonly dynamicMsix?: boolean;
  /**
   * How many interrupt vectors the host can give one MSI/MSI-X enable (default: unlimited). A larger request
   * fails the way pci_alloc_irq_vectors does: SET_IRQS returns the number available and enables nothing.
   */
  readonly irqVectorLimit?: number;
}

/** One MSI/MSI-X vector with a trigger, as {@link VfioPciIrqState} shows it. */
export interface VfioPciVectorState {
  readonly vector: number;
  /** The host IRQ name, e.g. `vfio-msix[2](0000:00:03.0)`. */
  readonly name: string;
  /** Id of the trigger eventfd. */
  readonly eventfd: number;
  /** Messages taken from the device. */
  readonly interrupts: number;
  /** Signals sent to the eventfd (interrupts plus loopback). */
  readonly signals: number;
}

/** One registered ioeventfd, as {@link VfioPciIrqState} shows it. */
export interface VfioPciIoeventfdState {
  readonly bar: number;
  /** Offset in the BAR, hex. */
  readonly offset: string;
  /** Access size in bytes. */
  readonly size: number;
  /** The value written, hex. */
  readonly data: string;
  /** Id of the eventfd. */
  readonly eventfd: number;
  /** False once the eventfd was closed (its virqfd released itself; the entry stays until removed). */
  readonly active: boolean;
  /** Writes done, and writes the BAR refused (memory decoding off). */
  readonly writes: number;
  readonly skipped: number;
}

/** A snapshot of the interrupt layer (for `vfio status`, DESIGN idea 7). */
export interface VfioPciIrqState {
  readonly bdf: string;
  /** The active interrupt type. */
  readonly irqType: 'none' | 'intx' | 'msi' | 'msix';
  /** GET_IRQ_INFO counts per index (intx, msi, msix, err, req). */
  readonly counts: Readonly<Record<string, number>>;
  /** DisINTx masking in use (else the host IRQ line is disabled to mask). */
  readonly pci23: boolean;
  readonly intx: {
    readonly masked: boolean;
    /** The user's INTx-disable bit in COMMAND. */
    readonly virqDisabled: boolean;
    readonly eventfd: number | null;
    readonly unmaskEventfd: number | null;
    readonly interrupts: number;
    readonly signals: number;
  } | null;
  readonly msi: {
    readonly msix: boolean;
    readonly allocated: number;
    readonly vectors: readonly VfioPciVectorState[];
    readonly spurious: number;
  } | null;
  readonly err: { readonly eventfd: number | null; readonly signals: number };
  readonly req: { readonly eventfd: number | null; readonly signals: number };
  readonly ioeventfds: readonly VfioPciIoeventfdState[];
  /** Interrupts nobody had a handler for: INTx edges while INTx is not enabled, messages with no MSI type. */
  readonly spurious: { readonly intx: number; readonly msi: number };
  readonly closed: boolean;
}

/**
 * The interrupt layer of one open vfio-pci device. All calls are synchronous except {@link closeAll}; every
 * failure throws `SysError` with Linux's errno and leaves the IRQ state as it was.
 */
export interface VfioPciIrqLayer {
  /** VFIO_DEVICE_GET_IRQ_INFO for index 0..4 (the driver answers EINVAL for index ≥ 5 itself). */
  irqInfo(index: number): VfioPciIrqInfo;
  /** The vector count of `index` for validateSetIrqs (vfio_pci_get_irq_count). */
  irqCount(index: number): number;
  /**
   * VFIO_DEVICE_SET_IRQS after the core's validateSetIrqs (the driver validates with {@link irqCount} and max
   * index 5): dispatches on index × action (vfio_pci_set_irqs_ioctl). `call` resolves eventfds. Returns 0, or the
   * positive number of vectors available when an MSI/MSI-X enable could not get them all (the ioctl's result).
   */
  setIrqs(irqSet: ValidatedSetIrqs, call: SyscallContext): number;
  /** The user's INTx-disable bit in COMMAND changed (the config hook `intxMask`). */
  onConfigIntxMask(masked: boolean): void;
  /**
   * vfio_pci_intx_mask, for runtime suspend: masks INTx; true when this changed the mask state (only then should
   * resume call {@link intxUnmask}). Without INTx active, DisINTx just follows the user's bit.
   */
  intxMask?(): boolean;
  /** vfio_pci_intx_unmask, for runtime resume: unmasks INTx, re-sending an interrupt still pending. */
  intxUnmask?(): void;
  /**
   * The device must be released (vfio_pci_core_request): signals the REQ trigger and returns true; returns false
   * when no REQ eventfd is set (the driver then logs that it is blocked until the user releases the device).
   */
  requestSignal(count: number): boolean;
  /** An AER error was reported (vfio_pci_core_aer_err_detected): signals the ERR trigger; false when none is set. */
  errSignal(): boolean;
  /** VFIO_DEVICE_IOEVENTFD: `arg` is the user's `struct vfio_device_ioeventfd` bytes; returns 0. */
  ioeventfd(arg: Uint8Array, call: SyscallContext): number;
  /**
   * Before a reset or a memory-disable the driver may need MSI-X state restored afterwards; called after a
   * device reset (FLR/PM/bus) so the layer can re-program the function (Linux restores via pci state). Optional.
   */
  afterReset?(): void;
  /**
   * Last close (vfio_pci_core_disable + vfio_pci_core_close_device): tears down every index (TRIGGER with count
   * 0), the ERR and REQ triggers and all ioeventfds, and stops routing the model's interrupts.
   */
  closeAll(): Promise<void>;
  /** A JSON-friendly snapshot for observability (DESIGN idea 7); see {@link VfioPciIrqState}. */
  describe(): Record<string, unknown>;
  /** Resolves once the virqfd teardowns started so far have completed (closeAll awaits it too). */
  flush?(): Promise<void>;
  /** The typed snapshot behind {@link describe}. */
  state?(): VfioPciIrqState;
}

/** The factory the driver calls once per open (after building the config). */
export type CreateVfioPciIrqLayer = (options: VfioPciIrqLayerOptions) => VfioPciIrqLayer;
