/**
 * Migration v2 of mtty (Linux 6.12 samples/vfio-mdev/mtty.c: STOP_COPY | P2P | PRE_COPY; inventory §5, §8.6 M16),
 * built on @vfio-ts/migration's state machine and data sessions. The device state is Linux's `struct mtty_data`:
 * a 24-byte header (magic, version 1.0, nr_ports, flags) and one 36-byte `struct serial_port` per port. PRE_COPY
 * hands over the header as initial data; STOP_COPY sends the ports (mtty does no DMA, so P2P arcs are no-ops and
 * the DMA-logging ops record nothing).
 */
import { DmaLogger, MigrationStateMachine } from '@vfio-ts/migration';
import type { MigrationArcRequest, MigrationDriver, SavingSource } from '@vfio-ts/migration';
import {
  SysError,
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_PRE_COPY_P2P,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_RUNNING_P2P,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
} from '@vfio-ts/uapi';
import type { SerialPort } from './uart.js';

/** `MTTY_MAGIC`. */
export const MTTY_MAGIC = 0x7e9d09898c3e2c4en;
/** `MTTY_MAJOR_VER` / `MTTY_MINOR_VER`. */
export const MTTY_MAJOR_VER = 1;
export const MTTY_MINOR_VER = 0;
/** offsetof(struct mtty_data, ports). */
export const MTTY_DATA_HEADER_SIZE = 24;
/** sizeof(struct serial_port) on x86_64: registers, FIFO, head/tail/count, dlab, overrun, divisor, fcr, sizes. */
export const MTTY_SERIAL_PORT_SIZE = 36;
/** The migration flags of mtty. */
export const MTTY_MIGRATION_FLAGS = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

/** mtty_data_size: the STOP_COPY length. */
export function mttyDataSize(nrPorts: number): number {
  return MTTY_DATA_HEADER_SIZE + nrPorts * MTTY_SERIAL_PORT_SIZE;
}

/** The `struct mtty_data` header. */
export function encodeMttyHeader(nrPorts: number): Uint8Array {
  const b = new Uint8Array(MTTY_DATA_HEADER_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, MTTY_MAGIC, true);
  dv.setUint32(8, MTTY_MAJOR_VER, true);
  dv.setUint32(12, MTTY_MINOR_VER, true);
  dv.setUint32(16, nrPorts, true);
  dv.setUint32(20, 0, true);
  return b;
}

/** One `struct serial_port`. */
export function encodeSerialPort(port: SerialPort): Uint8Array {
  const b = new Uint8Array(MTTY_SERIAL_PORT_SIZE);
  b.set(port.uartReg, 0);
  b.set(port.fifo, 8);
  b[24] = port.head;
  b[25] = port.tail;
  b[26] = port.count;
  b[27] = port.dlab ? 1 : 0;
  b[28] = port.overrun ? 1 : 0;
  new DataView(b.buffer).setUint16(30, port.divisor, true);
  b[32] = port.fcr;
  b[33] = port.maxFifoSize;
  b[34] = port.intrTriggerLevel;
  return b;
}

function decodeSerialPort(b: Uint8Array, port: SerialPort): void {
  port.uartReg.set(b.subarray(0, 8));
  port.fifo.set(b.subarray(8, 24));
  port.head = b[24]! & 0xf;
  port.tail = b[25]! & 0xf;
  port.count = Math.min(b[26]!, 16);
  port.dlab = b[27] !== 0;
  port.overrun = b[28] !== 0;
  port.divisor = new DataView(b.buffer, b.byteOffset).getUint16(30, true);
  port.fcr = b[32]!;
  port.maxFifoSize = b[33] === 1 ? 1 : 16;
  port.intrTriggerLevel = b[34]!;
}

/** What the migration code needs of a card. */
export interface MttyMigratable {
  readonly nrPorts: 1 | 2;
  readonly uarts: { readonly ports: readonly SerialPort[] };
}

/**
 * mtty_load_state with the checks of mtty_resume_write: a header that is not this card's (magic, version, flags,
 * port count) or a short stream is EINVAL, and nothing is loaded.
 */
export function loadMttyState(card: MttyMigratable, data: Uint8Array): void {
  if (data.length < mttyDataSize(card.nrPorts)) throw new SysError('EINVAL', `mtty state of ${data.length} bytes is short`);
  const dv = new DataView(data.buffer, data.byteOffset, data.length);
  if (
    dv.getBigUint64(0, true) !== MTTY_MAGIC ||
    dv.getUint32(8, true) !== MTTY_MAJOR_VER ||
    dv.getUint32(12, true) !== MTTY_MINOR_VER ||
    dv.getUint32(16, true) !== card.nrPorts ||
    dv.getUint32(20, true) !== 0
  ) {
    throw new SysError('EINVAL', 'mtty state header does not match this card');
  }
  for (let i = 0; i < card.nrPorts; i++) {
    const off = MTTY_DATA_HEADER_SIZE + i * MTTY_SERIAL_PORT_SIZE;
    decodeSerialPort(data.subarray(off, off + MTTY_SERIAL_PORT_SIZE), card.uarts.ports[i]!);
  }
}

/** The whole `struct mtty_data` of a card. */
export function saveMttyState(card: MttyMigratable): Uint8Array {
  const out = new Uint8Array(mttyDataSize(card.nrPorts));
  out.set(encodeMttyHeader(card.nrPorts));
  for (let i = 0; i < card.nrPorts; i++) out.set(encodeSerialPort(card.uarts.ports[i]!), MTTY_DATA_HEADER_SIZE + i * MTTY_SERIAL_PORT_SIZE);
  return out;
}

/**
 * The saving side: entered through PRE_COPY the header is initial data and the ports follow at STOP_COPY; entered
 * straight at STOP_COPY everything is final.
 */
function savingSource(card: MttyMigratable, preCopy: boolean): SavingSource {
  const header = encodeMttyHeader(card.nrPorts);
  let sent = 0;
  let final = false;
  return {
    initialBytes: () => (preCopy && !final ? header.length - sent : 0),
    readInitial: (max) => {
      const chunk = header.slice(sent, sent + max);
      sent += chunk.length;
      return chunk;
    },
    finalState: () => {
      final = true;
      return saveMttyState(card).subarray(sent);
    },
  };
}

/** mtty_step_state as a @vfio-ts/migration driver. */
export function mttyMigrationDriver(card: MttyMigratable): MigrationDriver {
  return {
    migrationFlags: MTTY_MIGRATION_FLAGS,
    setState(arc: MigrationArcRequest): SavingSource | void {
      if (arc.resumed) {
        loadMttyState(card, arc.resumed.payload());
        return undefined;
      }
      const { from, to } = arc;
      if (from === VFIO_DEVICE_STATE_RUNNING && to === VFIO_DEVICE_STATE_PRE_COPY) return savingSource(card, true);
      if (from === VFIO_DEVICE_STATE_RUNNING_P2P && to === VFIO_DEVICE_STATE_PRE_COPY_P2P) return savingSource(card, true);
      if (from === VFIO_DEVICE_STATE_STOP && to === VFIO_DEVICE_STATE_STOP_COPY) return savingSource(card, false);
      // Every other arc is a no-op for a device without DMA (the machine opens and closes the sessions).
      return undefined;
    },
    dataSize: () => mttyDataSize(card.nrPorts),
  };
}

/**
 * The migration pieces of one card: the state machine (mtty_migration_ops) and a DMA logger (mtty_log_ops, which
 * records nothing as mtty does no DMA). The driver puts both on its VFIO device at init; `migration()` from
 * @vfio-ts/migration answers the feature ioctls with them.
 */
export class MttyMigration {
  /** The migration v2 ops (device->mig_ops). */
  readonly machine: MigrationStateMachine;
  /** The DMA-logging ops (device->log_ops). */
  readonly dmaLogger = new DmaLogger();

  constructor(card: MttyMigratable) {
    this.machine = new MigrationStateMachine(mttyMigrationDriver(card), { tag: `vfio-ts:mtty:${card.nrPorts}` });
  }
}
