import { describe, expect, it } from 'vitest';
import { PCI_CAP_ID, PCI_EXT_CAP_ID, VfioPciConfig } from '../src/index.js';
import { buildConfig, fakeFunction, header, le } from './helpers.js';

const ext = (id: number, next: number, body: readonly number[] = []): number[] => [
  ...le((id | (1 << 16) | (next << 20)) >>> 0, 4),
  ...body,
];

describe('capability lengths (Linux vfio_cap_len / vfio_ext_cap_len)', () => {
  it('sizes variable-length standard and extended capabilities from their registers', () => {
    const fn = fakeFunction(
      buildConfig(
        4096,
        header(0x40, {
          0x40: [PCI_CAP_ID.HT, 0x60, 0x00, 0x20], // host/secondary: short
          0x60: [PCI_CAP_ID.HT, 0x80, 0x00, 0x00], // slave/primary: long
          0x80: [PCI_CAP_ID.SATA, 0x90, 0x10, 0x00, 0x0f], // registers inline
          0x90: [PCI_CAP_ID.SATA, 0xa0, 0x10, 0x00, 0x04],
          0xa0: [PCI_CAP_ID.EXP, 0xe0, 0x02, 0x00], // v2 endpoint
          0xe0: [PCI_CAP_ID.AGP, 0xf0, 0x30, 0x00],
          0xf0: [PCI_CAP_ID.VNDR, 0x00, 0x0c],
          0x100: ext(PCI_EXT_CAP_ID.VC, 0x160, [...le(1, 4), ...le(0x4, 4)]), // 2 VCs, 64-phase arbitration
          0x160: ext(PCI_EXT_CAP_ID.ACS, 0x190, [0x20, 0x00]), // egress control, 256 bits
          0x190: ext(PCI_EXT_CAP_ID.REBAR, 0x1b0, [0, 0, 0, 0, 0x60]), // 3 BARs
          0x1b0: ext(PCI_EXT_CAP_ID.DPA, 0x1d0, [0x03]), // 4 substates
          0x1d0: ext(PCI_EXT_CAP_ID.TPH, 0x200, le(0x00070200, 4)), // ST table in the capability, 8 entries
          0x200: ext(PCI_EXT_CAP_ID.ARI, 0x210),
          0x210: ext(PCI_EXT_CAP_ID.ATS, 0x220),
          0x220: ext(PCI_EXT_CAP_ID.SRIOV, 0x260),
          0x260: ext(PCI_EXT_CAP_ID.PRI, 0x270),
          0x270: ext(PCI_EXT_CAP_ID.LTR, 0x280),
          0x280: ext(PCI_EXT_CAP_ID.MCAST, 0x2c0),
          0x2c0: ext(PCI_EXT_CAP_ID.ACS, 0x300, [0x20, 40]), // 40 egress bits -> 64
          0x300: ext(PCI_EXT_CAP_ID.PWR, 0x320),
          0x320: ext(PCI_EXT_CAP_ID.DSN, 0),
        }),
      ),
    );
    const cfg = new VfioPciConfig(fn);
    expect(cfg.capabilities().map((c) => [c.offset, c.length])).toEqual([
      [0x40, 24],
      [0x60, 28],
      [0x80, 16],
      [0x90, 8],
      [0xa0, 52],
      [0xe0, 12],
      [0xf0, 12],
      [0x100, 80],
      [0x160, 40],
      [0x190, 28],
      [0x1b0, 20],
      [0x1d0, 28],
      [0x200, 8],
      [0x210, 8],
      [0x220, 64],
      [0x260, 16],
      [0x270, 8],
      [0x280, 40],
      [0x2c0, 16],
      [0x300, 16],
      [0x320, 12],
    ]);
    // Inside claimed capabilities only vendor-specific bytes (raw, header included), PCIe DEVCTL/DEVCTL2 and the power-budgeting
    // byte accept writes; everything else in them is read-only. (Gaps between capabilities are raw.)
    const before = fn.bytes.slice();
    cfg.writeBytes(0x40, new Uint8Array(0x330 - 0x40).fill(0xff));
    const writable = (i: number): boolean =>
      (i >= 0xa8 && i < 0xaa) || (i >= 0xc8 && i < 0xca) || (i >= 0xf0 && i < 0xfc) || i === 0x308;
    const changedInCaps: number[] = [];
    for (const c of cfg.capabilities()) {
      for (let i = c.offset; i < c.offset + c.length; i++) if (before[i] !== fn.bytes[i] && !writable(i)) changedInCaps.push(i);
    }
    expect(changedInCaps).toEqual([]);
    expect(fn.peek(0xf4, 4)).toBe(0xffffffff);
    expect(fn.peek(0x308, 1)).toBe(0xff);
  });

  it('hides a vendor-specific capability of length 0 and an ID-0 capability', () => {
    const fn = fakeFunction(
      buildConfig(256, header(0x40, { 0x40: [0x00, 0x50, 0, 0], 0x50: [PCI_CAP_ID.VNDR, 0x60, 0x00], 0x60: [PCI_CAP_ID.PM, 0x00, 0x03] })),
    );
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x34, 1)).toBe(0x60);
    expect(cfg.capabilities().map((c) => c.hidden)).toEqual([true, true, false]);
  });

  it('keeps an unknown first extended capability as a read-only placeholder', () => {
    const fn = fakeFunction(
      buildConfig(
        4096,
        header(0x40, { 0x40: [PCI_CAP_ID.EXP, 0x00, 0x02, 0x00], 0x100: ext(0x40, 0x140, [1, 2, 3, 4]), 0x140: ext(PCI_EXT_CAP_ID.DSN, 0) }),
      ),
    );
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x100, 4)).toBe((0x140 << 20) >>> 0);
    cfg.write(0x100, 4, 0xffffffff);
    expect(cfg.read(0x100, 4)).toBe((0x140 << 20) >>> 0);
    // Only the 4-byte header is claimed: the body is raw.
    cfg.write(0x104, 4, 0xa5a5a5a5);
    expect(fn.peek(0x104, 4)).toBe(0xa5a5a5a5);
  });
});
