/**
 * Conformance with Linux 6.12 for the PCI-core state vfio-pci relies on around resets and power transitions:
 * pci_save_state / pci_restore_state (drivers/pci/pci.c) keep the AER controls (drivers/pci/pcie/aer.c
 * pci_save_aer_state / pci_restore_aer_state) and only the PCIe registers the capability implements
 * (pcie_capability_reg_implemented), and pci_try_reset_function wraps every function reset in them.
 */
import { VFIO_DEVICE_RESET, vfioPciOffset } from '@vfio-ts/uapi';
import { ConfigSpaceFunction, pciFunctionFromConfig } from '@vfio-ts/sim';
import { describe, expect, it } from 'vitest';
import { E1000E_BAR_SPEC, E1000E_BDF, le32, makeHost, openDev, u32 } from './driver-helpers.js';
import { fixture } from './helpers.js';

const AER = 0x100;
const CFG = vfioPciOffset(7);

/** The e1000e capture with some AER registers set to other values (as firmware or an earlier driver left them). */
function e1000eWith(aer: Readonly<Record<number, number>>): Uint8Array {
  const c = fixture('e1000e').slice();
  const v = new DataView(c.buffer);
  for (const [off, value] of Object.entries(aer)) v.setUint32(AER + Number(off), value, true);
  return c;
}

/** A function whose resets, unlike the PCIe spec's sticky rule, clear the AER masks and severities. */
class ForgetfulAer extends ConfigSpaceFunction {
  override reset(kind: 'flr' | 'pm' | 'bus'): void {
    super.reset(kind);
    for (const off of [0x08, 0x0c, 0x14]) this.configWrite(AER + off, 4, 0);
  }
}

function openE1000e(fn: ConfigSpaceFunction) {
  const t = makeHost([{ bdf: E1000E_BDF, fn, driver: 'vfio-pci' }]);
  const fd = openDev(t, E1000E_BDF).device;
  const read = (off: number): number => u32(t.p.pread(fd, 4, CFG + BigInt(off)));
  const write = (off: number, v: number): void => {
    t.p.pwrite(fd, le32(v), CFG + BigInt(off));
  };
  return { t, fd, read, write };
}

describe('AER controls across resets (pci_save_aer_state / pci_restore_aer_state)', () => {
  it('the reset at open restores UNCOR_MASK, UNCOR_SEVER and COR_MASK even when the device clears them', () => {
    const fn = new ForgetfulAer({ config: e1000eWith({ 0x08: 0x00100000, 0x0c: 0x00062030, 0x14: 0x0000a000 }), bars: E1000E_BAR_SPEC });
    const { read } = openE1000e(fn);
    // vfio_pci_core_enable → pci_try_reset_function → pci_dev_restore → pci_restore_aer_state.
    expect([read(AER + 0x08), read(AER + 0x0c), read(AER + 0x14)]).toEqual([0x00100000, 0x00062030, 0x0000a000]);
    expect(fn.resets).toContain('pm');
  });

  it('VFIO_DEVICE_RESET keeps the severity the user wrote through the AER capability', () => {
    const fn = new ForgetfulAer({ config: fixture('e1000e'), bars: E1000E_BAR_SPEC });
    const { t, fd, read, write } = openE1000e(fn);
    // init_pci_ext_cap_err_perm: UNCOR_SEVER writable (standard bits) and not virtualized → goes to the device.
    write(AER + 0x0c, 0x00062030);
    expect(read(AER + 0x0c)).toBe(0x00062030);
    const before = fn.resets.length;
    t.p.ioctl(fd, VFIO_DEVICE_RESET);
    expect(fn.resets.length).toBe(before + 1);
    // vfio_pci_ioctl_reset → pci_try_reset_function: saved just before the reset, written back after it.
    expect(read(AER + 0x0c)).toBe(0x00062030);
  });
});

describe('PCIe registers a version-1 capability does not implement are neither saved nor restored', () => {
  it('an AER correctable-status bit where a v2 capability would keep LNKCTL2 survives open and close', () => {
    // The e1000e's PCIe capability (0xe0) is version 1 of a root-complex integrated endpoint: no LNKCTL, DEVCTL2 or
    // LNKCTL2 (pcie_capability_reg_implemented). Offset 0xe0 + 0x30 is AER's COR_STATUS (write-1-to-clear): writing
    // "LNKCTL2" back there would clear the Receiver Error bit.
    const fn = pciFunctionFromConfig({ config: e1000eWith({ 0x10: 0x00000001 }), bars: E1000E_BAR_SPEC });
    const { t, fd, read } = openE1000e(fn);
    expect(read(AER + 0x10)).toBe(1);
    t.p.close(fd);
    expect(fn.configRead(AER + 0x10, 4)).toBe(1);
  });
});

describe('pciFunctionFromConfig resets keep sticky registers (PCIe r6.0 §7.8.4: AER status, masks, severity)', () => {
  it('FLR-, PM- and bus-style resets clear decoding and BARs but keep the AER registers', () => {
    for (const kind of ['pm', 'flr', 'bus'] as const) {
      const fn = pciFunctionFromConfig({ config: e1000eWith({ 0x04: 0x00001000, 0x10: 0x00000040 }), bars: E1000E_BAR_SPEC });
      fn.reset(kind);
      expect(fn.configRead(0x04, 2)).toBe(0);
      expect(fn.configRead(0x10, 4)).toBe(0);
      expect([0x04, 0x08, 0x0c, 0x10, 0x14, 0x18].map((o) => fn.configRead(AER + o, 4))).toEqual([
        0x00001000, 0, 0x00462030, 0x00000040, 0x0000e000, 0xa0,
      ]);
    }
  });
});
