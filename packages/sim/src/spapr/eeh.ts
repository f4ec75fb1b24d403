/**
 * The EEH state of one partitionable endpoint (PE), as PowerNV/pSeries firmware keeps it (arch/powerpc/kernel/eeh.c,
 * eeh_ops->get_state/set_option/reset/err_inject). A frozen PE blocks MMIO and/or DMA until user space (or the host)
 * thaws it; a reset freezes the PE while it is asserted.
 */
import {
  EEH_STATE_DMA_ACTIVE,
  EEH_STATE_DMA_ENABLED,
  EEH_STATE_MMIO_ACTIVE,
  EEH_STATE_MMIO_ENABLED,
  EEH_STATE_RESET_ACTIVE,
} from '@vfio-ts/platform';
import type { EehPe } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';

// EEH_STATE_* bits a PE reports: the platform contract's (EehPe.state), re-exported for users.
export {
  EEH_STATE_DMA_ACTIVE,
  EEH_STATE_DMA_ENABLED,
  EEH_STATE_MMIO_ACTIVE,
  EEH_STATE_MMIO_ENABLED,
  EEH_STATE_RESET_ACTIVE,
} from '@vfio-ts/platform';

/** The option of eeh_ops->set_option. */
export type EehPeOption = 'disable' | 'enable' | 'thaw-mmio' | 'thaw-dma' | 'freeze';

/** The reset of eeh_ops->reset. */
export type EehResetKind = 'deactivate' | 'hot' | 'fundamental';

/** An injected error, as eeh_ops->err_inject receives it. */
export interface EehInjectedError {
  readonly type: number;
  readonly func: number;
  readonly addr: bigint;
  readonly mask: bigint;
}

/** Counters and history of a PE, for tests. */
export interface EehPeStats {
  readonly resets: number;
  readonly injected: readonly EehInjectedError[];
  /** Times the PE froze (an injected error, a DMA fault, a reset). */
  readonly freezes: number;
}

/** One EEH PE. */
export class SpaprEehPe implements EehPe {
  /** EEH enabled on the PE (eeh_pe_set_option ENABLE/DISABLE). */
  enabled = true;
  private mmio = true;
  private dma = true;
  private resetActive = false;
  private resets = 0;
  private freezes = 0;
  private readonly injected: EehInjectedError[] = [];

  /** The EEH_STATE_* bits (eeh_ops->get_state). */
  get state(): number {
    let s = 0;
    if (this.resetActive) s |= EEH_STATE_RESET_ACTIVE;
    if (this.mmio) s |= EEH_STATE_MMIO_ACTIVE | EEH_STATE_MMIO_ENABLED;
    if (this.dma) s |= EEH_STATE_DMA_ACTIVE | EEH_STATE_DMA_ENABLED;
    return s;
  }

  /** True while DMA from the PE's devices is allowed. */
  get dmaEnabled(): boolean {
    return this.dma && !this.resetActive;
  }

  /** True while MMIO to the PE's devices is allowed. */
  get mmioEnabled(): boolean {
    return this.mmio && !this.resetActive;
  }

  get stats(): EehPeStats {
    return { resets: this.resets, injected: this.injected, freezes: this.freezes };
  }

  /** eeh_ops->set_option. */
  setOption(option: EehPeOption): void {
    switch (option) {
      case 'enable':
        this.enabled = true;
        return;
      case 'disable':
        this.enabled = false;
        return;
      case 'thaw-mmio':
        this.mmio = true;
        return;
      case 'thaw-dma':
        this.dma = true;
        return;
      case 'freeze':
        this.freeze();
        return;
    }
  }

  /** Freezes the PE: MMIO and DMA stop (what the PHB does on an error). */
  freeze(): void {
    if (this.mmio || this.dma) this.freezes++;
    this.mmio = false;
    this.dma = false;
  }

  /**
   * eeh_ops->reset: a hot or fundamental reset is asserted (the PE stays frozen while it is); deactivating it
   * brings the PE back with MMIO and DMA enabled.
   */
  reset(kind: EehResetKind): void {
    if (kind === 'deactivate') {
      this.resetActive = false;
      this.mmio = true;
      this.dma = true;
      return;
    }
    this.freeze();
    this.resetActive = true;
    this.resets++;
  }

  /** eeh_ops->err_inject: the PHB reports the error by freezing the PE. */
  injectError(error: EehInjectedError): void {
    if (!this.enabled) throw sysError('EIO', 'EEH disabled on the PE');
    this.injected.push(error);
    this.freeze();
  }
}
