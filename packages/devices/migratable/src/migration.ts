/**
 * Migration v2 for the sample device (inventory §2.3, §5): a {@link MigrationDriver} for
 * `MigrationStateMachine` with STOP_COPY | P2P | PRE_COPY. The stream carries BAR2 memory pages (initial pages
 * in PRE_COPY, pages written since as dirty data, the rest at STOP_COPY) and, last, the register blob. A
 * resuming device loads nothing until the whole stream validated (the state machine checks framing and CRCs;
 * this driver checks its own entries) — the destination never runs half-loaded.
 *
 * Record payloads are entries:
 *
 * | offset | size | MEM entry (type 1) | REGS entry (type 2) |
 * |---|---|---|---|
 * | 0 | 4 | type 1 | type 2 |
 * | 4 | 4 | page count n (≤ 255) | blob length |
 * | 8 | 8 | reserved 0 | reserved 0 |
 * | 16 | 4n / length | n page indexes (u32) | the register blob |
 * | 16 + 4n | 4096n | the n pages | |
 */
import { DirtyBitmap, MigRecordKind, MigrationArcError } from '@vfio-ts/migration';
import type { MigRecord, MigrationArcRequest, MigrationDriver, ResumedStream, SavingSource } from '@vfio-ts/migration';
import {
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_PRE_COPY_P2P,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_RUNNING_P2P,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  isSysError,
} from '@vfio-ts/uapi';
import type { MigratableFunction } from './model.js';
import { STATE_BLOB_SIZE } from './model.js';
import { MIG_PAGE_SIZE } from './regs.js';

/** The migration flags of the device. */
export const MIGRATABLE_MIGRATION_FLAGS = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

const ENTRY_MEM = 1;
const ENTRY_REGS = 2;
const ENTRY_HEADER = 16;
/** Pages per MEM entry: one record carries one entry, about 1 MiB. */
export const PAGES_PER_RECORD = 255;
/** Bytes one page costs in a MEM entry (its index and its contents). */
const PAGE_COST = 4 + MIG_PAGE_SIZE;
/** The record payload limit the device asks its sessions for: exactly one full MEM entry. */
export const MIGRATABLE_RECORD_PAYLOAD = ENTRY_HEADER + PAGES_PER_RECORD * PAGE_COST;

const ZERO_PAGE = new Uint8Array(MIG_PAGE_SIZE);

/** Raw stream bytes `n` pages take as MEM entries of full records. */
export function memEntryBytes(n: number): number {
  return n === 0 ? 0 : n * PAGE_COST + Math.ceil(n / PAGES_PER_RECORD) * ENTRY_HEADER;
}

/** The parts of one MEM entry: header + index table, then the pages themselves (not copied). */
function memEntryParts(indexes: readonly number[], pageOf: (index: number) => Uint8Array): Uint8Array[] {
  const head = new Uint8Array(ENTRY_HEADER + 4 * indexes.length);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, ENTRY_MEM, true);
  dv.setUint32(4, indexes.length, true);
  indexes.forEach((index, i) => {
    dv.setUint32(ENTRY_HEADER + 4 * i, index, true);
  });
  return [head, ...indexes.map(pageOf)];
}

function join(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function regsEntry(blob: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENTRY_HEADER + blob.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, ENTRY_REGS, true);
  dv.setUint32(4, blob.length, true);
  out.set(blob, ENTRY_HEADER);
  return out;
}

/** How many whole pages fit in `max` bytes of one entry (at most {@link PAGES_PER_RECORD}). */
function pagesThatFit(max: number): number {
  return Math.max(0, Math.min(PAGES_PER_RECORD, Math.floor((max - ENTRY_HEADER) / PAGE_COST)));
}

/**
 * The saving side of one session. In PRE_COPY it hands out every page present when the session began (initial
 * data) and then the pages written since (dirty data, tracked page by page); at STOP_COPY the device is quiesced
 * and the rest — pages still unsent or dirty, then the registers — is streamed from a copy-on-write snapshot.
 */
class DeviceSaver implements SavingSource {
  private initial: number[];
  private readonly dirty = new DirtyBitmap(BigInt(MIG_PAGE_SIZE));

  constructor(
    private readonly fn: MigratableFunction,
    private readonly precopy: boolean,
    notify: () => void,
  ) {
    this.initial = precopy ? fn.pageIndexes() : [];
    if (precopy) {
      fn.onMemoryWrite = (first, count) => {
        this.dirty.setPages(first, count);
        // New dirty data: wake whoever polls the data fd.
        notify();
      };
    }
  }

  private pageOf = (index: number): Uint8Array => this.fn.page(index) ?? ZERO_PAGE;

  initialBytes(): number {
    return memEntryBytes(this.initial.length);
  }

  readInitial(max: number): Uint8Array {
    const take = this.initial.slice(0, Math.min(this.initial.length, pagesThatFit(max)));
    this.initial = this.initial.slice(take.length);
    return take.length === 0 ? new Uint8Array(0) : join(memEntryParts(take, this.pageOf));
  }

  dirtyBytes(): number {
    let bytes = 0;
    // Runs are read one record at a time, so each run is framed on its own.
    for (const run of this.dirty.runs()) bytes += memEntryBytes(run.count);
    return bytes;
  }

  readDirty(max: number): Uint8Array {
    const run = this.dirty.runs().next();
    if (run.done) return new Uint8Array(0);
    const count = Math.min(run.value.count, pagesThatFit(max));
    if (count === 0) return new Uint8Array(0);
    const take = Array.from({ length: count }, (_, i) => run.value.start + i);
    this.dirty.clearPages(run.value.start, count);
    return join(memEntryParts(take, this.pageOf));
  }

  finalState(): Iterable<Uint8Array | readonly Uint8Array[]> {
    // Captured now, when the device enters STOP_COPY (it is quiesced): later user writes to BAR memory copy the
    // page first, so the stream is the state at this moment however late it is read.
    this.fn.onMemoryWrite = undefined;
    const registers = this.fn.saveRegisters();
    let pages: [number, Uint8Array][];
    if (!this.precopy) {
      pages = this.fn.snapshotPages();
    } else {
      // Only what pre-copy did not hand over yet: unsent initial pages and pages written since.
      const wanted = [...this.initial, ...this.dirty.pages()];
      const present = new Map(this.fn.snapshotPages(wanted));
      pages = [...new Set(wanted)].sort((a, b) => a - b).map((i) => [i, present.get(i) ?? ZERO_PAGE]);
    }
    this.initial = [];
    return (function* records(): Generator<Uint8Array | readonly Uint8Array[]> {
      for (let at = 0; at < pages.length; at += PAGES_PER_RECORD) {
        const slice = pages.slice(at, at + PAGES_PER_RECORD);
        const byIndex = new Map(slice);
        yield memEntryParts(
          slice.map(([i]) => i),
          (i) => byIndex.get(i)!,
        );
      }
      yield regsEntry(registers);
    })();
  }

  release(): void {
    this.fn.onMemoryWrite = undefined;
    this.fn.releaseSnapshot();
  }
}

/** What a resumed stream carries, as it is parsed record by record. */
export interface DeviceStreamState {
  readonly pages: Map<number, Uint8Array>;
  registers: Uint8Array | undefined;
}

/**
 * Parses one data record of the device's stream into `into` (EINVAL, as a {@link MigrationArcError} that puts the
 * device in ERROR, on any defect: a malformed entry, a page outside BAR2, registers outside the final state or
 * anything after them). Pages are views of the record's payload, not copies.
 */
export function parseDeviceRecord(record: MigRecord, memorySize: number, into: DeviceStreamState): void {
  const bad = (why: string): never => {
    throw new MigrationArcError('EINVAL', `migratable stream: ${why}`, { toError: true });
  };
  const p = record.payload;
  if (into.registers) bad('data after the register entry');
  if (p.length < ENTRY_HEADER) bad(`record ${record.seq} too short for an entry`);
  const dv = new DataView(p.buffer, p.byteOffset, p.length);
  const type = dv.getUint32(0, true);
  const n = dv.getUint32(4, true);
  if (dv.getBigUint64(8, true) !== 0n) bad(`reserved bits in record ${record.seq}`);
  if (type === ENTRY_MEM) {
    if (n > PAGES_PER_RECORD || p.length !== ENTRY_HEADER + n * PAGE_COST) bad(`record ${record.seq}: ${n} pages in ${p.length} bytes`);
    const maxPage = memorySize / MIG_PAGE_SIZE;
    const data = ENTRY_HEADER + 4 * n;
    for (let i = 0; i < n; i++) {
      const index = dv.getUint32(ENTRY_HEADER + 4 * i, true);
      if (index >= maxPage) bad(`page ${index} outside BAR2`);
      const at = data + i * MIG_PAGE_SIZE;
      into.pages.set(index, p.subarray(at, at + MIG_PAGE_SIZE));
    }
  } else if (type === ENTRY_REGS) {
    if (record.kind !== MigRecordKind.FINAL) bad('registers outside the final state');
    if (n !== STATE_BLOB_SIZE || p.length !== ENTRY_HEADER + n) bad('register entry of the wrong size');
    into.registers = p.subarray(ENTRY_HEADER);
  } else {
    bad(`unknown entry type ${type}`);
  }
}

/** Parses and checks a whole resumed stream into the pages and register blob it carries (EINVAL on any defect). */
export function parseDeviceStream(stream: ResumedStream, memorySize: number): { pages: Map<number, Uint8Array>; registers: Uint8Array } {
  const state: DeviceStreamState = { pages: new Map(), registers: undefined };
  for (const record of stream.records) parseDeviceRecord(record, memorySize, state);
  if (!state.registers) throw new MigrationArcError('EINVAL', 'migratable stream: no register entry (truncated stream)', { toError: true });
  return { pages: state.pages, registers: state.registers };
}

/**
 * The device's {@link MigrationDriver}: quiesces the model in STOP, STOP_COPY and RESUMING and runs it in the
 * other states (the device does no P2P, so RUNNING_P2P and PRE_COPY_P2P run it too), opens a {@link DeviceSaver}
 * on the arcs that enter the saving group, stages each resumed record as it arrives (`stageRecord`) and commits
 * the staged state at RESUMING → STOP. `notify` is called
 * when the device dirties memory during pre-copy (pass the saving session's `notify` to wake pollers).
 */
export function migratableMigrationDriver(fn: MigratableFunction, notify: () => void = () => undefined): MigrationDriver {
  // What the stream of the current RESUMING session carried so far, parsed as its records arrived.
  let staged: DeviceStreamState = { pages: new Map(), registers: undefined };
  return {
    migrationFlags: MIGRATABLE_MIGRATION_FLAGS,
    stageRecord(record) {
      parseDeviceRecord(record, fn.memorySize, staged);
    },
    setState(arc: MigrationArcRequest): SavingSource | void {
      const stopped = arc.to === VFIO_DEVICE_STATE_STOP || arc.to === VFIO_DEVICE_STATE_STOP_COPY || arc.to === VFIO_DEVICE_STATE_RESUMING;
      // A new resume starts from nothing (a session that never reached STOP may have left staging behind).
      if (arc.to === VFIO_DEVICE_STATE_RESUMING) staged = { pages: new Map(), registers: undefined };
      if (arc.resumed) {
        // Every record was staged as it arrived; only the completeness check and the commit are left.
        const { pages, registers } = staged;
        staged = { pages: new Map(), registers: undefined };
        if (!registers) throw new MigrationArcError('EINVAL', 'migratable stream: no register entry (truncated stream)', { toError: true });
        try {
          fn.loadState(registers, pages);
        } catch (e) {
          if (isSysError(e)) throw new MigrationArcError(e.errno, e.message, { toError: true });
          throw e;
        }
      }
      if (stopped) fn.quiesce();
      else fn.resume();
      if (arc.to === VFIO_DEVICE_STATE_STOP_COPY && arc.from === VFIO_DEVICE_STATE_STOP) return new DeviceSaver(fn, false, notify);
      const entersPrecopy =
        (arc.to === VFIO_DEVICE_STATE_PRE_COPY && arc.from === VFIO_DEVICE_STATE_RUNNING) ||
        (arc.to === VFIO_DEVICE_STATE_PRE_COPY_P2P && arc.from === VFIO_DEVICE_STATE_RUNNING_P2P);
      if (entersPrecopy) return new DeviceSaver(fn, true, notify);
      return undefined;
    },
    dataSize: () => memEntryBytes(fn.pageIndexes().length) + ENTRY_HEADER + STATE_BLOB_SIZE,
  };
}
