/**
 * Permission tables of Linux's vfio_pci_config.c (inventory §3.2): one bit per config-space bit, in two planes.
 * `virt` bits are served from (and written to) the virtual copy of config space; `write` bits may be written by
 * the user. A bit that is neither is read from the device and never written.
 */
import * as R from './regs.js';

/** The two bit planes of one capability (or of the standard header), indexed by offset inside it. */
export interface PermBits {
  readonly virt: Uint8Array;
  readonly write: Uint8Array;
}

const ALL = 0xffffffff;

/** Builds a table; sizes round up to dwords so an access never runs off the end (Linux alloc_perm_bits). */
class PermTable implements PermBits {
  readonly virt: Uint8Array;
  readonly write: Uint8Array;
  constructor(size: number) {
    const rounded = (size + 3) & ~3;
    this.virt = new Uint8Array(rounded);
    this.write = new Uint8Array(rounded);
  }
  private put(offset: number, width: number, virt: number, write: number): this {
    for (let i = 0; i < width; i++) {
      this.virt[offset + i] = (virt >>> (8 * i)) & 0xff;
      this.write[offset + i] = (write >>> (8 * i)) & 0xff;
    }
    return this;
  }
  byte(offset: number, virt: number, write: number): this {
    return this.put(offset, 1, virt, write);
  }
  word(offset: number, virt: number, write: number): this {
    return this.put(offset, 2, virt, write);
  }
  dword(offset: number, virt: number, write: number): this {
    return this.put(offset, 4, virt, write);
  }
}

/** Standard header (type 0). */
export function basicPerms(): PermBits {
  return (
    new PermTable(R.PCI_STD_HEADER_SIZEOF)
      // IDs virtualized: a VF's hardware reads 0xffff, the virtual copy holds the real IDs.
      .word(R.PCI_VENDOR_ID, ALL, 0)
      .word(R.PCI_DEVICE_ID, ALL, 0)
      // Whole COMMAND writable; INTx-disable virtualized (vfio-pci masks INTx itself, and can emulate it).
      .word(R.PCI_COMMAND, R.PCI_COMMAND_INTX_DISABLE, ALL)
      // Capability-list bit virtualized so a fully hidden chain can be reported as absent.
      .word(R.PCI_STATUS, R.PCI_STATUS_CAP_LIST, 0)
      .byte(R.PCI_CACHE_LINE_SIZE, 0, ALL)
      .byte(R.PCI_LATENCY_TIMER, 0, ALL)
      .byte(R.PCI_BIST, 0, ALL)
      // BARs and ROM fully virtual: the real ones belong to the host.
      .dword(0x10, ALL, ALL)
      .dword(0x14, ALL, ALL)
      .dword(0x18, ALL, ALL)
      .dword(0x1c, ALL, ALL)
      .dword(0x20, ALL, ALL)
      .dword(0x24, ALL, ALL)
      .dword(R.PCI_ROM_ADDRESS, ALL, ALL)
      .byte(R.PCI_CAPABILITY_LIST, ALL, 0)
      .byte(R.PCI_INTERRUPT_LINE, ALL, ALL)
      .byte(R.PCI_INTERRUPT_PIN, ALL, 0)
  );
}

/** Power management: PowerState is trapped (read-only here, changed on the user's behalf); PME bits virtual. */
export function pmPerms(): PermBits {
  const pme = R.PCI_PM_CTRL_PME_ENABLE | R.PCI_PM_CTRL_PME_STATUS;
  return new PermTable(R.PCI_PM_SIZEOF)
    .byte(R.PCI_CAP_LIST_NEXT, ALL, 0)
    .word(R.PCI_PM_PMC, R.PCI_PM_CAP_PME_MASK, 0)
    .dword(R.PCI_PM_CTRL, pme, ~(pme | R.PCI_PM_CTRL_STATE_MASK) >>> 0);
}

/** VPD: address and data virtual; the write handler runs the transfer. */
export function vpdPerms(): PermBits {
  return new PermTable(R.PCI_CAP_VPD_SIZEOF)
    .byte(R.PCI_CAP_LIST_NEXT, ALL, 0)
    .word(R.PCI_VPD_ADDR, ALL, ALL)
    .dword(R.PCI_VPD_DATA, ALL, ALL);
}

/** PCI-X: command and ECC control/status writable through. */
export function pcixPerms(): PermBits {
  return new PermTable(R.PCI_CAP_PCIX_SIZEOF_V2)
    .byte(R.PCI_CAP_LIST_NEXT, ALL, 0)
    .word(R.PCI_X_CMD, 0, ALL)
    .dword(R.PCI_X_ECC_CSR, 0, ALL);
}

/** PCI Express: DEVCTL writable except phantom functions (FLR, MPS, MRRS virtual); DEVCTL2 writable except ARI. */
export function expPerms(): PermBits {
  return new PermTable(R.PCI_CAP_EXP_ENDPOINT_SIZEOF_V2)
    .byte(R.PCI_CAP_LIST_NEXT, ALL, 0)
    .word(
      R.PCI_EXP_DEVCTL,
      R.PCI_EXP_DEVCTL_BCR_FLR | R.PCI_EXP_DEVCTL_PAYLOAD | R.PCI_EXP_DEVCTL_READRQ,
      ~R.PCI_EXP_DEVCTL_PHANTOM & 0xffff,
    )
    .word(R.PCI_EXP_DEVCTL2, 0, ~R.PCI_EXP_DEVCTL2_ARI & 0xffff);
}

/** Advanced Features: the FLR bit is virtual (the write handler resets the function). */
export function afPerms(): PermBits {
  return new PermTable(R.PCI_CAP_AF_SIZEOF)
    .byte(R.PCI_CAP_LIST_NEXT, ALL, 0)
    .byte(R.PCI_AF_CTRL, R.PCI_AF_CTRL_FLR, R.PCI_AF_CTRL_FLR);
}

/** MSI, sized per device from its flags: flags byte, address and data virtual; mask/pending written through. */
export function msiPerms(length: number, flags: number): PermBits {
  const t = new PermTable(length)
    .byte(R.PCI_CAP_LIST_NEXT, ALL, 0)
    // The upper byte of the control register is reserved: only the lower byte is virtual/writable.
    .byte(R.PCI_MSI_FLAGS, ALL, ALL)
    .dword(R.PCI_MSI_ADDRESS_LO, ALL, ALL);
  const maskbit = (flags & R.PCI_MSI_FLAGS_MASKBIT) !== 0;
  if (flags & R.PCI_MSI_FLAGS_64BIT) {
    t.dword(R.PCI_MSI_ADDRESS_HI, ALL, ALL).word(R.PCI_MSI_DATA_64, ALL, ALL);
    if (maskbit) t.dword(R.PCI_MSI_MASK_64, 0, ALL).dword(R.PCI_MSI_PENDING_64, 0, ALL);
  } else {
    t.word(R.PCI_MSI_DATA_32, ALL, ALL);
    if (maskbit) t.dword(R.PCI_MSI_MASK_32, 0, ALL).dword(R.PCI_MSI_PENDING_32, 0, ALL);
  }
  return t;
}

/** AER: header dword virtual; standard status/mask/severity bits and the ECRC enables writable through. */
export function aerPerms(): PermBits {
  return new PermTable(R.PCI_ERR_ROOT_COMMAND)
    .dword(0, ALL, 0)
    .dword(R.PCI_ERR_UNCOR_STATUS, 0, R.PCI_ERR_UNC_WRITABLE)
    .dword(R.PCI_ERR_UNCOR_MASK, 0, R.PCI_ERR_UNC_WRITABLE)
    .dword(R.PCI_ERR_UNCOR_SEVER, 0, R.PCI_ERR_UNC_WRITABLE)
    .dword(R.PCI_ERR_COR_STATUS, 0, R.PCI_ERR_COR_WRITABLE)
    .dword(R.PCI_ERR_COR_MASK, 0, R.PCI_ERR_COR_WRITABLE)
    .dword(R.PCI_ERR_CAP, 0, R.PCI_ERR_CAP_ECRC_GENE | R.PCI_ERR_CAP_ECRC_CHKE);
}

/**
 * Power budgeting: header dword virtual; one byte writable. Linux 6.12 opens the byte at PCI_PWR_DATA (offset 8),
 * not the data-select register at offset 4 its comment names; we follow what it does.
 */
export function pwrPerms(): PermBits {
  return new PermTable(R.PCI_EXT_CAP_PWR_SIZEOF).dword(0, ALL, 0).byte(R.PCI_PWR_DATA, 0, ALL);
}
