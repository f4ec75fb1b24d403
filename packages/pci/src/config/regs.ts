/**
 * PCI configuration-space register numbers, as Linux's include/uapi/linux/pci_regs.h spells them (the subset the
 * config-space virtualization needs). Hardware facts from the PCI / PCIe specifications; the values are Linux's.
 */

/** Size of conventional config space and of PCIe / PCI-X mode 2 extended config space. */
export const PCI_CFG_SPACE_SIZE = 256;
export const PCI_CFG_SPACE_EXP_SIZE = 4096;
/** The type-0 header occupies the first 64 bytes. */
export const PCI_STD_HEADER_SIZEOF = 64;

export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS = 0x06;
export const PCI_STATUS_INTERRUPT = 0x08;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CLASS_REVISION = 0x08;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BIST = 0x0f;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_BASE_ADDRESS_5 = 0x24;
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01;
export const PCI_BASE_ADDRESS_SPACE_MEMORY = 0x00;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_ROM_ADDRESS_ENABLE = 0x01;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
export const PCI_STD_NUM_BARS = 6;

/** Standard capability header: ID byte, next byte, then capability-defined flags. */
export const PCI_CAP_LIST_ID = 0;
export const PCI_CAP_LIST_NEXT = 1;
export const PCI_CAP_FLAGS = 2;
export const PCI_CAP_SIZEOF = 4;

/** Standard capability IDs (PCI_CAP_ID_*). */
export const PCI_CAP_ID = {
  PM: 0x01,
  AGP: 0x02,
  VPD: 0x03,
  SLOTID: 0x04,
  MSI: 0x05,
  CHSWP: 0x06,
  PCIX: 0x07,
  HT: 0x08,
  VNDR: 0x09,
  DBG: 0x0a,
  CCRC: 0x0b,
  SHPC: 0x0c,
  SSVID: 0x0d,
  AGP3: 0x0e,
  SECDEV: 0x0f,
  EXP: 0x10,
  MSIX: 0x11,
  SATA: 0x12,
  AF: 0x13,
  EA: 0x14,
} as const;
/** Highest standard capability ID Linux knows (PCI_CAP_ID_EA). */
export const PCI_CAP_ID_MAX = 0x14;

/** Extended capability IDs (PCI_EXT_CAP_ID_*). */
export const PCI_EXT_CAP_ID = {
  ERR: 0x01,
  VC: 0x02,
  DSN: 0x03,
  PWR: 0x04,
  RCLD: 0x05,
  RCILC: 0x06,
  RCEC: 0x07,
  MFVC: 0x08,
  VC9: 0x09,
  RCRB: 0x0a,
  VNDR: 0x0b,
  CAC: 0x0c,
  ACS: 0x0d,
  ARI: 0x0e,
  ATS: 0x0f,
  SRIOV: 0x10,
  MRIOV: 0x11,
  MCAST: 0x12,
  PRI: 0x13,
  AMD_XXX: 0x14,
  REBAR: 0x15,
  DPA: 0x16,
  TPH: 0x17,
  LTR: 0x18,
  SECPCI: 0x19,
  PMUX: 0x1a,
  PASID: 0x1b,
  DPC: 0x1d,
  L1SS: 0x1e,
  PTM: 0x1f,
  DVSEC: 0x23,
  DLF: 0x25,
  PL_16GT: 0x26,
  NPEM: 0x29,
  PL_32GT: 0x2a,
  DOE: 0x2e,
} as const;
/** Highest extended capability ID Linux 6.12 knows (PCI_EXT_CAP_ID_DOE). */
export const PCI_EXT_CAP_ID_MAX = 0x2e;

// Power management
export const PCI_PM_PMC = 2;
export const PCI_PM_CAP_D1 = 0x0200;
export const PCI_PM_CAP_D2 = 0x0400;
export const PCI_PM_CAP_PME_MASK = 0xf800;
export const PCI_PM_CTRL = 4;
export const PCI_PM_CTRL_STATE_MASK = 0x0003;
export const PCI_PM_CTRL_PME_ENABLE = 0x0100;
export const PCI_PM_CTRL_PME_STATUS = 0x8000;
export const PCI_PM_SIZEOF = 8;
export const PCI_AGP_SIZEOF = 12;

// VPD
export const PCI_VPD_ADDR = 2;
export const PCI_VPD_ADDR_F = 0x8000;
export const PCI_VPD_DATA = 4;
export const PCI_CAP_VPD_SIZEOF = 8;

// MSI
export const PCI_MSI_FLAGS = 2;
export const PCI_MSI_FLAGS_ENABLE = 0x0001;
export const PCI_MSI_FLAGS_QMASK = 0x000e;
export const PCI_MSI_FLAGS_QSIZE = 0x0070;
export const PCI_MSI_FLAGS_64BIT = 0x0080;
export const PCI_MSI_FLAGS_MASKBIT = 0x0100;
export const PCI_MSI_ADDRESS_LO = 4;
export const PCI_MSI_ADDRESS_HI = 8;
export const PCI_MSI_DATA_32 = 8;
export const PCI_MSI_MASK_32 = 12;
export const PCI_MSI_PENDING_32 = 16;
export const PCI_MSI_DATA_64 = 12;
export const PCI_MSI_MASK_64 = 16;
export const PCI_MSI_PENDING_64 = 20;

// MSI-X
export const PCI_MSIX_FLAGS = 2;
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_TABLE = 4;
export const PCI_MSIX_PBA = 8;
export const PCI_CAP_MSIX_SIZEOF = 12;

// Advanced Features
export const PCI_AF_CAP = 3;
export const PCI_AF_CAP_TP = 0x01;
export const PCI_AF_CAP_FLR = 0x02;
export const PCI_AF_CTRL = 4;
export const PCI_AF_CTRL_FLR = 0x01;
export const PCI_CAP_AF_SIZEOF = 6;

// PCI-X
export const PCI_X_CMD = 2;
export const PCI_X_ECC_CSR = 8;
export const PCI_CAP_PCIX_SIZEOF_V0 = 8;
export const PCI_CAP_PCIX_SIZEOF_V2 = 24;

// PCI Express
export const PCI_EXP_FLAGS = 2;
export const PCI_EXP_FLAGS_VERS = 0x000f;
export const PCI_EXP_FLAGS_TYPE = 0x00f0;
export const PCI_EXP_TYPE_RC_END = 0x9;
export const PCI_EXP_DEVCAP = 4;
export const PCI_EXP_DEVCAP_FLR = 0x10000000;
export const PCI_EXP_DEVCTL = 8;
export const PCI_EXP_DEVCTL_PAYLOAD = 0x00e0;
export const PCI_EXP_DEVCTL_PHANTOM = 0x0200;
export const PCI_EXP_DEVCTL_READRQ = 0x7000;
export const PCI_EXP_DEVCTL_BCR_FLR = 0x8000;
export const PCI_EXP_DEVCTL2 = 40;
export const PCI_EXP_DEVCTL2_ARI = 0x0020;
export const PCI_CAP_EXP_ENDPOINT_SIZEOF_V1 = 20;
export const PCI_CAP_EXP_ENDPOINT_SIZEOF_V2 = 52;

// HyperTransport, SATA
export const HT_3BIT_CAP_MASK = 0xe0;
export const HT_CAP_SIZEOF_LONG = 28;
export const HT_CAP_SIZEOF_SHORT = 24;
export const PCI_SATA_REGS = 4;
export const PCI_SATA_REGS_MASK = 0xf;
export const PCI_SATA_REGS_INLINE = 0xf;
export const PCI_SATA_SIZEOF_SHORT = 8;
export const PCI_SATA_SIZEOF_LONG = 16;

// AER
export const PCI_ERR_UNCOR_STATUS = 4;
export const PCI_ERR_UNCOR_MASK = 8;
export const PCI_ERR_UNCOR_SEVER = 12;
export const PCI_ERR_COR_STATUS = 16;
export const PCI_ERR_COR_MASK = 20;
export const PCI_ERR_CAP = 24;
export const PCI_ERR_CAP_ECRC_GENE = 0x00000040;
export const PCI_ERR_CAP_ECRC_CHKE = 0x00000100;
export const PCI_ERR_ROOT_COMMAND = 44;
/** Uncorrectable error bits user space may write (UND DLP SURPDN POISON FCP COMP_TIME COMP_ABORT UNX_COMP RX_OVER MALF ECRC UNSUP ACSV INTN MCBTLP ATOMEG TLPPRE). */
export const PCI_ERR_UNC_WRITABLE =
  0x00000001 | 0x00000010 | 0x00000020 | 0x00001000 | 0x00002000 | 0x00004000 | 0x00008000 | 0x00010000 |
  0x00020000 | 0x00040000 | 0x00080000 | 0x00100000 | 0x00200000 | 0x00400000 | 0x00800000 | 0x01000000 |
  0x02000000;
/** Correctable error bits user space may write (RCVR BAD_TLP BAD_DLLP REP_ROLL REP_TIMER ADV_NFAT INTERNAL LOG_OVER). */
export const PCI_ERR_COR_WRITABLE =
  0x00000001 | 0x00000040 | 0x00000080 | 0x00000100 | 0x00001000 | 0x00002000 | 0x00004000 | 0x00008000;

// Other extended capabilities
export const PCI_EXT_CAP_DSN_SIZEOF = 12;
export const PCI_EXT_CAP_PWR_SIZEOF = 16;
export const PCI_PWR_DATA = 8;
export const PCI_EXT_CAP_ARI_SIZEOF = 8;
export const PCI_EXT_CAP_ATS_SIZEOF = 8;
export const PCI_EXT_CAP_SRIOV_SIZEOF = 64;
export const PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF = 40;
export const PCI_EXT_CAP_PRI_SIZEOF = 16;
export const PCI_EXT_CAP_LTR_SIZEOF = 8;
export const PCI_VNDR_HEADER = 4;
export const PCI_DVSEC_HEADER1 = 4;
export const PCI_VC_PORT_CAP1 = 4;
export const PCI_VC_CAP1_EVCC = 0x7;
export const PCI_VC_PORT_CAP2 = 8;
export const PCI_VC_CAP2_32_PHASE = 0x2;
export const PCI_VC_CAP2_64_PHASE = 0x4;
export const PCI_VC_CAP2_128_PHASE = 0x8;
export const PCI_CAP_VC_BASE_SIZEOF = 0x10;
export const PCI_CAP_VC_PER_VC_SIZEOF = 0x0c;
export const PCI_ACS_CAP = 4;
export const PCI_ACS_EC = 0x20;
export const PCI_ACS_EGRESS_BITS = 5;
export const PCI_REBAR_CTRL = 8;
export const PCI_REBAR_CTRL_NBAR_MASK = 0xe0;
export const PCI_REBAR_CTRL_NBAR_SHIFT = 5;
export const PCI_DPA_CAP = 4;
export const PCI_DPA_CAP_SUBSTATE_MASK = 0x1f;
export const PCI_DPA_BASE_SIZEOF = 16;
export const PCI_TPH_CAP = 4;
export const PCI_TPH_CAP_LOC_MASK = 0x600;
export const PCI_TPH_LOC_CAP = 0x200;
export const PCI_TPH_CAP_ST_MASK = 0x07ff0000;
export const PCI_TPH_CAP_ST_SHIFT = 16;
export const PCI_TPH_BASE_SIZEOF = 12;

/** Extended capability header fields. */
export function extCapId(header: number): number {
  return header & 0xffff;
}
export function extCapNext(header: number): number {
  return (header >>> 20) & 0xffc;
}
