import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  vfioPrecopyInfo,
} from '@vfio-ts/uapi';
import { MIG_RECORD_HEADER_SIZE, MigRecordKind, MigrationStateMachine, decodeStream } from '../src/index.js';
import type { MigrationArcRequest, MigrationDriver, SavingSource , SavingSession} from '../src/index.js';
import { M, bytesOf, concat, errnoOf } from './helpers.js';


const TAG = 'pc';
const START_BYTES = MIG_RECORD_HEADER_SIZE + TAG.length;

/** A running device whose memory gets dirtied by `dirty(n)`. */
class RunningDevice implements MigrationDriver {
  readonly migrationFlags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
  pendingDirty = 0;
  private seed = 1;
  constructor(readonly initial: number) {}

  dirty(n: number): void {
    this.pendingDirty += n;
  }

  setState(arc: MigrationArcRequest): SavingSource | void {
    if (arc.to !== M.PRE_COPY || arc.from !== M.RUNNING) return;
    let left = this.initial;
    return {
      initialBytes: () => left,
      readInitial: (max) => {
        const n = Math.min(max, left);
        left -= n;
        return bytesOf(n, this.seed++);
      },
      dirtyBytes: () => this.pendingDirty,
      readDirty: (max) => {
        const n = Math.min(max, this.pendingDirty);
        this.pendingDirty -= n;
        return bytesOf(n, this.seed++);
      },
      finalState: () => new Uint8Array(0),
    };
  }

  dataSize(): number {
    return this.initial;
  }
}

function info(s: SavingSession): { initial: bigint; dirty: bigint } {
  const arg = vfioPrecopyInfo.encode({ argsz: vfioPrecopyInfo.size });
  expect(s.ioctl(VFIO_MIG_GET_PRECOPY_INFO, arg)).toBe(0);
  const v = vfioPrecopyInfo.decode(arg);
  expect(v.argsz).toBe(vfioPrecopyInfo.size);
  return { initial: v.initial_bytes, dirty: v.dirty_bytes };
}

describe('PRE_COPY reads and PRECOPY_INFO', () => {
  it('returns initial then dirty data and ENOMSG when both are zero', () => {
    const dev = new RunningDevice(100);
    const sm = new MigrationStateMachine(dev, { tag: TAG, maxRecordPayload: 64 });
    const s = sm.setState(M.PRE_COPY) as SavingSession;
    // Initial: the START record plus 100 bytes in two framed records (64 + 36).
    const H = MIG_RECORD_HEADER_SIZE;
    expect(info(s)).toEqual({ initial: BigInt(START_BYTES + 100 + 2 * H), dirty: 0n });
    expect(s.readable()).toBe(true);
    const parts: Uint8Array[] = [s.read(START_BYTES)];
    expect(parts[0]).toHaveLength(START_BYTES);
    parts.push(s.read(10));
    expect(parts[1]).toHaveLength(10);
    expect(info(s).initial).toBe(BigInt(H + 64 - 10 + H + 36));
    parts.push(s.read(1000));
    expect(parts[2]).toHaveLength(H * 2 + 100 - 10);
    expect(info(s)).toEqual({ initial: 0n, dirty: 0n });
    expect(s.readable()).toBe(false);
    expect(errnoOf(() => s.read(1))).toBe('ENOMSG');
    // The device runs and dirties memory; the driver wakes pollers.
    let woke = 0;
    const unsub = s.subscribe(() => woke++);
    dev.dirty(30);
    s.notify();
    expect(woke).toBe(1);
    unsub();
    expect(info(s)).toEqual({ initial: 0n, dirty: BigInt(H + 30) });
    expect(s.readable()).toBe(true);
    parts.push(s.read(1000));
    expect(parts[3]).toHaveLength(H + 30);
    expect(errnoOf(() => s.read(1))).toBe('ENOMSG');
    // STOP_COPY closes the stream: START, INITIAL×2, DIRTY, END.
    sm.setState(M.STOP_COPY);
    for (let b = s.read(5); b.length > 0; b = s.read(5)) parts.push(b);
    const records = decodeStream(parts, TAG);
    expect(records.map((r) => r.kind)).toEqual([MigRecordKind.INITIAL, MigRecordKind.INITIAL, MigRecordKind.DIRTY]);
  });

  it('accounting: initial never grows, info reaches zero exactly when all queued data is read (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }),
        fc.array(fc.oneof(fc.record({ read: fc.integer({ min: 1, max: 300 }) }), fc.record({ dirty: fc.integer({ min: 0, max: 200 }) })), {
          maxLength: 40,
        }),
        (initial, ops) => {
          const dev = new RunningDevice(initial);
          const sm = new MigrationStateMachine(dev, { tag: TAG, maxRecordPayload: 128 });
          const s = sm.setState(M.PRE_COPY) as SavingSession;
          let lastInitial = info(s).initial;
          let readTotal = 0;
          for (const op of ops) {
            if ('dirty' in op) {
              dev.dirty(op.dirty);
              continue;
            }
            const before = info(s);
            let got: Uint8Array | undefined;
            const err = errnoOf(() => {
              got = s.read(op.read);
            });
            if (before.initial === 0n && before.dirty === 0n) {
              expect(err).toBe('ENOMSG');
            } else {
              expect(err).toBeUndefined();
              expect(got!.length).toBeGreaterThan(0);
              readTotal += got!.length;
            }
            const after = info(s);
            expect(after.initial <= lastInitial).toBe(true);
            lastInitial = after.initial;
          }
          // Drain everything: total bytes read = framing + initial + all dirty handed out.
          const drained: number[] = [];
          for (;;) {
            const err = errnoOf(() => drained.push(s.read(10_000).length));
            if (err) {
              expect(err).toBe('ENOMSG');
              break;
            }
          }
          expect(info(s)).toEqual({ initial: 0n, dirty: 0n });
          expect(readTotal + drained.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(START_BYTES + initial);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('PRECOPY_INFO is EINVAL outside PRE_COPY states, for a short argsz, and other ioctls are ENOTTY', () => {
    const dev = new RunningDevice(10);
    const sm = new MigrationStateMachine(dev, { tag: TAG });
    const s = sm.setState(M.PRE_COPY) as SavingSession;
    expect(errnoOf(() => s.ioctl(VFIO_MIG_GET_PRECOPY_INFO, vfioPrecopyInfo.encode({ argsz: 16 })))).toBe('EINVAL');
    expect(errnoOf(() => s.ioctl(VFIO_MIG_GET_PRECOPY_INFO, new Uint8Array(8)))).toBe('EFAULT');
    expect(errnoOf(() => s.ioctl(VFIO_MIG_GET_PRECOPY_INFO + 1, vfioPrecopyInfo.encode({ argsz: 24 })))).toBe('ENOTTY');
    sm.setState(M.PRE_COPY_P2P);
    expect(info(s).initial).toBeGreaterThan(0n);
    sm.setState(M.STOP_COPY);
    expect(errnoOf(() => s.ioctl(VFIO_MIG_GET_PRECOPY_INFO, vfioPrecopyInfo.encode({ argsz: 24 })))).toBe('EINVAL');
    // In STOP_COPY nothing is ENOMSG: the rest streams, then EOF.
    const parts: Uint8Array[] = [];
    for (let b = s.read(7); b.length > 0; b = s.read(7)) parts.push(b);
    expect(concat(parts).length).toBeGreaterThan(0);
  });
});
