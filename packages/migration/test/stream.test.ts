import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY } from '@vfio-ts/uapi';
import {
  MIG_RECORD_HEADER_SIZE,
  MigRecordKind,
  MigrationStateMachine,
  ResumingSession,
  SavingSession,
  decodeStream,
  encodeRecord,
} from '../src/index.js';
import type { MigrationArcRequest, MigrationDriver, SavingSource } from '../src/index.js';
import { M, bytesOf, concat, errnoOf } from './helpers.js';

const TAG = 'vendor:dev:v1';

/** A device with a state blob; PRE_COPY hands out the blob as initial data, dirty data from `dirty`. */
class BlobDevice implements MigrationDriver {
  readonly migrationFlags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
  loaded: { initial: Uint8Array; dirty: Uint8Array; final: Uint8Array } | undefined;
  loads = 0;
  constructor(
    public state: Uint8Array,
    public dirty: Uint8Array = new Uint8Array(0),
  ) {}

  setState(arc: MigrationArcRequest): SavingSource | void {
    if (arc.resumed) {
      this.loads++;
      this.loaded = {
        initial: arc.resumed.payload(MigRecordKind.INITIAL),
        dirty: arc.resumed.payload(MigRecordKind.DIRTY),
        final: arc.resumed.payload(MigRecordKind.FINAL),
      };
      return;
    }
    if (arc.to === M.PRE_COPY || arc.to === M.STOP_COPY) {
      if (arc.from === M.PRE_COPY) return;
      const snap = this.state.slice();
      let init = 0;
      let dirtyAt = 0;
      return {
        initialBytes: () => snap.length - init,
        readInitial: (max) => snap.subarray(init, (init += Math.min(max, snap.length - init))),
        dirtyBytes: () => this.dirty.length - dirtyAt,
        readDirty: (max) => this.dirty.subarray(dirtyAt, (dirtyAt += Math.min(max, this.dirty.length - dirtyAt))),
        finalState: () => [snap.subarray(init), this.dirty.subarray(dirtyAt)],
      };
    }
  }

  dataSize(): number {
    return this.state.length;
  }
}

/** Splits `bytes` at the given cut points (any order, any count). */
function resegment(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  return out;
}

/** Reads a saving session with varying read sizes until EOF. */
function readAll(session: SavingSession, sizes: number[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; ; i++) {
    const b = session.read(sizes.length ? sizes[i % sizes.length]! : 4096);
    if (b.length === 0) return concat(parts);
    parts.push(b);
  }
}

function saveStopCopy(state: Uint8Array, sizes: number[] = [], maxRecordPayload = 512): Uint8Array {
  const sm = new MigrationStateMachine(new BlobDevice(state), { tag: TAG, maxRecordPayload });
  return readAll(sm.setState(M.STOP_COPY) as SavingSession, sizes);
}

function resume(stream: readonly Uint8Array[], tag = TAG): { sm: MigrationStateMachine; dev: BlobDevice } {
  const dev = new BlobDevice(new Uint8Array(0));
  const sm = new MigrationStateMachine(dev, { tag });
  const r = sm.setState(M.RESUMING) as ResumingSession;
  for (const chunk of stream) expect(r.write(chunk)).toBe(chunk.length);
  return { sm, dev };
}

describe('stream round trip', () => {
  it('survives any read sizes and any re-segmentation of the writes (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.integer({ min: 1, max: 1024 }),
        (state, readSizes, cuts, maxRecord) => {
          const stream = saveStopCopy(state, readSizes, maxRecord);
          const { sm, dev } = resume(resegment(stream, cuts));
          expect(sm.setState(M.STOP)).toBeNull();
          expect(dev.loaded?.final).toEqual(state);
          expect(dev.loads).toBe(1);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('carries PRE_COPY initial and dirty data and the STOP_COPY rest in one stream', () => {
    const state = bytesOf(2000, 5);
    const src = new BlobDevice(state);
    const sm = new MigrationStateMachine(src, { tag: TAG, maxRecordPayload: 300 });
    const s = sm.setState(M.PRE_COPY) as SavingSession;
    const parts = [s.read(1000)];
    src.dirty = bytesOf(100, 9);
    sm.setState(M.STOP_COPY);
    parts.push(readAll(s, [777]));
    const { sm: dst, dev } = resume([concat(parts)]);
    dst.setState(M.RUNNING);
    const l = dev.loaded!;
    expect(concat([l.initial, l.final]).subarray(0, 2000)).toEqual(state);
    expect(l.final.subarray(l.final.length - 100)).toEqual(src.dirty);
  });
});

describe('corrupted or truncated streams fail RESUMING → STOP', () => {
  it('rejects every truncation (property)', () => {
    const stream = saveStopCopy(bytesOf(1500, 2), [], 200);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: stream.length - 1 }), (cut) => {
        const { sm, dev } = resume([stream.subarray(0, cut)]);
        expect(errnoOf(() => sm.setState(M.STOP))).toBe('EINVAL');
        expect(sm.state).toBe(M.ERROR);
        expect(dev.loads).toBe(0);
        // Never runs on half-loaded state: only reset leaves ERROR.
        expect(errnoOf(() => sm.setState(M.RUNNING))).toBe('EINVAL');
      }),
      { numRuns: 100 },
    );
  });

  it('rejects any flipped byte (property)', () => {
    const stream = saveStopCopy(bytesOf(1500, 3), [], 200);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: stream.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = stream.slice();
        bad[at]! ^= xor;
        const { sm, dev } = resume([bad]);
        expect(errnoOf(() => sm.setState(M.RUNNING))).toBe('EINVAL');
        expect(sm.state).toBe(M.ERROR);
        expect(dev.loads).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it('rejects trailing bytes, a foreign device tag, reordered and duplicated records', () => {
    const stream = saveStopCopy(bytesOf(900, 4), [], 300);
    expect(errnoOf(() => resume([stream, new Uint8Array([0])]).sm.setState(M.STOP))).toBe('EINVAL');
    expect(errnoOf(() => resume([stream], 'other:dev:v1').sm.setState(M.STOP))).toBe('EINVAL');
    expect(errnoOf(() => resume([]).sm.setState(M.STOP))).toBe('EINVAL');
    // Records: START, FINAL×3, END. Swap the 2nd and 3rd FINAL.
    const recs: Uint8Array[] = [];
    for (let at = 0; at < stream.length; ) {
      const len = new DataView(stream.buffer, stream.byteOffset + at + 12, 4).getUint32(0, true);
      recs.push(stream.subarray(at, at + MIG_RECORD_HEADER_SIZE + len));
      at += MIG_RECORD_HEADER_SIZE + len;
    }
    expect(recs).toHaveLength(5);
    const swapped = [recs[0]!, recs[2]!, recs[1]!, recs[3]!, recs[4]!];
    expect(errnoOf(() => resume(swapped).sm.setState(M.STOP))).toBe('EINVAL');
    const duplicated = [recs[0]!, recs[1]!, recs[1]!, recs[2]!, recs[3]!, recs[4]!];
    expect(errnoOf(() => resume(duplicated).sm.setState(M.STOP))).toBe('EINVAL');
  });

  it('decodeStream checks the framing rules on hand-made streams', () => {
    const tag = new TextEncoder().encode('t');
    const ok = [encodeRecord(MigRecordKind.START, 0, tag), encodeRecord(MigRecordKind.FINAL, 1, bytesOf(5, 1)), encodeRecord(MigRecordKind.END, 2)];
    expect(decodeStream(ok, 't').map((r) => r.kind)).toEqual([MigRecordKind.FINAL]);
    expect(errnoOf(() => decodeStream([ok[1]!, ok[2]!], 't'))).toBe('EINVAL');
    expect(errnoOf(() => decodeStream([ok[0]!, ok[1]!], 't'))).toBe('EINVAL');
    expect(errnoOf(() => decodeStream([ok[0]!, encodeRecord(MigRecordKind.START, 1, tag), encodeRecord(MigRecordKind.END, 2)], 't'))).toBe('EINVAL');
    expect(errnoOf(() => decodeStream([ok[0]!, encodeRecord(MigRecordKind.END, 1, tag)], 't'))).toBe('EINVAL');
  });
});

describe('saving session reads', () => {
  it('streams STOP_COPY to EOF and keeps returning EOF', () => {
    const sm = new MigrationStateMachine(new BlobDevice(bytesOf(10, 1)), { tag: TAG });
    const s = sm.setState(M.STOP_COPY) as SavingSession;
    expect(s.readable()).toBe(true);
    const all = readAll(s, [5]);
    expect(all.length).toBe(MIG_RECORD_HEADER_SIZE * 3 + TAG.length + 10);
    expect(s.read(100)).toHaveLength(0);
    expect(s.read(0)).toHaveLength(0);
    expect(errnoOf(() => s.read(-1))).toBe('EINVAL');
  });

  it('a closed file reads EBADF while the device keeps its state; leaving the group ends the session', () => {
    const sm = new MigrationStateMachine(new BlobDevice(bytesOf(10, 1)), { tag: TAG });
    const s = sm.setState(M.STOP_COPY) as SavingSession;
    s.release();
    expect(errnoOf(() => s.read(1))).toBe('EBADF');
    expect(sm.state).toBe(M.STOP_COPY);
    sm.setState(M.STOP);
    expect(s.isEnded).toBe(true);
  });

  it('a resuming session answers no ioctl and enforces its size limit', () => {
    const r = new ResumingSession({ tag: TAG, maxResumeBytes: 10 });
    expect(errnoOf(() => r.ioctl(0x3b79, new Uint8Array(24)))).toBe('ENOTTY');
    expect(r.write(new Uint8Array(10))).toBe(10);
    expect(errnoOf(() => r.write(new Uint8Array(1)))).toBe('ENOMEM');
    expect(r.bytesWritten).toBe(10);
  });
});

describe('SavingSession without a state machine', () => {
  it('can be composed directly by a driver', () => {
    const source: SavingSource = { finalState: () => bytesOf(3, 1) };
    const s = new SavingSession(source, M.STOP_COPY, { tag: 'x' });
    const bytes = readAll(s, []);
    expect(decodeStream([bytes], 'x')[0]!.payload).toEqual(bytesOf(3, 1));
    expect(errnoOf(() => new SavingSession(source, M.RUNNING, { tag: 'x' }))).toBe('EINVAL');
    expect(() => new SavingSession(source, M.STOP_COPY, { tag: 'x', maxRecordPayload: 0 })).toThrow(RangeError);
  });
});
