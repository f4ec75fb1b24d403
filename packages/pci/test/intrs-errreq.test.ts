/**
 * The ERR and REQ indexes (inventory §3.4 P36–P38): one eventfd each, set and cleared through TRIGGER, loopback
 * through DATA_NONE/BOOL, signalled by AER error_detected and the driver's request; and closeAll.
 */
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_ERR_IRQ_INDEX as ERR,
  VFIO_PCI_INTX_IRQ_INDEX as INTX,
  VFIO_PCI_MSIX_IRQ_INDEX as MSIX,
  VFIO_PCI_REQ_IRQ_INDEX as REQ,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { e1000eBench, eduBench, expectErrno, take, TRIGGER_BOOL, TRIGGER_EVENTFD, TRIGGER_NONE } from './intrs-helpers.js';

describe.each([
  ['ERR', ERR, (b: ReturnType<typeof e1000eBench>) => b.layer.errSignal()],
  ['REQ', REQ, (b: ReturnType<typeof e1000eBench>) => b.layer.requestSignal(0)],
] as const)('%s trigger', (_name, index, fire) => {
  it('is an eventfd the device side signals, with loopback, replaced and cleared through TRIGGER', () => {
    const b = e1000eBench();
    expect(fire(b)).toBe(false);
    // DATA_NONE with nothing set is EINVAL (there is nothing to signal or drop).
    expectErrno(() => b.setIrqs(TRIGGER_NONE, index, 0, 1), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_NONE, index, 0, 0), 'EINVAL');
    // BOOL with no eventfd set does nothing.
    expect(b.setIrqs(TRIGGER_BOOL, index, 0, 1, [1])).toBe(0);

    const first = b.proc.eventfd();
    const second = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, index, 0, 1, [first.fd]);
    expect(fire(b)).toBe(true);
    expect(take(first.efd)).toBe(1);
    b.setIrqs(TRIGGER_NONE, index, 0, 1);
    b.setIrqs(TRIGGER_BOOL, index, 0, 1, [1]);
    b.setIrqs(TRIGGER_BOOL, index, 0, 1, [0]);
    expect(take(first.efd)).toBe(2);

    b.setIrqs(TRIGGER_EVENTFD, index, 0, 1, [second.fd]);
    fire(b);
    expect(take(first.efd)).toBe(0);
    expect(take(second.efd)).toBe(1);
    // fd < -1 changes nothing; a bad fd keeps the old one.
    b.setIrqs(TRIGGER_EVENTFD, index, 0, 1, [-7]);
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, index, 0, 1, [42]), 'EBADF');
    expect(fire(b)).toBe(true);
    expect(take(second.efd)).toBe(1);

    // count 0 + DATA_NONE drops it; so does fd -1.
    b.setIrqs(TRIGGER_NONE, index, 0, 0);
    expect(fire(b)).toBe(false);
    b.setIrqs(TRIGGER_EVENTFD, index, 0, 1, [first.fd]);
    b.setIrqs(TRIGGER_EVENTFD, index, 0, 1, [-1]);
    expect(fire(b)).toBe(false);
  });

  it('rejects count 0 with BOOL/EVENTFD, MASK/UNMASK, and a second vector', () => {
    const b = e1000eBench();
    expectErrno(() => b.setIrqs(TRIGGER_BOOL, index, 0, 0), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, index, 0, 0), 'EINVAL');
    expectErrno(() => b.setIrqs(VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_DATA_NONE, index, 0, 1), 'ENOTTY');
    expectErrno(() => b.setIrqs(VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_EVENTFD, index, 0, 1, [-1]), 'ENOTTY');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, index, 0, 2, [-1, -1]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, index, 1, 1, [-1]), 'EINVAL');
  });
});

describe('ERR on conventional PCI', () => {
  it('a conventional function has no ERR vector: validation fails before the ioctl', () => {
    const b = eduBench();
    expectErrno(() => b.setIrqs(TRIGGER_EVENTFD, ERR, 0, 1, [b.proc.eventfd().fd]), 'EINVAL');
    expectErrno(() => b.setIrqs(TRIGGER_NONE, ERR, 0, 0), 'EINVAL');
    expect(b.layer.errSignal()).toBe(false);
  });
});

describe('closeAll', () => {
  it('tears down every index, the ERR/REQ triggers, the ioeventfds and the routing', async () => {
    const b = e1000eBench();
    const e = [b.proc.eventfd(), b.proc.eventfd(), b.proc.eventfd(), b.proc.eventfd()];
    b.setIrqs(TRIGGER_EVENTFD, MSIX, 0, 2, [e[0]!.fd, e[1]!.fd]);
    b.setIrqs(TRIGGER_EVENTFD, ERR, 0, 1, [e[2]!.fd]);
    b.setIrqs(TRIGGER_EVENTFD, REQ, 0, 1, [e[2]!.fd]);
    b.ioeventfd(0, 0x100n, 7n, e[3]!.fd);
    expect(b.virqfd.describe().active).toBe(1);

    await b.layer.closeAll();
    expect(b.state()).toMatchObject({ irqType: 'none', intx: null, msi: null, ioeventfds: [], closed: true });
    expect(b.state().err.eventfd).toBeNull();
    expect(b.state().req.eventfd).toBeNull();
    expect(b.config.irqType).toBe('none');
    expect(b.pdev.intxHandler).toBeUndefined();
    expect(b.pdev.msiHandler).toBeUndefined();
    expect(b.virqfd.describe().active).toBe(0);
    expect(b.fn.configRead(0xa2, 2) & 0x8000).toBe(0);
    expect(b.layer.errSignal()).toBe(false);
    expect(b.layer.requestSignal(0)).toBe(false);
    e[3]!.efd.signal();
    expect(b.fn.barRead(0, 0x100n, 4)[0]).toBe(0);
  });

  it('closes INTx with an unmask eventfd after its virqfd is shut down', async () => {
    const b = eduBench();
    const t = b.proc.eventfd();
    const u = b.proc.eventfd();
    b.setIrqs(TRIGGER_EVENTFD, INTX, 0, 1, [t.fd]);
    b.setIrqs(VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_EVENTFD, INTX, 0, 1, [u.fd]);
    await b.layer.closeAll();
    expect(b.virqfd.describe()).toMatchObject({ active: 0, pendingCleanup: 0 });
    // A second close is harmless.
    await b.layer.closeAll();
  });
});
