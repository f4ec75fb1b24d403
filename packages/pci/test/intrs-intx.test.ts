/**
 * INTx through the interrupt layer (inventory §3.4 P30–P32, §3.7): trigger, automask, mask, unmask, unmask through
 * an eventfd (virqfd), the user's INTx-disable bit, loopback, disable, and the non-PCI-2.3 path.
 */
import { EDU_REG } from '@vfio-ts/device-edu';
import type { PciFunction } from '@vfio-ts/platform';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_INTX_IRQ_INDEX as INTX,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import type { Bench } from './intrs-helpers.js';
import { bench, eduBench, expectErrno, take, TRIGGER_BOOL, TRIGGER_EVENTFD, TRIGGER_NONE } from './intrs-helpers.js';

const CMD = 0x04;
const MEM_MASTER = 0x0006;
const INTX_DISABLE = 0x0400;
const STATUS_INTERRUPT = 0x08;

const MASK_NONE = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_DATA_NONE;
const MASK_BOOL = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_DATA_BOOL;
const MASK_EVENTFD = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_DATA_EVENTFD;
const UNMASK_NONE = VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_NONE;
const UNMASK_BOOL = VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_BOOL;
const UNMASK_EVENTFD = VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_EVENTFD;

function u32(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]);
}

/** edu with memory decoding on, so its registers take writes. */
function edu(): Bench & { raise(): void; ack(): void; hwCommand(): number } {
  const b = eduBench();
  b.config.write(CMD, 2, MEM_MASTER);
  return {
    ...b,
    raise: () => {
      b.fn.barWrite(0, BigInt(EDU_REG.IRQ_RAISE), u32(1));
    },
    ack: () => {
      b.fn.barWrite(0, BigInt(EDU_REG.IRQ_ACK), u32(1));
    },
    hwCommand: () => b.fn.configRead(CMD, 2),
  };
}

describe('INTx trigger and automask', () => {
  it('signals the trigger once per assertion and masks the line with DisINTx until unmasked', () => {
    const b = edu();
    const { fd, efd } = b.proc.eventfd();
    expect(b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd])).toBe(0);
    expect(b.config.irqType).toBe('intx');
    expect(b.hwCommand() & INTX_DISABLE).toBe(0);

    b.raise();
    expect(take(efd)).toBe(1);
    // Automasked: DisINTx in hardware, the pin dropped, the virtual bit untouched.
    expect(b.hwCommand() & INTX_DISABLE).toBe(INTX_DISABLE);
    expect(b.pdev.level).toBe(false);
    expect(b.config.read(CMD, 2) & INTX_DISABLE).toBe(0);
    expect(b.state().intx).toMatchObject({ masked: true, interrupts: 1, signals: 1, eventfd: fd });

    // Raising again while masked: nothing reaches the user.
    b.raise();
    expect(take(efd)).toBe(0);

    // The user services the device and unmasks: nothing pending, so no re-send.
    b.ack();
    expect(b.setIrqs(UNMASK_NONE, INTX, 0, 1)).toBe(0);
    expect(take(efd)).toBe(0);
    expect(b.hwCommand() & INTX_DISABLE).toBe(0);
    expect(b.state().intx?.masked).toBe(false);

    b.raise();
    expect(take(efd)).toBe(1);
  });

  it('an unmask while the device still asserts re-sends the interrupt and stays masked', () => {
    const b = edu();
    const { fd, efd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    b.raise();
    expect(take(efd)).toBe(1);
    // Not acknowledged: STATUS.INTERRUPT is still set.
    expect(b.fn.configRead(0x06, 2) & STATUS_INTERRUPT).toBe(STATUS_INTERRUPT);
    b.setIrqs(UNMASK_BOOL, INTX, 0, 1, [1]);
    expect(take(efd)).toBe(1);
    expect(b.state().intx?.masked).toBe(true);
    expect(b.hwCommand() & INTX_DISABLE).toBe(INTX_DISABLE);
    // BOOL false is a no-op.
    b.setIrqs(UNMASK_BOOL, INTX, 0, 1, [0]);
    expect(take(efd)).toBe(0);
  });

  it('a line already asserted when INTx is enabled is taken at once', () => {
    const b = edu();
    b.raise();
    expect(b.pdev.level).toBe(true);
    const { fd, efd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    expect(take(efd)).toBe(1);
    expect(b.state().intx?.masked).toBe(true);
  });

  it('loopback through DATA_NONE and DATA_BOOL signals without masking', () => {
    const b = edu();
    const { fd, efd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    b.setIrqs(TRIGGER_NONE, INTX, 0, 1);
    b.setIrqs(TRIGGER_BOOL, INTX, 0, 1, [1]);
    b.setIrqs(TRIGGER_BOOL, INTX, 0, 1, [0]);
    expect(take(efd)).toBe(2);
    expect(b.state().intx?.masked).toBe(false);
  });

  it('swaps the trigger, keeps INTx with fd -1, and disables with count 0 + DATA_NONE', async () => {
    const b = edu();
    const first = b.proc.eventfd();
    const second = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [first.fd]);
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [second.fd]);
    b.raise();
    expect(take(first.efd)).toBe(0);
    expect(take(second.efd)).toBe(1);
    b.ack();
    b.setIrqs(UNMASK_NONE, INTX, 0, 1);

    // fd -1: no trigger, but INTx stays the active type (interrupts are still taken and masked).
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [-1]);
    expect(b.state()).toMatchObject({ irqType: 'intx', intx: { eventfd: null } });
    b.raise();
    expect(take(second.efd)).toBe(0);
    expect(b.state().intx?.masked).toBe(true);
    b.ack();

    expect(b.setIrqs(TRIGGER_NONE, INTX, 0, 0)).toBe(0);
    expect(b.state().irqType).toBe('none');
    expect(b.config.irqType).toBe('none');
    await b.settle();
    // Disabled: the line is no one's business now; loopback needs INTx.
    expectErrno(() => b.setIrqs(TRIGGER_NONE, INTX, 0, 1), 'EINVAL');
    expectErrno(() => b.setIrqs(UNMASK_NONE, INTX, 0, 1), 'EINVAL');
    // And it can be enabled again, with no fd at all (Linux enables INTx without a trigger for fd -1).
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [-1]);
    expect(b.state().irqType).toBe('intx');
  });

  it('rejects bad eventfds with EBADF / EINVAL and changes nothing', () => {
    const b = edu();
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [99]), 'EBADF');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [b.proc.file()]), 'EINVAL');
    expect(b.state().irqType).toBe('none');
    const { fd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [99]), 'EBADF');
    expect(b.state().intx?.eventfd).toBe(fd);
  });

  it('validates start/count: vector 0 only, count 1 except the disable', () => {
    const b = edu();
    const { fd } = b.proc.eventfd();
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 2, [fd, fd]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, INTX, 1, 1, [fd]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, INTX, 0xffffffff, 2, [fd, fd]), 'EINVAL');
    // count 0 + DATA_NONE while INTx is off is not a disable: count must be 1.
    expectErrno(() => b.setIrqs(TRIGGER_NONE, INTX, 0, 0), 'EINVAL');
    expect(b.state().irqType).toBe('none');
  });
});

describe('INTx mask and unmask ioctls', () => {
  it('masks with DATA_NONE and DATA_BOOL, refuses a mask eventfd with ENOTTY', () => {
    const b = edu();
    expectErrno(() => b.setIrqs(MASK_NONE, INTX, 0, 1), 'EINVAL'); // INTx not enabled
    const { fd, efd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    b.setIrqs(MASK_BOOL, INTX, 0, 1, [0]);
    expect(b.state().intx?.masked).toBe(false);
    b.setIrqs(MASK_NONE, INTX, 0, 1);
    expect(b.state().intx?.masked).toBe(true);
    expect(b.hwCommand() & INTX_DISABLE).toBe(INTX_DISABLE);
    // Masked by the user: an interrupt stays at the device.
    b.raise();
    expect(take(efd)).toBe(0);
    // Unmask with the interrupt pending: re-sent from the unmask itself.
    b.setIrqs(UNMASK_NONE, INTX, 0, 1);
    expect(take(efd)).toBe(1);
    b.setIrqs(MASK_BOOL, INTX, 0, 1, [1]);
    const other = b.proc.eventfd();
    expectErrno(() => b.setIrqs(MASK_EVENTFD, INTX, 0, 1, [other.fd]), 'ENOTTY');
    expectErrno(() => b.setIrqs(MASK_NONE, INTX, 0, 0), 'EINVAL');
  });

  it('unmasks through an eventfd (virqfd): unmask in the signal, re-send from the thread', async () => {
    const b = edu();
    const trig = b.proc.eventfd();
    const unmask = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [trig.fd]);
    b.setIrqs(UNMASK_EVENTFD, INTX, 0, 1, [unmask.fd]);
    expect(b.state().intx?.unmaskEventfd).toBe(unmask.fd);
    // One slot: a second unmask eventfd is EBUSY.
    const again = b.proc.eventfd();
    expectErrno(() => b.setIrqs(UNMASK_EVENTFD, INTX, 0, 1, [again.fd]), 'EBUSY');

    b.raise();
    expect(take(trig.efd)).toBe(1);
    b.ack();
    unmask.efd.signal();
    // Unmasked synchronously in the handler; the unmask eventfd's counter is consumed.
    expect(b.state().intx?.masked).toBe(false);
    expect(unmask.efd.count).toBe(0n);

    b.raise();
    expect(take(trig.efd)).toBe(1);
    // Still asserted when the user signals: the handler leaves it masked and the thread re-sends.
    unmask.efd.signal();
    expect(take(trig.efd)).toBe(0);
    await b.settle();
    expect(take(trig.efd)).toBe(1);
    expect(b.state().intx?.masked).toBe(true);

    // fd -1 removes the unmask eventfd; a signal then does nothing.
    b.setIrqs(UNMASK_EVENTFD, INTX, 0, 1, [-1]);
    await b.settle();
    b.ack();
    unmask.efd.signal();
    await b.settle();
    expect(b.state().intx).toMatchObject({ masked: true, unmaskEventfd: null });
    expect(b.virqfd.describe().active).toBe(0);
  });

  it('closing the unmask eventfd releases its virqfd', async () => {
    const b = edu();
    const trig = b.proc.eventfd();
    const unmask = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [trig.fd]);
    b.setIrqs(UNMASK_EVENTFD, INTX, 0, 1, [unmask.fd]);
    b.proc.close(unmask.fd);
    await b.settle();
    expect(b.state().intx?.unmaskEventfd).toBeNull();
    const next = b.proc.eventfd();
    expect(b.setIrqs(UNMASK_EVENTFD, INTX, 0, 1, [next.fd])).toBe(0);
  });
});

describe('intxMask / intxUnmask (runtime suspend and resume)', () => {
  it('reports whether the mask changed, so resume unmasks only what suspend masked', () => {
    const b = edu();
    const { fd, efd } = b.proc.eventfd();
    expect(b.layer.intxMask?.()).toBe(false); // no INTx
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    expect(b.layer.intxMask?.()).toBe(true);
    expect(b.layer.intxMask?.()).toBe(false);
    b.raise();
    expect(take(efd)).toBe(0);
    b.layer.intxUnmask?.();
    expect(take(efd)).toBe(1);
  });
});

describe("the user's INTx-disable bit (COMMAND bit 10, §3.2 P20)", () => {
  it('masks INTx, blocks delivery and unmask, and clearing it unmasks', () => {
    const b = edu();
    const { fd, efd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    b.config.write(CMD, 2, MEM_MASTER | INTX_DISABLE);
    expect(b.state().intx).toMatchObject({ masked: true, virqDisabled: true });
    expect(b.hwCommand() & INTX_DISABLE).toBe(INTX_DISABLE);
    b.setIrqs(TRIGGER_NONE, INTX, 0, 1);
    b.setIrqs(UNMASK_NONE, INTX, 0, 1);
    expect(take(efd)).toBe(0);
    expect(b.state().intx?.masked).toBe(true);
    b.raise();
    expect(take(efd)).toBe(0);
    // Clearing the bit unmasks; the pending interrupt is re-sent.
    b.config.write(CMD, 2, MEM_MASTER);
    expect(take(efd)).toBe(1);
  });

  it('INTx enabled while the bit is set starts masked; without INTx the hardware bit follows the virtual one', () => {
    const b = edu();
    b.config.write(CMD, 2, MEM_MASTER | INTX_DISABLE);
    expect(b.hwCommand() & INTX_DISABLE).toBe(INTX_DISABLE);
    b.config.write(CMD, 2, MEM_MASTER);
    expect(b.hwCommand() & INTX_DISABLE).toBe(0);
    b.config.write(CMD, 2, MEM_MASTER | INTX_DISABLE);
    const { fd, efd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    expect(b.state().intx?.masked).toBe(true);
    b.raise();
    expect(take(efd)).toBe(0);
  });
});

/** A function whose pin is driven directly and whose COMMAND has no writable DisINTx (pre-PCI-2.3). */
function legacyFunction(): PciFunction & { bytes: Uint8Array } {
  const bytes = new Uint8Array(256);
  bytes.set([0x86, 0x80, 0x00, 0x10], 0);
  bytes[0x3d] = 1;
  return {
    bytes,
    bars: [],
    configRead: (off, size) => bytes.subarray(off, off + size).reduceRight((v, x) => v * 256 + x, 0),
    configWrite: (off, size, value) => {
      for (let i = 0; i < size; i++) {
        if (off + i === 0x05) continue; // DisINTx (bit 10) not implemented
        bytes[off + i] = (value >>> (8 * i)) & 0xff;
      }
    },
  };
}

describe('INTx without DisINTx masking (exclusive IRQ, disable_irq)', () => {
  it('is detected by probing, masks at the interrupt controller and replays a still-asserted line', async () => {
    const b = bench(legacyFunction());
    expect(b.state().pci23).toBe(false);
    const { fd, efd } = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [fd]);
    b.pdev.ctx.setIntx(true);
    expect(take(efd)).toBe(1);
    expect(b.state().intx?.masked).toBe(true);
    // Another edge while disabled at the controller: nothing.
    b.pdev.ctx.setIntx(false);
    b.pdev.ctx.setIntx(true);
    expect(take(efd)).toBe(0);
    // enable_irq with the level still high: delivered again once the unmask returned.
    b.setIrqs(UNMASK_NONE, INTX, 0, 1);
    expect(b.state().intx?.masked).toBe(false);
    await b.settle();
    expect(take(efd)).toBe(1);
    expect(b.state().intx?.masked).toBe(true);
    // Line low, unmask: nothing more.
    b.pdev.ctx.setIntx(false);
    b.setIrqs(UNMASK_NONE, INTX, 0, 1);
    await b.settle();
    expect(take(efd)).toBe(0);
    b.pdev.ctx.setIntx(true);
    expect(take(efd)).toBe(1);
  });

  it('honours an explicit pci23: false (nointxmask) and reports INTx count 0 for nointx and VFs', () => {
    expect(eduBench({ pci23: false }).state().pci23).toBe(false);
    expect(eduBench({ nointx: true }).layer.irqCount(INTX)).toBe(0);
    expect(eduBench({ virtfn: true }).layer.irqCount(INTX)).toBe(0);
    expectErrno(() => eduBench({ virtfn: true }).setIrqs(TRIGGER_NONE, INTX, 0, 0), 'EINVAL');
  });
});
