/**
 * Register map of the Linux PCI endpoint test function (drivers/pci/endpoint/functions/pci-epf-test.c) as the
 * host's drivers/misc/pci_endpoint_test.c sees it in BAR0 (the "test register BAR"), Linux 6.12.
 */

/** PCI identity. Documentation/PCI/endpoint/pci-test-function.rst: vendor 0x104c, device 0xb500 (DRA74x). */
export const EPF_TEST_PCI_ID = {
  VENDOR_TI: 0x104c,
  DEVICE_DRA74X: 0xb500,
  DEVICE_DRA72X: 0xb501,
  /** Base class 0xff ("unassigned"), subclass 0, prog-if 0, as pci-epf-test's header. */
  CLASS: 0xff0000,
} as const;

/** Offsets of the test registers in BAR0 (`struct pci_epf_test_reg`, packed, little-endian). */
export const EPF_TEST_REG = {
  MAGIC: 0x00,
  COMMAND: 0x04,
  STATUS: 0x08,
  LOWER_SRC_ADDR: 0x0c,
  UPPER_SRC_ADDR: 0x10,
  LOWER_DST_ADDR: 0x14,
  UPPER_DST_ADDR: 0x18,
  SIZE: 0x1c,
  CHECKSUM: 0x20,
  IRQ_TYPE: 0x24,
  IRQ_NUMBER: 0x28,
  FLAGS: 0x2c,
  /**
   * CAPS arrived in Linux 6.14; in 6.12 this is plain (zeroed) register-BAR memory. The model stores
   * {@link PciEpfTestOptions.caps} here at power-on (default 0, the 6.12 view).
   */
  CAPS: 0x30,
} as const;

/** COMMAND values. The endpoint accepts exactly one bit per command (6.12 switches on the whole value). */
export const EPF_TEST_COMMAND = {
  RAISE_INTX_IRQ: 1 << 0,
  RAISE_MSI_IRQ: 1 << 1,
  RAISE_MSIX_IRQ: 1 << 2,
  READ: 1 << 3,
  WRITE: 1 << 4,
  COPY: 1 << 5,
} as const;

/** STATUS bits. The endpoint clears STATUS when it picks up a command. */
export const EPF_TEST_STATUS = {
  READ_SUCCESS: 1 << 0,
  READ_FAIL: 1 << 1,
  WRITE_SUCCESS: 1 << 2,
  WRITE_FAIL: 1 << 3,
  COPY_SUCCESS: 1 << 4,
  COPY_FAIL: 1 << 5,
  IRQ_RAISED: 1 << 6,
  SRC_ADDR_INVALID: 1 << 7,
  DST_ADDR_INVALID: 1 << 8,
} as const;

/** IRQ_TYPE values. IRQ_NUMBER is 1-based for MSI and MSI-X (vector = IRQ_NUMBER − 1), ignored for INTx. */
export const EPF_TEST_IRQ_TYPE = {
  INTX: 0,
  MSI: 1,
  MSIX: 2,
} as const;

/** FLAGS bits. */
export const EPF_TEST_FLAG = {
  /** Move data with the endpoint's DMA engine instead of CPU copies through the outbound window. */
  USE_DMA: 1 << 0,
} as const;

/** CAPS bits (Linux 6.14+). */
export const EPF_TEST_CAP = {
  UNALIGNED_ACCESS: 1 << 0,
} as const;

/** The register block is `ALIGN(sizeof(struct pci_epf_test_reg), 128)`; the MSI-X table follows it in BAR0. */
export const EPF_TEST_MSIX_TABLE_OFFSET = 0x80;

/** Default BAR sizes of pci-epf-test (`bar_size[]`); BAR0 is sized from the registers and MSI-X table. */
export const EPF_TEST_DEFAULT_BAR_SIZES: readonly number[] = [512, 512, 1024, 16384, 131072, 1048576];

/** Capability offsets in config space (a DesignWare-style endpoint layout). */
export const EPF_TEST_CAP_OFFSET = {
  PM: 0x40,
  MSI: 0x50,
  EXP: 0x70,
  MSIX: 0xb0,
} as const;
