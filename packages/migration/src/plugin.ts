/**
 * The migration plugin: wires the VFIO_DEVICE_FEATURE handlers of this package into a host's feature registry
 * (inventory §1.5 idx 1, 2, 6, 7, 8, 9). Linux hard-codes these indexes in `vfio_ioctl_device_feature` before it
 * falls back to the driver's `device_feature` op; here the core keeps a registry and this plugin fills it, so a
 * host without `migration()` answers them through the driver op (EINVAL when the driver has none), as a kernel
 * built without them would.
 *
 * The adapter reads the device's slots the way Linux reads `device->mig_ops`, `device->log_ops` and
 * `device->migration_flags`: a device without migration ops answers ENOTTY for MIGRATION, MIG_DEVICE_STATE and
 * MIG_DATA_SIZE, one without log ops ENOTTY for the three DMA_LOGGING features, before any PROBE/GET/SET check.
 */
import type { DeviceFeatureHandler, FileOps, HostPlugin, SyscallContext, VfioDevice } from '@vfio-ts/core';
import type { DmaLoggingOps } from './dma-logging.js';
import type { MigrationFeatureContext, MigrationFeatureDevice } from './features.js';
import { migrationFeatureHandlers } from './features.js';
import { migrationFile } from './file.js';
import type { MigrationFeatureOps } from './machine.js';
import type { MigrationDataSession } from './sessions.js';

/** Options of {@link migration}. */
export interface MigrationPluginOptions {
  /** Plugin name (default `vfio-migration`). */
  readonly name?: string;
}

function isFunction(value: unknown): value is (...args: never[]) => unknown {
  return typeof value === 'function';
}

/** Linux's member names for the migration ops (`migration_set_state` ...), as vfio-pci variant drivers hold them. */
interface LinuxNamedMigrationOps {
  migrationSetState(state: number): MigrationDataSession | null;
  migrationGetState(): number;
  migrationGetDataSize(): number | bigint;
  readonly migrationFlags?: number;
}

/**
 * The device's `vfio_migration_ops` as the handlers want them, or undefined (ENOTTY). Both spellings are
 * accepted: this package's {@link MigrationFeatureOps} (`getState`/`setState`/`getDataSize`, what a
 * {@link MigrationStateMachine} is) and Linux's (`migrationGetState`/`migrationSetState`/
 * `migrationGetDataSize`). `migration_flags` come from the device (`device->migration_flags`), else from the ops.
 */
export function migrationOpsOf(device: VfioDevice): MigrationFeatureOps | undefined {
  const ops = device.migrationOps as (Partial<MigrationFeatureOps> & Partial<LinuxNamedMigrationOps>) | null | undefined;
  if (typeof ops !== 'object' || ops === null) return undefined;
  const flagsOf = (own: number | undefined): number => (device.migrationFlags !== 0 ? device.migrationFlags : (own ?? 0));
  if (isFunction(ops.getState) && isFunction(ops.setState) && isFunction(ops.getDataSize)) {
    const target = ops as MigrationFeatureOps;
    return {
      migrationFlags: flagsOf(target.migrationFlags),
      getState: () => target.getState(),
      setState: (state) => target.setState(state),
      getDataSize: () => target.getDataSize(),
    };
  }
  if (isFunction(ops.migrationGetState) && isFunction(ops.migrationSetState) && isFunction(ops.migrationGetDataSize)) {
    const target = ops as LinuxNamedMigrationOps;
    return {
      migrationFlags: flagsOf(target.migrationFlags),
      getState: () => target.migrationGetState(),
      setState: (state) => target.migrationSetState(state),
      getDataSize: () => target.migrationGetDataSize(),
    };
  }
  return undefined;
}

/** The device's `vfio_log_ops`, or undefined (ENOTTY). */
export function logOpsOf(device: VfioDevice): DmaLoggingOps | undefined {
  const ops = device.logOps as Partial<DmaLoggingOps> | null | undefined;
  if (typeof ops !== 'object' || ops === null) return undefined;
  if (!isFunction(ops.logStart) || !isFunction(ops.logStop) || !isFunction(ops.logReadAndClear)) return undefined;
  return ops as DmaLoggingOps;
}

/** The caller's services for the handlers: its memory and its file table (data fds open O_CLOEXEC). */
function callContext(call: SyscallContext): MigrationFeatureContext {
  return {
    memory: call.task.mm,
    installFile: (session) => {
      const file = migrationFile(session);
      // MigrationFileOps is shaped like FileOps (kind, read or write, ioctl, poll, pollWait, release).
      const ops: FileOps = file;
      return call.installFile(ops, file.openFlags);
    },
  };
}

/**
 * The handlers of this package, adapted to the core's {@link DeviceFeatureHandler} signature, by feature index.
 * `migration()` registers exactly these; exported for hosts assembled by hand.
 */
export function migrationDeviceFeatureHandlers(): Map<number, DeviceFeatureHandler> {
  const out = new Map<number, DeviceFeatureHandler>();
  for (const [index, handler] of migrationFeatureHandlers()) {
    out.set(index, (device, flags, data, dataSize, call) => {
      const dev: MigrationFeatureDevice = { migration: migrationOpsOf(device), dmaLogging: logOpsOf(device) };
      return handler(flags, dataSize, data, dev, callContext(call));
    });
  }
  return out;
}

/**
 * The migration plugin for `createHost({ plugins: [..., migration()] })`: registers the MIGRATION,
 * MIG_DEVICE_STATE, MIG_DATA_SIZE and DMA_LOGGING_START/STOP/REPORT feature handlers (EEXIST when another
 * plugin already serves one of them; nothing stays registered then).
 */
export function migration(options: MigrationPluginOptions = {}): HostPlugin {
  return {
    name: options.name ?? 'vfio-migration',
    setup(api) {
      const undo: (() => void)[] = [];
      try {
        for (const [index, handler] of migrationDeviceFeatureHandlers()) undo.push(api.registerFeatureHandler(index, handler));
      } catch (e) {
        for (const u of undo.reverse()) u();
        throw e;
      }
    },
  };
}
