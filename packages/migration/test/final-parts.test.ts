import {
  SysError,
  VFIO_DEVICE_STATE_ERROR,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_MIGRATION_STOP_COPY,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { MIG_RECORD_HEADER_SIZE, MigRecordKind, MigrationStateMachine, ResumingSession, SavingSession, encodeRecord } from '../src/index.js';
import type { MigRecord } from '../src/index.js';

function readAll(s: SavingSession, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let c = s.read(n); c.length > 0; c = s.read(n)) out.push(c);
  return out;
}

describe('final state given as parts', () => {
  it('an array of parts becomes one record with the parts in order; a larger one is cut like a chunk', () => {
    const parts = [Uint8Array.of(1, 2), Uint8Array.of(3), new Uint8Array(0), Uint8Array.of(4, 5, 6)];
    const big = [new Uint8Array(10).fill(7), new Uint8Array(10).fill(8)];
    const s = new SavingSession({ *finalState() { yield parts; yield big; yield []; } }, VFIO_DEVICE_STATE_STOP_COPY, { tag: 't', maxRecordPayload: 16 });
    const r = new ResumingSession({ tag: 't' });
    for (const c of readAll(s, 7)) r.write(c);
    const records = r.finish().records;
    expect(records.map((x) => [x.kind, x.payload.length])).toEqual([
      [MigRecordKind.FINAL, 6],
      [MigRecordKind.FINAL, 16],
      [MigRecordKind.FINAL, 4],
    ]);
    expect([...records[0]!.payload]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...records[1]!.payload.subarray(8, 12)]).toEqual([7, 7, 8, 8]);
  });

  it('encodeRecord of parts equals encodeRecord of their concatenation', () => {
    const joined = encodeRecord(MigRecordKind.FINAL, 3, Uint8Array.of(9, 8, 7, 6));
    expect(encodeRecord(MigRecordKind.FINAL, 3, [Uint8Array.of(9, 8), Uint8Array.of(7, 6)])).toEqual(joined);
    expect(joined.length).toBe(MIG_RECORD_HEADER_SIZE + 4);
  });

  it('reads hand out views that later reads and session end never change', () => {
    const s = new SavingSession({ finalState: () => new Uint8Array(100).fill(5) }, VFIO_DEVICE_STATE_STOP_COPY, { tag: 't' });
    const first = s.read(1000);
    const copy = first.slice();
    readAll(s, 1000);
    s.end();
    expect(first).toEqual(copy);
  });
});

describe('MigrationDriver.stageRecord', () => {
  function pair(stage: (r: MigRecord) => void) {
    const flags = VFIO_MIGRATION_STOP_COPY;
    const src = new MigrationStateMachine(
      { migrationFlags: flags, setState: (arc) => (arc.to === VFIO_DEVICE_STATE_STOP_COPY ? { finalState: () => [Uint8Array.of(1), Uint8Array.of(2)] } : undefined), dataSize: () => 2 },
      { tag: 't', maxRecordPayload: 1 },
    );
    const arcs: string[] = [];
    const dst = new MigrationStateMachine(
      { migrationFlags: flags, setState: (arc) => { arcs.push(`${arc.from}>${arc.to}${arc.resumed ? ` ${arc.resumed.records.length}` : ''}`); }, dataSize: () => 0, stageRecord: stage },
      { tag: 't' },
    );
    const out = src.setState(VFIO_DEVICE_STATE_STOP_COPY) as SavingSession;
    const into = dst.setState(VFIO_DEVICE_STATE_RESUMING) as ResumingSession;
    return { out, into, dst, arcs };
  }

  it('sees each data record as soon as it validated, before RESUMING → STOP', () => {
    const staged: number[] = [];
    const { out, into, dst, arcs } = pair((r) => staged.push(r.payload[0]!));
    const bytes = readAll(out, 1 << 20);
    const all = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of bytes) {
      all.set(b, at);
      at += b.length;
    }
    // START (24 + 1 tag byte) then the first FINAL record (24 + 1): the second record is not complete yet.
    into.write(all.subarray(0, 24 + 1 + 24 + 1 + 10));
    expect(staged).toEqual([1]);
    into.write(all.subarray(24 + 1 + 24 + 1 + 10));
    expect(staged).toEqual([1, 2]);
    dst.setState(VFIO_DEVICE_STATE_STOP);
    expect(arcs.at(-1)).toBe(`${VFIO_DEVICE_STATE_RESUMING}>${VFIO_DEVICE_STATE_STOP} 2`);
  });

  it('a record the driver rejects fails RESUMING → STOP with its errno, into ERROR', () => {
    const { out, into, dst } = pair((r) => {
      if (r.payload[0] === 2) throw new SysError('EBADMSG', 'bad entry');
    });
    for (const c of readAll(out, 7)) into.write(c);
    let errno = '';
    try {
      dst.setState(VFIO_DEVICE_STATE_STOP);
    } catch (e) {
      errno = (e as SysError).errno;
    }
    expect(errno).toBe('EBADMSG');
    expect(dst.state).toBe(VFIO_DEVICE_STATE_ERROR);
  });
});
