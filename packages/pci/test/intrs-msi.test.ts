/**
 * MSI and MSI-X through the interrupt layer (inventory §3.4 P33–P39, §1.4.2): GET_IRQ_INFO, enable with
 * start+count vectors, per-vector eventfds and de-assignment, loopback, dynamic MSI-X, partial allocation, the
 * host's programming of the function, mutual exclusion and disable.
 */
import { EDU_REG } from '@vfio-ts/device-edu';
import { pciFunctionFromConfig } from '@vfio-ts/sim';
import {
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_ERR_IRQ_INDEX as ERR,
  VFIO_PCI_INTX_IRQ_INDEX as INTX,
  VFIO_PCI_MSI_IRQ_INDEX as MSI,
  VFIO_PCI_MSIX_IRQ_INDEX as MSIX,
  VFIO_PCI_REQ_IRQ_INDEX as REQ,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { bench, e1000eBench, eduBench, expectErrno, take, TRIGGER_BOOL, TRIGGER_EVENTFD, TRIGGER_NONE } from './intrs-helpers.js';
import { buildConfig, le } from './helpers.js';

const CMD = 0x04;
const MEM_MASTER = 0x0006;
const INTX_DISABLE = 0x0400;
const MSIX_CAP = 0xa0;
const EDU_MSI = 0x40;

/** A function with a 64-bit MSI capability of 4 vectors with per-vector masking at 0x40. */
function msi4() {
  const config = buildConfig(256, {
    0x00: [0x34, 0x12, 0x78, 0x56],
    0x06: le(0x0010, 2),
    0x34: [0x40],
    0x3d: [1],
    0x40: [0x05, 0x00, ...le(0x0184, 2)],
  });
  return bench(pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' }));
}

/** Vector-control word of MSI-X table entry `i` in the e1000e's BAR3 (masked = 1). */
function msixCtrl(b: ReturnType<typeof e1000eBench>, i: number): number {
  return b.fn.barRead(3, BigInt(16 * i + 12), 4)[0]! & 1;
}

describe('GET_IRQ_INFO', () => {
  it('edu (conventional PCI, MSI with 1 vector)', () => {
    const { layer } = eduBench();
    expect(layer.irqInfo(INTX)).toEqual({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, count: 1 });
    expect(layer.irqInfo(MSI)).toEqual({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: 1 });
    // No MSI-X capability: count 0 and NORESIZE (no dynamic MSI-X without MSI-X).
    expect(layer.irqInfo(MSIX)).toEqual({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: 0 });
    // ERR exists only for PCI Express functions.
    expectErrno(() => layer.irqInfo(ERR), 'EINVAL');
    expect(layer.irqCount(ERR)).toBe(0);
    expect(layer.irqInfo(REQ)).toEqual({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: 1 });
    expectErrno(() => layer.irqInfo(5), 'EINVAL');
    expectErrno(() => layer.irqInfo(-1), 'EINVAL');
  });

  it('e1000e (PCIe, MSI-X table of 5): dynamic MSI-X drops NORESIZE', () => {
    const { layer } = e1000eBench();
    expect(layer.irqInfo(MSIX)).toEqual({ flags: VFIO_IRQ_INFO_EVENTFD, count: 5 });
    expect(layer.irqInfo(MSI)).toEqual({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: 1 });
    expect(layer.irqInfo(ERR)).toEqual({ flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: 1 });
    expect(e1000eBench({ dynamicMsix: false }).layer.irqInfo(MSIX).flags).toBe(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE);
    // MSI count is 2^(Multiple Message Capable).
    expect(msi4().layer.irqCount(MSI)).toBe(4);
  });
});

describe('MSI', () => {
  it('edu: enable, deliver the device message to the eventfd, loopback, disable', () => {
    const b = eduBench();
    b.config.write(CMD, 2, MEM_MASTER);
    const { fd, efd } = b.proc.eventfd();
    expect(b.setIrqs(TRIGGER_EVENTFD, MSI, 0, 1, [fd])).toBe(0);
    expect(b.config.irqType).toBe('msi');
    // The host enabled MSI in hardware and set DisINTx (pci_intx_for_msi).
    expect(b.fn.configRead(EDU_MSI + 2, 2) & 1).toBe(1);
    expect(b.fn.configRead(CMD, 2) & INTX_DISABLE).toBe(INTX_DISABLE);

    b.fn.barWrite(0, BigInt(EDU_REG.IRQ_RAISE), new Uint8Array([1, 0, 0, 0]));
    expect(take(efd)).toBe(1);
    expect(b.state().msi?.vectors).toEqual([{ vector: 0, name: 'vfio-msi[0](0000:00:03.0)', eventfd: fd, interrupts: 1, signals: 1 }]);

    b.setIrqs(TRIGGER_NONE, MSI, 0, 1);
    b.setIrqs(TRIGGER_BOOL, MSI, 0, 1, [1]);
    b.setIrqs(TRIGGER_BOOL, MSI, 0, 1, [0]);
    expect(take(efd)).toBe(2);

    expect(b.setIrqs(TRIGGER_NONE, MSI, 0, 0)).toBe(0);
    expect(b.state().irqType).toBe('none');
    expect(b.config.irqType).toBe('none');
    expect(b.fn.configRead(EDU_MSI + 2, 2) & 1).toBe(0);
    expect(b.fn.configRead(CMD, 2) & INTX_DISABLE).toBe(0);
    expectErrno(() => b.setIrqs(TRIGGER_NONE, MSI, 0, 1), 'EINVAL');
  });

  it('4 vectors: start+count are enabled, Multiple Message Enable and per-vector masks follow', () => {
    const b = msi4();
    const e = [b.proc.eventfd(), b.proc.eventfd()];
    // Vectors 1 and 2 bound: 3 vectors enabled (MME = 4), vector 0 allocated but masked.
    b.setIrqs(TRIGGER_EVENTFD, MSI, 1, 2, [e[0]!.fd, e[1]!.fd]);
    const flags = b.fn.configRead(0x42, 2);
    expect(flags & 1).toBe(1);
    expect((flags >> 4) & 7).toBe(2);
    expect(b.fn.configRead(0x50, 4)).toBe(0b1001);
    expect(b.state().msi?.allocated).toBe(3);
    // The user's QSIZE writes are clipped to what was enabled (msi_qmax).
    b.config.write(0x42, 2, 0x0031);
    expect((b.config.read(0x42, 2) >> 4) & 7).toBe(2);

    b.pdev.ctx.msiNotify(2);
    b.pdev.ctx.msiNotify(1);
    b.pdev.ctx.msiNotify(2);
    b.pdev.ctx.msiNotify(0); // allocated, no trigger: spurious
    b.pdev.ctx.msiNotify(3); // beyond the block
    expect(take(e[0]!.efd)).toBe(1);
    expect(take(e[1]!.efd)).toBe(2);
    expect(b.state().msi?.spurious).toBe(2);

    // Vector 3 was not enabled: binding it is EINVAL and changes nothing.
    const late = b.proc.eventfd();
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSI, 2, 2, [e[0]!.fd, late.fd]), 'EINVAL');
    expect(b.state().msi?.vectors.map((v) => [v.vector, v.eventfd])).toEqual([[1, e[0]!.fd], [2, e[1]!.fd]]);
    // De-assign vector 1 with -1: it is masked again.
    b.setIrqs(TRIGGER_EVENTFD, MSI, 1, 1, [-1]);
    expect(b.fn.configRead(0x50, 4)).toBe(0b1011);
    b.pdev.ctx.msiNotify(1);
    expect(take(e[0]!.efd)).toBe(0);

    b.setIrqs(TRIGGER_NONE, MSI, 0, 0);
    expect(b.fn.configRead(0x42, 2) & 1).toBe(0);
    expect(b.fn.configRead(0x50, 4)).toBe(0);
  });

  it('EVENTFD with start 0 count 0 is ERANGE; a smaller host budget is returned, enabling nothing', () => {
    const b = msi4();
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSI, 0, 0), 'ERANGE');
    expect(b.state().irqType).toBe('none');
    const limited = bench(msi4().fn, { irqVectorLimit: 2 });
    const fds = [1, 2, 3].map(() => limited.proc.eventfd().fd);
    expect(limited.setIrqs(TRIGGER_EVENTFD, MSI, 0, 3, fds)).toBe(2);
    expect(limited.state().irqType).toBe('none');
    expect(limited.setIrqs(TRIGGER_EVENTFD, MSI, 0, 2, fds.slice(0, 2))).toBe(0);
    expect(limited.state().irqType).toBe('msi');
  });

  it('start 2 count 0 enables 2 vectors with no trigger (as Linux does)', () => {
    const b = msi4();
    expect(b.setIrqs(TRIGGER_EVENTFD, MSI, 2, 0)).toBe(0);
    expect(b.state()).toMatchObject({ irqType: 'msi', msi: { allocated: 2, vectors: [] } });
  });
});

describe('MSI-X', () => {
  it('e1000e: enable, route vectors, mask unbound entries in the table, de-assign, disable', () => {
    const b = e1000eBench();
    const e = [b.proc.eventfd(), b.proc.eventfd()];
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 2, [e[0]!.fd, e[1]!.fd]);
    expect(b.config.irqType).toBe('msix');
    expect(b.fn.configRead(MSIX_CAP + 2, 2) & 0xc000).toBe(0x8000);
    expect([0, 1, 2, 3, 4].map((i) => msixCtrl(b, i))).toEqual([0, 0, 1, 1, 1]);
    // The host's message is in the table (address in the x86 MSI window).
    expect(new DataView(b.fn.barRead(3, 16n, 4).buffer).getUint32(0, true)).toBe(0xfee00000);

    b.pdev.ctx.msiNotify(1);
    b.pdev.ctx.msiNotify(0);
    b.pdev.ctx.msiNotify(1);
    b.pdev.ctx.msiNotify(4);
    expect(take(e[0]!.efd)).toBe(1);
    expect(take(e[1]!.efd)).toBe(2);
    expect(b.state().msi?.spurious).toBe(1);

    b.setIrqs(TRIGGER_BOOL, MSIX, 0, 2, [0, 1]);
    expect(take(e[0]!.efd)).toBe(0);
    expect(take(e[1]!.efd)).toBe(1);

    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 1, [-1]);
    expect(msixCtrl(b, 0)).toBe(1);
    b.pdev.ctx.msiNotify(0);
    expect(take(e[0]!.efd)).toBe(0);

    b.setIrqs(TRIGGER_NONE, MSIX, 0, 0);
    expect(b.state().irqType).toBe('none');
    expect(b.fn.configRead(MSIX_CAP + 2, 2) & 0xc000).toBe(0);
    expect([0, 1].map((i) => msixCtrl(b, i))).toEqual([1, 1]);
    b.pdev.ctx.msiNotify(1);
    expect(take(e[1]!.efd)).toBe(0);
  });

  it('adds vectors to an enabled function with dynamic allocation, without disturbing the others', () => {
    const b = e1000eBench();
    const a = b.proc.eventfd();
    const c = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 1, [a.fd]);
    expect(b.state().msi?.allocated).toBe(1);
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 3, 1, [c.fd]);
    expect(b.state().msi?.allocated).toBe(2);
    expect([0, 1, 2, 3, 4].map((i) => msixCtrl(b, i))).toEqual([0, 1, 1, 0, 1]);
    b.pdev.ctx.msiNotify(3);
    b.pdev.ctx.msiNotify(0);
    expect(take(c.efd)).toBe(1);
    expect(take(a.efd)).toBe(1);
  });

  it('without dynamic allocation a vector beyond those enabled is EINVAL and nothing changes', () => {
    const b = e1000eBench({ dynamicMsix: false });
    const a = b.proc.eventfd();
    const c = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 1, [a.fd]);
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 2, [c.fd, c.fd]), 'EINVAL');
    expect(b.state().msi?.vectors.map((v) => v.eventfd)).toEqual([a.fd]);
    // De-assigning an unallocated vector is fine.
    expect(b.setIrqs(TRIGGER_EVENTFD, MSIX, 4, 1, [-1])).toBe(0);
  });

  it('a bad fd in the block fails with its errno and leaves every vector as it was', () => {
    const b = e1000eBench();
    const a = b.proc.eventfd();
    const c = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 2, [a.fd, c.fd]);
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 3, [c.fd, a.fd, 77]), 'EBADF');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 2, [c.fd, b.proc.file()]), 'EINVAL');
    expect(b.state().msi?.vectors.map((v) => [v.vector, v.eventfd])).toEqual([[0, a.fd], [1, c.fd]]);
    // On a function not yet enabled, the failure leaves it disabled.
    const d = e1000eBench();
    expectErrno(() => d.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 2, [d.proc.eventfd().fd, 55]), 'EBADF');
    expect(d.state().irqType).toBe('none');
    expect(d.fn.configRead(MSIX_CAP + 2, 2) & 0x8000).toBe(0);
  });

  it('restores the host programming after a function reset', () => {
    const b = e1000eBench();
    const a = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 1, 1, [a.fd]);
    b.fn.reset('flr');
    expect(b.fn.configRead(MSIX_CAP + 2, 2) & 0x8000).toBe(0);
    b.layer.afterReset?.();
    expect(b.fn.configRead(MSIX_CAP + 2, 2) & 0x8000).toBe(0x8000);
    expect(msixCtrl(b, 1)).toBe(0);
  });
});

describe('one interrupt type at a time (§3.4 P39)', () => {
  it('INTx, MSI and MSI-X exclude each other with EINVAL', () => {
    const b = e1000eBench();
    const e = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [e.fd]);
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSI, 0, 1, [e.fd]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 1, [e.fd]), 'EINVAL');
    // A disable of an inactive type is EINVAL too, not a silent no-op.
    expectErrno(() => b.setIrqs(TRIGGER_NONE, MSIX, 0, 0), 'EINVAL');
    b.setIrqs(TRIGGER_NONE, INTX, 0, 0);

    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 1, [e.fd]);
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [e.fd]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSI, 0, 1, [e.fd]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_NONE, MSI, 0, 0), 'EINVAL');
    expect(b.state().irqType).toBe('msix');
    b.setIrqs(TRIGGER_NONE, MSIX, 0, 0);

    b.setIrqs(TRIGGER_EVENTFD, MSI, 0, 1, [e.fd]);
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 1, [e.fd]), 'EINVAL');
    expect(b.state().irqType).toBe('msi');
  });

  it('MSI and MSI-X have no MASK/UNMASK (ENOTTY); validation comes first', () => {
    const b = e1000eBench();
    const e = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 1, [e.fd]);
    expectErrno(() => b.setIrqs(VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_DATA_NONE, MSIX, 0, 1), 'ENOTTY');
    expectErrno(() => b.setIrqs(VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_NONE, MSI, 0, 1), 'ENOTTY');
    // No action bit, or two of them: ENOTTY from the dispatch.
    expectErrno(() => b.setIrqs(VFIO_IRQ_SET_DATA_NONE, MSIX, 0, 1), 'ENOTTY');
    expectErrno(() => b.setIrqs(VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_NONE, INTX, 0, 1), 'ENOTTY');
    // start=0xffffffff count=2 wraps: EINVAL before anything else.
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSIX, 0xffffffff, 2, [e.fd, e.fd]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, MSIX, 4, 2, [e.fd, e.fd]), 'EINVAL');
  });
});
