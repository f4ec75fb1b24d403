/**
 * Public constants of the ACCES PCI-IDIO-16: identity, BAR layout, the 8-byte register block in BAR2 (as Linux
 * drivers/gpio/gpio-idio-16.c and gpio-pci-idio-16.c address it, and the ACCES manual's "Chapter 4: Programming"
 * table), and the one bridge register the model implements.
 */

/** PCI identity. Linux binds drivers/gpio/gpio-pci-idio-16.c to `PCI_DEVICE(0x494F, 0x0DC8)`. */
export const IDIO16_PCI_ID = {
  /** ACCES I/O Products ("IO" in ASCII). */
  VENDOR: 0x494f,
  DEVICE: 0x0dc8,
  REVISION: 0x00,
  /**
   * 0xff0000: class "device does not fit any defined class" (PCI Local Bus 3.0 Appendix D). Neither the driver nor
   * the public manual states the class the card's EEPROM loads; this is the model's documented choice.
   */
  CLASS: 0xff0000,
  /** Subsystem ids: the model's choice (the vendor/device pair again); Linux matches on vendor/device only. */
  SUBSYSTEM_VENDOR: 0x494f,
  SUBSYSTEM: 0x0dc8,
} as const;

/**
 * BAR indexes. The card sits behind a PLX PCI 9052-family target bridge: BAR0 (memory) and BAR1 (I/O) expose the
 * bridge's local configuration registers, BAR2 the card's registers (ACCES's own Linux driver, accesio/APCI
 * apci_dev.c, takes the bridge from BAR0 or BAR1 and the card from BAR2; Linux's driver `pcim_iomap_regions(pdev,
 * BIT(2), ...)`).
 */
export const IDIO16_BAR = {
  /** Bridge registers, 32-bit non-prefetchable memory. */
  BRIDGE_MEM: 0,
  /** The same bridge registers in I/O space. */
  BRIDGE_IO: 1,
  /** The card: 8 bytes of I/O space ("will fall on an eight byte boundary", ACCES manual). */
  REGISTERS: 2,
} as const;

/** Size of each bridge BAR (the PLX 9052 local configuration register file). */
export const IDIO16_BRIDGE_BAR_SIZE = 128n;
/** Size of the register BAR: eight byte-wide registers, base+0 to base+7. */
export const IDIO16_REGISTERS_BAR_SIZE = 8n;

/**
 * Offsets in BAR2. Several offsets mean one thing when read and another when written (the ACCES table; Linux
 * gpio-idio-16.c's `IDIO_16_*` defines and its regmap access tables).
 */
export const IDIO16_REG = {
  /** R/W: FET drive outputs 0-7 (1 = output on). */
  OUT0_7: 0x0,
  /** R: isolated inputs 0-7 (1 = energized). */
  IN0_7: 0x1,
  /** W (any value): clear the interrupt. Same offset as {@link IDIO16_REG.IN0_7}. */
  CLEAR_INTERRUPT: 0x1,
  /** R: enable the change-of-state interrupt (the read itself is the command; Linux marks it "precious"). */
  ENABLE_IRQ: 0x2,
  /** W (any value): disable the change-of-state interrupt. Same offset as {@link IDIO16_REG.ENABLE_IRQ}. */
  DISABLE_IRQ: 0x2,
  /** R: activate the 5 ms input filters 0-15. W (any value): deactivate them. */
  FILTER_CTL: 0x3,
  /** R/W: FET drive outputs 8-15. */
  OUT8_15: 0x4,
  /** R: isolated inputs 8-15. Writes are ignored. */
  IN8_15: 0x5,
  /** R: interrupt status ({@link IDIO16_IRQ_STATUS}). Writes are ignored. */
  IRQ_STATUS: 0x6,
  /** R: filter status of inputs 0-7. W: per-input filter enables 0-7 (only while the global filter is off). */
  FILTER_STATUS: 0x7,
} as const;

/**
 * Bits of {@link IDIO16_REG.IRQ_STATUS}. Linux 6.12 (regmap-irq) tests only PENDING (`.mask = BIT(2)` for every
 * input); the pre-regmap driver also required one of bits 0-1 (`!(status & 0x3) || !(status & 0x4)` → IRQ_NONE).
 * The model sets bit 0 / bit 1 for a change latched on inputs 0-7 / 8-15, so both driver generations accept it.
 */
export const IDIO16_IRQ_STATUS = {
  /** A change of state on inputs 0-7 was latched. */
  INPUTS_0_7: 0x1,
  /** A change of state on inputs 8-15 was latched. */
  INPUTS_8_15: 0x2,
  /** An interrupt is latched (cleared only by a write to {@link IDIO16_REG.CLEAR_INTERRUPT}). */
  PENDING: 0x4,
} as const;

/** Offset of the bridge's interrupt control/status register (PLX 9052 INTCSR) in BAR0 and BAR1. */
export const IDIO16_BRIDGE_INTCSR = 0x4c;

/** Bits of the bridge's INTCSR (low byte; the rest of the register reads 0 in this model). */
export const IDIO16_INTCSR = {
  /** Local interrupt 1 (wired to the card's interrupt logic) enable. */
  LINT1_ENABLE: 0x01,
  /** Local interrupt 1 polarity: 1 = active high. */
  LINT1_POLARITY: 0x02,
  /** Local interrupt 1 active (read-only): ACCES's driver reads it to tell whether the interrupt is the card's. */
  LINT1_STATUS: 0x04,
  /** Local interrupt 2 enable (input not connected on this card). */
  LINT2_ENABLE: 0x08,
  LINT2_POLARITY: 0x10,
  /** Local interrupt 2 active (read-only; always 0, the input is not connected). */
  LINT2_STATUS: 0x20,
  /** Forward local interrupts to INTA#. */
  PCI_INT_ENABLE: 0x40,
  /** Software interrupt: asserts INTA# while set (and PCI_INT_ENABLE is set). */
  SOFTWARE_INT: 0x80,
} as const;

/**
 * INTCSR at power-on: local interrupt 1 enabled, active high, forwarded to INTA#. Linux's driver never touches the
 * bridge yet receives interrupts, so the card's serial EEPROM must load a value with this routing.
 */
export const IDIO16_INTCSR_POWER_ON = 0x43;

/** The input filter's time constant ("The 5 mSec filter", ACCES manual). */
export const IDIO16_FILTER_MS = 5;

/** Number of isolated inputs and of FET outputs. */
export const IDIO16_LINES = 16;
