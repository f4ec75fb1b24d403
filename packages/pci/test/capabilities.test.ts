import { describe, expect, it, vi } from 'vitest';
import { PCI_CAP_ID, PCI_EXT_CAP_ID, VfioPciConfig } from '../src/index.js';
import { buildConfig, e1000e, edu, fakeFunction, header, le } from './helpers.js';

const ext = (id: number, ver: number, next: number): number[] => le((id | (ver << 16) | (next << 20)) >>> 0, 4);

describe('MSI', () => {
  it('virtualizes address and data; the device never sees them', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    cfg.write(0x44, 4, 0xfee01000);
    cfg.write(0x48, 4, 0x00000001);
    cfg.write(0x4c, 2, 0x4041);
    expect(cfg.read(0x44, 4)).toBe(0xfee01000);
    expect(cfg.read(0x48, 4)).toBe(1);
    expect(cfg.read(0x4c, 2)).toBe(0x4041);
    expect(fn.peek(0x44, 4)).toBe(0);
    expect(fn.peek(0x4c, 2)).toBe(0);
    expect(cfg.msiState()).toMatchObject({ offset: 0x40, address: 0x1fee01000n, data: 0x4041, is64Bit: true, enabled: false });
  });

  it('keeps ENABLE off until vfio-pci enabled MSI, and clips Multiple Message Enable', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    cfg.write(0xd2, 2, 0x00b1); // 64-bit kept + enable + QSIZE 3
    expect(cfg.read(0xd2, 2)).toBe(0x0080);
    expect(fn.peek(0xd2, 2)).toBe(0x0080);
    cfg.msiEnabled(4);
    expect(cfg.irqType).toBe('msi');
    cfg.write(0xd2, 2, 0x00b1);
    expect(cfg.read(0xd2, 2)).toBe(0x00a1); // QSIZE clipped to 2 (4 vectors)
    expect(fn.peek(0xd2, 2)).toBe(0x00a1); // and written to the device
    expect(cfg.msiState()).toMatchObject({ enabled: true, multipleMessageEnable: 2 });
    cfg.irqType = 'none';
    cfg.write(0xd2, 1, 0xa1);
    expect(cfg.read(0xd2, 2)).toBe(0x00a0);
    // The whole low flags byte is virtual and writable in Linux, capability bits included.
    cfg.write(0xd2, 1, 0x00);
    expect(cfg.read(0xd2, 2)).toBe(0x0000);
  });

  it('keeps the capability header and flags read-only where Linux does', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    cfg.write(0x40, 2, 0xffff);
    expect(cfg.read(0x40, 2)).toBe(0x0005);
    cfg.write(0x43, 1, 0xff); // reserved upper flags byte
    expect(cfg.read(0x42, 2)).toBe(0x0080);
  });

  it('writes mask bits through for per-vector-masking MSI', () => {
    const fn = fakeFunction(buildConfig(256, header(0x40, { 0x40: [PCI_CAP_ID.MSI, 0x00, 0x8a, 0x01] })));
    const cfg = new VfioPciConfig(fn);
    expect(cfg.capabilities()[0]!.length).toBe(24);
    expect(cfg.msiState()?.multipleMessageCapable).toBe(5);
    cfg.write(0x50, 4, 0x0000000f);
    expect(fn.peek(0x50, 4)).toBe(0x0000000f);
    fn.poke(0x54, 4, 0x3);
    expect(cfg.read(0x54, 4)).toBe(0x3);
  });
});

describe('MSI-X', () => {
  it('is read-only: control writes are dropped, device state shows through, header stays virtual', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    const before = fn.bytes.slice(0xa0, 0xac);
    cfg.write(0xa2, 2, 0xc004);
    cfg.write(0xa4, 4, 0x12345678);
    expect(fn.bytes.slice(0xa0, 0xac)).toEqual(before);
    expect(cfg.read(0xa2, 2)).toBe(0x0004);
    // vfio-pci enabling MSI-X through SET_IRQS shows up.
    fn.poke(0xa2, 2, 0x8004);
    expect(cfg.read(0xa2, 2)).toBe(0x8004);
    expect(cfg.read(0xa4, 4)).toBe(0x00000003);
    // The next pointer comes from the virtual copy.
    fn.poke(0xa1, 1, 0x40);
    expect(cfg.read(0xa0, 2)).toBe(0x0011);
  });
});

describe('power management', () => {
  it('traps PowerState writes into the hook and hides PME', () => {
    const fn = e1000e();
    fn.poke(0xca, 2, 0xc822); // PME from D0/D3hot/D3cold
    fn.poke(0xcc, 2, 0x8100); // PME_Status and PME_En set in hardware
    const setPowerState = vi.fn();
    const zapBarMappings = vi.fn();
    const cfg = new VfioPciConfig(fn, { hooks: { setPowerState, zapBarMappings } });
    expect(cfg.read(0xca, 2)).toBe(0x0022);
    expect(cfg.read(0xcc, 2)).toBe(0x0000);
    cfg.write(0xcc, 2, 0x8103);
    expect(setPowerState).toHaveBeenCalledWith(3);
    expect(zapBarMappings).toHaveBeenCalledTimes(1);
    expect(cfg.powerState).toBe(3);
    expect(cfg.memoryEnabled).toBe(false);
    // Neither the state bits nor PME bits reached the device through the user's write.
    expect(fn.peek(0xcc, 2)).toBe(0x8100);
    expect(cfg.read(0xcc, 2)).toBe(0x0000);
    cfg.write(0xcc, 1, 0x00);
    expect(setPowerState).toHaveBeenLastCalledWith(0);
    // A write not starting at PMCSR does not change state.
    cfg.write(0xcd, 1, 0x00);
    expect(setPowerState).toHaveBeenCalledTimes(2);
    // Data select/scale go through; PMC stays read-only.
    cfg.write(0xcd, 1, 0x1e);
    expect(fn.peek(0xcd, 1)).toBe(0x9f); // PME_En and PME_Status as the device had them
    cfg.write(0xca, 2, 0xffff);
    expect(fn.peek(0xca, 2)).toBe(0xc822);
  });

  it('keeps the recorded power state when the hook refuses the change', () => {
    const cfg = new VfioPciConfig(e1000e(), { hooks: { setPowerState: () => false } });
    cfg.write(0xcc, 2, 0x0003);
    expect(cfg.powerState).toBe(0);
    expect(cfg.memoryEnabled).toBe(true); // still D0, and the fixture's COMMAND has MEM set
  });

  it('by default moves the device itself, refusing D1/D2 it does not support', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    cfg.write(0xcc, 2, 0x0003);
    expect(fn.peek(0xcc, 2) & 3).toBe(3);
    expect(cfg.read(0xcc, 2) & 3).toBe(3);
    cfg.write(0xcc, 2, 0x0001); // e1000e claims no D1: refused
    expect(fn.peek(0xcc, 2) & 3).toBe(3);
    expect(cfg.powerState).toBe(3);
    cfg.write(0xcc, 2, 0x0000);
    expect(fn.peek(0xcc, 2) & 3).toBe(0);
  });
});

describe('PCI Express', () => {
  /** A v2 endpoint PCIe capability at 0x40 (52 bytes) with FLR; DEVCTL MPS 256, MRRS 512. */
  function pcieDevice(flr = true) {
    return fakeFunction(
      buildConfig(
        4096,
        header(0x40, {
          0x40: [PCI_CAP_ID.EXP, 0x00, 0x02, 0x00, ...le(flr ? 0x10008000 : 0x8000, 4), ...le(0x2030, 2)],
          0x68: le(0x0000, 2),
        }),
      ),
    );
  }

  it('resets the function on FLR and always reads FLR as zero', () => {
    const fn = pcieDevice();
    const resetFunction = vi.fn();
    const cfg = new VfioPciConfig(fn, { hooks: { resetFunction } });
    expect(cfg.capabilities()[0]!.length).toBe(52);
    cfg.write(0x44, 4, 0); // DEVCAP: read-only
    expect(cfg.read(0x44, 4)).toBe(0x10008000);
    cfg.write(0x42, 2, 0xffff); // PCIe flags: read-only
    expect(fn.peek(0x42, 2)).toBe(0x0002);
    cfg.write(0x48, 2, cfg.read(0x48, 2) | 0x8000);
    expect(resetFunction).toHaveBeenCalledTimes(1);
    expect(cfg.read(0x48, 2) & 0x8000).toBe(0);
    expect(fn.peek(0x48, 2) & 0x8000).toBe(0);
    const noFlr = vi.fn();
    const cfg2 = new VfioPciConfig(pcieDevice(false), { hooks: { resetFunction: noFlr } });
    cfg2.write(0x48, 2, 0x8000);
    expect(noFlr).not.toHaveBeenCalled();
  });

  it('keeps MPS virtual, floors MRRS at the real MPS, blocks phantom functions and ARI', () => {
    const fn = pcieDevice();
    const cfg = new VfioPciConfig(fn);
    // MPS 128, MRRS 128, phantom, relaxed ordering.
    cfg.write(0x48, 2, 0x0000 | 0x0200 | 0x0010);
    expect(cfg.read(0x48, 2)).toBe(0x0010);
    expect(fn.peek(0x48, 2)).toBe(0x2030 & ~0x7000 | 0x1000); // MRRS floored to MPS 256; MPS unchanged
    cfg.write(0x48, 2, 0x3010); // MRRS 1024
    expect(fn.peek(0x48, 2) & 0x7000).toBe(0x3000);
    expect(cfg.read(0x48, 2) & 0x7000).toBe(0x3000);
    cfg.write(0x48, 2, 0x6010); // reserved MRRS encoding: device untouched
    expect(fn.peek(0x48, 2) & 0x7000).toBe(0x3000);
    cfg.write(0x68, 2, 0x0024);
    expect(fn.peek(0x68, 2)).toBe(0x0004);
  });

  it('maps the e1000e capability as a v1 root-complex endpoint (12 bytes)', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    cfg.write(0xec, 4, 0x11112222); // beyond 12 bytes: unclaimed, raw
    expect(fn.peek(0xec, 4)).toBe(0x11112222);
  });
});

describe('Advanced Features', () => {
  it('turns the virtual FLR bit into a function reset when AF advertises FLR and TP', () => {
    const mk = (cap: number) =>
      fakeFunction(buildConfig(256, header(0x40, { 0x40: [PCI_CAP_ID.AF, 0x00, 0x06, cap, 0x00, 0x00] })));
    const resetFunction = vi.fn();
    const cfg = new VfioPciConfig(mk(0x03), { hooks: { resetFunction } });
    cfg.write(0x44, 1, 0x01);
    expect(resetFunction).toHaveBeenCalledTimes(1);
    expect(cfg.read(0x44, 1)).toBe(0);
    cfg.write(0x42, 2, 0); // length and AF capabilities: read-only
    expect(cfg.read(0x42, 2)).toBe(0x0306);
    const noTp = vi.fn();
    new VfioPciConfig(mk(0x02), { hooks: { resetFunction: noTp } }).write(0x44, 1, 0x01);
    expect(noTp).not.toHaveBeenCalled();
  });
});

describe('VPD', () => {
  it('runs reads and writes through the hooks and toggles the completion flag', () => {
    const store = new Map<number, number>([[0x10, 0xdeadbeef]]);
    const fn = fakeFunction(buildConfig(256, header(0x40, { 0x40: [PCI_CAP_ID.VPD, 0x00, 0, 0, 0, 0, 0, 0] })));
    const cfg = new VfioPciConfig(fn, {
      hooks: {
        vpdRead: (a) => store.get(a),
        vpdWrite: (a, d) => (store.set(a, d), true),
      },
    });
    cfg.write(0x42, 2, 0x0010);
    expect(cfg.read(0x42, 2)).toBe(0x8010);
    expect(cfg.read(0x44, 4)).toBe(0xdeadbeef);
    cfg.write(0x44, 4, 0x01020304);
    cfg.write(0x42, 2, 0x8020);
    expect(store.get(0x20)).toBe(0x01020304);
    expect(cfg.read(0x42, 2)).toBe(0x0020);
    // A failing read leaves F as written.
    cfg.write(0x42, 2, 0x0030);
    expect(cfg.read(0x42, 2)).toBe(0x0030);
    expect(fn.peek(0x42, 2)).toBe(0);
  });
});

describe('vendor-specific, PCI-X and extended capabilities', () => {
  it('writes vendor-specific capabilities raw (standard, extended and DVSEC)', () => {
    const fn = fakeFunction(
      buildConfig(
        4096,
        header(0x40, {
          0x40: [PCI_CAP_ID.EXP, 0x50, 0x02, 0x00],
          0x50: [PCI_CAP_ID.VNDR, 0x00, 0x0c, 0x00],
          0x100: [...ext(PCI_EXT_CAP_ID.VNDR, 1, 0x140), ...le(0x01010001 | (0x10 << 20), 4)],
          0x140: [...ext(PCI_EXT_CAP_ID.DVSEC, 1, 0), ...le(0x1e98 | (0x10 << 20), 4)],
        }),
      ),
    );
    const cfg = new VfioPciConfig(fn);
    expect(cfg.capabilities().map((c) => c.length)).toEqual([52, 12, 16, 16]);
    cfg.write(0x54, 4, 0xa1b2c3d4);
    cfg.write(0x108, 4, 0x11223344);
    cfg.write(0x148, 4, 0x55667788);
    expect([fn.peek(0x54, 4), fn.peek(0x108, 4), fn.peek(0x148, 4)]).toEqual([0xa1b2c3d4, 0x11223344, 0x55667788]);
    // Headers stay virtual for reads.
    fn.poke(0x51, 1, 0x99);
    fn.poke(0x140, 4, 0);
    expect(cfg.read(0x51, 1)).toBe(0);
    expect(cfg.read(0x140, 4) & 0xffff).toBe(PCI_EXT_CAP_ID.DVSEC);
  });

  it('lets PCI-X command and ECC through', () => {
    const fn = fakeFunction(buildConfig(256, header(0x40, { 0x40: [PCI_CAP_ID.PCIX, 0x00, 0x00, 0x00] })));
    const cfg = new VfioPciConfig(fn);
    expect(cfg.capabilities()[0]!.length).toBe(8);
    cfg.write(0x42, 2, 0x0003);
    cfg.write(0x44, 4, 0xffffffff); // status: read-only
    expect(fn.peek(0x42, 2)).toBe(0x0003);
    expect(fn.peek(0x44, 4)).toBe(0);
  });

  it('opens AER status/mask/severity and ECRC enables; keeps the header and the rest read-only', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    const header0 = cfg.read(0x100, 4);
    cfg.write(0x100, 4, 0);
    expect(cfg.read(0x100, 4)).toBe(header0);
    cfg.write(0x108, 4, 0xffffffff);
    expect(fn.peek(0x108, 4)).toBe(0x03fff031);
    cfg.write(0x114, 4, 0xffffffff);
    expect(fn.peek(0x114, 4)).toBe(0x0000f1c1);
    const cap0 = fn.peek(0x118, 4);
    cfg.write(0x118, 4, 0xffffffff);
    expect(fn.peek(0x118, 4)).toBe((cap0 | 0x140) >>> 0);
    cfg.write(0x118, 4, 0);
    expect(fn.peek(0x118, 4)).toBe((cap0 & ~0x140) >>> 0);
    const log0 = fn.peek(0x11c, 4);
    cfg.write(0x11c, 4, ~log0 >>> 0); // header log: read-only
    expect(fn.peek(0x11c, 4)).toBe(log0);
  });

  it('keeps DSN read-only', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    const before = fn.bytes.slice(0x140, 0x14c);
    cfg.writeBytes(0x140, new Uint8Array(12).fill(0xff));
    expect(fn.bytes.slice(0x140, 0x14c)).toEqual(before);
    expect(cfg.readBytes(0x144, 8)).toEqual(before.slice(4));
  });

  it('opens one byte of power budgeting (at PCI_PWR_DATA, as Linux does)', () => {
    const fn = fakeFunction(
      buildConfig(4096, header(0x40, { 0x40: [PCI_CAP_ID.EXP, 0x00, 0x02, 0x00], 0x100: ext(PCI_EXT_CAP_ID.PWR, 1, 0) })),
    );
    const cfg = new VfioPciConfig(fn);
    cfg.write(0x104, 4, 0xffffffff);
    cfg.write(0x108, 4, 0xffffffff);
    expect(fn.peek(0x104, 4)).toBe(0);
    expect(fn.peek(0x108, 4)).toBe(0xff);
  });
});
