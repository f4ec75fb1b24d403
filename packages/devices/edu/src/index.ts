/**
 * @vfio-ts/device-edu — a model of QEMU's educational PCI device (1234:11e8) as hardware, implementing the
 * platform `PciFunction` contract: config space with MSI, BAR0 registers, factorial unit, DMA engine, INTx/MSI.
 * @packageDocumentation
 */
export { eduFunction } from './edu.js';
export type { EduFunction, EduOptions } from './edu.js';
export {
  EDU_BAR0_SIZE,
  EDU_DEFAULT_DMA_MASK,
  EDU_DMA_BUFFER_ADDR,
  EDU_DMA_BUFFER_SIZE,
  EDU_DMA_CMD,
  EDU_ID_VALUE,
  EDU_IRQ,
  EDU_MSI_CAP_OFFSET,
  EDU_PCI_ID,
  EDU_REG,
  EDU_STATUS,
} from './regs.js';
