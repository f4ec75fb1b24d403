/**
 * What the Linux PCI core does to the function's hardware on vfio-pci's behalf when interrupts change (inventory
 * §3.4): DisINTx masking (pci_intx, pci_check_and_mask_intx, pci_intx_mask_supported), MSI and MSI-X enabling with
 * the host's messages and per-vector masks (pci_alloc_irq_vectors, request_irq / free_irq unmasking and masking a
 * vector, pci_free_irq_vectors). These go to the raw function, below config-space virtualization.
 */
import type { PciFunction } from '@vfio-ts/platform';
import * as R from '../config/regs.js';

/** The x86 MSI address window the host programs into messages (the interrupt remapping range). */
const HOST_MSI_ADDRESS = 0xfee00000;
/** Bytes of one MSI-X table entry: address low, address high, data, vector control. */
const MSIX_ENTRY_SIZE = 16;
const MSIX_ENTRY_VECTOR_CTRL = 12;
const MSIX_ENTRY_CTRL_MASKBIT = 1;

/** Where the function's MSI-X table lives (Linux vdev->msix_bar / msix_offset / msix_size). */
export interface MsixTableLocation {
  /** BAR index (BIR). */
  readonly bar: number;
  /** Byte offset of the table in the BAR. */
  readonly offset: bigint;
  /** Table size in bytes: entries × 16. */
  readonly size: bigint;
  /** Number of entries (QSIZE + 1). */
  readonly entries: number;
}

/** Raw hardware access to one PCI function, as the PCI core performs it. */
export class PciHardware {
  readonly #fn: PciFunction;

  constructor(fn: PciFunction) {
    this.#fn = fn;
  }

  /** A config read; a model that throws reads as all-ones, as a failed config read does. */
  read(offset: number, size: 1 | 2 | 4): number {
    try {
      return this.#fn.configRead(offset, size) >>> 0;
    } catch {
      return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    }
  }

  /** A config write; a model that rejects it keeps its value, as hardware ignores it. */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    try {
      this.#fn.configWrite(offset, size, value);
    } catch {
      /* ignored by the hardware */
    }
  }

  /** pci_intx: clears (enable) or sets (disable) COMMAND.INTX_DISABLE, writing only on change. */
  intx(enable: boolean): void {
    const cmd = this.read(R.PCI_COMMAND, 2);
    const next = enable ? cmd & ~R.PCI_COMMAND_INTX_DISABLE : cmd | R.PCI_COMMAND_INTX_DISABLE;
    if (next !== cmd) this.write(R.PCI_COMMAND, 2, next);
  }

  /** True while COMMAND.INTX_DISABLE is set in hardware. */
  get intxDisabled(): boolean {
    return (this.read(R.PCI_COMMAND, 2) & R.PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  /** STATUS.INTERRUPT: the function asserts INTx internally (whether or not DisINTx gates the pin). */
  get intxPending(): boolean {
    return (this.read(R.PCI_STATUS, 2) & R.PCI_STATUS_INTERRUPT) !== 0;
  }

  /**
   * pci_check_and_set_intx_mask: masks (or unmasks) only when the pending state agrees — mask needs an interrupt
   * pending, unmask needs none. Returns whether it acted.
   */
  checkAndSetIntxMask(mask: boolean): boolean {
    const dword = this.read(R.PCI_COMMAND, 4);
    const pending = ((dword >>> 16) & R.PCI_STATUS_INTERRUPT) !== 0;
    if (mask !== pending) return false;
    const cmd = dword & 0xffff;
    const next = mask ? cmd | R.PCI_COMMAND_INTX_DISABLE : cmd & ~R.PCI_COMMAND_INTX_DISABLE;
    if (next !== cmd) this.write(R.PCI_COMMAND, 2, next);
    return true;
  }

  /**
   * pci_intx_mask_supported: DisINTx toggles and nothing else in COMMAND changes with it (the original value is
   * put back).
   */
  intxMaskSupported(): boolean {
    const orig = this.read(R.PCI_COMMAND, 2);
    this.write(R.PCI_COMMAND, 2, orig ^ R.PCI_COMMAND_INTX_DISABLE);
    const now = this.read(R.PCI_COMMAND, 2);
    if ((now ^ orig) & ~R.PCI_COMMAND_INTX_DISABLE & 0xffff) return false;
    if (((now ^ orig) & R.PCI_COMMAND_INTX_DISABLE) === 0) return false;
    this.write(R.PCI_COMMAND, 2, orig);
    return true;
  }

  // ---------------------------------------------------------------- MSI

  /**
   * Enables MSI with `vectors` vectors (msi_capability_init): the host's message, Multiple Message Enable, every
   * capable vector masked when the function can mask per vector, ENABLE, then DisINTx (pci_intx_for_msi).
   */
  msiEnable(cap: number, vectors: number): void {
    const flags = this.read(cap + R.PCI_MSI_FLAGS, 2);
    const is64 = (flags & R.PCI_MSI_FLAGS_64BIT) !== 0;
    this.write(cap + R.PCI_MSI_ADDRESS_LO, 4, HOST_MSI_ADDRESS);
    if (is64) this.write(cap + R.PCI_MSI_ADDRESS_HI, 4, 0);
    this.write(cap + (is64 ? R.PCI_MSI_DATA_64 : R.PCI_MSI_DATA_32), 2, 0);
    if (flags & R.PCI_MSI_FLAGS_MASKBIT) {
      this.write(cap + (is64 ? R.PCI_MSI_MASK_64 : R.PCI_MSI_MASK_32), 4, multiMask(capable(flags)));
    }
    const mme = log2Ceil(vectors);
    const next = (flags & ~(R.PCI_MSI_FLAGS_QSIZE | R.PCI_MSI_FLAGS_ENABLE)) | (mme << 4);
    this.write(cap + R.PCI_MSI_FLAGS, 2, next);
    this.write(cap + R.PCI_MSI_FLAGS, 2, next | R.PCI_MSI_FLAGS_ENABLE);
    this.intx(false);
  }

  /** Masks or unmasks MSI vector `vector` when the function supports per-vector masking (request_irq / free_irq). */
  msiMaskVector(cap: number, vector: number, masked: boolean): void {
    const flags = this.read(cap + R.PCI_MSI_FLAGS, 2);
    if (!(flags & R.PCI_MSI_FLAGS_MASKBIT) || vector >= 32) return;
    const at = cap + (flags & R.PCI_MSI_FLAGS_64BIT ? R.PCI_MSI_MASK_64 : R.PCI_MSI_MASK_32);
    const bits = this.read(at, 4);
    const bit = 1 << vector;
    this.write(at, 4, (masked ? bits | bit : bits & ~bit) >>> 0);
  }

  /**
   * Disables MSI (pci_msi_shutdown): ENABLE cleared, DisINTx cleared (pci_intx_for_msi), vectors left unmasked as
   * at power-on.
   */
  msiDisable(cap: number): void {
    const flags = this.read(cap + R.PCI_MSI_FLAGS, 2);
    this.write(cap + R.PCI_MSI_FLAGS, 2, flags & ~R.PCI_MSI_FLAGS_ENABLE);
    this.intx(true);
    if (flags & R.PCI_MSI_FLAGS_MASKBIT) {
      const at = cap + (flags & R.PCI_MSI_FLAGS_64BIT ? R.PCI_MSI_MASK_64 : R.PCI_MSI_MASK_32);
      this.write(at, 4, (this.read(at, 4) & ~multiMask(capable(flags))) >>> 0);
    }
  }

  // ---------------------------------------------------------------- MSI-X

  /** The MSI-X table location from the capability at `cap` (read from hardware, as vfio_pci_core_enable does). */
  msixTable(cap: number): MsixTableLocation {
    const flags = this.read(cap + R.PCI_MSIX_FLAGS, 2);
    const table = this.read(cap + R.PCI_MSIX_TABLE, 4);
    const entries = (flags & R.PCI_MSIX_FLAGS_QSIZE) + 1;
    return {
      bar: table & 0x7,
      offset: BigInt((table & ~0x7) >>> 0),
      size: BigInt(entries * MSIX_ENTRY_SIZE),
      entries,
    };
  }

  /**
   * Enables MSI-X (msix_capability_init): ENABLE with the function masked, every table entry masked, the
   * allocated entries given the host's message, then the function mask lifted and DisINTx set.
   */
  msixEnable(cap: number, table: MsixTableLocation, allocated: Iterable<number>): void {
    const flags = this.read(cap + R.PCI_MSIX_FLAGS, 2);
    this.write(cap + R.PCI_MSIX_FLAGS, 2, flags | R.PCI_MSIX_FLAGS_ENABLE | R.PCI_MSIX_FLAGS_MASKALL);
    this.#withMemory(() => {
      for (let i = 0; i < table.entries; i++) this.#msixCtrl(table, i, true);
      for (const v of allocated) this.#msixMessage(table, v);
    });
    this.write(cap + R.PCI_MSIX_FLAGS, 2, (flags | R.PCI_MSIX_FLAGS_ENABLE) & ~R.PCI_MSIX_FLAGS_MASKALL);
    this.intx(false);
  }

  /** A vector allocated after enable (pci_msix_alloc_irq_at): its entry gets the host message, still masked. */
  msixAllocate(table: MsixTableLocation, vector: number): void {
    this.#withMemory(() => {
      this.#msixMessage(table, vector);
    });
  }

  /**
   * request_irq / free_irq on an MSI-X vector: the cached message is written back first (it may have been lost to
   * a backdoor reset, §3.4), then the entry is unmasked; freeing masks it.
   */
  msixMaskVector(table: MsixTableLocation, vector: number, masked: boolean): void {
    this.#withMemory(() => {
      if (!masked) this.#msixMessage(table, vector);
      this.#msixCtrl(table, vector, masked);
    });
  }

  /** Disables MSI-X (pci_msix_shutdown): allocated entries masked, ENABLE cleared, DisINTx cleared. */
  msixDisable(cap: number, table: MsixTableLocation, allocated: Iterable<number>): void {
    this.#withMemory(() => {
      for (const v of allocated) this.#msixCtrl(table, v, true);
    });
    const flags = this.read(cap + R.PCI_MSIX_FLAGS, 2);
    this.write(cap + R.PCI_MSIX_FLAGS, 2, flags & ~(R.PCI_MSIX_FLAGS_ENABLE | R.PCI_MSIX_FLAGS_MASKALL));
    this.intx(true);
  }

  #msixMessage(table: MsixTableLocation, vector: number): void {
    const entry = new Uint8Array(12);
    const view = new DataView(entry.buffer);
    view.setUint32(0, HOST_MSI_ADDRESS, true);
    view.setUint32(4, 0, true);
    view.setUint32(8, vector, true);
    this.#barWrite(table.bar, table.offset + BigInt(vector * MSIX_ENTRY_SIZE), entry);
  }

  #msixCtrl(table: MsixTableLocation, vector: number, masked: boolean): void {
    const ctrl = new Uint8Array(4);
    ctrl[0] = masked ? MSIX_ENTRY_CTRL_MASKBIT : 0;
    this.#barWrite(table.bar, table.offset + BigInt(vector * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL), ctrl);
  }

  #barWrite(bar: number, offset: bigint, data: Uint8Array): void {
    try {
      this.#fn.barWrite?.(bar, offset, data);
    } catch {
      /* a model without that register ignores the write */
    }
  }

  /**
   * vfio_pci_memory_lock_and_enable / _unlock_and_restore: memory decoding is switched on around MSI-X table
   * writes, which the function would otherwise ignore, and the user's COMMAND value put back afterwards.
   */
  #withMemory(body: () => void): void {
    const cmd = this.read(R.PCI_COMMAND, 2);
    const enable = (cmd & R.PCI_COMMAND_MEMORY) === 0;
    if (enable) this.write(R.PCI_COMMAND, 2, cmd | R.PCI_COMMAND_MEMORY);
    try {
      body();
    } finally {
      if (enable) this.write(R.PCI_COMMAND, 2, cmd);
    }
  }
}

/** ceil(log2(n)) for n ≥ 1: the Multiple Message Enable encoding of `n` vectors (Linux msi_qmax). */
function log2Ceil(n: number): number {
  let q = 0;
  while (1 << q < n) q++;
  return q;
}

/** Vectors the MSI capability can generate (Multiple Message Capable). */
function capable(flags: number): number {
  return 1 << ((flags & R.PCI_MSI_FLAGS_QMASK) >> 1);
}

/** msi_multi_mask: the mask bits covering `vectors` vectors (all 32 for 32). */
function multiMask(vectors: number): number {
  return vectors >= 32 ? 0xffffffff : ((1 << vectors) - 1) >>> 0;
}
