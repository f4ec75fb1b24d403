/**
 * @vfio-ts/device-mtty — the mtty sample mdev driver (Linux samples/vfio-mdev/mtty.c): a virtual PCI serial card
 * with one or two 16550-style UARTs, INTx and MSI through eventfds, 24 ports per host.
 * @packageDocumentation
 */
export { mtty, MttyState, MAX_MTTYS, MTTY_CONFIG_SPACE_SIZE, MTTY_IO_BAR_SIZE, MTTY_VFIO_PCI_OFFSET_SHIFT, mttyRegionOffset } from './mtty.js';
export type { MttyDevice, MttyHandle, MttyOptions, MttyTypeData } from './mtty.js';
export * from './uart.js';
export {
  MttyMigration,
  mttyMigrationDriver,
  mttyDataSize,
  saveMttyState,
  loadMttyState,
  encodeMttyHeader,
  encodeSerialPort,
  MTTY_MAGIC,
  MTTY_MAJOR_VER,
  MTTY_MINOR_VER,
  MTTY_DATA_HEADER_SIZE,
  MTTY_SERIAL_PORT_SIZE,
  MTTY_MIGRATION_FLAGS,
} from './migration.js';
export type { MttyMigratable } from './migration.js';
