/**
 * The few PCI-core services vfio-pci leans on (Linux drivers/pci: pci_save_state / pci_restore_state,
 * pci_intx_mask_supported, pci_set_power_state, pci_map_rom's image check, capability walks), written over the
 * raw config accessors of a {@link PciFunction} because the platform contract exposes only those.
 */
import type { PciDeviceHandle, PciFunction } from '@vfio-ts/platform';
import {
  PCI_EXP_LNKCTL,
  PCI_EXP_LNKCTL2,
  PCI_EXP_RTCTL,
  PCI_EXP_SLTCTL,
  PCI_PM_CTRL_NO_SOFT_RESET,
  sysError,
} from '@vfio-ts/uapi';
import * as R from '../config/regs.js';

/** Raw config read that never throws: a model error reads all-ones, as a master abort does. */
export function cfgRead(fn: PciFunction, offset: number, size: 1 | 2 | 4): number {
  try {
    return fn.configRead(offset, size) >>> 0;
  } catch {
    return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  }
}

/** Raw config write; a model that rejects it keeps its value, as hardware ignores a write to a read-only bit. */
export function cfgWrite(fn: PciFunction, offset: number, size: 1 | 2 | 4, value: number): void {
  try {
    fn.configWrite(offset, size, value >>> 0);
  } catch {
    /* ignored, see above */
  }
}

/** Offset of standard capability `id` in the hardware chain (pci_find_capability), 0 when absent. */
export function findHwCapability(fn: PciFunction, id: number): number {
  if ((cfgRead(fn, R.PCI_STATUS, 2) & R.PCI_STATUS_CAP_LIST) === 0) return 0;
  let pos = cfgRead(fn, R.PCI_CAPABILITY_LIST, 1) & ~3;
  // At most 48 capabilities fit in 192 bytes (PCI_FIND_CAP_TTL): a looping chain ends here.
  for (let ttl = 48; pos >= 0x40 && ttl > 0; ttl--) {
    const hdr = cfgRead(fn, pos, 2);
    if ((hdr & 0xff) === 0xff) return 0;
    if ((hdr & 0xff) === id) return pos;
    pos = (hdr >> 8) & ~3;
  }
  return 0;
}

/** PCIe capability registers pci_save_pcie_state keeps, each with the rule saying whether the function has it. */
const EXP_SAVED: readonly { readonly off: number; readonly has: (flags: number) => boolean }[] = [
  { off: R.PCI_EXP_DEVCTL, has: () => true },
  { off: PCI_EXP_LNKCTL, has: hasLinkControl },
  { off: PCI_EXP_SLTCTL, has: hasSlotControl },
  { off: PCI_EXP_RTCTL, has: hasRootControl },
  { off: R.PCI_EXP_DEVCTL2, has: (flags) => (flags & R.PCI_EXP_FLAGS_VERS) > 1 },
  { off: PCI_EXP_LNKCTL2, has: (flags) => hasLinkControl(flags) && (flags & R.PCI_EXP_FLAGS_VERS) > 1 },
];

/** pcie_cap_has_lnkctl: ports and endpoints with a link (not root-complex integrated endpoints or event collectors). */
function hasLinkControl(flags: number): boolean {
  const type = (flags & R.PCI_EXP_FLAGS_TYPE) >> 4;
  // Endpoint, legacy endpoint, root port, upstream/downstream switch port, PCIe-to-PCI and PCI-to-PCIe bridges.
  return type === 0 || type === 1 || (type >= 4 && type <= 8);
}

/** pcie_cap_has_sltctl: a root or downstream port whose Slot Implemented bit is set. */
function hasSlotControl(flags: number): boolean {
  const type = (flags & R.PCI_EXP_FLAGS_TYPE) >> 4;
  return (type === 4 || type === 6) && (flags & 0x0100) !== 0;
}

/** pcie_cap_has_rtctl: root ports and root-complex event collectors. */
function hasRootControl(flags: number): boolean {
  const type = (flags & R.PCI_EXP_FLAGS_TYPE) >> 4;
  return type === 4 || type === 0xa;
}

/**
 * Offset of extended capability `id` (pci_find_ext_capability), 0 when absent. Only PCIe functions are searched:
 * the others have no extended config space.
 */
function findHwExtCapability(fn: PciFunction, id: number): number {
  if (!findHwCapability(fn, R.PCI_CAP_ID.EXP)) return 0;
  let pos = R.PCI_CFG_SPACE_SIZE;
  let header = cfgRead(fn, pos, 4);
  if (header === 0) return 0;
  // At least 8 bytes per capability: a looping chain ends here.
  for (let ttl = (R.PCI_CFG_SPACE_EXP_SIZE - R.PCI_CFG_SPACE_SIZE) / 8; ttl > 0; ttl--) {
    if (R.extCapId(header) === id) return pos;
    pos = R.extCapNext(header);
    if (pos < R.PCI_CFG_SPACE_SIZE) break;
    header = cfgRead(fn, pos, 4);
  }
  return 0;
}

/** What pci_save_state captured: the type-0 header, the PCIe control registers and the AER controls. */
export interface PciSavedState {
  readonly header: readonly number[];
  readonly exp: number;
  /** The saved PCIe registers, `undefined` for one the function does not implement (never written back). */
  readonly expRegs: readonly (number | undefined)[];
  /** Offset of the AER capability (0 when absent). */
  readonly aer: number;
  /** UNCOR_MASK, UNCOR_SEVER, COR_MASK, CAP (and ROOT_COMMAND for root ports / event collectors). */
  readonly aerRegs: readonly number[];
}

/** AER registers pci_save_aer_state keeps, in the order pci_restore_aer_state writes them back. */
const AER_SAVED = [R.PCI_ERR_UNCOR_MASK, R.PCI_ERR_UNCOR_SEVER, R.PCI_ERR_COR_MASK, R.PCI_ERR_CAP] as const;

/**
 * pci_save_state: the 16 header dwords, the PCIe control registers the function implements
 * (pcie_capability_reg_implemented: a version-1 capability has no DEVCTL2/LNKCTL2, a root-complex integrated endpoint
 * no link) and the AER mask/severity/control registers (drivers/pci/pcie/aer.c pci_save_aer_state).
 */
export function saveState(fn: PciFunction): PciSavedState {
  const header = Array.from({ length: 16 }, (_, i) => cfgRead(fn, 4 * i, 4));
  const exp = findHwCapability(fn, R.PCI_CAP_ID.EXP);
  const flags = exp ? cfgRead(fn, exp + R.PCI_EXP_FLAGS, 2) : 0;
  const expRegs = exp ? EXP_SAVED.map((r) => (r.has(flags) ? cfgRead(fn, exp + r.off, 2) : undefined)) : [];
  const aer = exp ? findHwExtCapability(fn, R.PCI_EXT_CAP_ID.ERR) : 0;
  const aerOffsets = hasRootControl(flags) ? [...AER_SAVED, R.PCI_ERR_ROOT_COMMAND] : AER_SAVED;
  const aerRegs = aer ? aerOffsets.map((off) => cfgRead(fn, aer + off, 4)) : [];
  return { header, exp, expRegs, aer, aerRegs };
}

/**
 * pci_restore_state: PCIe controls first, then the AER controls, then the header from the top down writing only
 * dwords that differ (pci_restore_config_space), COMMAND/STATUS last so decoding comes back after the BARs.
 */
export function restoreState(fn: PciFunction, s: PciSavedState): void {
  if (s.exp) {
    EXP_SAVED.forEach((r, i) => {
      const saved = s.expRegs[i];
      if (saved === undefined) return;
      // Never write an FLR initiate bit back.
      cfgWrite(fn, s.exp + r.off, 2, r.off === R.PCI_EXP_DEVCTL ? saved & ~R.PCI_EXP_DEVCTL_BCR_FLR : saved);
    });
  }
  if (s.aer) {
    const offsets = s.aerRegs.length > AER_SAVED.length ? [...AER_SAVED, R.PCI_ERR_ROOT_COMMAND] : AER_SAVED;
    offsets.forEach((off, i) => {
      cfgWrite(fn, s.aer + off, 4, s.aerRegs[i] ?? 0);
    });
  }
  for (let i = 15; i >= 2; i--) {
    const v = s.header[i] ?? 0;
    if (cfgRead(fn, 4 * i, 4) !== v) cfgWrite(fn, 4 * i, 4, v);
  }
  cfgWrite(fn, 0, 4, s.header[0] ?? 0);
  cfgWrite(fn, R.PCI_COMMAND, 2, (s.header[1] ?? 0) & 0xffff);
}

/**
 * pci_try_reset_function: ENOTTY when the function has no reset method; otherwise save the state, quiesce the
 * function (COMMAND holds only INTx-disable), reset it, and restore the saved state whether or not the reset worked
 * (pci_dev_save_and_disable / pci_dev_restore). The restore brings back what a reset clears but pci_save_state
 * keeps, such as the AER masks and severities.
 */
export function tryResetFunction(pdev: PciDeviceHandle): void {
  if (pdev.resetMethods.length === 0) throw sysError('ENOTTY', `${pdev.bdf}: no function reset method`);
  const fn = pdev.fn;
  const saved = saveState(fn);
  cfgWrite(fn, R.PCI_COMMAND, 2, R.PCI_COMMAND_INTX_DISABLE);
  try {
    pdev.functionReset();
  } finally {
    restoreState(fn, saved);
  }
}

/**
 * pci_intx_mask_supported: DisINTx toggles and nothing else in COMMAND moves. The original value is written back
 * when it toggled.
 */
export function intxMaskSupported(fn: PciFunction): boolean {
  const orig = cfgRead(fn, R.PCI_COMMAND, 2);
  cfgWrite(fn, R.PCI_COMMAND, 2, orig ^ R.PCI_COMMAND_INTX_DISABLE);
  const now = cfgRead(fn, R.PCI_COMMAND, 2);
  if (((now ^ orig) & ~R.PCI_COMMAND_INTX_DISABLE) !== 0) return false;
  if (((now ^ orig) & R.PCI_COMMAND_INTX_DISABLE) === 0) return false;
  cfgWrite(fn, R.PCI_COMMAND, 2, orig);
  return true;
}

/** Sets or clears bits of the hardware COMMAND register (pci_clear_master, pci_intx, pci_enable_resources). */
export function updateCommand(fn: PciFunction, set: number, clear: number): void {
  const cmd = cfgRead(fn, R.PCI_COMMAND, 2);
  const next = (cmd & ~clear) | set;
  if (next !== cmd) cfgWrite(fn, R.PCI_COMMAND, 2, next);
}

/** PowerState of the hardware PM capability (D0 when the function has none). */
export function hwPowerState(fn: PciFunction): 0 | 1 | 2 | 3 {
  const pm = findHwCapability(fn, R.PCI_CAP_ID.PM);
  if (!pm) return 0;
  return (cfgRead(fn, pm + R.PCI_PM_CTRL, 2) & R.PCI_PM_CTRL_STATE_MASK) as 0 | 1 | 2 | 3;
}

/**
 * pci_set_power_state on the hardware register: EIO without a PM capability for a low-power state, EINVAL for D1/D2
 * the capability does not claim. PME_Status (write-one-to-clear) is preserved.
 */
export function setHwPowerState(fn: PciFunction, state: 0 | 1 | 2 | 3): void {
  const pm = findHwCapability(fn, R.PCI_CAP_ID.PM);
  if (!pm) {
    if (state === 0) return;
    throw sysError('EIO', 'no PM capability');
  }
  const pmc = cfgRead(fn, pm + R.PCI_PM_PMC, 2);
  if ((state === 1 && !(pmc & R.PCI_PM_CAP_D1)) || (state === 2 && !(pmc & R.PCI_PM_CAP_D2))) {
    throw sysError('EIO', `D${state} not supported`);
  }
  const ctrl = cfgRead(fn, pm + R.PCI_PM_CTRL, 2);
  if ((ctrl & R.PCI_PM_CTRL_STATE_MASK) === state) return;
  cfgWrite(fn, pm + R.PCI_PM_CTRL, 2, (ctrl & ~(R.PCI_PM_CTRL_STATE_MASK | R.PCI_PM_CTRL_PME_STATUS)) | state);
}

/** True when the PM capability says the function resets itself on D3hot→D0 (NoSoftRst clear). */
export function needsPmRestore(fn: PciFunction): boolean {
  const pm = findHwCapability(fn, R.PCI_CAP_ID.PM);
  return pm !== 0 && (cfgRead(fn, pm + R.PCI_PM_CTRL, 2) & PCI_PM_CTRL_NO_SOFT_RESET) === 0;
}

/**
 * pci_get_rom_size: the bytes of the ROM images, walking each image's 0x55AA signature and PCIR structure; 0 when
 * the first image is invalid (then pci_map_rom fails).
 */
export function romImageSize(read: (offset: number, length: number) => Uint8Array, romSize: number): number {
  const u16 = (b: Uint8Array, o: number): number => (b[o] ?? 0) | ((b[o + 1] ?? 0) << 8);
  let image = 0;
  for (let guard = 0; guard < 64 && image + 0x1a <= romSize; guard++) {
    const head = read(image, 0x1a);
    if (u16(head, 0) !== 0xaa55) break;
    const pcir = image + u16(head, 0x18);
    if (pcir + 0x18 > romSize) break;
    const data = read(pcir, 0x18);
    if (data[0] !== 0x50 || data[1] !== 0x43 || data[2] !== 0x49 || data[3] !== 0x52) break; // "PCIR"
    const length = u16(data, 0x10) * 512;
    const last = ((data[0x15] ?? 0) & 0x80) !== 0;
    if (length === 0) break;
    image += length;
    if (last || image >= romSize) break;
  }
  return Math.min(image, romSize);
}

/** The parts of a 'DDDD:BB:DD.F' address (hex). */
export function splitBdf(bdf: string): { segment: number; bus: number; devfn: number } {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(bdf);
  if (!m) return { segment: 0, bus: 0, devfn: 0 };
  return {
    segment: parseInt(m[1]!, 16),
    bus: parseInt(m[2]!, 16),
    devfn: (parseInt(m[3]!, 16) << 3) | parseInt(m[4]!, 10),
  };
}
