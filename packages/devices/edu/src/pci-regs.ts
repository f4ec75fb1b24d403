/**
 * The PCI status bits this model treats as write-1-to-clear, from the pci_regs.h names in `@vfio-ts/uapi` (where
 * every other standard register offset and bit the model uses comes from). Internal.
 */
import {
  PCI_STATUS_PARITY,
  PCI_STATUS_SIG_TARGET_ABORT,
  PCI_STATUS_REC_TARGET_ABORT,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_STATUS_SIG_SYSTEM_ERROR,
  PCI_STATUS_DETECTED_PARITY,
} from '@vfio-ts/uapi';

/** Status bits software clears by writing 1. */
export const PCI_STATUS_W1C =
  PCI_STATUS_PARITY |
  PCI_STATUS_SIG_TARGET_ABORT |
  PCI_STATUS_REC_TARGET_ABORT |
  PCI_STATUS_REC_MASTER_ABORT |
  PCI_STATUS_SIG_SYSTEM_ERROR |
  PCI_STATUS_DETECTED_PARITY;
