/**
 * Register map of QEMU's educational device (docs/specs/edu.rst, hw/misc/edu.c): the numbers a driver uses.
 */

/** PCI identity of the edu device: QEMU's vendor id, device 0x11e8, class "other" (0x00ff00), revision 0x10. */
export const EDU_PCI_ID = {
  VENDOR: 0x1234,
  DEVICE: 0x11e8,
  /** Subsystem ids QEMU gives every device (Red Hat / QEMU). */
  SUBSYSTEM_VENDOR: 0x1af4,
  SUBSYSTEM: 0x1100,
  CLASS: 0x00ff00,
  REVISION: 0x10,
} as const;

/** Offset of the MSI capability in config space (QEMU's msi_init places the first capability at 0x40). */
export const EDU_MSI_CAP_OFFSET = 0x40;

/** BAR0 is a 1 MiB 32-bit non-prefetchable memory BAR. */
export const EDU_BAR0_SIZE = 0x100000n;

/** MMIO register offsets in BAR0. Below 0x80 only 4-byte accesses work; from 0x80 on 4- or 8-byte accesses. */
export const EDU_REG = {
  /** RO: identification, 0xRRrr00ed (major RR, minor rr): 0x010000ed. */
  ID: 0x00,
  /** RW: card liveness check, reads back the bitwise inverse of what was written. */
  LIVENESS: 0x04,
  /** RW: factorial; write n, wait for STATUS.COMPUTING to clear, read n! (modulo 2^32). */
  FACTORIAL: 0x08,
  /** RW: status (COMPUTING is read-only, IRQ_FACT writable). */
  STATUS: 0x20,
  /** RO: interrupt status, the OR of the values that raised the interrupt. */
  IRQ_STATUS: 0x24,
  /** WO: raise an interrupt, the value is ORed into IRQ_STATUS. */
  IRQ_RAISE: 0x60,
  /** WO: acknowledge, the value is cleared from IRQ_STATUS (the line drops when it reaches 0). */
  IRQ_ACK: 0x64,
  /** RW: DMA source address (64-bit register; a 4-byte write sets it to the zero-extended value). */
  DMA_SRC: 0x80,
  /** RW: DMA destination address. */
  DMA_DST: 0x88,
  /** RW: DMA transfer count in bytes. */
  DMA_COUNT: 0x90,
  /** RW: DMA command, see {@link EDU_DMA_CMD}. */
  DMA_CMD: 0x98,
} as const;

/** Identification register value: version 1.0. */
export const EDU_ID_VALUE = 0x010000ed;

/** Bits of {@link EDU_REG.STATUS}. */
export const EDU_STATUS = {
  /** Set while the factorial is being computed (read-only). */
  COMPUTING: 0x01,
  /** Raise interrupt {@link EDU_IRQ.FACTORIAL} when the factorial is done. */
  IRQ_FACT: 0x80,
} as const;

/** Bits of {@link EDU_REG.DMA_CMD}. */
export const EDU_DMA_CMD = {
  /** Start the transfer; reads as 1 until the transfer is done. */
  START: 0x1,
  /** Direction: 0 = RAM → EDU buffer, 1 = EDU buffer → RAM. */
  TO_RAM: 0x2,
  /** Raise interrupt {@link EDU_IRQ.DMA} when done. */
  IRQ: 0x4,
} as const;

/** Interrupt status values the device raises by itself. */
export const EDU_IRQ = {
  FACTORIAL: 0x00000001,
  DMA: 0x00000100,
} as const;

/** Device-side address of the 4 KiB DMA buffer (what DMA_SRC / DMA_DST name on the EDU side). */
export const EDU_DMA_BUFFER_ADDR = 0x40000n;
/** Size of the DMA buffer. */
export const EDU_DMA_BUFFER_SIZE = 4096;
/** Default DMA mask: the device drives 28 address bits (256 MiB), as QEMU's `dma_mask` default. */
export const EDU_DEFAULT_DMA_MASK = (1n << 28n) - 1n;
