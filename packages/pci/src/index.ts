/**
 * @vfio-ts/pci — vfio-pci for vfio-ts. This release carries the config-space virtualization layer
 * ({@link VfioPciConfig}): what Linux 6.12's vfio-pci presents to user space through the CONFIG region.
 */
export { VfioPciConfig, PCI_CAP_ID, PCI_EXT_CAP_ID } from './config/index.js';
export type {
  PciPowerState,
  VfioPciCapabilityInfo,
  VfioPciConfigHooks,
  VfioPciConfigOptions,
  VfioPciIrqType,
  VfioPciMsiState,
} from './config/index.js';
