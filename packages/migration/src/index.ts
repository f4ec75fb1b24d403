/**
 * @vfio-ts/migration — VFIO migration v2 (inventory §5): the state machine and Linux's next-state walk, the
 * saving and resuming data sessions with a framed, checksummed stream, PRE_COPY accounting, and device DMA dirty
 * logging (range validation and combining, word-wise dirty bitmaps, report windows), plus the
 * VFIO_DEVICE_FEATURE payload handlers, the `migration()` host plugin that registers them with the core, and
 * user-side helpers for the same ioctls.
 * @packageDocumentation
 */
export {
  VFIO_MIGRATION_ALL_FLAGS,
  isMigState,
  isPreCopyState,
  isPrimitiveArc,
  isSavingState,
  isStateSupported,
  migrationStatesFor,
  nextState,
  requiredFlags,
  validateLogRegistration,
  validateMigrationRegistration,
  walk,
} from './states.js';
export type { LogOpsPresence, MigState, MigrationArc, MigrationOpsPresence } from './states.js';
export {
  MIG_RECORD_HEADER_SIZE,
  MIG_RECORD_MAX_PAYLOAD,
  MIG_STREAM_MAGIC,
  MIG_STREAM_VERSION,
  MigRecordKind,
  StreamDecoder,
  decodeStream,
  encodeRecord,
} from './stream.js';
export type { MigRecord } from './stream.js';
export { ResumingSession, SavingSession } from './sessions.js';
export type { MigrationDataSession, PrecopyInfo, ResumedStream, SavingSource, SessionOptions } from './sessions.js';
export { MigrationArcError, MigrationStateMachine } from './machine.js';
export type {
  MigrationArcRequest,
  MigrationDescription,
  MigrationDriver,
  MigrationFeatureOps,
  MigrationStateMachineOptions,
  VfioMigrationOps,
} from './machine.js';
export { DirtyBitmap, IovaBitmap, clearBits, setBits } from './bitmap.js';
export type { DirtySink, PageRun } from './bitmap.js';
export { DmaLogger, combineIovaRanges } from './dma-logging.js';
export type { DmaLoggerOptions, DmaLoggingOps, IovaRange, VfioLogOps } from './dma-logging.js';
export {
  DMA_LOGGING_MAX_RANGES,
  DMA_LOGGING_REPORT_WINDOW_BYTES,
  featureDmaLoggingReport,
  featureDmaLoggingStart,
  featureDmaLoggingStop,
  featureMigDataSize,
  featureMigDeviceState,
  featureMigration,
  migrationFeatureHandlers,
  readLoggingRanges,
} from './features.js';
export type {
  MigrationFeatureContext,
  MigrationFeatureDevice,
  MigrationFeatureHandler,
  UserMemory,
} from './features.js';
export { migrationFile } from './file.js';
export type { MigrationCallContext, MigrationFileOps, MigrationIoctlArg } from './file.js';
export { logOpsOf, migration, migrationDeviceFeatureHandlers, migrationOpsOf } from './plugin.js';
export type { MigrationPluginOptions } from './plugin.js';
export {
  getDeviceState,
  getMigrationDataSize,
  getMigrationFlags,
  getPrecopyInfo,
  probeFeature,
  reportDmaLogging,
  setDeviceState,
  startDmaLogging,
  stopDmaLogging,
} from './user.js';
export type { MigrationUserProcess } from './user.js';
