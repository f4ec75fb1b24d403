/**
 * VFIO_DEVICE_IOEVENTFD for vfio-pci (inventory §1.4, §3.3, P45; Linux vfio_pci_ioctl_ioeventfd and
 * vfio_pci_ioeventfd in vfio_pci_rdwr.c): a fixed write of 1, 2, 4 or 8 bytes into a BAR, done by a virqfd handler
 * each time the user's eventfd is signalled.
 */
import type { SyscallContext } from '@vfio-ts/core';
import type { EventFdContext } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
  VFIO_PCI_BAR5_REGION_INDEX,
  vfioDeviceIoeventfd,
  vfioPciIndex,
  vfioPciRegionOffset,
} from '@vfio-ts/uapi';
import { createVirqfdSlot } from '@vfio-ts/virqfd';
import type { VirqfdContext, VirqfdSlot } from '@vfio-ts/virqfd';
import type { MsixTableLocation } from './hw.js';
import type { VfioPciBarAccess, VfioPciIoeventfdState } from './types.js';

/** Linux VFIO_PCI_IOEVENTFD_MAX: ioeventfds one open device may hold (further ones fail with ENOSPC). */
export const VFIO_PCI_IOEVENTFD_MAX = 1000;

/** One registered ioeventfd (Linux struct vfio_pci_ioeventfd). */
interface Ioeventfd {
  readonly key: string;
  readonly bar: number;
  readonly pos: bigint;
  readonly data: bigint;
  /** Access size in bytes: 1, 2, 4 or 8. */
  readonly count: number;
  /** The little-endian bytes written, `data` truncated to `count`. */
  readonly bytes: Uint8Array;
  readonly eventfd: EventFdContext;
  readonly slot: VirqfdSlot;
  /** Writes done, and writes skipped because the BAR refused them (memory decoding off). */
  writes: number;
  skipped: number;
}

/** What the table needs from its layer. */
export interface IoeventfdTableOptions {
  readonly bars: VfioPciBarAccess;
  readonly virqfd: VirqfdContext;
  /** The MSI-X table window, which ioeventfds may not touch. */
  readonly msix: MsixTableLocation | undefined;
  /** Keeps an asynchronous teardown alive until the layer's close awaits it. */
  readonly track: (p: Promise<void>) => void;
}

/** The ioeventfds of one open device, keyed by (BAR, offset, size, data) as Linux matches them. */
export class IoeventfdTable {
  readonly #opts: IoeventfdTableOptions;
  readonly #entries = new Map<string, Ioeventfd>();

  constructor(options: IoeventfdTableOptions) {
    this.#opts = options;
  }

  /** Number of registered ioeventfds. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The VFIO_DEVICE_IOEVENTFD ioctl on the user's `struct vfio_device_ioeventfd` bytes. EFAULT for a buffer shorter
   * than minsz; EINVAL for argsz < minsz, unknown flags, not exactly one size, fd < -1, a region that is not a BAR,
   * a range past the BAR or touching the MSI-X table; EEXIST for a duplicate; ENODEV removing one that does not
   * exist; ENOSPC past {@link VFIO_PCI_IOEVENTFD_MAX}; EBADF/EINVAL for a bad eventfd.
   */
  ioctl(arg: Uint8Array, call: SyscallContext): number {
    const minsz = vfioDeviceIoeventfd.minsz;
    if (arg.length < minsz) throw new SysError('EFAULT', 'vfio_device_ioeventfd beyond the buffer');
    const req = vfioDeviceIoeventfd.decode(arg);
    if (req.argsz < minsz) throw new SysError('EINVAL', `argsz ${req.argsz} < ${minsz}`);
    if (req.flags & ~VFIO_DEVICE_IOEVENTFD_SIZE_MASK) throw new SysError('EINVAL', 'unknown ioeventfd flags');
    const count = req.flags & VFIO_DEVICE_IOEVENTFD_SIZE_MASK;
    // hweight8(count) != 1: exactly one size bit; its value is the byte count (1, 2, 4, 8).
    if (count === 0 || (count & (count - 1)) !== 0) throw new SysError('EINVAL', 'ioeventfd needs exactly one size');
    if (req.fd < -1) throw new SysError('EINVAL', `ioeventfd fd ${req.fd}`);
    return this.#set(req.offset, req.data, count, req.fd, call);
  }

  #set(offset: bigint, data: bigint, count: number, fd: number, call: SyscallContext): number {
    const bar = vfioPciIndex(offset);
    const pos = vfioPciRegionOffset(offset);
    // Only BARs (§3.3); an I/O BAR qualifies, the ROM, config space and VGA do not.
    if (bar > VFIO_PCI_BAR5_REGION_INDEX) throw new SysError('EINVAL', `region ${bar} is not a BAR`);
    const end = pos + BigInt(count);
    if (end > this.#opts.bars.barSize(bar)) throw new SysError('EINVAL', `ioeventfd past the end of BAR${bar}`);
    const x = this.#opts.msix;
    // An ioeventfd must not become a way around the MSI-X table, which the host kernel owns.
    if (x && bar === x.bar && !(end <= x.offset || pos >= x.offset + x.size)) {
      throw new SysError('EINVAL', 'ioeventfd overlaps the MSI-X table');
    }
    const key = `${bar}:${pos}:${count}:${data}`;
    const found = this.#entries.get(key);
    if (found) {
      if (fd !== -1) throw new SysError('EEXIST', 'the same ioeventfd is already registered');
      this.#entries.delete(key);
      this.#opts.track(this.#opts.virqfd.disable(found.slot));
      return 0;
    }
    if (fd < 0) throw new SysError('ENODEV', 'no such ioeventfd to remove');
    if (this.#entries.size >= VFIO_PCI_IOEVENTFD_MAX) {
      throw new SysError('ENOSPC', `at most ${VFIO_PCI_IOEVENTFD_MAX} ioeventfds per device`);
    }
    const eventfd = call.eventfd(fd);
    const bytes = new Uint8Array(count);
    for (let i = 0; i < count; i++) bytes[i] = Number((data >> BigInt(8 * i)) & 0xffn);
    const entry: Ioeventfd = {
      key,
      bar,
      pos,
      data,
      count,
      bytes,
      eventfd,
      slot: createVirqfdSlot(),
      writes: 0,
      skipped: 0,
    };
    // The write happens in the handler, inside the signal (Linux writes from the wake-up unless memory_lock is
    // contended, which cannot happen here); the thread is the contended-lock fallback and does the same write.
    this.#opts.virqfd.enable({
      slot: entry.slot,
      eventfd,
      data: entry,
      handler: (e: Ioeventfd) => {
        this.#write(e);
        return false;
      },
      thread: (e: Ioeventfd) => {
        this.#write(e);
      },
    });
    this.#entries.set(key, entry);
    return 0;
  }

  /** vfio_pci_ioeventfd_do_write: a write the BAR refuses (memory decoding off) is skipped, as Linux skips it. */
  #write(e: Ioeventfd): void {
    if (this.#entries.get(e.key) !== e) return;
    try {
      this.#opts.bars.write(e.bar, e.pos, e.bytes);
      e.writes++;
    } catch {
      e.skipped++;
    }
  }

  /** Drops every ioeventfd (vfio_pci_core_disable); resolves when their virqfds are shut down. */
  async clear(): Promise<void> {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(all.map((e) => this.#opts.virqfd.disable(e.slot)));
  }

  /** The registered ioeventfds, ordered by BAR and offset. */
  describe(): VfioPciIoeventfdState[] {
    return [...this.#entries.values()]
      .sort((a, b) => a.bar - b.bar || (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : a.count - b.count))
      .map((e) => ({
        bar: e.bar,
        offset: `0x${e.pos.toString(16)}`,
        size: e.count,
        data: `0x${e.data.toString(16)}`,
        eventfd: e.eventfd.id,
        active: e.slot.active,
        writes: e.writes,
        skipped: e.skipped,
      }));
  }
}
