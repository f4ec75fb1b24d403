/**
 * @vfio-ts/device-gpio-pci-idio-16 — a model of the ACCES PCI-IDIO-16 isolated digital I/O card (494f:0dc8, the card
 * Linux's gpio-pci-idio-16 driver binds to) as hardware, implementing the platform `PciFunction` contract: 16 FET
 * outputs, 16 isolated inputs with change-of-state interrupts on INTA# and 5 ms input filters, behind a PLX 9052-style
 * bridge (BAR0/BAR1) with the card's registers in I/O BAR2.
 * @packageDocumentation
 */
export { idio16Function } from './idio16.js';
export type { Idio16Function, Idio16Inputs, Idio16Options, Idio16Simulation, Idio16State } from './idio16.js';
export {
  IDIO16_BAR,
  IDIO16_BRIDGE_BAR_SIZE,
  IDIO16_BRIDGE_INTCSR,
  IDIO16_FILTER_MS,
  IDIO16_INTCSR,
  IDIO16_INTCSR_POWER_ON,
  IDIO16_IRQ_STATUS,
  IDIO16_LINES,
  IDIO16_PCI_ID,
  IDIO16_REG,
  IDIO16_REGISTERS_BAR_SIZE,
} from './regs.js';
