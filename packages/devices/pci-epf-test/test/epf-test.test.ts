import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSysError } from '@vfio-ts/uapi';
import {
  EPF_TEST_CAP_OFFSET,
  EPF_TEST_COMMAND,
  EPF_TEST_FLAG,
  EPF_TEST_IRQ_TYPE,
  EPF_TEST_REG,
  EPF_TEST_STATUS,
  crc32Le,
  pciEpfTestFunction,
} from '../src/index.js';
import type { PciEpfTestFunction, PciEpfTestOptions } from '../src/index.js';
import { FakeHost, fromLe, le } from './helpers.js';

const CMD_MEM = 0x2;
const CMD_MASTER = 0x4;
const CMD_INTX_DISABLE = 0x400;
const { PM, MSI, EXP, MSIX } = EPF_TEST_CAP_OFFSET;
const S = EPF_TEST_STATUS;
const RAM = 0x8000_0000n;

function patterned(n: number, seed = 1): Uint8Array {
  let x = seed;
  return new Uint8Array(n).map(() => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 24;
  });
}

/** A host driver in miniature: what drivers/misc/pci_endpoint_test.c does, on the fake host. */
class TestDriver {
  readonly host = new FakeHost();
  readonly dev: PciEpfTestFunction;

  constructor(options: PciEpfTestOptions = {}, command = CMD_MEM | CMD_MASTER) {
    this.dev = pciEpfTestFunction(options);
    this.dev.attach(this.host);
    this.dev.configWrite(0x04, 2, command);
    this.host.map(RAM, 0x100_0000n);
  }

  r32(off: number, bar = 0): number {
    return Number(fromLe(this.dev.barRead(bar, BigInt(off), 4)));
  }

  w32(off: number, v: number, bar = 0): void {
    this.dev.barWrite(bar, BigInt(off), le(v, 4));
  }

  enableMsi(mme = 5): void {
    this.dev.configWrite(MSI + 4, 4, 0xfee00000);
    this.dev.configWrite(MSI + 12, 2, 0x4020);
    this.dev.configWrite(MSI + 2, 2, (mme << 4) | 1);
  }

  enableMsix(): void {
    this.dev.configWrite(MSIX + 2, 2, 0x8000);
  }

  /** Programs the registers and runs the command to completion (the endpoint polls every 1 ms). */
  run(command: number, regs: Partial<Record<keyof typeof EPF_TEST_REG, number>>): number {
    for (const [name, value] of Object.entries(regs)) this.w32(EPF_TEST_REG[name as keyof typeof EPF_TEST_REG], value);
    this.w32(EPF_TEST_REG.COMMAND, command);
    this.host.clock.advance(1);
    return this.r32(EPF_TEST_REG.STATUS);
  }

  addr(a: bigint): { LOWER: number; UPPER: number } {
    return { LOWER: Number(a & 0xffffffffn), UPPER: Number(a >> 32n) };
  }

  read(src: bigint, size: number, checksum: number, irq: { type: number; number: number }): number {
    const a = this.addr(src);
    return this.run(EPF_TEST_COMMAND.READ, {
      LOWER_SRC_ADDR: a.LOWER,
      UPPER_SRC_ADDR: a.UPPER,
      SIZE: size,
      CHECKSUM: checksum,
      IRQ_TYPE: irq.type,
      IRQ_NUMBER: irq.number,
    });
  }

  write(dst: bigint, size: number, irq = { type: 1, number: 1 }): number {
    const a = this.addr(dst);
    return this.run(EPF_TEST_COMMAND.WRITE, {
      LOWER_DST_ADDR: a.LOWER,
      UPPER_DST_ADDR: a.UPPER,
      SIZE: size,
      IRQ_TYPE: irq.type,
      IRQ_NUMBER: irq.number,
    });
  }

  copy(src: bigint, dst: bigint, size: number, irq = { type: 1, number: 1 }): number {
    const s = this.addr(src);
    const d = this.addr(dst);
    return this.run(EPF_TEST_COMMAND.COPY, {
      LOWER_SRC_ADDR: s.LOWER,
      UPPER_SRC_ADDR: s.UPPER,
      LOWER_DST_ADDR: d.LOWER,
      UPPER_DST_ADDR: d.UPPER,
      SIZE: size,
      IRQ_TYPE: irq.type,
      IRQ_NUMBER: irq.number,
    });
  }
}

function config(dev: PciEpfTestFunction): Uint8Array {
  const out = new Uint8Array(4096);
  for (let i = 0; i < 4096; i += 4) out.set(le(dev.configRead(i, 4), 4), i);
  return out;
}

describe('pci-epf-test config space', () => {
  it('presents a TI DRA74x test endpoint with PM, MSI, PCIe and MSI-X capabilities', () => {
    const dev = pciEpfTestFunction();
    expect(dev.configRead(0x00, 4)).toBe(0xb500104c);
    expect(dev.configRead(0x08, 4)).toBe(0xff000000);
    expect(dev.configRead(0x0e, 1)).toBe(0);
    expect(dev.configRead(0x3d, 1)).toBe(1);
    expect(dev.configRead(0x06, 2)).toBe(0x0010);
    const chain: [number, number][] = [];
    for (let at = dev.configRead(0x34, 1); at !== 0; at = dev.configRead(at + 1, 1)) {
      chain.push([at, dev.configRead(at, 1)]);
    }
    expect(chain).toEqual([
      [PM, 0x01],
      [MSI, 0x05],
      [EXP, 0x10],
      [MSIX, 0x11],
    ]);
    expect(dev.configRead(MSI + 2, 2)).toBe(0x008a); // 64-bit, 32 vectors capable
    expect(dev.configRead(MSIX + 2, 2)).toBe(31);
    expect(dev.configRead(MSIX + 4, 4)).toBe(0x80); // table at BAR0 + 0x80
    expect(dev.configRead(MSIX + 8, 4)).toBe(0x80 + 32 * 16); // PBA after it
    expect(dev.configRead(EXP + 2, 2) & 0xf0).toBe(0); // endpoint
    expect(dev.configRead(EXP + 4, 4) & 0x10000000).toBe(0x10000000); // FLR capable
    expect(dev.configSize).toBe(4096);
    expect(dev.configRead(0x100, 4)).toBe(0);
    expect(dev.configRead(0x02, 4)).toBe(0x0000b500); // unaligned: device id, command
  });

  it('sizes its BARs as pci-epf-test allocates them', () => {
    const dev = pciEpfTestFunction();
    expect(dev.bars.map((b) => b.size)).toEqual([1024n, 512n, 1024n, 16384n, 131072n, 1048576n]);
    dev.bars.forEach((b) => {
      dev.configWrite(0x10 + 4 * b.index, 4, 0xffffffff);
      expect(dev.configRead(0x10 + 4 * b.index, 4)).toBe((~(Number(b.size) - 1) & 0xfffffff0) >>> 0);
      expect(b.type).toBe('mem32');
    });
    dev.configWrite(0x30, 4, 0xffffffff);
    expect(dev.configRead(0x30, 4)).toBe(0);
    const small = pciEpfTestFunction({ msixVectors: 0, msiVectors: 1, barSizes: [128, 0, 4096] });
    expect(small.bars.map((b) => b.size)).toEqual([128n, 0n, 4096n, 16384n, 131072n, 1048576n]);
    expect(small.configRead(EXP + 1, 1)).toBe(0); // PCIe is last without MSI-X
    expect(small.configRead(MSI + 2, 2)).toBe(0x0080);
  });

  it('clamps MSI multiple message enable, keeps RO fields, clears RW1C status', () => {
    const t = new TestDriver();
    t.dev.configWrite(MSI + 2, 2, 0x0071);
    expect(t.dev.configRead(MSI + 2, 2)).toBe(0x00db);
    t.dev.configWrite(0x00, 4, 0);
    expect(t.dev.configRead(0x00, 4)).toBe(0xb500104c);
    t.dev.configWrite(0x04, 2, 0xffff);
    expect(t.dev.configRead(0x04, 2)).toBe(0x0546);
    // A faulting DMA read records a received master abort; writing 1 clears it.
    t.read(0x10n, 64, 0, { type: 1, number: 1 });
    expect(t.dev.configRead(0x06, 2) & 0x2000).toBe(0x2000);
    t.dev.configWrite(0x06, 2, 0x2000);
    expect(t.dev.configRead(0x06, 2)).toBe(0x0010);
  });

  it('never changes read-only bytes (property)', () => {
    const power = config(pciEpfTestFunction());
    const ro: number[] = [];
    for (const range of [
      [0x00, 0x04],
      [0x08, 0x0c],
      [0x0e, 0x10],
      [0x28, 0x3c],
      [0x3d, 0x40],
      [PM, PM + 4],
      [MSI, MSI + 2],
      [EXP, EXP + 8],
      [EXP + 12, EXP + 16],
      [MSIX, MSIX + 2],
      [MSIX + 4, MSIX + 12],
      [0x100, 0x1000],
    ]) {
      for (let i = range[0]!; i < range[1]!; i++) ro.push(i);
    }
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.integer({ min: 0, max: 4095 }),
            size: fc.constantFrom(1 as const, 2 as const, 4 as const),
            value: fc.integer({ min: 0, max: 0xffffffff }),
          }),
          { maxLength: 30 },
        ),
        (writes) => {
          const dev = pciEpfTestFunction();
          for (const w of writes) dev.configWrite(w.offset & ~(w.size - 1), w.size, w.value);
          const now = config(dev);
          expect(ro.filter((i) => now[i] !== power[i])).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('rejects malformed accesses and options with EINVAL', () => {
    const dev = pciEpfTestFunction();
    for (const f of [
      () => dev.configRead(4096, 1),
      () => dev.configRead(4093, 4),
      () => dev.barRead(6, 0n, 4),
      () => dev.barRead(1, 510n, 4),
      () => {
        dev.barWrite(0, -1n, new Uint8Array(1));
      },
      () => pciEpfTestFunction({ msiVectors: 3 }),
      () => pciEpfTestFunction({ msixVectors: 4096 }),
      () => pciEpfTestFunction({ barSizes: [64] }),
      () => pciEpfTestFunction({ barSizes: [0] }),
      () => pciEpfTestFunction({ barSizes: [512, 100] }),
      () => pciEpfTestFunction({ commandDelayMs: -1 }),
      () => pciEpfTestFunction({ vendorId: 0x10000 }),
    ]) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isSysError(err, 'EINVAL')).toBe(true);
    }
  });
});

describe('pci-epf-test BARs', () => {
  it('holds test patterns in every BAR, sparsely', () => {
    const t = new TestDriver();
    for (const bar of [1, 2, 3, 4]) {
      const size = Number(t.dev.bars[bar]!.size);
      for (let j = 0; j < size; j += 4) t.w32(j, 0xa0a0a0a0, bar);
      for (let j = 0; j < size; j += 4) expect(t.r32(j, bar)).toBe(0xa0a0a0a0);
    }
    t.w32(0xffffc, 0x12345678, 5);
    expect(t.r32(0xffffc, 5)).toBe(0x12345678);
    expect(t.r32(0x80000, 5)).toBe(0);
    t.w32(0, 0xa0a0a0a0); // the host's BAR test touches 4 bytes of the register BAR: MAGIC is RAM
    expect(t.r32(0)).toBe(0xa0a0a0a0);
    expect(t.host.clock.pending).toBe(0);
  });

  it('does not decode with memory space disabled or in D3hot', () => {
    const t = new TestDriver({}, CMD_MASTER);
    expect(t.r32(0, 1)).toBe(0xffffffff);
    t.dev.configWrite(0x04, 2, CMD_MEM);
    t.w32(0, 5, 1);
    t.dev.configWrite(PM + 4, 2, 3); // D3hot
    expect(t.r32(0, 1)).toBe(0xffffffff);
    t.dev.configWrite(PM + 4, 2, 1); // D1 unsupported: stays in D3hot
    expect(t.dev.configRead(PM + 4, 2) & 3).toBe(3);
    t.dev.configWrite(PM + 4, 2, 0); // No_Soft_Reset: state kept
    expect(t.r32(0, 1)).toBe(5);
  });

  it('resets on D3hot → D0 when No_Soft_Reset is clear', () => {
    const t = new TestDriver({ noSoftReset: false });
    t.w32(0, 5, 1);
    t.dev.configWrite(PM + 4, 2, 3);
    t.dev.configWrite(PM + 4, 2, 0);
    expect(t.dev.configRead(0x04, 2)).toBe(0);
    t.dev.configWrite(0x04, 2, CMD_MEM);
    expect(t.r32(0, 1)).toBe(0);
  });
});

describe('pci-epf-test checksum', () => {
  it('crc32Le(~0) is the inverse of the zlib CRC-32 (property)', () => {
    expect(crc32Le(0xffffffff, new TextEncoder().encode('123456789'))).toBe(~0xcbf43926 >>> 0);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (d) => {
        expect(crc32Le(0xffffffff, d)).toBe(~zlibCrc32(d) >>> 0);
      }),
    );
  });
});

describe('pci-epf-test transfers', () => {
  it('READ verifies the host buffer against CHECKSUM', () => {
    const t = new TestDriver();
    t.enableMsi();
    const data = patterned(4096 + 17);
    t.host.poke(RAM + 3n, data);
    const status = t.read(RAM + 3n, data.length, crc32Le(0xffffffff, data), { type: 1, number: 1 });
    expect(status).toBe(S.READ_SUCCESS | S.IRQ_RAISED);
    expect(t.host.msi).toEqual([0]);
    expect(t.r32(EPF_TEST_REG.COMMAND)).toBe(0);
    const bad = t.read(RAM + 3n, data.length, 0x1234, { type: 1, number: 1 });
    expect(bad).toBe(S.READ_FAIL | S.IRQ_RAISED);
  });

  it('WRITE fills the host buffer and publishes its checksum', () => {
    const t = new TestDriver({ randomBytes: (n) => patterned(n, 7) });
    t.enableMsi();
    const status = t.write(RAM + 0x1000n, 1000);
    expect(status).toBe(S.WRITE_SUCCESS | S.IRQ_RAISED);
    const got = t.host.peek(RAM + 0x1000n, 1000);
    expect(got).toEqual(patterned(1000, 7));
    expect(t.r32(EPF_TEST_REG.CHECKSUM)).toBe(crc32Le(0xffffffff, got));
    // With the default random source the checksum still matches what landed in RAM.
    const r = new TestDriver();
    r.enableMsi();
    expect(r.write(RAM + 0x1000n, 4096)).toBe(S.WRITE_SUCCESS | S.IRQ_RAISED);
    expect(r.r32(EPF_TEST_REG.CHECKSUM)).toBe(crc32Le(0xffffffff, r.host.peek(RAM + 0x1000n, 4096)));
  });

  it('COPY moves SRC to DST, with or without the DMA flag', () => {
    const t = new TestDriver();
    t.enableMsi();
    const data = patterned(10000, 3);
    t.host.poke(RAM, data);
    expect(t.copy(RAM, RAM + 0x10000n, data.length)).toBe(S.COPY_SUCCESS | S.IRQ_RAISED);
    expect(crc32Le(0xffffffff, t.host.peek(RAM + 0x10000n, data.length))).toBe(crc32Le(0xffffffff, data));
    t.w32(EPF_TEST_REG.FLAGS, EPF_TEST_FLAG.USE_DMA);
    expect(t.copy(RAM, RAM + 0x20000n, data.length)).toBe(S.COPY_SUCCESS | S.IRQ_RAISED);
    expect(t.host.peek(RAM + 0x20000n, data.length)).toEqual(data);
  });

  it('refuses FLAG_USE_DMA without a DMA channel, bad IRQ types and combined commands', () => {
    const t = new TestDriver({ dmaChannel: false });
    t.enableMsi();
    t.w32(EPF_TEST_REG.STATUS, 0xdead);
    t.w32(EPF_TEST_REG.FLAGS, EPF_TEST_FLAG.USE_DMA);
    expect(t.copy(RAM, RAM + 0x1000n, 16)).toBe(0);
    t.w32(EPF_TEST_REG.FLAGS, 0);
    expect(t.copy(RAM, RAM + 0x1000n, 16, { type: 3, number: 1 })).toBe(0);
    expect(t.run(EPF_TEST_COMMAND.READ | EPF_TEST_COMMAND.WRITE, {})).toBe(0);
    expect(t.host.msi).toEqual([]);
    expect(t.copy(RAM, RAM + 0x1000n, 16)).toBe(S.COPY_SUCCESS | S.IRQ_RAISED);
  });

  it('reports invalid source and destination addresses', () => {
    const t = new TestDriver();
    t.enableMsi();
    const unmapped = 0x1_0000_0000n;
    expect(t.read(unmapped, 64, 0, { type: 1, number: 1 })).toBe(S.SRC_ADDR_INVALID | S.READ_FAIL | S.IRQ_RAISED);
    expect(t.write(unmapped, 64)).toBe(S.DST_ADDR_INVALID | S.WRITE_FAIL | S.IRQ_RAISED);
    expect(t.copy(unmapped, RAM, 64)).toBe(S.SRC_ADDR_INVALID | S.COPY_FAIL | S.IRQ_RAISED);
    t.host.poke(RAM + 0x100n, new Uint8Array([1, 2, 3]));
    expect(t.copy(RAM, unmapped, 64)).toBe(S.DST_ADDR_INVALID | S.COPY_FAIL | S.IRQ_RAISED);
    expect(t.host.faults).toEqual([unmapped, unmapped, unmapped, unmapped]);
    // Larger than the endpoint's outbound window: the address cannot be mapped.
    const small = new TestDriver({ maxTransferSize: 4096 });
    small.enableMsi();
    expect(small.copy(RAM, RAM + 0x2000n, 4097)).toBe(S.SRC_ADDR_INVALID | S.COPY_FAIL | S.IRQ_RAISED);
    expect(small.write(RAM, 4097)).toBe(S.DST_ADDR_INVALID | S.WRITE_FAIL | S.IRQ_RAISED);
    expect(small.host.faults).toEqual([]);
    expect(t.host.msi.length).toBe(4);
  });

  it('COPY agrees with a reference model over sizes and mappings (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6000 }),
        fc.integer({ min: 0, max: 0x3000 }),
        fc.integer({ min: 0, max: 0x3000 }),
        fc.boolean(),
        fc.boolean(),
        (size, srcOff, dstOff, srcMapped, dstMapped) => {
          const t = new TestDriver({ maxTransferSize: 4096 });
          t.enableMsi();
          const src = (srcMapped ? RAM : 0x2_0000_0000n) + BigInt(srcOff);
          const dst = (dstMapped ? RAM + 0x10_0000n : 0x3_0000_0000n) + BigInt(dstOff);
          const data = patterned(size, size + 1);
          t.host.poke(src, data);
          const status = t.copy(src, dst, size);
          let expected: number;
          if (size > 4096) expected = S.SRC_ADDR_INVALID | S.COPY_FAIL;
          else if (size > 0 && !srcMapped) expected = S.SRC_ADDR_INVALID | S.COPY_FAIL;
          else if (size > 0 && !dstMapped) expected = S.DST_ADDR_INVALID | S.COPY_FAIL;
          else expected = S.COPY_SUCCESS;
          expect(status).toBe(expected | S.IRQ_RAISED);
          const landed = t.host.peek(dst, size);
          expect(landed).toEqual(expected === S.COPY_SUCCESS ? data : new Uint8Array(size));
          expect(t.host.msi).toEqual([0]);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('needs bus mastering for DMA and interrupt messages', () => {
    const t = new TestDriver({}, CMD_MEM);
    t.enableMsi();
    t.host.poke(RAM, patterned(32));
    expect(t.copy(RAM, RAM + 0x1000n, 32)).toBe(S.SRC_ADDR_INVALID | S.COPY_FAIL | S.IRQ_RAISED);
    expect(t.host.msi).toEqual([]);
    expect(t.host.faults).toEqual([]);
  });
});

describe('pci-epf-test interrupts', () => {
  it('pulses INTx, honouring COMMAND.INTX_DISABLE', () => {
    const t = new TestDriver();
    expect(t.run(EPF_TEST_COMMAND.RAISE_INTX_IRQ, { IRQ_TYPE: EPF_TEST_IRQ_TYPE.INTX })).toBe(S.IRQ_RAISED);
    expect(t.host.intx).toEqual([true]);
    expect(t.dev.configRead(0x06, 2) & 0x8).toBe(0x8);
    t.w32(EPF_TEST_REG.STATUS, 0); // the host's handler clears IRQ_RAISED
    t.host.clock.advance(1);
    expect(t.host.intx).toEqual([true, false]);
    expect(t.dev.configRead(0x06, 2) & 0x8).toBe(0);
    t.dev.configWrite(0x04, 2, CMD_MEM | CMD_MASTER | CMD_INTX_DISABLE);
    t.run(EPF_TEST_COMMAND.RAISE_INTX_IRQ, { IRQ_TYPE: EPF_TEST_IRQ_TYPE.INTX });
    expect(t.host.intx).toEqual([true, false]);
    expect(t.dev.configRead(0x06, 2) & 0x8).toBe(0x8);
  });

  it('sends MSI IRQ_NUMBER − 1 within the enabled vectors', () => {
    const t = new TestDriver();
    t.enableMsi(3); // 8 vectors
    for (const n of [1, 3, 8]) {
      expect(t.run(EPF_TEST_COMMAND.RAISE_MSI_IRQ, { IRQ_TYPE: 1, IRQ_NUMBER: n })).toBe(S.IRQ_RAISED);
    }
    expect(t.host.msi).toEqual([0, 2, 7]);
    // Beyond the enabled count, or 0: STATUS says raised, but no message goes out.
    expect(t.run(EPF_TEST_COMMAND.RAISE_MSI_IRQ, { IRQ_NUMBER: 9 })).toBe(S.IRQ_RAISED);
    expect(t.run(EPF_TEST_COMMAND.RAISE_MSI_IRQ, { IRQ_NUMBER: 0 })).toBe(S.IRQ_RAISED);
    expect(t.host.msi).toEqual([0, 2, 7]);
    t.dev.configWrite(MSI + 2, 2, 0);
    t.run(EPF_TEST_COMMAND.RAISE_MSI_IRQ, { IRQ_NUMBER: 1 });
    expect(t.host.msi).toEqual([0, 2, 7]);
    expect(t.host.intx).toEqual([]);
  });

  it('sends MSI-X vectors, holding masked ones pending until unmasked', () => {
    const t = new TestDriver();
    t.enableMsix();
    t.run(EPF_TEST_COMMAND.RAISE_MSIX_IRQ, { IRQ_TYPE: 2, IRQ_NUMBER: 5 });
    expect(t.host.msi).toEqual([4]);
    // Mask entry 6 (vector control at table + 16·6 + 12): the raise sets its PBA bit instead.
    const ctrl6 = 0x80 + 16 * 6 + 12;
    t.w32(ctrl6, 1);
    t.run(EPF_TEST_COMMAND.RAISE_MSIX_IRQ, { IRQ_NUMBER: 7 });
    expect(t.host.msi).toEqual([4]);
    const pba = t.dev.configRead(MSIX + 8, 4);
    expect(t.r32(pba)).toBe(1 << 6);
    t.w32(pba, 0); // the PBA is read-only to the host
    expect(t.r32(pba)).toBe(1 << 6);
    t.w32(ctrl6, 0);
    expect(t.host.msi).toEqual([4, 6]);
    expect(t.r32(pba)).toBe(0);
    // Function mask holds everything; clearing it flushes.
    t.dev.configWrite(MSIX + 2, 2, 0xc000);
    t.run(EPF_TEST_COMMAND.RAISE_MSIX_IRQ, { IRQ_NUMBER: 32 });
    expect(t.host.msi).toEqual([4, 6]);
    t.dev.configWrite(MSIX + 2, 2, 0x8000);
    expect(t.host.msi).toEqual([4, 6, 31]);
    // Out of range and with MSI-X disabled: nothing.
    t.run(EPF_TEST_COMMAND.RAISE_MSIX_IRQ, { IRQ_NUMBER: 33 });
    t.dev.configWrite(MSIX + 2, 2, 0);
    t.run(EPF_TEST_COMMAND.RAISE_MSIX_IRQ, { IRQ_NUMBER: 1 });
    expect(t.host.msi).toEqual([4, 6, 31]);
  });

  it('transfers complete with the interrupt IRQ_TYPE names', () => {
    const t = new TestDriver();
    t.enableMsix();
    t.host.poke(RAM, patterned(64));
    expect(t.copy(RAM, RAM + 0x100n, 64, { type: 2, number: 2 })).toBe(S.COPY_SUCCESS | S.IRQ_RAISED);
    expect(t.host.msi).toEqual([1]);
    t.dev.configWrite(MSIX + 2, 2, 0);
    expect(t.copy(RAM, RAM + 0x100n, 64, { type: 0, number: 0 })).toBe(S.COPY_SUCCESS | S.IRQ_RAISED);
    expect(t.host.intx).toEqual([true]);
  });

  it('waits for attach before the firmware runs a command', () => {
    const dev = pciEpfTestFunction();
    dev.configWrite(0x04, 2, CMD_MEM | CMD_MASTER);
    dev.barWrite(0, BigInt(EPF_TEST_REG.COMMAND), le(EPF_TEST_COMMAND.RAISE_INTX_IRQ, 4));
    const host = new FakeHost();
    dev.attach(host);
    host.clock.advance(1);
    expect(host.intx).toEqual([true]);
  });
});

describe('pci-epf-test reset', () => {
  it('FLR through DEVCTL and reset() return to power-on', () => {
    const power = config(pciEpfTestFunction({ caps: 1 }));
    for (const how of ['devctl', 'method'] as const) {
      const t = new TestDriver({ caps: 1 });
      expect(t.r32(EPF_TEST_REG.CAPS)).toBe(1);
      t.enableMsi();
      t.dev.configWrite(0x10, 4, 0xfe000000);
      t.w32(0, 0x55, 3);
      t.w32(EPF_TEST_REG.IRQ_TYPE, 0);
      t.w32(EPF_TEST_REG.COMMAND, EPF_TEST_COMMAND.RAISE_INTX_IRQ);
      t.dev.configWrite(MSI + 2, 2, 0);
      t.host.clock.advance(1);
      expect(t.host.intx).toEqual([true]);
      t.w32(EPF_TEST_REG.COMMAND, EPF_TEST_COMMAND.RAISE_INTX_IRQ); // pending when the reset hits
      if (how === 'devctl') t.dev.configWrite(EXP + 8, 2, 0x8000 | 0x2810);
      else t.dev.reset('bus');
      expect(t.host.intx).toEqual([true, false]);
      expect(t.host.clock.pending).toBe(0);
      expect(config(t.dev)).toEqual(power);
      t.dev.configWrite(0x04, 2, CMD_MEM);
      expect(t.r32(0, 3)).toBe(0);
      expect(t.r32(EPF_TEST_REG.COMMAND)).toBe(0);
      expect(t.r32(EPF_TEST_REG.CAPS)).toBe(1);
    }
  });
});
