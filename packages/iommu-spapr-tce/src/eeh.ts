/**
 * VFIO_EEH_PE_OP on one PE (Linux vfio_spapr_ioctl_eeh_pe_op in vfio_iommu_spapr_tce.c and the EEH core helpers of
 * arch/powerpc/kernel/eeh.c: eeh_pe_set_option, eeh_pe_get_state, eeh_pe_reset, eeh_pe_configure, eeh_pe_inject_err).
 * Inventory §1.8, §8.3 S14.
 */
import {
  SysError,
  VFIO_EEH_PE_CONFIGURE,
  VFIO_EEH_PE_DISABLE,
  VFIO_EEH_PE_ENABLE,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_RESET_DEACTIVATE,
  VFIO_EEH_PE_RESET_FUNDAMENTAL,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_STATE_NORMAL,
  VFIO_EEH_PE_STATE_RESET,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_EEH_PE_STATE_STOPPED_DMA,
  VFIO_EEH_PE_STATE_UNAVAIL,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
  readVfioArg,
  vfioEehPeOp,
} from '@vfio-ts/uapi';
import {
  EEH_STATE_DMA_ACTIVE,
  EEH_STATE_DMA_ENABLED,
  EEH_STATE_MMIO_ACTIVE,
  EEH_STATE_MMIO_ENABLED,
  EEH_STATE_RESET_ACTIVE,
} from '@vfio-ts/platform';
import type { EehPeLike } from './table-group.js';

// EEH_STATE_* bits of eeh_ops->get_state belong to the platform contract (EehPe.state); re-exported for users.
export {
  EEH_STATE_DMA_ACTIVE,
  EEH_STATE_DMA_ENABLED,
  EEH_STATE_MMIO_ACTIVE,
  EEH_STATE_MMIO_ENABLED,
  EEH_STATE_RESET_ACTIVE,
} from '@vfio-ts/platform';

/** PCI error injection types (EEH_ERR_TYPE_32 / EEH_ERR_TYPE_64) and the last function (EEH_ERR_FUNC_MAX). */
export const EEH_ERR_TYPE_32 = 0;
export const EEH_ERR_TYPE_64 = 1;
export const EEH_ERR_FUNC_MAX = 19;

/** eeh_pe_get_state: the PE's EEH_STATE_* bits folded into a VFIO_EEH_PE_STATE_* value. */
export function vfioEehStateOf(bits: number): number {
  const reset = (bits & EEH_STATE_RESET_ACTIVE) !== 0;
  const dma = (bits & EEH_STATE_DMA_ENABLED) !== 0;
  const mmio = (bits & EEH_STATE_MMIO_ENABLED) !== 0;
  if (reset) return VFIO_EEH_PE_STATE_RESET;
  if (dma && mmio) return VFIO_EEH_PE_STATE_NORMAL;
  if (!dma && !mmio) return VFIO_EEH_PE_STATE_STOPPED;
  if (!dma && mmio) return VFIO_EEH_PE_STATE_STOPPED_DMA;
  return VFIO_EEH_PE_STATE_UNAVAIL;
}

/** eeh_pci_enable for a thaw: nothing to do when already active; EIO when the PE does not come back. */
function thaw(pe: EehPeLike, option: 'thaw-mmio' | 'thaw-dma', active: number): number {
  if ((pe.state & active) !== 0) return 0;
  pe.setOption(option);
  if ((pe.state & active) !== 0) return 0;
  throw new SysError('EIO', 'PE did not thaw');
}

/**
 * One VFIO_EEH_PE_OP on one PE: ENODEV without a PE, EINVAL for a short argsz, non-zero flags or an unknown op;
 * returns the ioctl's value (GET_STATE's state, 0 otherwise).
 */
export function eehPeOp(pe: EehPeLike | undefined, bytes: Uint8Array, eehEnabled: boolean): number {
  if (!pe) throw new SysError('ENODEV', 'no EEH PE for the group');
  const { value: op, argsz } = readVfioArg(bytes, vfioEehPeOp);
  if (op.flags !== 0) throw new SysError('EINVAL', 'vfio_eeh_pe_op.flags must be 0');
  switch (op.op) {
    case VFIO_EEH_PE_DISABLE:
      return 0;
    case VFIO_EEH_PE_ENABLE:
      // eeh_pe_set_option(EEH_OPT_ENABLE): EIO when EEH is off on the platform.
      if (!eehEnabled) throw new SysError('EIO', 'EEH is disabled');
      return 0;
    case VFIO_EEH_PE_UNFREEZE_IO:
      return thaw(pe, 'thaw-mmio', EEH_STATE_MMIO_ACTIVE | EEH_STATE_MMIO_ENABLED);
    case VFIO_EEH_PE_UNFREEZE_DMA:
      return thaw(pe, 'thaw-dma', EEH_STATE_DMA_ACTIVE);
    case VFIO_EEH_PE_GET_STATE:
      return vfioEehStateOf(pe.state);
    case VFIO_EEH_PE_RESET_DEACTIVATE:
      pe.reset('deactivate');
      return 0;
    case VFIO_EEH_PE_RESET_HOT:
    case VFIO_EEH_PE_RESET_FUNDAMENTAL:
      // eeh_pe_reset freezes the PE first so that no MMIO reaches it during the reset.
      pe.setOption('freeze');
      pe.reset(op.op === VFIO_EEH_PE_RESET_HOT ? 'hot' : 'fundamental');
      return 0;
    case VFIO_EEH_PE_CONFIGURE:
      return 0;
    case VFIO_EEH_PE_INJECT_ERR: {
      const minsz = vfioEehPeOp.offsetOfEnd('err_mask');
      if (argsz < minsz) throw new SysError('EINVAL', `INJECT_ERR needs argsz >= ${minsz}`);
      if (bytes.length < minsz) throw new SysError('EFAULT', 'vfio_eeh_pe_op buffer too short');
      // eeh_pe_inject_err takes int type/func: values above INT_MAX are negative there, so out of range too.
      if (op.err_type !== EEH_ERR_TYPE_32 && op.err_type !== EEH_ERR_TYPE_64) {
        throw new SysError('EINVAL', `bad error type ${op.err_type}`);
      }
      if (op.err_func > EEH_ERR_FUNC_MAX) throw new SysError('EINVAL', `bad error function ${op.err_func}`);
      pe.injectError({ type: op.err_type, func: op.err_func, addr: op.err_addr, mask: op.err_mask });
      return 0;
    }
    default:
      throw new SysError('EINVAL', `unknown EEH op ${op.op}`);
  }
}
