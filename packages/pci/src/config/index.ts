export { VfioPciConfig } from './config-space.js';
export type {
  PciPowerState,
  VfioPciCapabilityInfo,
  VfioPciConfigHooks,
  VfioPciConfigOptions,
  VfioPciIrqType,
  VfioPciMsiState,
} from './config-space.js';
export { PCI_CAP_ID, PCI_EXT_CAP_ID } from './regs.js';
