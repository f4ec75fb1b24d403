import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SysError, VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY } from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import {
  MigrationArcError,
  MigrationStateMachine,
  ResumingSession,
  SavingSession,
  isPrimitiveArc,
  isSavingState,
  isStateSupported,
} from '../src/index.js';
import type { MigrationArc, MigrationArcRequest, MigrationDataSession, MigrationDriver, SavingSource } from '../src/index.js';
import { FLAG_SETS, M, bytesOf, errnoOf } from './helpers.js';

const TAG = 'test:dev:1';

interface Injection {
  readonly index: number;
  readonly errno: ErrnoName;
  readonly toError: boolean;
}

/** A device whose state is a byte array: STOP_COPY saves it, RESUMING → STOP loads it. */
class FakeDevice implements MigrationDriver {
  readonly attempted: MigrationArc[] = [];
  readonly violations: string[] = [];
  calls = 0;
  inject: Injection | undefined;
  memory: Uint8Array;
  loaded: Uint8Array | undefined;

  constructor(
    readonly migrationFlags: number,
    memory = bytesOf(300, 7),
  ) {
    this.memory = memory;
  }

  setState(arc: MigrationArcRequest): SavingSource | void {
    this.attempted.push({ from: arc.from, to: arc.to });
    if (!isPrimitiveArc(this.migrationFlags, arc.from, arc.to)) this.violations.push(`${arc.from}->${arc.to}`);
    const i = this.calls++;
    if (this.inject && this.inject.index === i) {
      throw new MigrationArcError(this.inject.errno, 'injected', { toError: this.inject.toError });
    }
    if (arc.resumed) {
      this.loaded = arc.resumed.payload();
      this.memory = this.loaded;
    }
    if (isSavingState(arc.to) && !isSavingState(arc.from)) {
      const snapshot = this.memory.slice();
      let initialOffset = 0;
      return {
        initialBytes: () => snapshot.length - initialOffset,
        readInitial: (max) => {
          const out = snapshot.subarray(initialOffset, initialOffset + max);
          initialOffset += out.length;
          return out;
        },
        finalState: () => snapshot.subarray(initialOffset),
      };
    }
  }

  dataSize(): number {
    return this.memory.length;
  }
}

/** Reads a saving session to EOF in `step`-byte reads. */
function drain(session: SavingSession, step = 97): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (;;) {
    const b = session.read(step);
    if (b.length === 0) return parts;
    parts.push(b);
  }
}

/** A valid stream for TAG, made by a real saving session. */
function validStream(): Uint8Array[] {
  const src = new MigrationStateMachine(new FakeDevice(VFIO_MIGRATION_STOP_COPY), { tag: TAG });
  const s = src.setState(M.STOP_COPY);
  if (!(s instanceof SavingSession)) throw new Error('no session');
  return drain(s);
}

type Action =
  | { kind: 'set'; target: number; inject?: Injection; garbage: boolean }
  | { kind: 'reset' };

const errnos: ErrnoName[] = ['EIO', 'EBUSY', 'ENOMEM', 'EAGAIN'];
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        kind: fc.constant('set' as const),
        target: fc.oneof({ weight: 9, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.constantFrom(8, 255, 0xffffffff) }),
        inject: fc.record({ index: fc.nat(4), errno: fc.constantFrom(...errnos), toError: fc.boolean() }),
        garbage: fc.boolean(),
      },
      { requiredKeys: ['kind', 'target', 'garbage'] },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

describe('MigrationStateMachine (property)', () => {
  it('drives random targets on every flag combination: primitive arcs, target or Linux errno, sticky ERROR', () => {
    const stream = validStream();
    fc.assert(
      fc.property(fc.constantFrom(...FLAG_SETS), fc.array(actionArb, { minLength: 1, maxLength: 25 }), (flags, actions) => {
        const dev = new FakeDevice(flags);
        const sm = new MigrationStateMachine(dev, { tag: TAG, maxRecordPayload: 64 });
        let garbageWritten = false;
        for (const action of actions) {
          const before = sm.state;
          const sessionBefore = sm.session;
          if (action.kind === 'reset') {
            sm.reset();
            expect(sm.state).toBe(M.RUNNING);
            expect(sm.session).toBeUndefined();
            if (sessionBefore) expect(sessionBefore.isEnded).toBe(true);
            continue;
          }
          const { target } = action;
          dev.inject = action.inject ? { ...action.inject, index: dev.calls + action.inject.index } : undefined;
          const firstArc = dev.attempted.length;
          let result: MigrationDataSession | null = null;
          let error: SysError | undefined;
          try {
            result = sm.setState(target);
          } catch (e) {
            if (!(e instanceof SysError)) throw e;
            error = e;
          }
          const arcs = dev.attempted.slice(firstArc);
          expect(dev.violations).toEqual([]);
          // Arcs form a chain from the starting state.
          let at: number = before;
          for (const arc of arcs) {
            expect(arc.from).toBe(at);
            at = arc.to;
          }
          const linuxRefuses =
            target !== before &&
            (before === M.ERROR ||
              !isStateSupported(flags, target) ||
              (before === M.STOP_COPY && (target === M.PRE_COPY || target === M.PRE_COPY_P2P)));
          if (target === before) {
            expect(error).toBeUndefined();
            expect(result).toBeNull();
            expect(arcs).toEqual([]);
          } else if (linuxRefuses) {
            expect(error?.errno).toBe('EINVAL');
            expect(arcs).toEqual([]);
            expect(sm.state).toBe(before);
          } else if (error) {
            const injected = dev.inject && dev.calls > dev.inject.index && arcs.length > 0 && error instanceof MigrationArcError;
            if (injected) {
              expect(error.errno).toBe(dev.inject!.errno);
              const failed = arcs[arcs.length - 1]!;
              expect(sm.state).toBe(dev.inject!.toError ? M.ERROR : failed.from);
            } else {
              // The only other failure: a resume stream that does not validate, before the driver's arc.
              expect(error.errno).toBe('EINVAL');
              expect(garbageWritten || sessionBefore === undefined || at === M.RESUMING).toBe(true);
              expect(at).toBe(M.RESUMING);
              expect(sm.state).toBe(M.ERROR);
            }
          } else {
            expect(sm.state).toBe(target);
            expect(at).toBe(target);
          }
          // ERROR is sticky: only reset leaves it.
          if (before === M.ERROR) expect(sm.state).toBe(M.ERROR);
          // Sessions follow the state.
          const now = sm.state;
          if (isSavingState(now)) {
            expect(sm.session).toBeInstanceOf(SavingSession);
            if (isSavingState(before)) expect(sm.session).toBe(sessionBefore);
          } else if (now === M.RESUMING) {
            expect(sm.session).toBeInstanceOf(ResumingSession);
          } else {
            expect(sm.session).toBeUndefined();
          }
          if (sessionBefore && sm.session !== sessionBefore) expect(sessionBefore.isEnded).toBe(true);
          // A file is returned exactly when the walk opened a new session.
          if (!error) {
            const opened = (isSavingState(now) && !isSavingState(before)) || (now === M.RESUMING && before !== M.RESUMING);
            if (opened) expect(result).toBe(sm.session);
            else expect(result).toBeNull();
          }
          // Feed a fresh resume session so RESUMING → STOP has something to validate.
          if (result instanceof ResumingSession) {
            garbageWritten = action.garbage;
            for (const chunk of action.garbage ? [bytesOf(50, 3)] : stream) result.write(chunk);
          }
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('MigrationStateMachine', () => {
  it('keeps one saving session across PRE_COPY → PRE_COPY_P2P → STOP_COPY and ends it on leaving', () => {
    const flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
    const sm = new MigrationStateMachine(new FakeDevice(flags), { tag: TAG });
    const s = sm.setState(M.PRE_COPY);
    expect(s).toBeInstanceOf(SavingSession);
    expect(sm.setState(M.PRE_COPY_P2P)).toBeNull();
    expect(sm.session).toBe(s);
    expect(sm.setState(M.STOP_COPY)).toBeNull();
    expect(sm.session).toBe(s);
    expect(sm.setState(M.STOP)).toBeNull();
    expect((s as SavingSession).isEnded).toBe(true);
    expect(errnoOf(() => (s as SavingSession).read(10))).toBe('ENODEV');
    expect(sm.describe()).toEqual({ state: 'STOP', session: null });
  });

  it('enters STOP_COPY from RUNNING through STOP and returns the new file from the last arc', () => {
    const dev = new FakeDevice(VFIO_MIGRATION_STOP_COPY);
    const sm = new MigrationStateMachine(dev, { tag: TAG });
    const s = sm.setState(M.STOP_COPY);
    expect(dev.attempted).toEqual([
      { from: M.RUNNING, to: M.STOP },
      { from: M.STOP, to: M.STOP_COPY },
    ]);
    expect(s).toBeInstanceOf(SavingSession);
  });

  it('migrates a device state between two machines (two hosts) and loads it at RESUMING → STOP', () => {
    const src = new FakeDevice(VFIO_MIGRATION_STOP_COPY, bytesOf(5000, 11));
    const dst = new FakeDevice(VFIO_MIGRATION_STOP_COPY, new Uint8Array(0));
    const a = new MigrationStateMachine(src, { tag: TAG, maxRecordPayload: 1000 });
    const b = new MigrationStateMachine(dst, { tag: TAG });
    const out = a.setState(M.STOP_COPY) as SavingSession;
    const inp = b.setState(M.RESUMING) as ResumingSession;
    for (const chunk of drain(out, 333)) inp.write(chunk);
    expect(b.setState(M.RUNNING)).toBeNull();
    expect(dst.loaded).toEqual(src.memory);
    expect(b.state).toBe(M.RUNNING);
  });

  it('goes to ERROR and stays there until reset when an arc says so', () => {
    const dev = new FakeDevice(VFIO_MIGRATION_STOP_COPY);
    const sm = new MigrationStateMachine(dev, { tag: TAG });
    dev.inject = { index: 1, errno: 'EIO', toError: true };
    expect(errnoOf(() => sm.setState(M.STOP_COPY))).toBe('EIO');
    expect(sm.state).toBe(M.ERROR);
    expect(errnoOf(() => sm.setState(M.RUNNING))).toBe('EINVAL');
    expect(sm.setState(M.ERROR)).toBeNull();
    sm.reset();
    expect(sm.state).toBe(M.RUNNING);
    expect(sm.setState(M.STOP)).toBeNull();
  });

  it('leaves the device in the state it reached when an arc fails without ERROR', () => {
    const dev = new FakeDevice(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
    const sm = new MigrationStateMachine(dev, { tag: TAG });
    dev.inject = { index: 2, errno: 'EBUSY', toError: false };
    // RUNNING → RUNNING_P2P → STOP → STOP_COPY: the third arc fails.
    expect(errnoOf(() => sm.setState(M.STOP_COPY))).toBe('EBUSY');
    expect(sm.state).toBe(M.STOP);
    expect(sm.session).toBeUndefined();
  });

  it('reports a non-SysError from the driver as EIO and moves to ERROR', () => {
    const sm = new MigrationStateMachine(
      {
        migrationFlags: VFIO_MIGRATION_STOP_COPY,
        setState: () => {
          throw new TypeError('boom');
        },
        dataSize: () => 0,
      },
      { tag: TAG },
    );
    expect(errnoOf(() => sm.setState(M.STOP))).toBe('EIO');
    expect(sm.state).toBe(M.ERROR);
  });

  it('refuses drivers without STOP_COPY at construction (EINVAL)', () => {
    expect(
      errnoOf(() => new MigrationStateMachine({ migrationFlags: VFIO_MIGRATION_P2P, setState: () => undefined, dataSize: () => 0 }, { tag: TAG })),
    ).toBe('EINVAL');
  });

  it('fails an arc entering the saving group when the driver returns no source', () => {
    const sm = new MigrationStateMachine(
      { migrationFlags: VFIO_MIGRATION_STOP_COPY, setState: () => undefined, dataSize: () => 0 },
      { tag: TAG },
    );
    expect(errnoOf(() => sm.setState(M.STOP_COPY))).toBe('EINVAL');
    expect(sm.state).toBe(M.ERROR);
  });

  it('ends sessions on close and starts over in RUNNING', () => {
    const sm = new MigrationStateMachine(new FakeDevice(VFIO_MIGRATION_STOP_COPY), { tag: TAG });
    const r = sm.setState(M.RESUMING) as ResumingSession;
    sm.close();
    expect(r.isEnded).toBe(true);
    expect(errnoOf(() => r.write(new Uint8Array(4)))).toBe('ENODEV');
    expect(sm.state).toBe(M.RUNNING);
    expect(sm.getDataSize()).toBe(300n);
  });
});
