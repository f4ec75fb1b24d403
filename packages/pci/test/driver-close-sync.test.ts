/**
 * Last close is synchronous (vfio_device_fops_release → vfio_df_close, inventory §2.7 step 4, §3.3): vfio-pci's
 * close_device stops DMA and interrupts at once and leaves only the virqfd flush for later, and the VFIO core drops
 * the container use before close(2) returns — so `close(device); ioctl(group, UNSET_CONTAINER)` succeeds right away,
 * as it does on Linux, while a re-open waits for the flush (it still holds the device-set lock).
 */
import {
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_DEVICE_SET_IRQS,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  isSysError,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { EDU_BDF, eduHost, groupOf, openDev } from './driver-helpers.js';
import { irqSetBytes } from './intrs-helpers.js';

function s32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

function errnoOf(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (!isSysError(e)) throw e;
    return e.errno;
  }
}

describe('vfio-pci + edu: close then UNSET_CONTAINER', () => {
  it('succeeds right after close(device) even with interrupts and virqfds set up', async () => {
    const t = eduHost();
    const { p } = t;
    const fds = openDev(t, EDU_BDF);
    // MSI trigger and an INTx unmask eventfd (a virqfd): close_device has deferred teardown to do.
    const msi = p.eventfd(0);
    p.ioctl(fds.device, VFIO_DEVICE_SET_IRQS, irqSetBytes(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [msi]));
    const before = p.pread(fds.device, 4, vfioPciOffset(0));
    p.close(fds.device);
    expect(p.ioctl(fds.group, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
    const d = [...t.host.describe().groups].find((g) => (g as { id: number }).id === groupOf(t, EDU_BDF));
    expect(d).toMatchObject({ container: null, containerUsers: 0 });

    // The virqfd flush still holds the device-set lock: a synchronous open answers EBUSY, ioctlAsync waits.
    p.ioctl(fds.group, VFIO_GROUP_SET_CONTAINER, s32(fds.container));
    p.ioctl(fds.container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const vdev = [...t.host.vfio.devices.values()].find((x) => x.name === EDU_BDF)!;
    expect(vdev.set!.lock.locked).toBe(true);
    expect(errnoOf(() => p.ioctl(fds.group, VFIO_GROUP_GET_DEVICE_FD, cstr(EDU_BDF)))).toBe('EBUSY');
    const again = await p.ioctlAsync(fds.group, VFIO_GROUP_GET_DEVICE_FD, cstr(EDU_BDF));
    expect([...p.pread(again, 4, vfioPciOffset(0))]).toEqual([...before]);
    expect(errnoOf(() => p.ioctl(fds.group, VFIO_GROUP_UNSET_CONTAINER))).toBe('EBUSY');
    p.close(again);
    expect(p.ioctl(fds.group, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
    p.close(fds.group);
    p.close(fds.container);
    p.close(msi);
  });

  it('with an INTx unmask virqfd: a re-open waits for the teardown, then works', async () => {
    const t = eduHost();
    const { p } = t;
    const fds = openDev(t, EDU_BDF);
    const trig = p.eventfd(0);
    const unmask = p.eventfd(0);
    p.ioctl(fds.device, VFIO_DEVICE_SET_IRQS, irqSetBytes(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [trig]));
    p.ioctl(fds.device, VFIO_DEVICE_SET_IRQS, irqSetBytes(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [unmask]));
    p.close(fds.device);
    expect(p.ioctl(fds.group, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
    p.ioctl(fds.group, VFIO_GROUP_SET_CONTAINER, s32(fds.container));
    p.ioctl(fds.container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    // Whether or not the flush is still running, the waiting open succeeds once it may.
    const again = await p.ioctlAsync(fds.group, VFIO_GROUP_GET_DEVICE_FD, cstr(EDU_BDF));
    expect(p.pread(again, 4, vfioPciOffset(0)).length).toBe(4);
    // The new open starts with no interrupts: INTx can be set up again from scratch.
    expect(p.ioctl(again, VFIO_DEVICE_SET_IRQS, irqSetBytes(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [trig]))).toBe(0);
    p.close(again);
    expect(p.ioctl(fds.group, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
  });
});
