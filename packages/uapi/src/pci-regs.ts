/**
 * PCI configuration-space register numbers, as Linux's include/uapi/linux/pci_regs.h (6.12) spells them: the
 * standard header, command/status bits, BAR bits, capability and extended-capability ids, and the PM, MSI, MSI-X,
 * PCIe, AER and other capability registers that vfio-pci's config virtualization, the simulator and the sample
 * device models use. This is the one place these offsets live (DESIGN.md, `uapi`); everything else imports them.
 * Hardware facts from the PCI / PCIe specifications; the names and values are Linux's.
 */

/** Size of conventional config space. */
export const PCI_CFG_SPACE_SIZE = 256;
/** Size of PCIe / PCI-X mode 2 extended config space. */
export const PCI_CFG_SPACE_EXP_SIZE = 4096;
/** The type-0 header occupies the first 64 bytes. */
export const PCI_STD_HEADER_SIZEOF = 64;
/** Number of standard BARs in a type-0 header. */
export const PCI_STD_NUM_BARS = 6;

// Standard header (type 0)
/** Vendor ID (16 bits). */
export const PCI_VENDOR_ID = 0x00;
/** Device ID (16 bits). */
export const PCI_DEVICE_ID = 0x02;
/** Command register (16 bits). */
export const PCI_COMMAND = 0x04;
/** Command: respond in I/O space. */
export const PCI_COMMAND_IO = 0x1;
/** Command: respond in memory space. */
export const PCI_COMMAND_MEMORY = 0x2;
/** Command: bus mastering. */
export const PCI_COMMAND_MASTER = 0x4;
/** Command: parity error response. */
export const PCI_COMMAND_PARITY = 0x40;
/** Command: SERR# enable. */
export const PCI_COMMAND_SERR = 0x100;
/** Command: INTx emulation disable. */
export const PCI_COMMAND_INTX_DISABLE = 0x400;
/** Status register (16 bits). */
export const PCI_STATUS = 0x06;
/** Status: INTx asserted. */
export const PCI_STATUS_INTERRUPT = 0x08;
/** Status: capability list present. */
export const PCI_STATUS_CAP_LIST = 0x10;
/** Status: fast back-to-back capable. */
export const PCI_STATUS_FAST_BACK = 0x80;
/** Status: master data parity error (RW1C). */
export const PCI_STATUS_PARITY = 0x100;
/** Status: DEVSEL timing field. */
export const PCI_STATUS_DEVSEL_MASK = 0x600;
/** Status: medium DEVSEL timing. */
export const PCI_STATUS_DEVSEL_MEDIUM = 0x200;
/** Status: signaled target abort (RW1C). */
export const PCI_STATUS_SIG_TARGET_ABORT = 0x800;
/** Status: received target abort (RW1C). */
export const PCI_STATUS_REC_TARGET_ABORT = 0x1000;
/** Status: received master abort (RW1C). */
export const PCI_STATUS_REC_MASTER_ABORT = 0x2000;
/** Status: signaled system error (RW1C). */
export const PCI_STATUS_SIG_SYSTEM_ERROR = 0x4000;
/** Status: detected parity error (RW1C). */
export const PCI_STATUS_DETECTED_PARITY = 0x8000;
/**
 * The status bits that record errors, all write-1-to-clear: parity, signaled/received target abort, received master
 * abort, signaled system error, detected parity (Linux's `PCI_STATUS_ERROR_BITS`, include/linux/pci.h).
 */
export const PCI_STATUS_ERROR_BITS =
  PCI_STATUS_DETECTED_PARITY |
  PCI_STATUS_SIG_SYSTEM_ERROR |
  PCI_STATUS_REC_MASTER_ABORT |
  PCI_STATUS_REC_TARGET_ABORT |
  PCI_STATUS_SIG_TARGET_ABORT |
  PCI_STATUS_PARITY;
/** Class code (high 24 bits) and revision (low 8 bits). */
export const PCI_CLASS_REVISION = 0x08;
/** Revision ID. */
export const PCI_REVISION_ID = 0x08;
/** Programming interface. */
export const PCI_CLASS_PROG = 0x09;
/** Device class (16 bits). */
export const PCI_CLASS_DEVICE = 0x0a;
/** Cache line size (8 bits). */
export const PCI_CACHE_LINE_SIZE = 0x0c;
/** Latency timer (8 bits). */
export const PCI_LATENCY_TIMER = 0x0d;
/** Header type (8 bits; bit 7 = multi-function). */
export const PCI_HEADER_TYPE = 0x0e;
/** Built-in self test (8 bits). */
export const PCI_BIST = 0x0f;
/** First BAR. */
export const PCI_BASE_ADDRESS_0 = 0x10;
/** Last BAR of a type-0 header. */
export const PCI_BASE_ADDRESS_5 = 0x24;
/** BAR bit 0: I/O space. */
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01;
/** BAR bit 0 clear: memory space. */
export const PCI_BASE_ADDRESS_SPACE_MEMORY = 0x00;
/** Memory BAR type: 64-bit. */
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
/** Memory BAR: prefetchable. */
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
/** Subsystem vendor ID. */
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
/** Subsystem ID. */
export const PCI_SUBSYSTEM_ID = 0x2e;
/** Expansion ROM BAR (type 0). */
export const PCI_ROM_ADDRESS = 0x30;
/** Expansion ROM BAR: enable bit. */
export const PCI_ROM_ADDRESS_ENABLE = 0x01;
/** Offset of the first capability. */
export const PCI_CAPABILITY_LIST = 0x34;
/** Expansion ROM BAR of a type-1 (bridge) header. */
export const PCI_ROM_ADDRESS1 = 0x38;
/** Interrupt line (8 bits). */
export const PCI_INTERRUPT_LINE = 0x3c;
/** Interrupt pin (8 bits; 0 = none, 1 = INTA#). */
export const PCI_INTERRUPT_PIN = 0x3d;

// Type-1 (PCI-to-PCI bridge) header
/** Primary bus number (8 bits). */
export const PCI_PRIMARY_BUS = 0x18;
/** Secondary bus number (8 bits). */
export const PCI_SECONDARY_BUS = 0x19;
/** Highest bus number behind the bridge (8 bits). */
export const PCI_SUBORDINATE_BUS = 0x1a;
/** Latency timer for the secondary interface (8 bits). */
export const PCI_SEC_LATENCY_TIMER = 0x1b;
/** I/O base (8 bits; the limit follows at 0x1d). */
export const PCI_IO_BASE = 0x1c;
/** I/O limit (8 bits). */
export const PCI_IO_LIMIT = 0x1d;
/** Secondary status (16 bits). */
export const PCI_SEC_STATUS = 0x1e;
/** Memory base (16 bits; the limit follows at 0x22). */
export const PCI_MEMORY_BASE = 0x20;
/** Memory limit (16 bits). */
export const PCI_MEMORY_LIMIT = 0x22;
/** Prefetchable memory base (16 bits; the limit follows at 0x26). */
export const PCI_PREF_MEMORY_BASE = 0x24;
/** Prefetchable memory limit (16 bits). */
export const PCI_PREF_MEMORY_LIMIT = 0x26;
/** Upper 32 bits of the prefetchable base. */
export const PCI_PREF_BASE_UPPER32 = 0x28;
/** Upper 32 bits of the prefetchable limit. */
export const PCI_PREF_LIMIT_UPPER32 = 0x2c;
/** Upper 16 bits of the I/O base. */
export const PCI_IO_BASE_UPPER16 = 0x30;
/** Upper 16 bits of the I/O limit. */
export const PCI_IO_LIMIT_UPPER16 = 0x32;
/** Bridge control (16 bits). */
export const PCI_BRIDGE_CONTROL = 0x3e;

// Capability lists
/** Capability header: ID byte. */
export const PCI_CAP_LIST_ID = 0;
/** Capability header: next pointer. */
export const PCI_CAP_LIST_NEXT = 1;
/** Capability-defined flags (16 bits). */
export const PCI_CAP_FLAGS = 2;
/** Size of a bare capability header plus flags. */
export const PCI_CAP_SIZEOF = 4;

/** Power Management capability. */
export const PCI_CAP_ID_PM = 0x01;
/** Accelerated Graphics Port. */
export const PCI_CAP_ID_AGP = 0x02;
/** Vital Product Data. */
export const PCI_CAP_ID_VPD = 0x03;
/** Slot Identification. */
export const PCI_CAP_ID_SLOTID = 0x04;
/** Message Signalled Interrupts. */
export const PCI_CAP_ID_MSI = 0x05;
/** CompactPCI HotSwap. */
export const PCI_CAP_ID_CHSWP = 0x06;
/** PCI-X. */
export const PCI_CAP_ID_PCIX = 0x07;
/** HyperTransport. */
export const PCI_CAP_ID_HT = 0x08;
/** Vendor-specific. */
export const PCI_CAP_ID_VNDR = 0x09;
/** Debug port. */
export const PCI_CAP_ID_DBG = 0x0a;
/** CompactPCI Central Resource Control. */
export const PCI_CAP_ID_CCRC = 0x0b;
/** Standard Hot-Plug Controller. */
export const PCI_CAP_ID_SHPC = 0x0c;
/** Bridge subsystem vendor/device ID. */
export const PCI_CAP_ID_SSVID = 0x0d;
/** AGP target PCI-PCI bridge. */
export const PCI_CAP_ID_AGP3 = 0x0e;
/** Secure device. */
export const PCI_CAP_ID_SECDEV = 0x0f;
/** PCI Express. */
export const PCI_CAP_ID_EXP = 0x10;
/** MSI-X. */
export const PCI_CAP_ID_MSIX = 0x11;
/** SATA data/index configuration. */
export const PCI_CAP_ID_SATA = 0x12;
/** Advanced Features. */
export const PCI_CAP_ID_AF = 0x13;
/** Enhanced Allocation. */
export const PCI_CAP_ID_EA = 0x14;
/** Highest standard capability ID Linux knows (PCI_CAP_ID_EA). */
export const PCI_CAP_ID_MAX = PCI_CAP_ID_EA;

/** Standard capability IDs (PCI_CAP_ID_*) by their suffix. */
export const PCI_CAP_ID = {
  PM: PCI_CAP_ID_PM,
  AGP: PCI_CAP_ID_AGP,
  VPD: PCI_CAP_ID_VPD,
  SLOTID: PCI_CAP_ID_SLOTID,
  MSI: PCI_CAP_ID_MSI,
  CHSWP: PCI_CAP_ID_CHSWP,
  PCIX: PCI_CAP_ID_PCIX,
  HT: PCI_CAP_ID_HT,
  VNDR: PCI_CAP_ID_VNDR,
  DBG: PCI_CAP_ID_DBG,
  CCRC: PCI_CAP_ID_CCRC,
  SHPC: PCI_CAP_ID_SHPC,
  SSVID: PCI_CAP_ID_SSVID,
  AGP3: PCI_CAP_ID_AGP3,
  SECDEV: PCI_CAP_ID_SECDEV,
  EXP: PCI_CAP_ID_EXP,
  MSIX: PCI_CAP_ID_MSIX,
  SATA: PCI_CAP_ID_SATA,
  AF: PCI_CAP_ID_AF,
  EA: PCI_CAP_ID_EA,
} as const;

// Power management
/** PM capabilities register. */
export const PCI_PM_PMC = 2;
/** PMC: D1 supported. */
export const PCI_PM_CAP_D1 = 0x0200;
/** PMC: D2 supported. */
export const PCI_PM_CAP_D2 = 0x0400;
/** PMC: PME# support mask (all states). */
export const PCI_PM_CAP_PME_MASK = 0xf800;
/** PM control/status register. */
export const PCI_PM_CTRL = 4;
/** PMCSR: current power state D0..D3hot. */
export const PCI_PM_CTRL_STATE_MASK = 0x0003;
/** PMCSR: no reset on D3hot→D0. */
export const PCI_PM_CTRL_NO_SOFT_RESET = 0x0008;
/** PMCSR: PME enable. */
export const PCI_PM_CTRL_PME_ENABLE = 0x0100;
/** PMCSR: PME status (RW1C). */
export const PCI_PM_CTRL_PME_STATUS = 0x8000;
/** Size of the PM capability. */
export const PCI_PM_SIZEOF = 8;
/** Size of the AGP capability. */
export const PCI_AGP_SIZEOF = 12;

// Vital Product Data
/** VPD address register (15 bits + flag). */
export const PCI_VPD_ADDR = 2;
/** VPD address: completion flag. */
export const PCI_VPD_ADDR_F = 0x8000;
/** VPD data register. */
export const PCI_VPD_DATA = 4;
/** Size of the VPD capability. */
export const PCI_CAP_VPD_SIZEOF = 8;

// MSI
/** MSI message control. */
export const PCI_MSI_FLAGS = 2;
/** MSI enable. */
export const PCI_MSI_FLAGS_ENABLE = 0x0001;
/** Multiple Message Capable (log2 of vectors). */
export const PCI_MSI_FLAGS_QMASK = 0x000e;
/** Multiple Message Enable (log2 of vectors). */
export const PCI_MSI_FLAGS_QSIZE = 0x0070;
/** 64-bit address capable. */
export const PCI_MSI_FLAGS_64BIT = 0x0080;
/** Per-vector masking capable. */
export const PCI_MSI_FLAGS_MASKBIT = 0x0100;
/** Message address, low 32 bits. */
export const PCI_MSI_ADDRESS_LO = 4;
/** Message address, high 32 bits (64-bit capable only). */
export const PCI_MSI_ADDRESS_HI = 8;
/** Message data (32-bit layout). */
export const PCI_MSI_DATA_32 = 8;
/** Mask bits (32-bit layout). */
export const PCI_MSI_MASK_32 = 12;
/** Pending bits (32-bit layout). */
export const PCI_MSI_PENDING_32 = 16;
/** Message data (64-bit layout). */
export const PCI_MSI_DATA_64 = 12;
/** Mask bits (64-bit layout). */
export const PCI_MSI_MASK_64 = 16;
/** Pending bits (64-bit layout). */
export const PCI_MSI_PENDING_64 = 20;

// MSI-X
/** MSI-X message control. */
export const PCI_MSIX_FLAGS = 2;
/** Table size minus one. */
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
/** Function mask. */
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
/** MSI-X enable. */
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
/** Table offset / BIR. */
export const PCI_MSIX_TABLE = 4;
/** PBA offset / BIR. */
export const PCI_MSIX_PBA = 8;
/** Size of the MSI-X capability. */
export const PCI_CAP_MSIX_SIZEOF = 12;
/** Size of one MSI-X table entry. */
export const PCI_MSIX_ENTRY_SIZE = 16;
/** Table entry: vector control dword. */
export const PCI_MSIX_ENTRY_VECTOR_CTRL = 12;
/** Vector control: masked. */
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;

// Advanced Features
/** AF capabilities byte. */
export const PCI_AF_CAP = 3;
/** AF: transactions pending supported. */
export const PCI_AF_CAP_TP = 0x01;
/** AF: FLR supported. */
export const PCI_AF_CAP_FLR = 0x02;
/** AF control byte. */
export const PCI_AF_CTRL = 4;
/** AF control: initiate FLR. */
export const PCI_AF_CTRL_FLR = 0x01;
/** Size of the AF capability. */
export const PCI_CAP_AF_SIZEOF = 6;

// PCI-X
/** PCI-X command register. */
export const PCI_X_CMD = 2;
/** PCI-X ECC control and status. */
export const PCI_X_ECC_CSR = 8;
/** Size of a version-0 PCI-X capability. */
export const PCI_CAP_PCIX_SIZEOF_V0 = 8;
/** Size of a version-2 PCI-X capability. */
export const PCI_CAP_PCIX_SIZEOF_V2 = 24;

// PCI Express
/** PCIe capabilities register. */
export const PCI_EXP_FLAGS = 2;
/** Capability version. */
export const PCI_EXP_FLAGS_VERS = 0x000f;
/** Device/port type (bits 7:4). */
export const PCI_EXP_FLAGS_TYPE = 0x00f0;
/** Port type: PCIe endpoint. */
export const PCI_EXP_TYPE_ENDPOINT = 0x0;
/** Port type: legacy endpoint. */
export const PCI_EXP_TYPE_LEG_END = 0x1;
/** Port type: root port. */
export const PCI_EXP_TYPE_ROOT_PORT = 0x4;
/** Port type: switch upstream port. */
export const PCI_EXP_TYPE_UPSTREAM = 0x5;
/** Port type: switch downstream port. */
export const PCI_EXP_TYPE_DOWNSTREAM = 0x6;
/** Port type: PCIe to PCI/PCI-X bridge. */
export const PCI_EXP_TYPE_PCI_BRIDGE = 0x7;
/** Port type: PCI/PCI-X to PCIe bridge. */
export const PCI_EXP_TYPE_PCIE_BRIDGE = 0x8;
/** Port type: root complex integrated endpoint. */
export const PCI_EXP_TYPE_RC_END = 0x9;
/** Port type: root complex event collector. */
export const PCI_EXP_TYPE_RC_EC = 0xa;
/** Device capabilities. */
export const PCI_EXP_DEVCAP = 4;
/** DEVCAP: function level reset capable. */
export const PCI_EXP_DEVCAP_FLR = 0x10000000;
/** Device control. */
export const PCI_EXP_DEVCTL = 8;
/** DEVCTL: Max_Payload_Size. */
export const PCI_EXP_DEVCTL_PAYLOAD = 0x00e0;
/** DEVCTL: phantom functions enable. */
export const PCI_EXP_DEVCTL_PHANTOM = 0x0200;
/** DEVCTL: Max_Read_Request_Size. */
export const PCI_EXP_DEVCTL_READRQ = 0x7000;
/** DEVCTL: bridge configuration retry / initiate FLR. */
export const PCI_EXP_DEVCTL_BCR_FLR = 0x8000;
/** Device status. */
export const PCI_EXP_DEVSTA = 10;
/** Link capabilities. */
export const PCI_EXP_LNKCAP = 12;
/** Link control. */
export const PCI_EXP_LNKCTL = 16;
/** Link status. */
export const PCI_EXP_LNKSTA = 18;
/** Slot control. */
export const PCI_EXP_SLTCTL = 24;
/** Root control. */
export const PCI_EXP_RTCTL = 28;
/** Device capabilities 2. */
export const PCI_EXP_DEVCAP2 = 36;
/** DEVCAP2: AtomicOp routing supported (switch and root ports). */
export const PCI_EXP_DEVCAP2_ATOMIC_ROUTE = 0x00000040;
/** DEVCAP2: 32-bit AtomicOp completer supported. */
export const PCI_EXP_DEVCAP2_ATOMIC_COMP32 = 0x00000080;
/** DEVCAP2: 64-bit AtomicOp completer supported. */
export const PCI_EXP_DEVCAP2_ATOMIC_COMP64 = 0x00000100;
/** DEVCAP2: 128-bit CAS completer supported. */
export const PCI_EXP_DEVCAP2_ATOMIC_COMP128 = 0x00000200;
/** Device control 2. */
export const PCI_EXP_DEVCTL2 = 40;
/** DEVCTL2: ARI forwarding enable. */
export const PCI_EXP_DEVCTL2_ARI = 0x0020;
/** DEVCTL2: AtomicOp requester enable. */
export const PCI_EXP_DEVCTL2_ATOMIC_REQ = 0x0040;
/** DEVCTL2: AtomicOp egress blocking. */
export const PCI_EXP_DEVCTL2_ATOMIC_EGRESS_BLOCK = 0x0080;
/** Link capabilities 2. */
export const PCI_EXP_LNKCAP2 = 44;
/** Link control 2. */
export const PCI_EXP_LNKCTL2 = 48;
/** End of a v1 PCIe capability of an endpoint with a link. */
export const PCI_CAP_EXP_ENDPOINT_SIZEOF_V1 = 20;
/** End of a v2 PCIe capability of an endpoint with a link. */
export const PCI_CAP_EXP_ENDPOINT_SIZEOF_V2 = 52;

// HyperTransport, SATA
/** HT capability: 3-bit capability type mask. */
export const HT_3BIT_CAP_MASK = 0xe0;
/** HT capability size (slave/primary). */
export const HT_CAP_SIZEOF_LONG = 28;
/** HT capability size (host/secondary). */
export const HT_CAP_SIZEOF_SHORT = 24;
/** SATA capability: register location specifier. */
export const PCI_SATA_REGS = 4;
/** SATA register location mask. */
export const PCI_SATA_REGS_MASK = 0xf;
/** SATA registers inline in config space. */
export const PCI_SATA_REGS_INLINE = 0xf;
/** SATA capability size (registers in a BAR). */
export const PCI_SATA_SIZEOF_SHORT = 8;
/** SATA capability size (registers inline). */
export const PCI_SATA_SIZEOF_LONG = 16;

// Extended capabilities
/** Advanced Error Reporting. */
export const PCI_EXT_CAP_ID_ERR = 0x01;
/** Virtual Channel. */
export const PCI_EXT_CAP_ID_VC = 0x02;
/** Device Serial Number. */
export const PCI_EXT_CAP_ID_DSN = 0x03;
/** Power Budgeting. */
export const PCI_EXT_CAP_ID_PWR = 0x04;
/** Root Complex Link Declaration. */
export const PCI_EXT_CAP_ID_RCLD = 0x05;
/** Root Complex Internal Link Control. */
export const PCI_EXT_CAP_ID_RCILC = 0x06;
/** Root Complex Event Collector. */
export const PCI_EXT_CAP_ID_RCEC = 0x07;
/** Multi-Function VC. */
export const PCI_EXT_CAP_ID_MFVC = 0x08;
/** Virtual Channel (same as VC). */
export const PCI_EXT_CAP_ID_VC9 = 0x09;
/** Root Complex Register Block. */
export const PCI_EXT_CAP_ID_RCRB = 0x0a;
/** Vendor-specific. */
export const PCI_EXT_CAP_ID_VNDR = 0x0b;
/** Config access (obsolete). */
export const PCI_EXT_CAP_ID_CAC = 0x0c;
/** Access Control Services. */
export const PCI_EXT_CAP_ID_ACS = 0x0d;
/** Alternative Routing-ID Interpretation. */
export const PCI_EXT_CAP_ID_ARI = 0x0e;
/** Address Translation Services. */
export const PCI_EXT_CAP_ID_ATS = 0x0f;
/** Single Root I/O Virtualization. */
export const PCI_EXT_CAP_ID_SRIOV = 0x10;
/** Multi Root I/O Virtualization. */
export const PCI_EXT_CAP_ID_MRIOV = 0x11;
/** Multicast. */
export const PCI_EXT_CAP_ID_MCAST = 0x12;
/** Page Request Interface. */
export const PCI_EXT_CAP_ID_PRI = 0x13;
/** Reserved for AMD. */
export const PCI_EXT_CAP_ID_AMD_XXX = 0x14;
/** Resizable BAR. */
export const PCI_EXT_CAP_ID_REBAR = 0x15;
/** Dynamic Power Allocation. */
export const PCI_EXT_CAP_ID_DPA = 0x16;
/** TPH Requester. */
export const PCI_EXT_CAP_ID_TPH = 0x17;
/** Latency Tolerance Reporting. */
export const PCI_EXT_CAP_ID_LTR = 0x18;
/** Secondary PCIe. */
export const PCI_EXT_CAP_ID_SECPCI = 0x19;
/** Protocol Multiplexing. */
export const PCI_EXT_CAP_ID_PMUX = 0x1a;
/** Process Address Space ID. */
export const PCI_EXT_CAP_ID_PASID = 0x1b;
/** Downstream Port Containment. */
export const PCI_EXT_CAP_ID_DPC = 0x1d;
/** L1 PM Substates. */
export const PCI_EXT_CAP_ID_L1SS = 0x1e;
/** Precision Time Measurement. */
export const PCI_EXT_CAP_ID_PTM = 0x1f;
/** Designated Vendor-Specific. */
export const PCI_EXT_CAP_ID_DVSEC = 0x23;
/** Data Link Feature. */
export const PCI_EXT_CAP_ID_DLF = 0x25;
/** Physical Layer 16.0 GT/s. */
export const PCI_EXT_CAP_ID_PL_16GT = 0x26;
/** Native PCIe Enclosure Management. */
export const PCI_EXT_CAP_ID_NPEM = 0x29;
/** Physical Layer 32.0 GT/s. */
export const PCI_EXT_CAP_ID_PL_32GT = 0x2a;
/** Data Object Exchange. */
export const PCI_EXT_CAP_ID_DOE = 0x2e;
/** Highest extended capability ID Linux 6.12 knows (PCI_EXT_CAP_ID_DOE). */
export const PCI_EXT_CAP_ID_MAX = PCI_EXT_CAP_ID_DOE;

/** Extended capability IDs (PCI_EXT_CAP_ID_*) by their suffix. */
export const PCI_EXT_CAP_ID = {
  ERR: PCI_EXT_CAP_ID_ERR,
  VC: PCI_EXT_CAP_ID_VC,
  DSN: PCI_EXT_CAP_ID_DSN,
  PWR: PCI_EXT_CAP_ID_PWR,
  RCLD: PCI_EXT_CAP_ID_RCLD,
  RCILC: PCI_EXT_CAP_ID_RCILC,
  RCEC: PCI_EXT_CAP_ID_RCEC,
  MFVC: PCI_EXT_CAP_ID_MFVC,
  VC9: PCI_EXT_CAP_ID_VC9,
  RCRB: PCI_EXT_CAP_ID_RCRB,
  VNDR: PCI_EXT_CAP_ID_VNDR,
  CAC: PCI_EXT_CAP_ID_CAC,
  ACS: PCI_EXT_CAP_ID_ACS,
  ARI: PCI_EXT_CAP_ID_ARI,
  ATS: PCI_EXT_CAP_ID_ATS,
  SRIOV: PCI_EXT_CAP_ID_SRIOV,
  MRIOV: PCI_EXT_CAP_ID_MRIOV,
  MCAST: PCI_EXT_CAP_ID_MCAST,
  PRI: PCI_EXT_CAP_ID_PRI,
  AMD_XXX: PCI_EXT_CAP_ID_AMD_XXX,
  REBAR: PCI_EXT_CAP_ID_REBAR,
  DPA: PCI_EXT_CAP_ID_DPA,
  TPH: PCI_EXT_CAP_ID_TPH,
  LTR: PCI_EXT_CAP_ID_LTR,
  SECPCI: PCI_EXT_CAP_ID_SECPCI,
  PMUX: PCI_EXT_CAP_ID_PMUX,
  PASID: PCI_EXT_CAP_ID_PASID,
  DPC: PCI_EXT_CAP_ID_DPC,
  L1SS: PCI_EXT_CAP_ID_L1SS,
  PTM: PCI_EXT_CAP_ID_PTM,
  DVSEC: PCI_EXT_CAP_ID_DVSEC,
  DLF: PCI_EXT_CAP_ID_DLF,
  PL_16GT: PCI_EXT_CAP_ID_PL_16GT,
  NPEM: PCI_EXT_CAP_ID_NPEM,
  PL_32GT: PCI_EXT_CAP_ID_PL_32GT,
  DOE: PCI_EXT_CAP_ID_DOE,
} as const;

/** Capability ID field of an extended capability header (Linux's `PCI_EXT_CAP_ID(header)`). */
export function pciExtCapId(header: number): number {
  return header & 0xffff;
}
/** Next-capability offset of an extended capability header (Linux's `PCI_EXT_CAP_NEXT(header)`). */
export function pciExtCapNext(header: number): number {
  return (header >>> 20) & 0xffc;
}

// Advanced Error Reporting
/** Uncorrectable error status. */
export const PCI_ERR_UNCOR_STATUS = 4;
/** Uncorrectable error mask. */
export const PCI_ERR_UNCOR_MASK = 8;
/** Uncorrectable error severity. */
export const PCI_ERR_UNCOR_SEVER = 12;
/** Correctable error status. */
export const PCI_ERR_COR_STATUS = 16;
/** Correctable error mask. */
export const PCI_ERR_COR_MASK = 20;
/** Advanced error capabilities and control. */
export const PCI_ERR_CAP = 24;
/** ECRC generation enable. */
export const PCI_ERR_CAP_ECRC_GENE = 0x00000040;
/** ECRC check enable. */
export const PCI_ERR_CAP_ECRC_CHKE = 0x00000100;
/** Root error command. */
export const PCI_ERR_ROOT_COMMAND = 44;

// Other extended capabilities
/** Size of the Device Serial Number capability. */
export const PCI_EXT_CAP_DSN_SIZEOF = 12;
/** Size of the Power Budgeting capability. */
export const PCI_EXT_CAP_PWR_SIZEOF = 16;
/** Power Budgeting data register. */
export const PCI_PWR_DATA = 8;
/** Size of the ARI capability. */
export const PCI_EXT_CAP_ARI_SIZEOF = 8;
/** Size of the ATS capability. */
export const PCI_EXT_CAP_ATS_SIZEOF = 8;
/** Size of the SR-IOV capability. */
export const PCI_EXT_CAP_SRIOV_SIZEOF = 64;
/** Size of the Multicast capability of an endpoint. */
export const PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF = 40;
/** Size of the PRI capability. */
export const PCI_EXT_CAP_PRI_SIZEOF = 16;
/** Size of the LTR capability. */
export const PCI_EXT_CAP_LTR_SIZEOF = 8;
/** Vendor-specific (VSEC) header. */
export const PCI_VNDR_HEADER = 4;
/** DVSEC header 1. */
export const PCI_DVSEC_HEADER1 = 4;
/** VC: port capability 1. */
export const PCI_VC_PORT_CAP1 = 4;
/** VC: extended VC count. */
export const PCI_VC_CAP1_EVCC = 0x7;
/** VC: port capability 2. */
export const PCI_VC_PORT_CAP2 = 8;
/** VC: 32-phase arbitration table. */
export const PCI_VC_CAP2_32_PHASE = 0x2;
/** VC: 64-phase arbitration table. */
export const PCI_VC_CAP2_64_PHASE = 0x4;
/** VC: 128-phase arbitration table. */
export const PCI_VC_CAP2_128_PHASE = 0x8;
/** Size of the VC capability without per-VC resources. */
export const PCI_CAP_VC_BASE_SIZEOF = 0x10;
/** Size of one VC resource. */
export const PCI_CAP_VC_PER_VC_SIZEOF = 0x0c;
/** ACS capability register. */
export const PCI_ACS_CAP = 4;
/** ACS control register. */
export const PCI_ACS_CTRL = 6;
/** ACS: source validation. */
export const PCI_ACS_SV = 0x01;
/** ACS: translation blocking. */
export const PCI_ACS_TB = 0x02;
/** ACS: P2P request redirect. */
export const PCI_ACS_RR = 0x04;
/** ACS: P2P completion redirect. */
export const PCI_ACS_CR = 0x08;
/** ACS: upstream forwarding. */
export const PCI_ACS_UF = 0x10;
/** ACS: P2P egress control. */
export const PCI_ACS_EC = 0x20;
/** ACS: direct translated P2P. */
export const PCI_ACS_DT = 0x40;
/** ACS capability: egress control vector size field. */
export const PCI_ACS_EGRESS_BITS = 5;
/** Resizable BAR control register. */
export const PCI_REBAR_CTRL = 8;
/** Resizable BAR: number of resizable BARs. */
export const PCI_REBAR_CTRL_NBAR_MASK = 0xe0;
/** Shift of the number-of-BARs field. */
export const PCI_REBAR_CTRL_NBAR_SHIFT = 5;
/** DPA capability register. */
export const PCI_DPA_CAP = 4;
/** DPA: number of substates minus one. */
export const PCI_DPA_CAP_SUBSTATE_MASK = 0x1f;
/** Size of the DPA capability with no substates. */
export const PCI_DPA_BASE_SIZEOF = 16;
/** TPH requester capability register. */
export const PCI_TPH_CAP = 4;
/** TPH: steering table location. */
export const PCI_TPH_CAP_LOC_MASK = 0x600;
/** TPH: steering table in the capability. */
export const PCI_TPH_LOC_CAP = 0x200;
/** TPH: steering table size field. */
export const PCI_TPH_CAP_ST_MASK = 0x07ff0000;
/** Shift of the steering table size field. */
export const PCI_TPH_CAP_ST_SHIFT = 16;
/** Size of the TPH capability without a steering table. */
export const PCI_TPH_BASE_SIZEOF = 12;
