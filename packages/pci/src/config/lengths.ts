/**
 * Capability lengths as Linux's vfio_pci_config.c knows them (inventory §3.2): 0 hides the capability from the
 * user's chain, {@link VARIABLE} means "read the capability's own header to size it".
 */
import * as R from './regs.js';

/** Marks a capability whose length depends on its contents. */
export const VARIABLE = 0xff;

const C = R.PCI_CAP_ID;
const E = R.PCI_EXT_CAP_ID;

/** Length of standard capability `id` (1..PCI_CAP_ID_MAX); IDs without an entry are hidden (0). */
export function standardCapLength(id: number): number {
  switch (id) {
    case C.PM:
      return R.PCI_PM_SIZEOF;
    case C.AGP:
      return R.PCI_AGP_SIZEOF;
    case C.VPD:
      return R.PCI_CAP_VPD_SIZEOF;
    case C.MSI: // 10, 14, 20 or 24
    case C.PCIX: // 8 or 24
    case C.HT:
    case C.VNDR:
    case C.EXP:
    case C.SATA:
      return VARIABLE;
    case C.MSIX:
      return R.PCI_CAP_MSIX_SIZEOF;
    case C.AF:
      return R.PCI_CAP_AF_SIZEOF;
    // SLOTID, CHSWP, DBG, CCRC, SHPC, SSVID, AGP3, SECDEV, EA: hidden.
    default:
      return 0;
  }
}

/** Length of extended capability `id` (0..PCI_EXT_CAP_ID_MAX); IDs without an entry are hidden (0). */
export function extendedCapLength(id: number): number {
  switch (id) {
    case E.ERR:
      return R.PCI_ERR_ROOT_COMMAND;
    case E.VC:
    case E.MFVC:
    case E.VC9:
    case E.VNDR:
    case E.ACS:
    case E.REBAR:
    case E.DPA:
    case E.TPH:
    case E.DVSEC:
      return VARIABLE;
    case E.DSN:
      return R.PCI_EXT_CAP_DSN_SIZEOF;
    case E.PWR:
      return R.PCI_EXT_CAP_PWR_SIZEOF;
    case E.ARI:
      return R.PCI_EXT_CAP_ARI_SIZEOF;
    case E.ATS:
      return R.PCI_EXT_CAP_ATS_SIZEOF;
    case E.SRIOV:
      return R.PCI_EXT_CAP_SRIOV_SIZEOF;
    case E.MCAST:
      return R.PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF;
    case E.PRI:
      return R.PCI_EXT_CAP_PRI_SIZEOF;
    case E.LTR:
      return R.PCI_EXT_CAP_LTR_SIZEOF;
    // RCLD, RCILC, RCEC, RCRB, CAC, MRIOV, AMD_XXX, SECPCI, PMUX, PASID and everything newer: hidden.
    default:
      return 0;
  }
}
