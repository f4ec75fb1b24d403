/**
 * @vfio-ts/pci — vfio-pci for vfio-ts: the `vfio-pci` host driver ({@link vfioPci}) with its regions, resets, hot
 * reset and runtime power management, the core ops variant drivers build on ({@link createVfioPciCore},
 * {@link vfioPciVariant}), the interrupt-layer contract, and the config-space virtualization ({@link VfioPciConfig}).
 * @packageDocumentation
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
export { createVfioPciIrqLayer, VfioPciIrqs, VFIO_PCI_IOEVENTFD_MAX } from './intrs/index.js';
export type {
  CreateVfioPciIrqLayer,
  VfioPciBarAccess,
  VfioPciIoeventfdState,
  VfioPciIrqInfo,
  VfioPciIrqLayer,
  VfioPciIrqLayerOptions,
  VfioPciIrqState,
  VfioPciVectorState,
} from './intrs/index.js';
export { vfioPci, vfioPciVariant, registerVfioPciVariant, busSetId } from './driver/plugin.js';
export type { VfioPciOptions, VfioPciVariantSpec, VfioPciDriverHandle } from './driver/plugin.js';
export {
  createVfioPciCore,
  vfioPciCoreEnable,
  vfioPciCoreDisable,
  vfioPciCoreIoctl,
  vfioPciCoreFeature,
  vfioPciCoreRead,
  vfioPciCoreReadInto,
  vfioPciCoreWrite,
  vfioPciCoreRequest,
  vfioPciCoreAerErrDetected,
} from './driver/core.js';
export type { VfioPciCoreOps } from './driver/core.js';
export { VfioPciCoreDevice } from './driver/device.js';
export type {
  VfioPciEnv,
  VfioPciLogOps,
  VfioPciMigrationOps,
  VfioPciMsixInfo,
  VfioPciOpenState,
  VfioPciParams,
  VfioPciRegion,
} from './driver/device.js';
export { setPowerState as vfioPciSetPowerState } from './driver/pm.js';
export { devSetHotReset as vfioPciDevSetHotReset } from './driver/reset.js';
export type { HotResetProof as VfioPciHotResetProof } from './driver/reset.js';
