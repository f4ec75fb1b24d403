/**
 * The per-device state of vfio-pci (Linux struct vfio_pci_core_device): what survives between opens (reset
 * capability, power-state bookkeeping, device-specific regions) and what lives from first open to last close
 * (config virtualization, the interrupt layer, the state saved at open).
 */
import type { HostPluginApi, VfioDevice } from '@vfio-ts/core';
import type { EventFdContext, MmioHandler, PciDeviceHandle } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import type { VirqfdContext } from '@vfio-ts/virqfd';
import type { VfioPciConfig } from '../config/index.js';
import type { CreateVfioPciIrqLayer, VfioPciIrqLayer } from '../intrs/types.js';
import type { PciSavedState } from './pci-state.js';
import type { VfioPciRegionIo } from './region-io.js';

/** vfio-pci's module parameters (inventory §3.1), read once when the plugin is set up, as Linux reads them at init. */
export interface VfioPciParams {
  /** `nointxmask`: never use DisINTx masking (INTx gets an exclusive IRQ). */
  readonly nointxmask: boolean;
  /** `disable_vga`: no VGA region even for VGA-class devices. */
  readonly disableVga: boolean;
  /** `disable_idle_d3`: leave idle devices in D0 instead of runtime-suspending them to D3hot. */
  readonly disableIdleD3: boolean;
  /** `disable_denylist`: bind to devices on vfio-pci's denylist anyway (with a warning). */
  readonly disableDenylist: boolean;
}

/** What the vfio-pci core needs from its host (one per plugin instance; no module-level state). */
export interface VfioPciEnv {
  readonly api: HostPluginApi;
  readonly params: VfioPciParams;
  /** The virqfd context interrupt unmask eventfds and ioeventfds run on. */
  readonly virqfd: VirqfdContext;
  /** Factory of the interrupt layer, one per open. */
  readonly createIrqLayer: CreateVfioPciIrqLayer;
  /** Kernel log, prefixed by the caller. */
  log(text: string): void;
}

/** A device-specific region (index ≥ 9) a variant driver adds (vfio_pci_core_register_dev_region, §3.3 P14). */
export interface VfioPciRegion {
  /** VFIO_REGION_TYPE_* (reported in the TYPE capability). */
  readonly type: number;
  readonly subtype: number;
  readonly size: bigint;
  /** VFIO_REGION_INFO_FLAG_* (READ, WRITE, MMAP). */
  readonly flags: number;
  /** read/write at `offset` inside the region; returns bytes read or the count written. */
  rw(device: VfioPciCoreDevice, offset: bigint, data: Uint8Array | number, write: boolean): Uint8Array | number;
  /** mmap of the region (only with the MMAP flag). */
  mmap?(device: VfioPciCoreDevice, offset: bigint, length: bigint): MmioHandler;
  /** Extra capabilities for REGION_INFO (after the TYPE capability): id, version and payload. */
  capabilities?(device: VfioPciCoreDevice): readonly { id: number; version: number; payload: Uint8Array }[];
  /** Called at last close, when device-specific regions are dropped. */
  release?(device: VfioPciCoreDevice): void;
}

/** Migration ops as vfio-pci checks their completeness at registration (§2.3, inventory P1). */
export interface VfioPciMigrationOps {
  readonly migrationSetState?: unknown;
  readonly migrationGetState?: unknown;
  readonly migrationGetDataSize?: unknown;
}

/** DMA logging ops as vfio-pci checks their completeness at registration (§2.4). */
export interface VfioPciLogOps {
  readonly logStart?: unknown;
  readonly logStop?: unknown;
  readonly logReadAndClear?: unknown;
}

/** The MSI-X table location recorded at open (msix_bar/offset/size). */
export interface VfioPciMsixInfo {
  readonly bar: number;
  readonly offset: bigint;
  readonly size: bigint;
}

/** The state of one open (vfio_pci_core_enable → vfio_pci_core_disable). */
export interface VfioPciOpenState {
  readonly config: VfioPciConfig;
  readonly irqs: VfioPciIrqLayer;
  /** pci_store_saved_state at open: restored at last close. */
  readonly savedState: PciSavedState;
  readonly msix: VfioPciMsixInfo | undefined;
  readonly hasVga: boolean;
  /** bar_mmap_supported, probed at open (vfio_pci_probe_mmaps). */
  readonly barMmap: readonly boolean[];
  /** The region-access fast path for this open (BAR and config handlers worked out once; internal). */
  readonly io: VfioPciRegionIo;
}

/**
 * A vfio-pci device (Linux struct vfio_pci_core_device): the data behind `VfioDevice<VfioPciCoreDevice>`.
 * Variant drivers receive it in every op and may keep their own state in {@link variantData}.
 */
export class VfioPciCoreDevice {
  /** The VFIO device this state belongs to (set at allocation). */
  vdev!: VfioDevice<VfioPciCoreDevice>;
  /** Whether a function reset worked at the last open (FLAGS_RESET, DEVICE_RESET). */
  resetWorks = false;
  /** Set at close; a bus/slot reset of the idle set clears it (vfio_pci_dev_set_try_reset). */
  needsReset = false;
  /** The function resets itself on D3hot→D0 (NoSoftRst clear): state is saved around D3hot. */
  needsPmRestore = false;
  /** State saved before a user-requested D3hot, restored when the device returns to D0. */
  pmSave: PciSavedState | undefined;
  /** DisINTx masking works (pci_2_3). */
  pci23 = false;
  /** The broken-INTx quirk applies (pin virtualized to 0). */
  nointx = false;
  /** BAR starts as the PCI core enumerated them (pci_resource_start). */
  readonly resourceStarts: readonly bigint[];
  /** Open-time state; undefined while the device is closed. */
  open: VfioPciOpenState | undefined;
  /** Device-specific regions (index 9 + i). */
  readonly regions: VfioPciRegion[] = [];
  /** Migration flags and ops a variant declared (checked at registration). */
  migrationFlags = 0;
  migOps: VfioPciMigrationOps | undefined;
  logOps: VfioPciLogOps | undefined;
  /** Free slot for a variant driver's own state. */
  variantData: unknown = undefined;
  /** LOW_POWER_ENTRY engaged (pm_runtime_engaged) and its wake-up eventfd. */
  pmRuntimeEngaged = false;
  pmWakeEventfd: EventFdContext | undefined;
  /** Runtime-PM usage count and whether the device is runtime-suspended (D3hot while idle). */
  pmUsage = 0;
  runtimeSuspended = false;
  /** State the PCI core saved at runtime suspend, restored at resume. */
  runtimeSave: PciSavedState | undefined;
  /** INTx was masked by runtime suspend and must be unmasked on resume. */
  pmIntxMasked = false;

  constructor(
    /** The PCI function (struct pci_dev). */
    readonly pdev: PciDeviceHandle,
    /** The host services of the driver that bound the device. */
    readonly env: VfioPciEnv,
  ) {
    this.resourceStarts = readResourceStarts(pdev);
  }

  /** The current open state; EINVAL while the device is closed (the core never calls ops then). */
  get opened(): VfioPciOpenState {
    if (!this.open) throw new SysError('EINVAL', `vfio-pci: ${this.pdev.bdf} is not open`);
    return this.open;
  }

  /** The device as data (DESIGN idea 7): reset and power bookkeeping, and the interrupt layer while open. */
  describe(): Record<string, unknown> {
    return {
      bdf: this.pdev.bdf,
      driver: this.vdev.ops.name ?? 'vfio-pci',
      open: this.open !== undefined,
      resetWorks: this.resetWorks,
      needsReset: this.needsReset,
      pci23: this.pci23,
      nointx: this.nointx,
      runtimeSuspended: this.runtimeSuspended,
      lowPower: this.pmRuntimeEngaged,
      powerState: this.open?.config.powerState ?? null,
      regions: this.regions.length,
      irqs: this.open?.irqs.describe() ?? null,
    };
  }

  /** Logs a line prefixed like pci_info ("vfio-pci 0000:00:03.0: ..."). */
  log(text: string): void {
    this.env.log(`${this.vdev.ops.name ?? 'vfio-pci'} ${this.pdev.bdf}: ${text}`);
  }

  /** Adds a device-specific region (vfio_pci_core_register_dev_region); its index is 9 + its position. */
  registerRegion(region: VfioPciRegion): number {
    this.regions.push(region);
    return 9 + this.regions.length - 1;
  }
}

function readResourceStarts(pdev: PciDeviceHandle): bigint[] {
  const out: bigint[] = [];
  const read = (o: number): bigint => {
    try {
      return BigInt(pdev.fn.configRead(o, 4) >>> 0);
    } catch {
      return 0n;
    }
  };
  for (const b of pdev.fn.bars) {
    if (b.index < 0 || b.index > 5 || b.size === 0n) continue;
    let start = read(0x10 + 4 * b.index) & (b.type === 'io' ? ~3n : ~15n) & 0xffffffffn;
    if (b.type === 'mem64' && b.index < 5) start |= read(0x14 + 4 * b.index) << 32n;
    out[b.index] = start;
  }
  return out;
}
