/**
 * @vfio-ts/device-pci-epf-test — the Linux PCI endpoint test function (pci-epf-test) as a host sees it, implementing
 * the platform `PciFunction` contract: test registers in BAR0, test memory BARs, DMA READ/WRITE/COPY with crc32_le
 * checksums, and INTx / MSI / MSI-X interrupts.
 * @packageDocumentation
 */
export { pciEpfTestFunction } from './epf-test.js';
export type { PciEpfTestFunction, PciEpfTestOptions } from './epf-test.js';
export { crc32Le } from './crc32.js';
export {
  EPF_TEST_CAP,
  EPF_TEST_CAP_OFFSET,
  EPF_TEST_COMMAND,
  EPF_TEST_DEFAULT_BAR_SIZES,
  EPF_TEST_FLAG,
  EPF_TEST_IRQ_TYPE,
  EPF_TEST_MSIX_TABLE_OFFSET,
  EPF_TEST_PCI_ID,
  EPF_TEST_REG,
  EPF_TEST_STATUS,
} from './regs.js';
