/**
 * The standard PCI register offsets and bits this model touches, re-exported from `@vfio-ts/uapi` (the one home of
 * Linux's include/uapi/linux/pci_regs.h), plus the status bits it treats as write-1-to-clear. Internal: the public
 * constants of the card live in `regs.ts`.
 */
import {
  PCI_STATUS_PARITY,
  PCI_STATUS_SIG_TARGET_ABORT,
  PCI_STATUS_REC_TARGET_ABORT,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_STATUS_SIG_SYSTEM_ERROR,
  PCI_STATUS_DETECTED_PARITY,
} from '@vfio-ts/uapi';

export {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_DEVSEL_MEDIUM,
  PCI_STATUS_FAST_BACK,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '@vfio-ts/uapi';

/** Status bits software clears by writing 1. */
export const PCI_STATUS_W1C =
  PCI_STATUS_PARITY |
  PCI_STATUS_SIG_TARGET_ABORT |
  PCI_STATUS_REC_TARGET_ABORT |
  PCI_STATUS_REC_MASTER_ABORT |
  PCI_STATUS_SIG_SYSTEM_ERROR |
  PCI_STATUS_DETECTED_PARITY;
