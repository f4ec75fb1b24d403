/**
 * VFIO_DEVICE_IOEVENTFD (inventory §1.4, §3.3 P45): argument checks, BAR-only with the MSI-X table excluded,
 * duplicates, removal with fd -1, the per-device limit, and the write done when the eventfd is signalled.
 */
import {
  VFIO_DEVICE_IOEVENTFD_16,
  VFIO_DEVICE_IOEVENTFD_32,
  VFIO_DEVICE_IOEVENTFD_64,
  VFIO_DEVICE_IOEVENTFD_8,
  vfioDeviceIoeventfd,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { VFIO_PCI_IOEVENTFD_MAX } from '../src/intrs/index.js';
import { e1000eBench, expectErrno } from './intrs-helpers.js';

function word(b: ReturnType<typeof e1000eBench>, bar: number, offset: bigint, size: number): bigint {
  const bytes = b.fn.barRead(bar, offset, size);
  return bytes.reduceRight((v, x) => (v << 8n) | BigInt(x), 0n);
}

describe('ioeventfd', () => {
  it('writes data of the registered size into the BAR each time the eventfd is signalled', () => {
    const b = e1000eBench();
    const sizes = [
      [VFIO_DEVICE_IOEVENTFD_8, 1, 0x10n],
      [VFIO_DEVICE_IOEVENTFD_16, 2, 0x20n],
      [VFIO_DEVICE_IOEVENTFD_32, 4, 0x40n],
      [VFIO_DEVICE_IOEVENTFD_64, 8, 0x80n],
    ] as const;
    const data = 0x1122334455667788n;
    const fds = sizes.map(([flags, , offset]) => {
      const e = b.proc.eventfd();
      expect(b.ioeventfd(0, offset, data, e.fd, flags)).toBe(0);
      return e;
    });
    expect(word(b, 0, 0x10n, 1)).toBe(0n);
    fds.forEach((e) => {
      e.efd.signal();
    });
    sizes.forEach(([, size, offset]) => {
      expect(word(b, 0, offset, size)).toBe(data & ((1n << BigInt(8 * size)) - 1n));
    });
    // Nothing outside the access.
    expect(word(b, 0, 0x11n, 1)).toBe(0n);
    expect(b.state().ioeventfds.map((i) => [i.offset, i.size, i.writes])).toEqual([
      ['0x10', 1, 1],
      ['0x20', 2, 1],
      ['0x40', 4, 1],
      ['0x80', 8, 1],
    ]);
  });

  it('an I/O BAR qualifies; the write is skipped while memory decoding is off', () => {
    const b = e1000eBench();
    const io = b.proc.eventfd();
    expect(b.ioeventfd(2, 0x1cn, 0xabn, io.fd, VFIO_DEVICE_IOEVENTFD_8)).toBe(0);
    const mem = b.proc.eventfd();
    b.ioeventfd(1, 0x0n, 0x55n, mem.fd);
    b.config.write(0x04, 2, 0x0001); // I/O only
    mem.efd.signal();
    io.efd.signal();
    expect(word(b, 1, 0n, 4)).toBe(0n);
    expect(word(b, 2, 0x1cn, 1)).toBe(0xabn);
    b.config.write(0x04, 2, 0x0003);
    mem.efd.signal();
    expect(word(b, 1, 0n, 4)).toBe(0x55n);
    expect(b.state().ioeventfds.find((i) => i.bar === 1)).toMatchObject({ writes: 1, skipped: 1 });
  });

  it('checks its argument: buffer, argsz, flags, size bits, fd', () => {
    const b = e1000eBench();
    const { fd } = b.proc.eventfd();
    const arg = (v: Partial<ReturnType<typeof vfioDeviceIoeventfd.decode>>): Uint8Array =>
      vfioDeviceIoeventfd.encode({ argsz: 32, flags: VFIO_DEVICE_IOEVENTFD_32, offset: 0n, data: 0n, fd, ...v });
    expectErrno(() => b.layer.ioeventfd(arg({}).subarray(0, 27), b.proc.call), 'EFAULT');
    expectErrno(() => b.layer.ioeventfd(arg({ argsz: 27 }), b.proc.call), 'EINVAL');
    expectErrno(() => b.layer.ioeventfd(arg({ flags: 0 }), b.proc.call), 'EINVAL');
    expectErrno(() => b.layer.ioeventfd(arg({ flags: 3 }), b.proc.call), 'EINVAL');
    expectErrno(() => b.layer.ioeventfd(arg({ flags: 0x10 | VFIO_DEVICE_IOEVENTFD_32 }), b.proc.call), 'EINVAL');
    expectErrno(() => b.layer.ioeventfd(arg({ fd: -2 }), b.proc.call), 'EINVAL');
    // minsz is 28: argsz 28 works.
    expect(b.layer.ioeventfd(arg({ argsz: 28 }).subarray(0, 28), b.proc.call)).toBe(0);
    expectErrno(() => b.ioeventfd(0, 0x4n, 0n, 99), 'EBADF');
    expectErrno(() => b.ioeventfd(0, 0x4n, 0n, b.proc.file()), 'EINVAL');
    expect(b.state().ioeventfds).toHaveLength(1);
  });

  it('BARs only, inside the BAR, never over the MSI-X table', () => {
    const b = e1000eBench();
    const { fd } = b.proc.eventfd();
    expectErrno(() => b.ioeventfd(6, 0n, 0n, fd), 'EINVAL'); // ROM
    expectErrno(() => b.ioeventfd(7, 0n, 0n, fd), 'EINVAL'); // config space
    expectErrno(() => b.ioeventfd(4, 0n, 0n, fd), 'EINVAL'); // unimplemented BAR
    expectErrno(() => b.ioeventfd(0, 0x1fffdn, 0n, fd), 'EINVAL'); // 4 bytes past 128 KiB
    expect(b.ioeventfd(0, 0x1fffcn, 0n, fd)).toBe(0);
    // The e1000e's MSI-X table: BAR3 [0, 0x50).
    expectErrno(() => b.ioeventfd(3, 0n, 0n, fd), 'EINVAL');
    expectErrno(() => b.ioeventfd(3, 0x4en, 0n, fd), 'EINVAL');
    expect(b.ioeventfd(3, 0x50n, 0n, fd)).toBe(0);
    // Only the table is excluded, not the PBA.
    expect(b.ioeventfd(3, 0x2000n, 0n, fd)).toBe(0);
    // An offset far beyond the region bits is a region index > 5.
    const arg = vfioDeviceIoeventfd.encode({ argsz: 32, flags: 4, offset: vfioPciOffset(0xffffff), data: 0n, fd });
    expectErrno(() => b.layer.ioeventfd(arg, b.proc.call), 'EINVAL');
  });

  it('duplicates are EEXIST, fd -1 removes the matching one, ENODEV when none matches', async () => {
    const b = e1000eBench();
    const e = b.proc.eventfd();
    const other = b.proc.eventfd();
    b.ioeventfd(0, 0x8n, 1n, e.fd);
    expectErrno(() => b.ioeventfd(0, 0x8n, 1n, other.fd), 'EEXIST');
    // Same place, other data or size: a different ioeventfd.
    expect(b.ioeventfd(0, 0x8n, 2n, other.fd)).toBe(0);
    expect(b.ioeventfd(0, 0x8n, 1n, other.fd, VFIO_DEVICE_IOEVENTFD_16)).toBe(0);
    expectErrno(() => b.ioeventfd(0, 0xcn, 1n, -1), 'ENODEV');
    expect(b.ioeventfd(0, 0x8n, 1n, -1)).toBe(0);
    expect(b.state().ioeventfds).toHaveLength(2);
    await b.settle();
    e.efd.signal();
    expect(word(b, 0, 8n, 4)).toBe(0n);
    // Registered again after removal.
    expect(b.ioeventfd(0, 0x8n, 1n, e.fd)).toBe(0);
  });

  it('an eventfd that is closed keeps its entry (Linux keeps it on the list) until removed', async () => {
    const b = e1000eBench();
    const e = b.proc.eventfd();
    b.ioeventfd(0, 0x8n, 1n, e.fd);
    b.proc.close(e.fd);
    await b.settle();
    expect(b.state().ioeventfds[0]).toMatchObject({ active: false });
    const again = b.proc.eventfd();
    expectErrno(() => b.ioeventfd(0, 0x8n, 1n, again.fd), 'EEXIST');
    expect(b.ioeventfd(0, 0x8n, 1n, -1)).toBe(0);
  });

  it(`holds at most ${VFIO_PCI_IOEVENTFD_MAX} per device (ENOSPC)`, () => {
    const b = e1000eBench();
    const { fd } = b.proc.eventfd();
    for (let i = 0; i < VFIO_PCI_IOEVENTFD_MAX; i++) b.ioeventfd(0, BigInt(4 * (i % 1024)), BigInt(i), fd);
    expectErrno(() => b.ioeventfd(1, 0n, 0n, fd), 'ENOSPC');
    // Removing one makes room; a duplicate is still EEXIST (the match comes before the limit).
    expectErrno(() => b.ioeventfd(0, 0n, 0n, fd), 'EEXIST');
    b.ioeventfd(0, 0n, 0n, -1);
    expect(b.ioeventfd(1, 0n, 0n, fd)).toBe(0);
  });
});
