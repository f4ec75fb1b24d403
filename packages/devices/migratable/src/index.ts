/**
 * @vfio-ts/device-migratable — a sample migration-capable PCI device for vfio-ts: the hardware model (registers,
 * interrupts, a chunked DMA engine, BAR memory) and `vfio-migratable`, its VFIO driver with migration v2
 * (STOP_COPY, P2P, PRE_COPY) and DMA dirty logging. Copy it to add migration to your own device.
 * @packageDocumentation
 */
export { migratableFunction, STATE_BLOB_SIZE } from './model.js';
export type { MigratableFunction, MigratableOptions } from './model.js';
export {
  MIGRATABLE_ID_VALUE,
  MIGRATABLE_PCI_ID,
  MIG_BAR0_SIZE,
  MIG_DMA_CMD,
  MIG_DMA_STATUS,
  MIG_IRQ,
  MIG_MSI_CAP,
  MIG_PAGE_SIZE,
  MIG_REG,
} from './regs.js';
export {
  MIGRATABLE_MIGRATION_FLAGS,
  MIGRATABLE_RECORD_PAYLOAD,
  PAGES_PER_RECORD,
  memEntryBytes,
  migratableMigrationDriver,
  parseDeviceRecord,
  parseDeviceStream,
} from './migration.js';
export type { DeviceStreamState } from './migration.js';
export { REGION_SHIFT, migratableData, migratableTag, migratableVfioPci } from './driver.js';
export type { MigratableDeviceData, MigratableDriverOptions } from './driver.js';
