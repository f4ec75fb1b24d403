/**
 * Names for PCI ids, classes and capabilities, as lspci prints them (a small table: the devices the simulated
 * hosts carry and the common classes; anything else prints as its number).
 */

const VENDORS: Readonly<Record<number, string>> = {
  0x8086: 'Intel Corporation',
  0x1234: 'QEMU',
  0x1b36: 'Red Hat, Inc.',
  0x1af4: 'Red Hat, Inc.',
  0x104c: 'Texas Instruments',
  0x10de: 'NVIDIA Corporation',
  0x1022: 'Advanced Micro Devices, Inc. [AMD]',
  0x10ec: 'Realtek Semiconductor Co., Ltd.',
  0x144d: 'Samsung Electronics Co Ltd',
  0x494f: 'ACCES I/O Products, Inc.',
};

const DEVICES: Readonly<Record<string, string>> = {
  '1234:11e8': 'QEMU edu device',
  '8086:100e': '82540EM Gigabit Ethernet Controller',
  '8086:10d3': '82574L Gigabit Network Connection',
  '1b36:000c': 'QEMU PCIe Root port',
  '1b36:0001': 'QEMU PCI-PCI bridge',
  '104c:8232': 'XIO3130 PCI Express Switch (Upstream)',
  '104c:8233': 'XIO3130 PCI Express Switch (Downstream)',
};

/** Base class + subclass (the top 16 bits of the class code). */
const CLASSES: Readonly<Record<number, string>> = {
  0x0000: 'Non-VGA unclassified device',
  0x00ff: 'Unclassified device',
  0x0100: 'SCSI storage controller',
  0x0101: 'IDE interface',
  0x0106: 'SATA controller',
  0x0108: 'Non-Volatile memory controller',
  0x0200: 'Ethernet controller',
  0x0280: 'Network controller',
  0x0300: 'VGA compatible controller',
  0x0302: '3D controller',
  0x0380: 'Display controller',
  0x0403: 'Audio device',
  0x0600: 'Host bridge',
  0x0601: 'ISA bridge',
  0x0604: 'PCI bridge',
  0x0880: 'System peripheral',
  0x0c03: 'USB controller',
  0x0c05: 'SMBus',
  0x1180: 'Signal processing controller',
  0x1200: 'Processing accelerators',
  0xff00: 'Unassigned class',
};

/** Standard capability names (lspci's wording). */
const CAPS: Readonly<Record<number, string>> = {
  0x01: 'Power Management',
  0x02: 'AGP',
  0x03: 'Vital Product Data',
  0x04: 'Slot Identification',
  0x05: 'MSI',
  0x06: 'CompactPCI hot-swap',
  0x07: 'PCI-X',
  0x08: 'HyperTransport',
  0x09: 'Vendor Specific',
  0x0a: 'Debug port',
  0x0b: 'CompactPCI central resource control',
  0x0c: 'PCI Standard Hot-Plug Controller',
  0x0d: 'Subsystem',
  0x0e: 'AGP 3.0',
  0x0f: 'Secure device',
  0x10: 'Express',
  0x11: 'MSI-X',
  0x12: 'SATA HBA',
  0x13: 'PCI Advanced Features',
  0x14: 'Enhanced Allocation',
};

/** Extended capability names (lspci's wording). */
const EXT_CAPS: Readonly<Record<number, string>> = {
  0x01: 'Advanced Error Reporting',
  0x02: 'Virtual Channel',
  0x03: 'Device Serial Number',
  0x04: 'Power Budgeting',
  0x05: 'Root Complex Link',
  0x06: 'Root Complex Internal Link',
  0x07: 'Root Complex Event Collector',
  0x08: 'Multi-Function Virtual Channel',
  0x09: 'Virtual Channel',
  0x0a: 'Root Complex Register Block',
  0x0b: 'Vendor Specific Information',
  0x0c: 'Config Access Correlation',
  0x0d: 'Access Control Services',
  0x0e: 'Alternative Routing-ID Interpretation (ARI)',
  0x0f: 'Address Translation Service (ATS)',
  0x10: 'Single Root I/O Virtualization (SR-IOV)',
  0x11: 'Multi-Root I/O Virtualization (MR-IOV)',
  0x12: 'Multicast',
  0x13: 'Page Request Interface (PRI)',
  0x15: 'Resizable BAR',
  0x16: 'Dynamic Power Allocation',
  0x17: 'TPH Requester',
  0x18: 'Latency Tolerance Reporting',
  0x19: 'Secondary PCI Express',
  0x1b: 'Process Address Space ID (PASID)',
  0x1d: 'Downstream Port Containment',
  0x1e: 'L1 PM Substates',
  0x1f: 'Precision Time Measurement',
  0x23: 'Designated Vendor-Specific',
  0x25: 'Data Link Feature',
  0x26: 'Physical Layer 16.0 GT/s',
};

const h = (n: number, w: number): string => n.toString(16).padStart(w, '0');

/** `Ethernet controller` for class code 0x020000. */
export function className(classCode: number): string {
  return CLASSES[classCode >>> 8] ?? `Class ${h(classCode >>> 8, 4)}`;
}

/** `Intel Corporation 82540EM Gigabit Ethernet Controller`, or lspci's `Device 1234:5678` form. */
export function deviceName(vendor: number, device: number): string {
  const v = VENDORS[vendor];
  const d = DEVICES[`${h(vendor, 4)}:${h(device, 4)}`];
  if (d !== undefined) return v === undefined ? d : `${v} ${d}`;
  return v === undefined ? `Device ${h(vendor, 4)}:${h(device, 4)}` : `${v} Device ${h(device, 4)}`;
}

/** A standard capability's name. */
export function capabilityName(id: number): string {
  return CAPS[id] ?? `Capability ${h(id, 2)}`;
}

/** An extended capability's name. */
export function extCapabilityName(id: number): string {
  return EXT_CAPS[id] ?? `Extended Capability ${h(id, 4)}`;
}
