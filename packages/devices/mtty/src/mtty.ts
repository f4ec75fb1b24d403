/**
 * mtty — the mediated virtual PCI serial card of Linux samples/vfio-mdev/mtty.c (inventory §6, §8.6 M13) as a
 * vfio-ts mdev driver: a virtual parent `/sys/devices/virtual/mtty/mtty` with types `mtty-1` (one port) and
 * `mtty-2` (two ports) drawing on a budget of 24 ports, an emulated PCI config space in the CONFIG region, one
 * 8-byte I/O BAR of 16550 registers per port, INTx and MSI delivered through eventfds.
 */
import type { HostPlugin, HostPluginApi, IoctlArg, SyscallContext, VfioDevice, VfioDeviceOps } from '@vfio-ts/core';
import { validateSetIrqs } from '@vfio-ts/core';
import { copyFromUser, copyToUser, registerMdevParent } from '@vfio-ts/mdev';
import type { MdevDevice, MdevParent } from '@vfio-ts/mdev';
import type { EventFdContext } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_DEVICE_API_PCI_STRING,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR1_REGION_INDEX,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioIrqSet,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import { MTTY_MIGRATION_FLAGS, MttyMigration } from './migration.js';
import { MttyUarts } from './uart.js';
import type { MttyWiring } from './uart.js';

/** Ports all mtty cards of a host share (MAX_MTTYS). */
export const MAX_MTTYS = 24;
/** Size of the CONFIG region (MTTY_CONFIG_SPACE_SIZE). */
export const MTTY_CONFIG_SPACE_SIZE = 0xff;
/** Size of each port's I/O BAR. */
export const MTTY_IO_BAR_SIZE = 8;
/** Region `index` lives at file offset `index << 40` (MTTY_VFIO_PCI_OFFSET_SHIFT). */
export const MTTY_VFIO_PCI_OFFSET_SHIFT = 40n;
const OFFSET_MASK = (1n << MTTY_VFIO_PCI_OFFSET_SHIFT) - 1n;

/** The file offset of region `index`. */
export function mttyRegionOffset(index: number): bigint {
  return BigInt(index) << MTTY_VFIO_PCI_OFFSET_SHIFT;
}

/** Data of the two types. */
export interface MttyTypeData {
  readonly nrPorts: 1 | 2;
}

/** The per-device state (Linux struct mdev_state). */
export class MttyState {
  /** The emulated config space (0xff bytes used; one more so dword reads at 0xfc stay in bounds). */
  readonly vconfig = new Uint8Array(0x100);
  readonly barMask: number[] = [0, 0];
  readonly uarts: MttyUarts;
  /** -1 (none), VFIO_PCI_INTX_IRQ_INDEX or VFIO_PCI_MSI_IRQ_INDEX. */
  irqIndex = -1;
  intxEventfd: EventFdContext | undefined;
  msiEventfd: EventFdContext | undefined;
  /** INTx is automasked: set when it fires, cleared by UNMASK. */
  intxMask = false;
  /** num_irqs as last reported by GET_INFO: mtty validates IRQ calls against it, so it is 0 until GET_INFO. */
  numIrqs = 0;
  /** Interrupts delivered (for describe and tests). */
  interrupts = 0;
  /** Migration v2: state machine, data sessions, DMA logging. */
  readonly migration: MttyMigration;

  constructor(
    readonly nrPorts: 1 | 2,
    wiring: MttyWiring,
  ) {
    this.uarts = new MttyUarts(nrPorts, wiring, () => {
      this.trigger();
    });
    createConfigSpace(this);
    this.migration = new MttyMigration(this);
  }

  /** mtty_trigger_interrupt: MSI signals its eventfd; INTx signals unless masked, then masks itself. */
  trigger(): void {
    if (this.irqIndex === VFIO_PCI_MSI_IRQ_INDEX) {
      if (this.msiEventfd) {
        this.msiEventfd.signal();
        this.interrupts++;
      }
    } else if (this.irqIndex === VFIO_PCI_INTX_IRQ_INDEX) {
      if (this.intxEventfd && !this.intxMask) {
        this.intxEventfd.signal();
        this.intxMask = true;
        this.interrupts++;
      }
    }
  }

  disableIntx(): void {
    if (this.intxEventfd) {
      this.intxEventfd = undefined;
      this.intxMask = false;
      this.irqIndex = -1;
    }
  }

  disableMsi(): void {
    if (this.msiEventfd) {
      this.msiEventfd = undefined;
      this.irqIndex = -1;
    }
  }
}

function store32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(off, v >>> 0, true);
}

/** mtty_create_config_space. */
function createConfigSpace(s: MttyState): void {
  const c = s.vconfig;
  store32(c, 0x00, 0x32534348); // vendor 0x4348, device 0x3253
  c[0x04] = 0x01; // command: I/O+
  c[0x07] = 0x02; // status 0x0200
  c[0x08] = 0x10; // revision
  c[0x09] = 0x02; // prog-if: 16550-compatible
  c[0x0a] = 0x00; // subclass: serial
  c[0x0b] = 0x07; // class: simple communication controller
  store32(c, 0x10, 0x000001); // BAR0: I/O space
  s.barMask[0] = (~MTTY_IO_BAR_SIZE + 1) >>> 0;
  if (s.nrPorts === 2) {
    store32(c, 0x14, 0x000001);
    s.barMask[1] = (~MTTY_IO_BAR_SIZE + 1) >>> 0;
  }
  store32(c, 0x2c, 0x32534348); // subsystem ids
  c[0x34] = 0x00; // no capabilities
  c[0x3d] = 0x01; // INTA#
  // Vendor-specific bytes and the "PCI Serial/UART" signature at 0x60.
  c[0x40] = 0x23;
  c[0x43] = 0x80;
  c[0x44] = 0x23;
  c[0x48] = 0x23;
  c[0x4c] = 0x23;
  c.set(new TextEncoder().encode('PCI Serial/UART'), 0x60);
}

/** handle_pci_cfg_write: only BAR0/BAR1 (with sizing), the interrupt line, and zeroed BAR2-4 are writable. */
function configWrite(s: MttyState, offset: number, data: Uint8Array): void {
  const c = s.vconfig;
  switch (offset) {
    case 0x3c:
      c[0x3c] = data[0]!;
      break;
    case 0x10:
    case 0x14: {
      const bar = offset === 0x10 ? 0 : 1;
      if (s.nrPorts === 1 && bar === 1) {
        store32(c, offset, 0);
        break;
      }
      let addr = 0;
      for (let i = 0; i < 4; i++) addr |= (data[i] ?? 0) << (8 * i);
      addr >>>= 0;
      if (addr === 0xffffffff) addr = (addr & s.barMask[bar]!) >>> 0;
      addr = (addr | (c[offset]! & 0x3)) >>> 0;
      store32(c, offset, addr);
      break;
    }
    case 0x18:
    case 0x1c:
    case 0x20:
      store32(c, offset, 0);
      break;
    default:
      // Command, status, interrupt pin and everything else ignore writes.
      break;
  }
}

/** mdev_access for one naturally sized chunk (1, 2 or 4 bytes). */
function access(s: MttyState, pos: bigint, buf: Uint8Array, isWrite: boolean): void {
  const index = Number(pos >> MTTY_VFIO_PCI_OFFSET_SHIFT);
  const offset = Number(pos & OFFSET_MASK);
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
    if (offset + buf.length > s.vconfig.length) throw new SysError('EFAULT', 'beyond the config space');
    if (isWrite) configWrite(s, offset, buf);
    else buf.set(s.vconfig.subarray(offset, offset + buf.length));
    return;
  }
  if (index >= VFIO_PCI_BAR0_REGION_INDEX && index <= VFIO_PCI_BAR5_REGION_INDEX && index < s.nrPorts) {
    // The registers are byte wide: a wider access uses (and returns) its low byte only.
    if (isWrite) s.uarts.write(index, offset, buf[0]!);
    else {
      buf.fill(0);
      buf[0] = s.uarts.read(index, offset);
    }
    return;
  }
  throw new SysError('EFAULT', `no mtty region at 0x${pos.toString(16)}`);
}

/** mtty_read / mtty_write: the access is split into naturally aligned 4-, 2- and 1-byte chunks. */
function rw(s: MttyState, pos: bigint, buf: Uint8Array, isWrite: boolean): void {
  let done = 0;
  while (done < buf.length) {
    const left = buf.length - done;
    const at = pos + BigInt(done);
    const n = left >= 4 && at % 4n === 0n ? 4 : left >= 2 && at % 2n === 0n ? 2 : 1;
    access(s, at, buf.subarray(done, done + n), isWrite);
    done += n;
  }
}

function setIrqsBytes(arg: IoctlArg, call: SyscallContext): Uint8Array {
  if (arg instanceof Uint8Array) return arg;
  const hdr = vfioIrqSet.decode(copyFromUser(arg, call, vfioIrqSet.size));
  const el = (hdr.flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0 ? 4 : (hdr.flags & VFIO_IRQ_SET_DATA_BOOL) !== 0 ? 1 : 0;
  const data = Math.min(hdr.count, VFIO_PCI_NUM_IRQS) * el;
  return copyFromUser(arg, call, vfioIrqSet.size + data);
}

/** mtty_set_irqs after vfio_set_irqs_validate_and_prepare. */
function setIrqs(s: MttyState, arg: IoctlArg, call: SyscallContext): number {
  const { header, data } = validateSetIrqs(setIrqsBytes(arg, call), s.numIrqs, VFIO_PCI_NUM_IRQS);
  const { flags, index, start, count } = header;
  const action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
  const isIntx = s.irqIndex === VFIO_PCI_INTX_IRQ_INDEX;
  const isMsi = s.irqIndex === VFIO_PCI_MSI_IRQ_INDEX;
  const noIrq = !isIntx && !isMsi;
  const boolSet = (): boolean => data[0] !== 0;
  const fd = (): number => new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
  if (index === VFIO_PCI_INTX_IRQ_INDEX) {
    if (action === VFIO_IRQ_SET_ACTION_MASK || action === VFIO_IRQ_SET_ACTION_UNMASK) {
      if (!isIntx || start !== 0 || count !== 1) throw new SysError('EINVAL', 'INTx is not in use');
      const mask = action === VFIO_IRQ_SET_ACTION_MASK;
      if ((flags & VFIO_IRQ_SET_DATA_NONE) !== 0) s.intxMask = mask;
      else if ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0) {
        if (boolSet()) s.intxMask = mask;
      } else throw new SysError('ENOTTY', 'no mask/unmask eventfd');
      return 0;
    }
    // No action or several action bits: mtty's switch matches nothing and the call succeeds doing nothing.
    if (action !== VFIO_IRQ_SET_ACTION_TRIGGER) return 0;
    if (isIntx && count === 0 && (flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
      s.disableIntx();
      return 0;
    }
    if (!(isIntx || noIrq) || start !== 0 || count !== 1) throw new SysError('EINVAL', 'bad INTx trigger');
    if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
      s.disableIntx();
      const n = fd();
      if (n < 0) return 0;
      s.intxEventfd = call.eventfd(n);
      s.irqIndex = VFIO_PCI_INTX_IRQ_INDEX;
      return 0;
    }
    if (!isIntx) throw new SysError('EINVAL', 'INTx is not in use');
    if ((flags & VFIO_IRQ_SET_DATA_NONE) !== 0 || boolSet()) s.trigger();
    return 0;
  }
  if (index === VFIO_PCI_MSI_IRQ_INDEX) {
    if (action === VFIO_IRQ_SET_ACTION_MASK || action === VFIO_IRQ_SET_ACTION_UNMASK) {
      throw new SysError('ENOTTY', 'MSI cannot be masked');
    }
    if (action !== VFIO_IRQ_SET_ACTION_TRIGGER) return 0;
    if (isMsi && count === 0 && (flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
      s.disableMsi();
      return 0;
    }
    if (!(isMsi || noIrq) || start !== 0 || count !== 1) throw new SysError('EINVAL', 'bad MSI trigger');
    if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
      s.disableMsi();
      const n = fd();
      if (n < 0) return 0;
      s.msiEventfd = call.eventfd(n);
      s.irqIndex = VFIO_PCI_MSI_IRQ_INDEX;
      return 0;
    }
    if (!isMsi) throw new SysError('EINVAL', 'MSI is not in use');
    if ((flags & VFIO_IRQ_SET_DATA_NONE) !== 0 || boolSet()) s.trigger();
    return 0;
  }
  // MSI-X, ERR and REQ.
  throw new SysError('ENOTTY', `IRQ index ${index} is not supported`);
}

function ioctl(s: MttyState, cmd: number, arg: IoctlArg, call: SyscallContext): number {
  switch (cmd) {
    case VFIO_DEVICE_GET_INFO: {
      const minsz = vfioDeviceInfo.minsz;
      const info = vfioDeviceInfo.decode(copyFromUser(arg, call, minsz));
      if (info.argsz < minsz) throw new SysError('EINVAL', 'argsz below minsz');
      s.numIrqs = VFIO_PCI_NUM_IRQS;
      const out = new Uint8Array(minsz);
      vfioDeviceInfo.write(out, { argsz: info.argsz, flags: VFIO_DEVICE_FLAGS_PCI, num_regions: VFIO_PCI_NUM_REGIONS, num_irqs: VFIO_PCI_NUM_IRQS }, 0, minsz);
      copyToUser(arg, call, out);
      return 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO: {
      const minsz = vfioRegionInfo.offsetOfEnd('offset');
      const info = vfioRegionInfo.decode(copyFromUser(arg, call, minsz));
      if (info.argsz < minsz) throw new SysError('EINVAL', 'argsz below minsz');
      if (info.index >= VFIO_PCI_NUM_REGIONS) throw new SysError('EINVAL', `no region ${info.index}`);
      let size = 0;
      if (info.index === VFIO_PCI_CONFIG_REGION_INDEX) size = MTTY_CONFIG_SPACE_SIZE;
      else if (info.index === VFIO_PCI_BAR0_REGION_INDEX) size = MTTY_IO_BAR_SIZE;
      else if (info.index === VFIO_PCI_BAR1_REGION_INDEX && s.nrPorts === 2) size = MTTY_IO_BAR_SIZE;
      const out = new Uint8Array(minsz);
      vfioRegionInfo.write(out, {
        ...info,
        size: BigInt(size),
        offset: mttyRegionOffset(info.index),
        flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
      });
      copyToUser(arg, call, out);
      return 0;
    }
    case VFIO_DEVICE_GET_IRQ_INFO: {
      const minsz = vfioIrqInfo.offsetOfEnd('count');
      const info = vfioIrqInfo.decode(copyFromUser(arg, call, minsz));
      if (info.argsz < minsz || info.index >= s.numIrqs) throw new SysError('EINVAL', 'bad vfio_irq_info');
      if (info.index !== VFIO_PCI_INTX_IRQ_INDEX && info.index !== VFIO_PCI_MSI_IRQ_INDEX) {
        throw new SysError('EINVAL', `IRQ index ${info.index} is not supported`);
      }
      const flags =
        VFIO_IRQ_INFO_EVENTFD |
        (info.index === VFIO_PCI_INTX_IRQ_INDEX ? VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED : VFIO_IRQ_INFO_NORESIZE);
      const out = new Uint8Array(minsz);
      vfioIrqInfo.write(out, { ...info, flags, count: 1 });
      copyToUser(arg, call, out);
      return 0;
    }
    case VFIO_DEVICE_SET_IRQS:
      return setIrqs(s, arg, call);
    case VFIO_DEVICE_RESET:
      // mtty_reset only resets the migration state (back to RUNNING, data files ended); the UARTs keep theirs.
      s.migration.machine.reset();
      return 0;
    default:
      throw new SysError('ENOTTY', `mtty has no ioctl 0x${cmd.toString(16)}`);
  }
}

/** Options of {@link mtty}. */
export interface MttyOptions {
  /** The port budget of the host (MAX_MTTYS, 24). */
  readonly maxPorts?: number;
  /**
   * `loopback` (Linux): every port reads back what it wrote. `null-modem`: the two ports of an `mtty-2` card are
   * cross-connected, so what port 0 transmits port 1 receives and vice versa (an extension for demos and tests).
   */
  readonly wiring?: MttyWiring;
}

/** The driver data of a probed mtty mdev. */
export interface MttyDevice {
  readonly vfio: VfioDevice<MttyState>;
  readonly state: MttyState;
}

/** What the mtty plugin registered on a host. */
export interface MttyHandle {
  /** The mdev parent (/sys/devices/virtual/mtty/mtty). */
  readonly parent: MdevParent<MttyTypeData>;
  /** Ports not given to a card. */
  availablePorts(): number;
}

/** The VFIO device ops of an mtty card (mtty_dev_ops). */
function mttyOps(ports: { avail: number }, nrPorts: 1 | 2): VfioDeviceOps<MttyState> {
  return {
    name: 'vfio-mtty',
    init(device) {
      // mtty_init_dev: take the card's ports from the budget or refuse the create ...
      if (ports.avail < nrPorts) throw new SysError('ENOSPC', `${ports.avail} mtty ports left, ${nrPorts} needed`);
      ports.avail -= nrPorts;
      // ... and hang the migration and logging ops on the VFIO device (vdev->mig_ops, log_ops, migration_flags):
      // the VFIO_DEVICE_FEATURE indexes for them are served by @vfio-ts/migration's `migration()` host plugin.
      device.migrationOps = device.data.migration.machine;
      device.logOps = device.data.migration.dmaLogger;
      device.migrationFlags = MTTY_MIGRATION_FLAGS;
    },
    release() {
      ports.avail += nrPorts;
    },
    read(device, length, offset) {
      const buf = new Uint8Array(length);
      rw(device.data, offset, buf, false);
      return buf;
    },
    write(device, data, offset) {
      rw(device.data, offset, data.slice(), true);
      return data.length;
    },
    ioctl(device, cmd, arg, call) {
      return ioctl(device.data, cmd, arg, call);
    },
    closeDevice(device) {
      device.data.migration.machine.close();
      device.data.disableIntx();
      device.data.disableMsi();
    },
  };
}

/**
 * The mtty sample driver as a host plugin: registers the `mtty` parent with types `mtty-1` and `mtty-2`. Add
 * `migration()` from `@vfio-ts/migration` for the migration and DMA-logging `VFIO_DEVICE_FEATURE`s (as in Linux,
 * mtty only provides the ops; without the plugin those indexes answer EINVAL).
 * ```ts
 * createHost({ platform: simPlatform(), plugins: [type1(), mtty(), migration()] });
 * // echo $UUID > /sys/devices/virtual/mtty/mtty/mdev_supported_types/mtty-2/create
 * ```
 */
export function mtty(options: MttyOptions = {}): HostPlugin & { handle(api: HostPluginApi): MttyHandle | undefined } {
  const maxPorts = options.maxPorts ?? MAX_MTTYS;
  const wiring = options.wiring ?? 'loopback';
  if (!Number.isInteger(maxPorts) || maxPorts < 0) throw new SysError('EINVAL', 'maxPorts must be a non-negative integer');
  const handles = new WeakMap<HostPluginApi, MttyHandle>();
  return {
    name: 'mtty',
    handle: (api) => handles.get(api),
    setup(api) {
      // The port budget belongs to this host (mdev_avail_ports).
      const ports = { avail: maxPorts };
      const parent = registerMdevParent<MttyTypeData>(api, {
        parent: { virtual: { class: 'mtty', name: 'mtty' } },
        types: [
          { sysfsName: '1', prettyName: 'Single port serial', data: { nrPorts: 1 } },
          { sysfsName: '2', prettyName: 'Dual port serial', data: { nrPorts: 2 } },
        ],
        driver: {
          name: 'mtty',
          deviceApi: VFIO_DEVICE_API_PCI_STRING,
          getAvailable: (type) => Math.floor(ports.avail / type.data.nrPorts),
          deviceAttrs: { vendor: { sample_mdev_dev: (mdev) => `This is MDEV ${mdev.uuid}\n` } },
          probe(mdev: MdevDevice<MttyTypeData>) {
            const nr = mdev.type.data.nrPorts;
            // vfio_alloc_device runs init, which takes the ports (ENOSPC when the budget is short).
            const vfio = mdev.registerEmulatedDevice(mttyOps(ports, nr), new MttyState(nr, wiring));
            const dev: MttyDevice = { vfio, state: vfio.data };
            mdev.driverData = dev;
          },
          remove(mdev) {
            return mdev.unregisterVfioDevice();
          },
        },
      });
      handles.set(api, { parent, availablePorts: () => ports.avail });
    },
  };
}
