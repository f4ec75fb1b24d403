/**
 * Acceptance (vfio-pci issue) 4, pci-epf-test half: a TypeScript port of Linux's pci_endpoint_test drives the
 * endpoint through VFIO — BAR patterns, INTx / MSI / MSI-X through eventfds, READ / WRITE / COPY DMA both ways
 * through type1 verified with crc32_le — an endpoint DMA to an unmapped IOVA fails and faults in the IOMMU, and
 * closing leaves nothing pinned or open.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHost } from '@vfio-ts/core';
import type { Host, Process } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { EPF_TEST_COMMAND, EPF_TEST_STATUS, crc32Le, pciEpfTestFunction } from '@vfio-ts/device-pci-epf-test';
import type { PciEpfTestOptions } from '@vfio-ts/device-pci-epf-test';
import { EpfTestDriverError, EpfTestVfioDriver, runEpfTestSuite } from '@vfio-ts/device-pci-epf-test/driver';
import type { EpfIrqType, EpfTestStep, EpfTransferKind } from '@vfio-ts/device-pci-epf-test/driver';
import { type1 } from '@vfio-ts/iommu-type1';
import { vfioPci } from '@vfio-ts/pci';
import { simPlatform } from '@vfio-ts/sim';
import type { SimPlatform } from '@vfio-ts/sim';

const BDF = '0000:00:05.0';
const MiB = 1n << 20n;

function epfHost(options: PciEpfTestOptions = {}): { host: Host; p: Process; platform: SimPlatform } {
  const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: pciEpfTestFunction(options), driver: 'vfio-pci' }] });
  const host = createHost({ platform, plugins: [type1(), vfioPci()] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_RAWIO'], memlockLimit: 64n * MiB });
  return { host, p, platform };
}

/** Nothing left behind: no fds, no locked pages, no container, the device closed. */
function expectClean(host: Host, p: Process): void {
  expect(p.fds()).toEqual([]);
  const d = host.describe();
  expect(d.processes.find((x) => x.pid === p.pid)?.lockedPages).toBe(0);
  expect(d.containers).toEqual([]);
  expect((d.devices as { openCount: number }[]).every((x) => x.openCount === 0)).toBe(true);
}

/** A deterministic random source, so a failure replays. */
function seeded(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}

describe('pci-epf-test driven through VFIO (pcitest)', () => {
  it('runs the whole suite: BARs, every INTx/MSI/MSI-X vector, READ/WRITE/COPY at every size, all verified', async () => {
    const { host, p, platform } = epfHost({ randomBytes: seeded(7) });
    const steps: EpfTestStep[] = [];
    const sizes = [1, 1024, 1025, 4096, 4097, 65537];
    const r = await runEpfTestSuite(p, { bdf: BDF, sizes, randomBytes: seeded(11), now: () => host.platform.clock.now(), onStep: (s) => steps.push(s) });

    expect(r.ok).toBe(true);
    expect(steps.every((s) => s.ok)).toBe(true);
    expect(steps.at(-1)?.id).toBe('close');
    expect(r.hostMs).toBeGreaterThan(0);

    // BAR test on every BAR, BAR0 only on MAGIC as the kernel; the MSI-X BAR through pread, the others mmapped.
    expect(r.bars.map((b) => [b.bar, b.tested, b.pattern, b.ok])).toEqual([
      [0, 4, 0xa0a0a0a0, true],
      [1, 512, 0xa1a1a1a1, true],
      [2, 1024, 0xa2a2a2a2, true],
      [3, 16384, 0xa3a3a3a3, true],
      [4, 131072, 0xa4a4a4a4, true],
      [5, 1048576, 0xa5a5a5a5, true],
    ]);
    expect(r.bars.find((b) => b.bar === 0)?.access).toBe('pread');
    expect(r.bars.filter((b) => b.bar > 0).every((b) => b.access === 'mmap')).toBe(true);

    // Interrupt test: INTx once, every one of the 32 MSI and 32 MSI-X vectors on its own eventfd.
    const raised = (type: EpfIrqType): number[] => r.interrupts.filter((t) => t.type === type).map((t) => t.vector);
    expect(raised('intx')).toEqual([0]);
    expect(raised('msi')).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(raised('msix')).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(r.interrupts.every((t) => t.ok && (t.status & EPF_TEST_STATUS.IRQ_RAISED) !== 0)).toBe(true);

    // Transfers: 3 interrupt types × 3 commands × 6 sizes, every checksum verified, buffers mid-page.
    expect(r.transfers).toHaveLength(3 * 3 * sizes.length);
    const success: Record<EpfTransferKind, number> = {
      read: EPF_TEST_STATUS.READ_SUCCESS,
      write: EPF_TEST_STATUS.WRITE_SUCCESS,
      copy: EPF_TEST_STATUS.COPY_SUCCESS,
    };
    for (const t of r.transfers) {
      expect(t.ok).toBe(true);
      expect(t.checksum.verified).toBe(true);
      expect(t.checksum.host).toBe(t.checksum.expected);
      expect(t.status & success[t.kind]).toBe(success[t.kind]);
      expect(t.status & (EPF_TEST_STATUS.SRC_ADDR_INVALID | EPF_TEST_STATUS.DST_ADDR_INVALID)).toBe(0);
    }
    expect(new Set(r.transfers.map((t) => t.pageOffset))).toEqual(new Set([0, 0x10, 0x7f3, 0xff8]));
    for (const type of ['intx', 'msi', 'msix'] as const) {
      for (const kind of ['read', 'write', 'copy'] as const) {
        expect(r.transfers.filter((t) => t.irq === type && t.kind === kind).map((t) => t.size)).toEqual(sizes);
      }
    }

    // Interrupts per type: one completion per command, nothing spurious; the host saw the same number.
    const perType = 3 * sizes.length;
    expect(r.interruptCounts).toEqual({ intx: 1 + perType, msi: 32 + perType, msix: 32 + perType, spurious: 0 });
    expect(platform.pci.device(BDF)?.interruptCounts).toEqual({ intx: 1 + perType, msi: 2 * (32 + perType) });

    expectClean(host, p);
    expect(host.platform.iommu!.faults()).toEqual([]);
  });

  it('honours the endpoint DMA alignment and works with BARs through pread/pwrite only', async () => {
    const { host, p } = epfHost();
    const r = await runEpfTestSuite(p, {
      bdf: BDF,
      alignment: 4096,
      mmio: 'pread',
      irqTypes: ['msix', 'intx'],
      vectors: 3,
      sizes: [3, 4095, 8193],
      allocOffsets: [0x40, 0x801, 0xfff],
    });
    expect(r.ok).toBe(true);
    expect(r.bars.every((b) => b.access === 'pread' && b.ok)).toBe(true);
    // The kernel aligns the buffer up to the endpoint's alignment: every buffer starts on a page.
    expect(r.transfers.every((t) => t.pageOffset % 4096 === 0)).toBe(true);
    expect(r.interrupts.map((t) => `${t.type}:${t.number}`)).toEqual(['msix:1', 'msix:2', 'msix:3', 'intx:0']);
    expect(r.interruptCounts).toEqual({ intx: 1 + 9, msi: 0, msix: 3 + 9, spurious: 0 });
    expectClean(host, p);
  });

  it('moves pcitest.sh sizes (1024000 and 1024001 bytes) both ways', async () => {
    const { host, p } = epfHost();
    const epf = await EpfTestVfioDriver.open(p, { bdf: BDF });
    await epf.setIrqType('msi', 1);
    for (const kind of ['read', 'write', 'copy'] as const) {
      for (const size of [1024000, 1024001]) {
        const t = await epf.transfer(kind, size, 0x123);
        expect(t).toMatchObject({ kind, size, irq: 'msi', ok: true, checksum: { verified: true } });
      }
    }
    // While buffers are mapped the pages are pinned; between transfers nothing is.
    expect(host.describe().processes.find((x) => x.pid === p.pid)?.lockedPages).toBe(0);
    expect(epf.interruptCounts).toEqual({ intx: 0, msi: 6, msix: 0, spurious: 0 });
    await epf.close();
    expectClean(host, p);
  });

  it('property: any size, placement, command and interrupt type round-trips with matching checksums', async () => {
    const { host, p } = epfHost();
    const epf = await EpfTestVfioDriver.open(p, { bdf: BDF });
    let current: EpfIrqType | undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<EpfIrqType>('intx', 'msi', 'msix'),
        fc.constantFrom<EpfTransferKind>('read', 'write', 'copy'),
        fc.integer({ min: 1, max: 20000 }),
        fc.integer({ min: 0, max: 4095 }),
        async (type, kind, size, offset) => {
          if (current !== type) {
            await epf.setIrqType(type, type === 'intx' ? undefined : 2);
            current = type;
          }
          const t = await epf.transfer(kind, size, offset);
          expect(t.ok).toBe(true);
          expect(t.pageOffset).toBe(offset);
          expect(t.checksum.host).toBe(t.checksum.expected);
        },
      ),
      { numRuns: 40 },
    );
    expect(epf.interruptCounts.spurious).toBe(0);
    await epf.close();
    expectClean(host, p);
  });

  it('an endpoint DMA to an unmapped IOVA fails in STATUS and faults in the IOMMU, memory untouched', async () => {
    const { host, p } = epfHost();
    const epf = await EpfTestVfioDriver.open(p, { bdf: BDF });
    await epf.setIrqType('msi', 2);
    // A good transfer first, so the device is known to work and its mappings exist.
    expect((await epf.transfer('write', 4096)).ok).toBe(true);
    const locked = host.describe().processes.find((x) => x.pid === p.pid)?.lockedPages;

    // WRITE (endpoint → host) to an IOVA nobody mapped: DST_ADDR_INVALID | WRITE_FAIL, a write fault recorded.
    const w = await epf.command({ command: EPF_TEST_COMMAND.WRITE, dst: 0xdead0000n, size: 4096, number: 2 });
    expect(w.vector).toBe(1);
    expect(w.status & EPF_TEST_STATUS.WRITE_FAIL).toBe(EPF_TEST_STATUS.WRITE_FAIL);
    expect(w.status & EPF_TEST_STATUS.DST_ADDR_INVALID).toBe(EPF_TEST_STATUS.DST_ADDR_INVALID);
    expect(w.status & EPF_TEST_STATUS.WRITE_SUCCESS).toBe(0);
    expect(host.platform.iommu!.faults().at(-1)).toMatchObject({ device: BDF, iova: 0xdead0000n, write: true });

    // READ (host → endpoint) from an unmapped IOVA: SRC_ADDR_INVALID | READ_FAIL, a read fault recorded.
    const r = await epf.command({ command: EPF_TEST_COMMAND.READ, src: 0x7654321000n, size: 64, checksum: crc32Le(~0, new Uint8Array(64)) });
    expect(r.status & (EPF_TEST_STATUS.READ_FAIL | EPF_TEST_STATUS.SRC_ADDR_INVALID)).toBe(EPF_TEST_STATUS.READ_FAIL | EPF_TEST_STATUS.SRC_ADDR_INVALID);
    expect(host.platform.iommu!.faults().at(-1)).toMatchObject({ device: BDF, iova: 0x7654321000n, write: false });
    expect(host.log().some((l) => /fault/i.test(l.text))).toBe(true);
    expect(host.describe().processes.find((x) => x.pid === p.pid)?.lockedPages).toBe(locked);

    // The device still works afterwards.
    expect((await epf.transfer('copy', 777, 9)).ok).toBe(true);
    expect(epf.interruptCounts).toEqual({ intx: 0, msi: 4, msix: 0, spurious: 0 });
    await epf.close();
    expectClean(host, p);
  });

  it('a completion that never comes times out with ETIMEDOUT and close() still releases everything', async () => {
    // pci-epf-test drops a COMMAND with more than one bit set ("Invalid command") without raising an interrupt.
    const { host, p } = epfHost();
    const epf = await EpfTestVfioDriver.open(p, { bdf: BDF, timeoutMs: 20 });
    await epf.setIrqType('msix', 1);
    const failed = await epf.command({ command: EPF_TEST_COMMAND.RAISE_MSIX_IRQ | EPF_TEST_COMMAND.READ }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(EpfTestDriverError);
    expect(failed).toMatchObject({ step: 'command', cause: { errno: 'ETIMEDOUT' } });
    await epf.close();
    expectClean(host, p);
  });

  it('FLAGS.USE_DMA: served by an endpoint with a DMA channel, dropped (a timeout) by one without', async () => {
    const withDma = epfHost();
    const a = await EpfTestVfioDriver.open(withDma.p, { bdf: BDF, useDma: true });
    await a.setIrqType('msi', 1);
    expect((await a.transfer('copy', 5000, 3)).ok).toBe(true);
    await a.close();
    expectClean(withDma.host, withDma.p);

    const without = epfHost({ dmaChannel: false });
    const b = await EpfTestVfioDriver.open(without.p, { bdf: BDF, useDma: true, timeoutMs: 10 });
    await b.setIrqType('msi', 1);
    await expect(b.transfer('read', 64)).rejects.toMatchObject({ step: 'read', cause: { errno: 'ETIMEDOUT' } });
    // The failed transfer gave its DMA buffers back already.
    expect(without.host.describe().processes.find((x) => x.pid === without.p.pid)?.lockedPages).toBe(0);
    await b.close();
    expectClean(without.host, without.p);
  });

  it('refuses a device that is not a pci-epf-test endpoint and unwinds what it opened', async () => {
    const host = createHost({
      platform: simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: eduFunction(), driver: 'vfio-pci' }] }),
      plugins: [type1(), vfioPci()],
    });
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n * MiB });
    const err = await EpfTestVfioDriver.open(p, { bdf: BDF }).catch((e: unknown) => e);
    expect(err).toMatchObject({ step: 'bus-master', cause: { errno: 'ENODEV' } });
    expectClean(host, p);
    // Bad arguments are refused before anything is opened, and on an open driver they change nothing.
    await expect(EpfTestVfioDriver.open(p, { bdf: BDF, alignment: 3 })).rejects.toMatchObject({ cause: { errno: 'EINVAL' } });
    expect(p.fds()).toEqual([]);
  });

  it('rejects bad transfer arguments with EINVAL and leaves nothing mapped', async () => {
    const { host, p } = epfHost();
    const epf = await EpfTestVfioDriver.open(p, { bdf: BDF });
    await expect(epf.transfer('read', 16)).rejects.toMatchObject({ step: 'read', cause: { errno: 'EINVAL' } });
    await epf.setIrqType('msi', 1);
    await expect(epf.setIrqType('msi', 33)).rejects.toMatchObject({ step: 'irq-setup', cause: { errno: 'EINVAL' } });
    expect(epf.irqType).toEqual({ type: 'msi', vectors: 1 });
    await expect(epf.transfer('write', 0)).rejects.toMatchObject({ cause: { errno: 'EINVAL' } });
    await expect(epf.transfer('copy', 16, 4096)).rejects.toMatchObject({ cause: { errno: 'EINVAL' } });
    await expect(epf.interruptTest(2)).rejects.toMatchObject({ step: 'interrupt-test', cause: { errno: 'EINVAL' } });
    await expect(epf.barTest(6)).rejects.toMatchObject({ step: 'bar-test', cause: { errno: 'EINVAL' } });
    expect(host.describe().processes.find((x) => x.pid === p.pid)?.lockedPages).toBe(0);
    expect((await epf.interruptTest(1)).ok).toBe(true);
    await epf.close();
    await epf.close(); // idempotent
    await expect(epf.transfer('read', 16)).rejects.toMatchObject({ cause: { errno: 'EBADF' } });
    expectClean(host, p);
  });
});
