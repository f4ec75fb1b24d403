import { VFIO_DEVICE_STATE_STOP_COPY } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { MIG_RECORD_HEADER_SIZE, MigRecordKind, ResumingSession, SavingSession, encodeRecord } from '../src/index.js';

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
