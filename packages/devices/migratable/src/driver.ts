/**
 * `vfio-migratable`: a vfio-pci variant driver for the sample device, built the way Linux builds mlx5-vfio-pci
 * on vfio-pci-core (inventory §2.3, §2.4, §3.1): everything a user driver sees — config space virtualization,
 * regions, interrupts, resets — is vfio-pci's (`registerVfioPciVariant` from `@vfio-ts/pci`); the variant adds
 * the migration v2 ops (a {@link MigrationStateMachine} over {@link migratableMigrationDriver}) and the DMA
 * logging ops (a {@link DmaLogger} fed by the model's DMA writes), and keeps them consistent with the device's
 * life cycle: the last close and VFIO_DEVICE_RESET end any migration session and return to RUNNING.
 */
import type { HostPlugin, IoctlArg, SyscallContext, VfioDevice } from '@vfio-ts/core';
import { DmaLogger, MigrationStateMachine } from '@vfio-ts/migration';
import { registerVfioPciVariant } from '@vfio-ts/pci';
import type { VfioPciCoreDevice } from '@vfio-ts/pci';
import { SysError, VFIO_DEVICE_RESET } from '@vfio-ts/uapi';
import { MIGRATABLE_MIGRATION_FLAGS, MIGRATABLE_RECORD_PAYLOAD, migratableMigrationDriver } from './migration.js';
import type { MigratableFunction } from './model.js';
import { MIGRATABLE_PCI_ID } from './regs.js';

/** Region offsets in the device fd, as vfio-pci lays them out: `index << 40`. */
export const REGION_SHIFT = 40n;

/** The variant's state for one device (kept in vfio-pci's `variantData` slot). */
export interface MigratableDeviceData {
  readonly fn: MigratableFunction;
  /** The migration v2 ops (device->mig_ops). */
  readonly migration: MigrationStateMachine;
  /** The DMA dirty tracker (device->log_ops), fed by the model's DMA writes. */
  readonly logger: DmaLogger;
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

/** The variant state of a device bound to `vfio-migratable`. */
export function migratableData(device: VfioDevice<VfioPciCoreDevice>): MigratableDeviceData {
  const data = device.data.variantData as MigratableDeviceData | undefined;
  if (!data) throw new SysError('ENODEV', `${device.name} is not bound to vfio-migratable`);
  return data;
}

/** Sets up migration and logging for one device before vfio-pci registers it (the variant's probe). */
function initDevice(dev: VfioPciCoreDevice, options: MigratableDriverOptions): MigratableDeviceData {
  const fn = dev.pdev.fn as Partial<MigratableFunction>;
  if (dev.pdev.vendor !== MIGRATABLE_PCI_ID.VENDOR || dev.pdev.device !== MIGRATABLE_PCI_ID.DEVICE || typeof fn.saveRegisters !== 'function') {
    throw new SysError('ENODEV', `${dev.pdev.bdf} is not the migratable sample device`);
  }
  const model = fn as MigratableFunction;
  const wake = (): void => {
    const session = migration.session;
    if (session?.kind === 'saving') session.notify();
  };
  const migration: MigrationStateMachine = new MigrationStateMachine(migratableMigrationDriver(model, wake), {
    tag: migratableTag(model),
    maxRecordPayload: MIGRATABLE_RECORD_PAYLOAD,
    // Room for the whole BAR and its framing.
    maxResumeBytes: model.memorySize + Math.ceil(model.memorySize / 64) + (1 << 20),
  });
  const logger = new DmaLogger({ maxRanges: options.maxLoggingRanges ?? 8 });
  model.onDmaWrite = (iova, length) => {
    logger.markDirty(iova, length);
  };
  const data: MigratableDeviceData = { fn: model, migration, logger };
  dev.variantData = data;
  // vfio-pci checks these at registration (complete ops, STOP_COPY in the flags) under Linux's names and puts
  // them on the VFIO device with the spec's flags, where the migration() plugin's handlers read them.
  dev.migOps = {
    migrationSetState: (state: number) => migration.setState(state),
    migrationGetState: () => migration.getState(),
    migrationGetDataSize: () => migration.getDataSize(),
  };
  dev.logOps = logger;
  return data;
}

/**
 * The `vfio-migratable` plugin: a vfio-pci variant driver that binds the sample device (by driver_override, or
 * by ID with `bindById`) and gives it migration v2 and DMA logging. Add `type1()` and `migration()` (from
 * `@vfio-ts/migration`) to the host for the container and the feature ioctls.
 */
export function migratableVfioPci(options: MigratableDriverOptions = {}): HostPlugin & {
  /** The bound devices by BDF (for tests and tools that want to look at the model). */
  readonly devices: ReadonlyMap<string, VfioDevice<VfioPciCoreDevice>>;
} {
  const devices = new Map<string, VfioDevice<VfioPciCoreDevice>>();
  const name = options.name ?? 'vfio-migratable';
  return {
    name,
    devices,
    setup(api) {
      registerVfioPciVariant(api, {
        name,
        ids: options.bindById ? [`${MIGRATABLE_PCI_ID.VENDOR.toString(16)}:${MIGRATABLE_PCI_ID.DEVICE.toString(16)}`] : [],
        migrationFlags: MIGRATABLE_MIGRATION_FLAGS,
        init(dev) {
          initDevice(dev, options);
          devices.set(dev.pdev.bdf, dev.vdev);
        },
        ops: (core) => ({
          ...core,
          name,
          closeDevice(device) {
            // Last close: any migration session ends, logging stops; then vfio-pci disables the function.
            const d = migratableData(device);
            d.migration.close();
            d.logger.logStop();
            return core.closeDevice(device);
          },
          ioctl(device, cmd: number, arg: IoctlArg, call: SyscallContext) {
            const ret = core.ioctl(device, cmd, arg, call);
            // A function reset returns the device to RUNNING with no session (mlx5's reset_done).
            if (cmd === VFIO_DEVICE_RESET) migratableData(device).migration.reset();
            return ret;
          },
        }),
      });
    },
  };
}
