/**
 * vfio-pci's interrupt layer (inventory §1.4.2, §3.3, §3.4, §3.7): INTx with automask, mask/unmask and
 * unmask-through-eventfd, MSI and MSI-X (dynamic MSI-X vectors), the ERR and REQ triggers with loopback, and
 * ioeventfds. The driver creates one layer per open with {@link createVfioPciIrqLayer}.
 */
import { VfioPciIrqs } from './layer.js';
import type { VfioPciIrqLayer, VfioPciIrqLayerOptions } from './types.js';

export { VfioPciIrqs } from './layer.js';
export { VFIO_PCI_IOEVENTFD_MAX } from './ioeventfd.js';
export type {
  CreateVfioPciIrqLayer,
  VfioPciBarAccess,
  VfioPciIoeventfdState,
  VfioPciIrqInfo,
  VfioPciIrqLayer,
  VfioPciIrqLayerOptions,
  VfioPciIrqState,
  VfioPciVectorState,
} from './types.js';

/**
 * Creates the interrupt layer of one open vfio-pci device: it starts routing the function's INTx and MSI/MSI-X
 * to itself at once and stops at {@link VfioPciIrqLayer.closeAll}.
 */
export function createVfioPciIrqLayer(options: VfioPciIrqLayerOptions): VfioPciIrqLayer {
  return new VfioPciIrqs(options);
}
