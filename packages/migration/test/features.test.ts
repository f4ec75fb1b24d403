import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SysError,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_STOP_COPY,
  vfioDeviceFeatureDmaLoggingControl,
  vfioDeviceFeatureDmaLoggingRange,
  vfioDeviceFeatureDmaLoggingReport,
  vfioDeviceFeatureMigDataSize,
  vfioDeviceFeatureMigState,
  vfioDeviceFeatureMigration,
} from '@vfio-ts/uapi';
import {
  DMA_LOGGING_MAX_RANGES,
  DmaLogger,
  MigrationStateMachine,
  ResumingSession,
  SavingSession,
  combineIovaRanges,
  featureDmaLoggingReport,
  featureDmaLoggingStart,
  featureDmaLoggingStop,
  featureMigDataSize,
  featureMigDeviceState,
  featureMigration,
  migrationFeatureHandlers,
} from '../src/index.js';
import type { IovaRange, MigrationDataSession, MigrationFeatureContext, MigrationFeatureDevice } from '../src/index.js';
import { checkFeature } from '@vfio-ts/core';
import { FakeMemory, M, errnoOf } from './helpers.js';

const GET = VFIO_DEVICE_FEATURE_GET;
const SET = VFIO_DEVICE_FEATURE_SET;
const PROBE = VFIO_DEVICE_FEATURE_PROBE;

describe('core checkFeature as the handlers use it (vfio_check_feature)', () => {
  it('applies the four rules in order', () => {
    expect(errnoOf(() => checkFeature(SET, 8, GET, 8))).toBe('EINVAL');
    expect(checkFeature(GET | PROBE, 0, GET, 8)).toBe(false);
    expect(checkFeature(PROBE, 0, GET, 8)).toBe(false);
    expect(errnoOf(() => checkFeature(0, 8, GET, 8))).toBe('EINVAL');
    expect(errnoOf(() => checkFeature(GET, 7, GET, 8))).toBe('EINVAL');
    expect(checkFeature(GET, 8, GET, 8)).toBe(true);
  });
});

function machine(flags = VFIO_MIGRATION_STOP_COPY): MigrationStateMachine {
  return new MigrationStateMachine(
    {
      migrationFlags: flags,
      setState: (arc) => (arc.to === M.STOP_COPY ? { finalState: () => new Uint8Array(8) } : undefined),
      dataSize: () => 4096n * 3n,
    },
    { tag: 't' },
  );
}

function context(installed: MigrationDataSession[] = [], fail?: SysError): MigrationFeatureContext {
  return {
    memory: new FakeMemory(),
    installFile: (s) => {
      if (fail) throw fail;
      installed.push(s);
      return 10 + installed.length;
    },
  };
}

describe('migration features', () => {
  it('MIGRATION reports the flags; ENOTTY without migration ops; PROBE does nothing', () => {
    const dev: MigrationFeatureDevice = { migration: machine(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P) };
    const data = new Uint8Array(8);
    expect(featureMigration(GET, 8, data, dev)).toBe(0);
    expect(vfioDeviceFeatureMigration.decode(data).flags).toBe(BigInt(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P));
    expect(errnoOf(() => featureMigration(GET, 8, data, {}))).toBe('ENOTTY');
    expect(errnoOf(() => featureMigration(SET, 8, data, dev))).toBe('EINVAL');
    expect(errnoOf(() => featureMigration(GET, 4, data, dev))).toBe('EINVAL');
    const untouched = new Uint8Array(8);
    expect(featureMigration(GET | PROBE, 0, untouched, dev)).toBe(0);
    expect(untouched).toEqual(new Uint8Array(8));
    expect(errnoOf(() => featureMigration(GET, 8, new Uint8Array(4), dev))).toBe('EFAULT');
  });

  it('MIG_DEVICE_STATE GET/SET returns data_fd for a new session and −1 otherwise', () => {
    const sm = machine();
    const dev = { migration: sm };
    const installed: MigrationDataSession[] = [];
    const ctx = context(installed);
    const data = vfioDeviceFeatureMigState.encode({ device_state: M.STOP_COPY, data_fd: 99 });
    expect(featureMigDeviceState(SET, 8, data, dev, ctx)).toBe(0);
    expect(vfioDeviceFeatureMigState.decode(data)).toEqual({ device_state: M.STOP_COPY, data_fd: 11 });
    expect(installed[0]).toBeInstanceOf(SavingSession);
    const get = vfioDeviceFeatureMigState.encode({ device_state: 0, data_fd: 5 });
    expect(featureMigDeviceState(GET, 8, get, dev, ctx)).toBe(0);
    expect(vfioDeviceFeatureMigState.decode(get)).toEqual({ device_state: M.STOP_COPY, data_fd: -1 });
    const stop = vfioDeviceFeatureMigState.encode({ device_state: M.STOP, data_fd: 7 });
    expect(featureMigDeviceState(SET, 8, stop, dev, ctx)).toBe(0);
    expect(vfioDeviceFeatureMigState.decode(stop).data_fd).toBe(-1);
    const resume = vfioDeviceFeatureMigState.encode({ device_state: M.RESUMING, data_fd: 0 });
    featureMigDeviceState(SET, 8, resume, dev, ctx);
    expect(installed[1]).toBeInstanceOf(ResumingSession);
    expect(vfioDeviceFeatureMigState.decode(resume).data_fd).toBe(12);
  });

  it('MIG_DEVICE_STATE SET failure copies the struct back with data_fd −1 and throws the errno', () => {
    const dev = { migration: machine() };
    const data = vfioDeviceFeatureMigState.encode({ device_state: M.RUNNING_P2P, data_fd: 42 });
    expect(errnoOf(() => featureMigDeviceState(SET, 8, data, dev, context()))).toBe('EINVAL');
    expect(vfioDeviceFeatureMigState.decode(data)).toEqual({ device_state: M.RUNNING_P2P, data_fd: -1 });
    const bad = vfioDeviceFeatureMigState.encode({ device_state: 0xffffffff, data_fd: 1 });
    expect(errnoOf(() => featureMigDeviceState(SET, 8, bad, dev, context()))).toBe('EINVAL');
    expect(vfioDeviceFeatureMigState.decode(bad).data_fd).toBe(-1);
    // GET|SET without PROBE is refused by the core's header check before any handler runs.
    expect(errnoOf(() => featureMigDeviceState(SET, 8, bad, {}, context()))).toBe('ENOTTY');
  });

  it('MIG_DEVICE_STATE: when no fd can be installed the file is dropped and the errno returned', () => {
    const sm = machine();
    const data = vfioDeviceFeatureMigState.encode({ device_state: M.STOP_COPY, data_fd: 3 });
    expect(errnoOf(() => featureMigDeviceState(SET, 8, data, { migration: sm }, context([], new SysError('EMFILE'))))).toBe('EMFILE');
    // The device did move; the session's file is closed (Linux fput()s it).
    expect(sm.state).toBe(M.STOP_COPY);
    expect(errnoOf(() => (sm.session as SavingSession).read(1))).toBe('EBADF');
    expect(vfioDeviceFeatureMigState.decode(data).data_fd).toBe(3);
  });

  it('MIG_DATA_SIZE answers in any state', () => {
    const sm = machine();
    const data = new Uint8Array(8);
    expect(featureMigDataSize(GET, 8, data, { migration: sm })).toBe(0);
    expect(vfioDeviceFeatureMigDataSize.decode(data).stop_copy_length).toBe(12288n);
    expect(errnoOf(() => featureMigDataSize(SET, 8, data, { migration: sm }))).toBe('EINVAL');
    expect(errnoOf(() => featureMigDataSize(GET, 8, data, {}))).toBe('ENOTTY');
  });

  it('offers every handler by feature index', () => {
    expect([...migrationFeatureHandlers().keys()].sort((a, b) => a - b)).toEqual(
      [
        VFIO_DEVICE_FEATURE_MIGRATION,
        VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
        VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
      ].sort((a, b) => a - b),
    );
    const h = migrationFeatureHandlers().get(VFIO_DEVICE_FEATURE_MIGRATION)!;
    expect(h(GET, 8, new Uint8Array(8), { migration: machine() }, context())).toBe(0);
  });
});

const RANGES_AT = 0x10000n;

/** Writes `ranges` into user memory and returns the control struct bytes. */
function startArgs(mem: FakeMemory, pageSize: bigint, ranges: readonly IovaRange[], numRanges = ranges.length): Uint8Array {
  const buf = mem.map(RANGES_AT, Math.max(16, ranges.length * 16));
  ranges.forEach((r, i) => { buf.set(vfioDeviceFeatureDmaLoggingRange.encode(r), i * 16); });
  return vfioDeviceFeatureDmaLoggingControl.encode({ page_size: pageSize, num_ranges: numRanges, ranges: RANGES_AT });
}

function start(pageSize: bigint, ranges: readonly IovaRange[], opts: { numRanges?: number; logger?: DmaLogger } = {}): string | undefined {
  const mem = new FakeMemory();
  const logger = opts.logger ?? new DmaLogger();
  const data = startArgs(mem, pageSize, ranges, opts.numRanges);
  const err = errnoOf(() => featureDmaLoggingStart(SET, 24, data, { dmaLogging: logger }, { memory: mem }));
  if (err) expect(logger.active).toBe(false);
  return err;
}

const P = 4096n;
const U64 = 1n << 64n;

describe('DMA_LOGGING_START validation (errno table, §1.5 idx 6)', () => {
  it.each<[string, bigint, IovaRange[], number | undefined, string | undefined]>([
    ['one aligned range', P, [{ iova: 0n, length: P }], undefined, undefined],
    ['num_ranges 0', P, [], 0, 'EINVAL'],
    ['num_ranges 257', P, [{ iova: 0n, length: P }], DMA_LOGGING_MAX_RANGES + 1, 'E2BIG'],
    ['iova unaligned', P, [{ iova: 0x800n, length: P }], undefined, 'EINVAL'],
    ['length unaligned', P, [{ iova: 0n, length: P + 1n }], undefined, 'EINVAL'],
    ['iova + length wraps', P, [{ iova: U64 - P, length: 2n * P }], undefined, 'EOVERFLOW'],
    ['iova + length = 2^64', P, [{ iova: U64 - P, length: P }], undefined, 'EOVERFLOW'],
    ['ends at 2^64 − 1 page', P, [{ iova: U64 - 2n * P, length: P }], undefined, undefined],
    ['overlapping', P, [{ iova: 0n, length: 2n * P }, { iova: P, length: P }], undefined, 'EINVAL'],
    ['touching is fine', P, [{ iova: P, length: P }, { iova: 0n, length: P }], undefined, undefined],
    ['same range twice', P, [{ iova: P, length: P }, { iova: P, length: P }], undefined, 'EINVAL'],
    ['unaligned before overlap wins', P, [{ iova: 0n, length: P }, { iova: 1n, length: P }], undefined, 'EINVAL'],
    ['overflow reported before a later overlap', P, [{ iova: U64 - P, length: 2n * P }, { iova: 0n, length: P }], undefined, 'EOVERFLOW'],
    ['ranges beyond mapped memory', P, [{ iova: 0n, length: P }], 3, 'EFAULT'],
  ])('%s → %s', (_name, pageSize, ranges, numRanges, errno) => {
    expect(start(pageSize, ranges, numRanges === undefined ? {} : { numRanges })).toBe(errno);
  });

  it('checks ops, GET/SET and data size before anything else', () => {
    const mem = new FakeMemory();
    const data = startArgs(mem, P, [{ iova: 0n, length: P }]);
    expect(errnoOf(() => featureDmaLoggingStart(SET, 24, data, {}, { memory: mem }))).toBe('ENOTTY');
    expect(errnoOf(() => featureDmaLoggingStart(GET, 24, data, { dmaLogging: new DmaLogger() }, { memory: mem }))).toBe('EINVAL');
    expect(errnoOf(() => featureDmaLoggingStart(SET, 23, data, { dmaLogging: new DmaLogger() }, { memory: mem }))).toBe('EINVAL');
    expect(featureDmaLoggingStart(SET | PROBE, 0, data, { dmaLogging: new DmaLogger() }, { memory: mem })).toBe(0);
  });

  it('writes back the page size the driver chose, sorts and combines ranges, refuses a second start', () => {
    const mem = new FakeMemory();
    const logger = new DmaLogger({ maxRanges: 2, pageSize: 8192n });
    const ranges = [
      { iova: 0x100000n, length: P },
      { iova: 0n, length: P },
      { iova: 0x3000n, length: P },
    ];
    const data = startArgs(mem, P, ranges);
    expect(featureDmaLoggingStart(SET, 24, data, { dmaLogging: logger }, { memory: mem })).toBe(0);
    expect(vfioDeviceFeatureDmaLoggingControl.decode(data).page_size).toBe(8192n);
    expect(logger.ranges).toEqual([
      { iova: 0n, length: 0x4000n },
      { iova: 0x100000n, length: P },
    ]);
    expect(errnoOf(() => featureDmaLoggingStart(SET, 24, data, { dmaLogging: logger }, { memory: mem }))).toBe('EINVAL');
    expect(featureDmaLoggingStop(SET, 0, new Uint8Array(0), { dmaLogging: logger })).toBe(0);
    expect(logger.active).toBe(false);
    expect(featureDmaLoggingStop(SET, 0, new Uint8Array(0), { dmaLogging: logger })).toBe(0);
    expect(errnoOf(() => featureDmaLoggingStop(GET, 0, new Uint8Array(0), { dmaLogging: logger }))).toBe('EINVAL');
    expect(errnoOf(() => featureDmaLoggingStop(SET, 0, new Uint8Array(0), {}))).toBe('ENOTTY');
  });

  it('stops logging again when the control struct cannot be copied back', () => {
    const mem = new FakeMemory();
    const logger = new DmaLogger();
    const data = startArgs(mem, P, [{ iova: 0n, length: P }]).subarray(0, 20);
    // dataSize says 24 but only 20 bytes are there: reading to `ranges` (offsetofend 24) already faults.
    expect(errnoOf(() => featureDmaLoggingStart(SET, 24, data, { dmaLogging: logger }, { memory: mem }))).toBe('EFAULT');
    expect(logger.active).toBe(false);
  });
});

describe('combineIovaRanges (vfio_combine_iova_ranges)', () => {
  it('merges the smallest gap first, first pair on ties', () => {
    const r = (iova: number, length: number): IovaRange => ({ iova: BigInt(iova), length: BigInt(length) });
    expect(combineIovaRanges([r(0, 10), r(20, 10), r(35, 5), r(100, 1)], 3)).toEqual([r(0, 10), r(20, 20), r(100, 1)]);
    expect(combineIovaRanges([r(0, 10), r(20, 10), r(40, 10)], 2)).toEqual([r(0, 30), r(40, 10)]);
    expect(combineIovaRanges([r(0, 10), r(20, 10), r(40, 10)], 1)).toEqual([r(0, 50)]);
    expect(combineIovaRanges([r(0, 10)], 4)).toEqual([r(0, 10)]);
  });

  it('covers every input range with at most maxRanges sorted, disjoint ranges (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(1000), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 10 }), (starts, max) => {
        const ranges = [...starts].sort((a, b) => a - b).map((s) => ({ iova: BigInt(s) * 0x2000n, length: 0x1000n }));
        const out = combineIovaRanges(ranges, max);
        expect(out.length).toBe(Math.min(max, ranges.length));
        for (let i = 1; i < out.length; i++) expect(out[i]!.iova > out[i - 1]!.iova + out[i - 1]!.length - 1n).toBe(true);
        for (const r of ranges) expect(out.some((o) => o.iova <= r.iova && r.iova + r.length <= o.iova + o.length)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

const BITMAP_AT = 0x40000n;

function report(
  logger: DmaLogger,
  mem: FakeMemory,
  iova: bigint,
  length: bigint,
  pageSize: bigint,
): string | undefined {
  const data = vfioDeviceFeatureDmaLoggingReport.encode({ iova, length, page_size: pageSize, bitmap: BITMAP_AT });
  return errnoOf(() => featureDmaLoggingReport(GET, 32, data, { dmaLogging: logger }, { memory: mem }));
}

function bitSet(bytes: Uint8Array, k: number): boolean {
  return ((bytes[k >>> 3]! >>> (k & 7)) & 1) === 1;
}

describe('DMA_LOGGING_REPORT', () => {
  function started(pageSize: bigint, ranges: IovaRange[]): DmaLogger {
    const logger = new DmaLogger();
    logger.logStart(ranges, pageSize);
    return logger;
  }

  it('validates page size and overflow', () => {
    const mem = new FakeMemory();
    mem.map(BITMAP_AT, 4096);
    const logger = started(P, [{ iova: 0n, length: 1n << 30n }]);
    expect(report(logger, mem, 0n, P, 2048n)).toBe('EINVAL');
    expect(report(logger, mem, 0n, P, 3n * P)).toBe('EINVAL');
    expect(report(logger, mem, U64 - P, 2n * P, P)).toBe('EOVERFLOW');
    expect(report(logger, mem, 0n, 0n, P)).toBeUndefined();
    expect(report(new DmaLogger(), mem, 0n, P, P)).toBe('EINVAL');
    expect(errnoOf(() => featureDmaLoggingReport(GET, 32, new Uint8Array(32), {}, { memory: mem }))).toBe('ENOTTY');
    expect(errnoOf(() => featureDmaLoggingReport(SET, 32, new Uint8Array(32), { dmaLogging: logger }, { memory: mem }))).toBe('EINVAL');
    // Bitmap pointer not mapped.
    const data = vfioDeviceFeatureDmaLoggingReport.encode({ iova: 0n, length: P, page_size: P, bitmap: 0x999000n });
    expect(errnoOf(() => featureDmaLoggingReport(GET, 32, data, { dmaLogging: logger }, { memory: mem }))).toBe('EFAULT');
  });

  it('reports at a different page size, only sets bits, and clears the log (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(12, 13, 16, 21),
        fc.constantFrom(12, 14, 21),
        fc.array(fc.tuple(fc.nat(1 << 24), fc.integer({ min: 1, max: 1 << 16 })), { maxLength: 12 }),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        (logShift, repShift, writes, preset) => {
          const logPs = 1n << BigInt(logShift);
          const repPs = 1n << BigInt(repShift);
          const length = 1n << 24n;
          const logger = started(logPs, [{ iova: 0n, length }]);
          for (const [a, l] of writes) logger.markDirty(BigInt(a), BigInt(l));
          const mem = new FakeMemory();
          const bits = Number(length / repPs);
          const user = mem.map(BITMAP_AT, Math.ceil(bits / 64) * 8);
          user.set(preset.subarray(0, Math.min(8, user.length)));
          const before = user.slice();
          expect(report(logger, mem, 0n, length, repPs)).toBeUndefined();
          const after = mem.read(BITMAP_AT, user.length);
          // Dirty iff some logged page overlapping the report page was written (logged spans in bytes).
          const spans = writes.map(([a, l]) => [(BigInt(a) / logPs) * logPs, ((BigInt(a) + BigInt(l) - 1n) / logPs + 1n) * logPs] as const);
          const got: boolean[] = [];
          const want: boolean[] = [];
          for (let k = 0; k < bits; k++) {
            const lo = BigInt(k) * repPs;
            const hi = lo + repPs;
            const dirty = spans.some(([first, last]) => first < hi && last > lo);
            want.push(dirty || bitSet(before, k));
            got.push(bitSet(after, k));
          }
          expect(got).toEqual(want);
          // Read-and-clear: a second report adds nothing.
          const cleared = mem.map(BITMAP_AT + 0x100000n, after.length);
          const data = vfioDeviceFeatureDmaLoggingReport.encode({ iova: 0n, length, page_size: repPs, bitmap: BITMAP_AT + 0x100000n });
          featureDmaLoggingReport(GET, 32, data, { dmaLogging: logger }, { memory: mem });
          expect(cleared.every((b) => b === 0)).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('walks a large report in windows (bits past the first 64 KiB of bitmap)', () => {
    const logger = started(P, [{ iova: 0n, length: 1n << 33n }]);
    const mem = new FakeMemory();
    const bits = (1 << 20) + 64; // more than one 512 Ki-bit window
    const user = mem.map(BITMAP_AT, Math.ceil(bits / 64) * 8);
    const target = BigInt(bits - 3) * P;
    logger.markDirty(target, 1n);
    logger.markDirty(5n * P, P);
    expect(report(logger, mem, 0n, BigInt(bits) * P, P)).toBeUndefined();
    expect(bitSet(user, bits - 3)).toBe(true);
    expect(bitSet(user, 5)).toBe(true);
    expect(user.reduce((n, b) => n + (b === 0 ? 0 : 1), 0)).toBe(2);
  });

  it('carries a tracker page that straddles a window boundary into the next window', () => {
    // 2 MiB tracker pages, 4 KiB report pages from iova 4 KiB: the window boundary at 4 KiB + 2 GiB cuts the
    // dirty tracker page [2 GiB, 2 GiB + 2 MiB) in two.
    const logger = started(2n << 20n, [{ iova: 0n, length: 1n << 33n }]);
    logger.markDirty(1n << 31n, 1n);
    const mem = new FakeMemory();
    const length = 1n << 32n;
    const bits = Number(length / P);
    const user = mem.map(BITMAP_AT, bits / 8);
    expect(report(logger, mem, P, length, P)).toBeUndefined();
    const first = Number(((1n << 31n) - P) / P);
    const set: number[] = [];
    for (let k = 0; k < bits; k++) if (bitSet(user, k)) set.push(k);
    expect(set).toEqual(Array.from({ length: 512 }, (_, i) => first + i));
  });

  it('ignores device writes outside the tracked ranges', () => {
    const logger = started(P, [{ iova: 0x10000n, length: 0x2000n }]);
    logger.markDirty(0n, 0x10000n);
    logger.markDirty(0x11000n, 0x10000n);
    const mem = new FakeMemory();
    const user = mem.map(BITMAP_AT, 8);
    expect(report(logger, mem, 0n, 64n * P, P)).toBeUndefined();
    expect(user[0]).toBe(0);
    expect(user[2]).toBe(0b10);
  });
});
