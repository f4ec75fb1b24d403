/**
 * The register map of the sample migratable device (BAR0, 4 KiB of 32-bit little-endian registers) and its
 * identity. The device has a scratch register, a completion counter, an interrupt block (status, raise,
 * acknowledge, enable) and a DMA engine that moves data between BAR2 memory and host RAM in chunks.
 */

/** PCI identity: vendor 0x1234 (QEMU's test vendor), device 0x11f0, class 0x00ff00 (unclassified). */
export const MIGRATABLE_PCI_ID = {
  VENDOR: 0x1234,
  DEVICE: 0x11f0,
  CLASS: 0x00ff00,
  REVISION: 0x01,
} as const;

/** BAR0 register offsets. */
export const MIG_REG = {
  /** RO: {@link MIGRATABLE_ID_VALUE}. */
  ID: 0x00,
  /** RW: any value. */
  SCRATCH: 0x04,
  /** RO: DMA transfers completed since reset. */
  COUNTER: 0x08,
  /** RO: pending interrupt bits. */
  IRQ_STATUS: 0x0c,
  /** WO: ORs the written bits into IRQ_STATUS (a software interrupt). */
  IRQ_RAISE: 0x10,
  /** WO: clears the written bits of IRQ_STATUS. */
  IRQ_ACK: 0x14,
  /** RW: which IRQ_STATUS bits signal (MSI on raise, INTx level while pending). */
  IRQ_ENABLE: 0x18,
  /** RW: BAR2 offset of the transfer. */
  DMA_BAR_OFFSET: 0x20,
  /** RW: host IOVA of the transfer, low and high halves. */
  DMA_IOVA_LO: 0x24,
  DMA_IOVA_HI: 0x28,
  /** RW: bytes to move. */
  DMA_LENGTH: 0x2c,
  /** RW: {@link MIG_DMA_CMD} bits; writing START begins a transfer (ignored while one runs). */
  DMA_CMD: 0x30,
  /** RO: bytes of the current (or last) transfer already moved. */
  DMA_DONE: 0x34,
  /** RO: {@link MIG_DMA_STATUS} bits. */
  DMA_STATUS: 0x38,
} as const;

/** The value of the ID register ("MIG" version 1). */
export const MIGRATABLE_ID_VALUE = 0x4d494701;

/** DMA_CMD bits. */
export const MIG_DMA_CMD = {
  /** Start a transfer (reads back set while it runs). */
  START: 1 << 0,
  /** Direction: set = BAR2 memory → host RAM, clear = host RAM → BAR2 memory. */
  TO_RAM: 1 << 1,
  /** Raise {@link MIG_IRQ.DMA_DONE} when the transfer completes. */
  IRQ: 1 << 2,
} as const;

/** DMA_STATUS bits. */
export const MIG_DMA_STATUS = {
  BUSY: 1 << 0,
  /** The last transfer faulted (IOMMU fault or out-of-range BAR offset). */
  ERROR: 1 << 1,
} as const;

/** IRQ_STATUS bits the device raises itself. */
export const MIG_IRQ = {
  DMA_DONE: 1 << 0,
  DMA_ERROR: 1 << 1,
} as const;

/** Size of BAR0. */
export const MIG_BAR0_SIZE = 0x1000;
/** Offset of the MSI capability in config space. */
export const MIG_MSI_CAP = 0x40;
/** Page size of BAR2 memory (the granule of its dirty tracking and of the migration stream). */
export const MIG_PAGE_SIZE = 4096;
