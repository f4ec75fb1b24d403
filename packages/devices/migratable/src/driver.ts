/**
 * `vfio-migratable`: the VFIO driver of the sample device, in the shape of a vfio-pci variant driver (like
 * mlx5-vfio-pci): the PCI regions and interrupts a user driver expects, plus migration v2 ops and DMA dirty
 * logging ops on the device (inventory §2.3, §2.4). vfio-pci's variant hooks were not available when this was
 * written, so it serves the vfio-pci uAPI subset the device needs itself: GET_INFO, GET_REGION_INFO (BAR0,
 * BAR2, CONFIG), GET_IRQ_INFO, SET_IRQS (INTx and MSI triggers), RESET, and region read/write at `index << 40`.
 */
import { validateSetIrqs } from '@vfio-ts/core';
import type { HostPlugin, HostPluginApi, IoctlArg, SyscallContext, VfioDevice, VfioDeviceOps } from '@vfio-ts/core';
import { DmaLogger, MigrationStateMachine } from '@vfio-ts/migration';
import type { EventFdContext, PciDeviceHandle } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR2_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  checkArgsz,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import { MIGRATABLE_RECORD_PAYLOAD, migratableMigrationDriver } from './migration.js';
import type { MigratableFunction } from './model.js';
import { MIGRATABLE_PCI_ID, MIG_BAR0_SIZE, MIG_MSI_CAP } from './regs.js';

/** Region offsets in the device fd, as vfio-pci lays them out: `index << 40`. */
export const REGION_SHIFT = 40n;

/** The driver's state for one device. */
export interface MigratableDeviceData {
  readonly pdev: PciDeviceHandle;
  readonly fn: MigratableFunction;
  /** The migration v2 ops (device->mig_ops). */
  readonly migration: MigrationStateMachine;
  /** The DMA dirty tracker (device->log_ops), fed by the model's DMA writes. */
  readonly logger: DmaLogger;
  /** Eventfds of the INTx and MSI triggers. */
  intx: EventFdContext | undefined;
  msi: EventFdContext | undefined;
}

/** Options of {@link migratableVfioPci}. */
export interface MigratableDriverOptions {
  /** Driver name (default `vfio-migratable`). */
  readonly name?: string;
  /**
   * Also bind by ID (1234:11f0) without a driver_override. Linux variant drivers match by override only;
   * default false.
   */
  readonly bindById?: boolean;
  /** Ranges the DMA tracker can hold before it combines them (default 8, as a hardware tracker would have). */
  readonly maxLoggingRanges?: number;
}

/** The stream's compatibility tag: another device loads it only with the same ID, version and BAR2 size. */
export function migratableTag(fn: MigratableFunction): string {
  return `vfio-ts:${MIGRATABLE_PCI_ID.VENDOR.toString(16)}:${MIGRATABLE_PCI_ID.DEVICE.toString(16)}:v1:bar2=${fn.memorySize}`;
}

function regionSize(d: MigratableDeviceData, index: number): number {
  if (index === VFIO_PCI_BAR0_REGION_INDEX) return MIG_BAR0_SIZE;
  if (index === VFIO_PCI_BAR2_REGION_INDEX) return d.fn.memorySize;
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) return 256;
  return 0;
}

function decodeOffset(d: MigratableDeviceData, offset: bigint, length: number): { index: number; at: bigint } {
  const index = Number(offset >> REGION_SHIFT);
  const at = offset & ((1n << REGION_SHIFT) - 1n);
  const size = BigInt(regionSize(d, index));
  if (size === 0n || at + BigInt(length) > size) throw new SysError('EINVAL', `access outside region ${index}`);
  return { index, at };
}

function argBytes(arg: IoctlArg): Uint8Array {
  if (!(arg instanceof Uint8Array)) throw new SysError('EFAULT', 'the struct bytes are needed');
  return arg;
}

/** VFIO_DEVICE_SET_IRQS for INTx and MSI: TRIGGER with NONE (loopback, or disable with count 0) or EVENTFD. */
function setIrqs(d: MigratableDeviceData, bytes: Uint8Array, call: SyscallContext): number {
  const { header, data } = validateSetIrqs(bytes, (i) => (i === VFIO_PCI_INTX_IRQ_INDEX || i === VFIO_PCI_MSI_IRQ_INDEX ? 1 : 0), VFIO_PCI_NUM_IRQS);
  if ((header.flags & VFIO_IRQ_SET_ACTION_TRIGGER) === 0) throw new SysError('ENOTTY', 'only TRIGGER is supported');
  const msi = header.index === VFIO_PCI_MSI_IRQ_INDEX;
  if (header.index !== VFIO_PCI_INTX_IRQ_INDEX && !msi) throw new SysError('EINVAL', `IRQ index ${header.index}`);
  const set = (ctx: EventFdContext | undefined): void => {
    if (msi) {
      d.msi = ctx;
      // vfio-pci enables MSI in the function's config space when the user gives it a trigger.
      const flags = d.fn.configRead(MIG_MSI_CAP + 2, 2);
      d.fn.configWrite(MIG_MSI_CAP + 2, 2, ctx ? flags | 1 : flags & ~1);
    } else {
      d.intx = ctx;
    }
  };
  if ((header.flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
    if (header.count === 0) set(undefined);
    else (msi ? d.msi : d.intx)?.signal();
    return 0;
  }
  if ((header.flags & VFIO_IRQ_SET_DATA_EVENTFD) === 0) throw new SysError('EINVAL', 'BOOL triggers are not supported');
  if (header.count === 0) {
    set(undefined);
    return 0;
  }
  const fd = new DataView(data.buffer, data.byteOffset, data.length).getInt32(0, true);
  set(fd < 0 ? undefined : call.eventfd(fd));
  return 0;
}

function deviceIoctl(device: VfioDevice<MigratableDeviceData>, cmd: number, arg: IoctlArg, call: SyscallContext): number {
  const d = device.data;
  switch (cmd) {
    case VFIO_DEVICE_GET_INFO: {
      const bytes = argBytes(arg);
      checkArgsz(bytes, vfioDeviceInfo.minsz, 'vfio_device_info.argsz');
      vfioDeviceInfo.write(bytes.subarray(0, vfioDeviceInfo.minsz), {
        flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        num_regions: VFIO_PCI_NUM_REGIONS,
        num_irqs: VFIO_PCI_NUM_IRQS,
      });
      return 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO: {
      const bytes = argBytes(arg);
      checkArgsz(bytes, vfioRegionInfo.minsz, 'vfio_region_info.argsz');
      const { index } = vfioRegionInfo.decode(bytes);
      if (index >= VFIO_PCI_NUM_REGIONS) throw new SysError('EINVAL', `region ${index}`);
      const size = regionSize(d, index);
      vfioRegionInfo.write(bytes, {
        flags: size > 0 ? VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE : 0,
        cap_offset: 0,
        size: BigInt(size),
        offset: BigInt(index) << REGION_SHIFT,
      });
      return 0;
    }
    case VFIO_DEVICE_GET_IRQ_INFO: {
      const bytes = argBytes(arg);
      checkArgsz(bytes, vfioIrqInfo.minsz, 'vfio_irq_info.argsz');
      const { index } = vfioIrqInfo.decode(bytes);
      if (index >= VFIO_PCI_NUM_IRQS) throw new SysError('EINVAL', `IRQ index ${index}`);
      const count = index === VFIO_PCI_INTX_IRQ_INDEX || index === VFIO_PCI_MSI_IRQ_INDEX ? 1 : 0;
      const flags = count === 0 ? 0 : VFIO_IRQ_INFO_EVENTFD | (index === VFIO_PCI_MSI_IRQ_INDEX ? VFIO_IRQ_INFO_NORESIZE : 0);
      vfioIrqInfo.write(bytes, { flags, count });
      return 0;
    }
    case VFIO_DEVICE_SET_IRQS:
      return setIrqs(d, argBytes(arg), call);
    case VFIO_DEVICE_RESET:
      // A reset returns the function to power-on state and the migration state to RUNNING (§5).
      d.fn.reset('flr');
      d.migration.reset();
      return 0;
    default:
      throw new SysError('ENOTTY', `device ioctl ${cmd}`);
  }
}

/** The device ops of `vfio-migratable`. */
export const migratableDeviceOps: VfioDeviceOps<MigratableDeviceData> = {
  name: 'vfio-migratable',
  openDevice(device) {
    device.data.fn.resume();
  },
  closeDevice(device) {
    const d = device.data;
    // Last close: sessions end, tracking stops, triggers go, and the function is reset as vfio-pci does.
    d.migration.close();
    d.logger.logStop();
    d.intx = undefined;
    d.msi = undefined;
    d.fn.reset('flr');
  },
  read(device, length, offset) {
    const d = device.data;
    const { index, at } = decodeOffset(d, offset, length);
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      return Uint8Array.from({ length }, (_, i) => d.fn.configRead(Number(at) + i, 1));
    }
    return d.fn.barRead(index, at, length);
  },
  write(device, data, offset) {
    const d = device.data;
    const { index, at } = decodeOffset(d, offset, data.length);
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      data.forEach((b, i) => {
        d.fn.configWrite(Number(at) + i, 1, b);
      });
    } else {
      d.fn.barWrite(index, at, data);
    }
    return data.length;
  },
  ioctl: deviceIoctl,
};

/** Registers `vfio-migratable` for one PCI function (what the PCI driver's probe does). */
function probe(api: HostPluginApi, pdev: PciDeviceHandle, options: MigratableDriverOptions): VfioDevice<MigratableDeviceData> {
  const fn = pdev.fn as MigratableFunction;
  if (pdev.vendor !== MIGRATABLE_PCI_ID.VENDOR || pdev.device !== MIGRATABLE_PCI_ID.DEVICE || typeof fn.saveRegisters !== 'function') {
    throw new SysError('ENODEV', `${pdev.bdf} is not the migratable sample device`);
  }
  const migration = new MigrationStateMachine(migratableMigrationDriver(fn), {
    tag: migratableTag(fn),
    maxRecordPayload: MIGRATABLE_RECORD_PAYLOAD,
    // Room for the whole BAR and its framing.
    maxResumeBytes: fn.memorySize + Math.ceil(fn.memorySize / 64) + (1 << 20),
  });
  const logger = new DmaLogger({ maxRanges: options.maxLoggingRanges ?? 8 });
  const data: MigratableDeviceData = { pdev, fn, migration, logger, intx: undefined, msi: undefined };
  fn.onDmaWrite = (iova, length) => {
    logger.markDirty(iova, length);
  };
  pdev.onMsi(() => data.msi?.signal());
  pdev.onIntx((level) => {
    if (level) data.intx?.signal();
  });
  const device = api.allocDevice({
    name: pdev.bdf,
    ops: { ...migratableDeviceOps, name: options.name ?? 'vfio-migratable' },
    data,
    migrationOps: migration,
    logOps: logger,
    migrationFlags: migration.migrationFlags,
  });
  try {
    api.registerGroupDevice(device);
  } catch (e) {
    pdev.onMsi(undefined);
    pdev.onIntx(undefined);
    fn.onDmaWrite = undefined;
    device.put();
    throw e;
  }
  return device;
}

/**
 * The `vfio-migratable` plugin: a PCI driver that binds the sample device (by driver_override, or by ID with
 * `bindById`) and registers it as a VFIO device with migration and DMA logging ops. Add `migration()` from
 * `@vfio-ts/migration` to the host for the feature ioctls.
 */
export function migratableVfioPci(options: MigratableDriverOptions = {}): HostPlugin & {
  /** The bound devices by BDF (for tests and tools that want to look at the model). */
  readonly devices: ReadonlyMap<string, VfioDevice<MigratableDeviceData>>;
} {
  const devices = new Map<string, VfioDevice<MigratableDeviceData>>();
  const name = options.name ?? 'vfio-migratable';
  return {
    name,
    devices,
    setup(api) {
      api.registerPciDriver({
        name,
        ...(options.bindById ? { ids: [`${MIGRATABLE_PCI_ID.VENDOR.toString(16)}:${MIGRATABLE_PCI_ID.DEVICE.toString(16)}`] } : {}),
        driverManagedDma: true,
        probe(pdev) {
          devices.set(pdev.bdf, probe(api, pdev, options));
        },
        async remove(pdev) {
          const device = devices.get(pdev.bdf);
          if (!device) return;
          await device.unregister();
          devices.delete(pdev.bdf);
          pdev.onMsi(undefined);
          pdev.onIntx(undefined);
          device.data.fn.onDmaWrite = undefined;
          device.put();
        },
      });
    },
  };
}
