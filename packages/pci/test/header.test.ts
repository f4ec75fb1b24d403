import { describe, expect, it, vi } from 'vitest';
import type { PciBarInfo } from '@vfio-ts/platform';
import { VfioPciConfig } from '../src/index.js';
import { buildConfig, e1000e, edu, fakeFunction, fixture, header, le } from './helpers.js';

describe('standard header', () => {
  it('presents vendor/device/class as the device has them and drops writes to them', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x00, 2)).toBe(0x8086);
    expect(cfg.read(0x02, 2)).toBe(0x10d3);
    cfg.write(0x00, 4, 0x12345678);
    cfg.write(0x08, 4, 0xffffffff);
    cfg.write(0x2c, 4, 0);
    expect(cfg.read(0x00, 4)).toBe(0x10d38086);
    expect(fn.peek(0x00, 4)).toBe(0x10d38086);
    expect(cfg.read(0x08, 4)).toBe(fn.peek(0x08, 4));
    expect(cfg.read(0x2c, 4)).toBe(0x00008086);
  });

  it('gives a VF its real IDs, pin 0 and a virtual memory-enable bit', () => {
    const bytes = fixture('e1000e');
    bytes.set([0xff, 0xff, 0xff, 0xff], 0);
    bytes.set(le(0x0000, 2), 4); // VFs do not implement COMMAND.MEM
    const fn = fakeFunction(bytes);
    const cfg = new VfioPciConfig(fn, { virtfn: { vendor: 0x8086, device: 0x10ed } });
    expect(cfg.read(0x00, 2)).toBe(0x8086);
    expect(cfg.read(0x02, 2)).toBe(0x10ed);
    expect(cfg.read(0x3d, 1)).toBe(0);
    expect(cfg.interruptPin).toBe(0);
    expect(cfg.read(0x04, 2) & 0x2).toBe(0x2);
    expect(cfg.memoryEnabled).toBe(true);
    cfg.write(0x04, 2, 0x0000);
    // Hardware never had it; the user sees what it wrote.
    expect(cfg.read(0x04, 2) & 0x2).toBe(0);
    // Still "enabled" for BAR access: a VF's decode is controlled by the PF.
    expect(cfg.memoryEnabled).toBe(true);
  });

  it('passes COMMAND bits through except INTx-disable, which is virtual and drives INTx masking', () => {
    const fn = edu();
    const intxMask = vi.fn();
    const cfg = new VfioPciConfig(fn, { hooks: { intxMask } });
    cfg.write(0x04, 2, 0x0007);
    expect(fn.peek(0x04, 2)).toBe(0x0007);
    cfg.write(0x04, 2, 0x0407);
    expect(fn.peek(0x04, 2) & 0x400).toBe(0);
    expect(cfg.read(0x04, 2)).toBe(0x0407);
    expect(cfg.intxMasked).toBe(true);
    expect(intxMask).toHaveBeenCalledTimes(1);
    expect(intxMask).toHaveBeenLastCalledWith(true);
    // Same value again: no transition, no call. The upper byte alone toggles it too.
    cfg.write(0x04, 2, 0x0407);
    cfg.write(0x05, 1, 0x00);
    expect(intxMask.mock.calls).toEqual([[true], [false]]);
    expect(cfg.read(0x04, 2)).toBe(0x0007);
  });

  it('zaps BAR mappings when memory decode is turned off and tracks memoryEnabled', () => {
    const zapBarMappings = vi.fn();
    const cfg = new VfioPciConfig(edu(), { hooks: { zapBarMappings } });
    cfg.write(0x04, 2, 0x0006);
    expect(cfg.memoryEnabled).toBe(true);
    expect(zapBarMappings).not.toHaveBeenCalled();
    cfg.write(0x04, 2, 0x0004);
    expect(zapBarMappings).toHaveBeenCalledTimes(1);
    expect(cfg.memoryEnabled).toBe(false);
  });

  it('restores the host BARs when decode is re-enabled after a reset it did not see', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    cfg.write(0x04, 2, 0x0103);
    const bars = fn.bytes.slice(0x10, 0x28);
    const rom = fn.peek(0x30, 4);
    // Backdoor reset: BARs, ROM and COMMAND back to power-on values.
    fn.bytes.fill(0, 0x10, 0x28);
    fn.poke(0x30, 4, 0);
    fn.poke(0x04, 2, 0);
    cfg.write(0x04, 2, 0x0103);
    expect(fn.bytes.slice(0x10, 0x28)).toEqual(bars);
    expect(fn.peek(0x30, 4)).toBe(rom);
    expect(fn.peek(0x04, 2)).toBe(0x0103);
  });

  it('keeps STATUS read-only (CAP_LIST virtual) and passes cache line, latency and BIST through', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    cfg.write(0x06, 2, 0xffff);
    expect(fn.peek(0x06, 2)).toBe(0x0010);
    fn.poke(0x06, 2, 0x0000); // a device bug: the virtual CAP_LIST bit does not follow it
    expect(cfg.read(0x06, 2)).toBe(0x0010);
    cfg.write(0x0c, 1, 0x10);
    cfg.write(0x0d, 1, 0x40);
    cfg.write(0x0f, 1, 0x40);
    expect(fn.peek(0x0c, 2)).toBe(0x4010);
    expect(fn.peek(0x0f, 1)).toBe(0x40);
    cfg.write(0x0e, 1, 0x80); // header type: read-only
    expect(fn.peek(0x0e, 1)).toBe(0);
  });

  it('virtualizes the interrupt line and keeps the pin read-only (0 without INTx)', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x3d, 1)).toBe(1);
    cfg.write(0x3c, 2, 0x0355);
    expect(cfg.read(0x3c, 2)).toBe(0x0155);
    expect(fn.peek(0x3c, 2)).toBe(0x010a);
    expect(new VfioPciConfig(edu(), { intx: false }).read(0x3d, 1)).toBe(0);
    expect(new VfioPciConfig(edu(), { nointx: true }).interruptPin).toBe(0);
  });
});

describe('BAR sizing', () => {
  it('reads the host address with type bits, and the size mask after writing all-ones', () => {
    const fn = e1000e();
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x10, 4)).toBe(0xfeb80000);
    expect(cfg.read(0x18, 4)).toBe(0x0000c041);
    for (let bar = 0; bar < 6; bar++) cfg.write(0x10 + 4 * bar, 4, 0xffffffff);
    expect(cfg.read(0x10, 4)).toBe(0xfffe0000);
    expect(cfg.read(0x14, 4)).toBe(0xfffe0000);
    expect(cfg.read(0x18, 4)).toBe(0xffffffe1); // I/O, 32 bytes
    expect(cfg.read(0x1c, 4)).toBe(0xffffc000);
    expect(cfg.read(0x20, 4)).toBe(0); // unimplemented
    expect(cfg.read(0x24, 4)).toBe(0);
    // The device's BARs never moved.
    expect(fn.peek(0x10, 4)).toBe(0xfeb80000);
    // Writing an address back restores it.
    cfg.write(0x10, 4, 0xfeb80000);
    expect(cfg.read(0x10, 4)).toBe(0xfeb80000);
    // Sub-dword accesses see the same register.
    cfg.write(0x10, 2, 0xffff);
    expect(cfg.read(0x12, 2)).toBe(0xfeb8);
    expect(cfg.read(0x10, 2)).toBe(0x0000);
  });

  it('sizes 64-bit prefetchable BARs across both halves', () => {
    const bars: PciBarInfo[] = [
      { index: 0, type: 'mem64', prefetchable: true, size: 0x10000n },
      { index: 2, type: 'mem64', prefetchable: true, size: 8n << 30n },
      { index: 4, type: 'mem32', prefetchable: true, size: 0x1000n },
    ];
    const fn = fakeFunction(buildConfig(256, header(0)), bars);
    const cfg = new VfioPciConfig(fn);
    for (let off = 0x10; off < 0x28; off += 4) cfg.write(off, 4, 0xffffffff);
    expect(cfg.read(0x10, 4)).toBe(0xffff000c);
    expect(cfg.read(0x14, 4)).toBe(0xffffffff);
    expect(cfg.read(0x18, 4)).toBe(0x0000000c);
    expect(cfg.read(0x1c, 4)).toBe(0xfffffffe);
    expect(cfg.read(0x20, 4)).toBe(0xfffff008);
    expect(cfg.read(0x24, 4)).toBe(0);
    cfg.write(0x18, 4, 0);
    cfg.write(0x1c, 4, 0x00000004);
    expect(cfg.read(0x18, 4)).toBe(0x0000000c);
    expect(cfg.read(0x1c, 4)).toBe(0x00000004);
  });

  it('sizes the ROM BAR keeping the enable bit, and reads 0 without a ROM', () => {
    const cfg = new VfioPciConfig(e1000e());
    expect(cfg.read(0x30, 4)).toBe(0xfeb40000);
    cfg.write(0x30, 4, 0xfffff800);
    expect(cfg.read(0x30, 4)).toBe(0xfffc0000);
    cfg.write(0x30, 4, 0xffffffff);
    expect(cfg.read(0x30, 4)).toBe(0xfffc0001);
    const none = new VfioPciConfig(edu());
    none.write(0x30, 4, 0xfffff800);
    expect(none.read(0x30, 4)).toBe(0);
    const shadow = new VfioPciConfig(edu(), { shadowRomSize: 0x9000 });
    shadow.write(0x30, 4, 0xffffffff);
    expect(shadow.read(0x30, 4)).toBe(0xffff0001);
  });
});
