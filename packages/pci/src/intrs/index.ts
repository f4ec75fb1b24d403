/**
 * vfio-pci's interrupt layer. PLACEHOLDER: offers no vector on any index (the interrupt helper replaces this file
 * with the real INTx/MSI/MSI-X/ERR/REQ/ioeventfd implementation behind the same {@link createVfioPciIrqLayer}).
 */
import { SysError } from '@vfio-ts/uapi';
import type { VfioPciIrqLayer, VfioPciIrqLayerOptions } from './types.js';

export type {
  CreateVfioPciIrqLayer,
  VfioPciBarAccess,
  VfioPciIrqInfo,
  VfioPciIrqLayer,
  VfioPciIrqLayerOptions,
} from './types.js';

/** Creates the interrupt layer of one open vfio-pci device. */
export function createVfioPciIrqLayer(options: VfioPciIrqLayerOptions): VfioPciIrqLayer {
  void options;
  return {
    irqInfo: () => ({ flags: 0, count: 0 }),
    irqCount: () => 0,
    setIrqs: () => {
      throw new SysError('EINVAL', 'no interrupts');
    },
    onConfigIntxMask: () => undefined,
    requestSignal: () => false,
    errSignal: () => false,
    ioeventfd: () => {
      throw new SysError('ENODEV', 'no ioeventfd support');
    },
    closeAll: () => Promise.resolve(),
    describe: () => ({ placeholder: true }),
  };
}
