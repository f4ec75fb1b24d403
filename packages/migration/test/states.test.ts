import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY, migStateName } from '@vfio-ts/uapi';
import {
  isPrimitiveArc,
  isSavingState,
  isStateSupported,
  migrationStatesFor,
  nextState,
  validateLogRegistration,
  validateMigrationRegistration,
  walk,
} from '../src/index.js';
import type { MigState } from '../src/index.js';
import { FLAG_SETS, M, errnoOf } from './helpers.js';

const ALL = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
const name = (s: number): string => migStateName(s) ?? String(s);

/** Shortest path over primitive arcs where saving states are interior hops only while still inside the group. */
function bfsLength(flags: number, from: MigState, to: MigState): number | undefined {
  const states = migrationStatesFor(flags);
  const dist = new Map<MigState, number>([[from, 0]]);
  const queue: MigState[] = [from];
  while (queue.length > 0) {
    const at = queue.shift()!;
    if (at === to) return dist.get(at);
    // Leaving a saving state is allowed; passing through one entered from outside is not.
    if (at !== from && isSavingState(at) && !isSavingState(from)) continue;
    for (const next of states) {
      if (!dist.has(next) && isPrimitiveArc(flags, at, next)) {
        dist.set(next, dist.get(at)! + 1);
        queue.push(next);
      }
    }
  }
  return undefined;
}

describe('state support', () => {
  it('follows the §5 requirement table', () => {
    expect(migrationStatesFor(VFIO_MIGRATION_STOP_COPY).map(name)).toEqual(['STOP', 'RUNNING', 'STOP_COPY', 'RESUMING']);
    expect(migrationStatesFor(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P).map(name)).toContain('RUNNING_P2P');
    expect(migrationStatesFor(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY).map(name)).toEqual([
      'STOP',
      'RUNNING',
      'STOP_COPY',
      'RESUMING',
      'PRE_COPY',
    ]);
    expect(migrationStatesFor(ALL)).toHaveLength(7);
    expect(migrationStatesFor(VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY)).toEqual([]);
    expect(isStateSupported(ALL, M.ERROR)).toBe(false);
    expect(isStateSupported(ALL, 8)).toBe(false);
  });
});

describe('nextState', () => {
  it('skips unsupported optional states (inventory §5 example)', () => {
    // Without P2P, RUNNING → STOP: the table says RUNNING_P2P, unsupported → table[RUNNING_P2P][STOP] = STOP.
    expect(nextState(VFIO_MIGRATION_STOP_COPY, M.RUNNING, M.STOP)).toBe(M.STOP);
    expect(nextState(ALL, M.RUNNING, M.STOP)).toBe(M.RUNNING_P2P);
    // Without P2P, PRE_COPY → STOP_COPY goes straight (PRE_COPY_P2P skipped).
    expect(nextState(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY, M.PRE_COPY, M.STOP_COPY)).toBe(M.STOP_COPY);
  });

  it('refuses unsupported states, ERROR and STOP_COPY → PRE_COPY* with EINVAL', () => {
    expect(errnoOf(() => nextState(VFIO_MIGRATION_STOP_COPY, M.RUNNING, M.RUNNING_P2P))).toBe('EINVAL');
    expect(errnoOf(() => nextState(ALL, M.RUNNING, M.ERROR))).toBe('EINVAL');
    expect(errnoOf(() => nextState(ALL, M.ERROR, M.RUNNING))).toBe('EINVAL');
    expect(errnoOf(() => nextState(ALL, M.RUNNING, 8))).toBe('EINVAL');
    expect(errnoOf(() => nextState(ALL, M.STOP_COPY, M.PRE_COPY))).toBe('EINVAL');
    expect(errnoOf(() => nextState(ALL, M.STOP_COPY, M.PRE_COPY_P2P))).toBe('EINVAL');
  });

  it('reproduces every combination transition listed above vfio_mig_get_next_state (all features)', () => {
    const listed = [
      'PRE_COPY PRE_COPY_P2P STOP_COPY',
      'PRE_COPY RUNNING RUNNING_P2P',
      'PRE_COPY RUNNING RUNNING_P2P STOP',
      'PRE_COPY RUNNING RUNNING_P2P STOP RESUMING',
      'PRE_COPY_P2P RUNNING_P2P RUNNING',
      'PRE_COPY_P2P RUNNING_P2P STOP',
      'PRE_COPY_P2P RUNNING_P2P STOP RESUMING',
      'RESUMING STOP RUNNING_P2P',
      'RESUMING STOP RUNNING_P2P PRE_COPY_P2P',
      'RESUMING STOP RUNNING_P2P RUNNING',
      'RESUMING STOP RUNNING_P2P RUNNING PRE_COPY',
      'RESUMING STOP STOP_COPY',
      'RUNNING RUNNING_P2P PRE_COPY_P2P',
      'RUNNING RUNNING_P2P STOP',
      'RUNNING RUNNING_P2P STOP RESUMING',
      'RUNNING RUNNING_P2P STOP STOP_COPY',
      'RUNNING_P2P RUNNING PRE_COPY',
      'RUNNING_P2P STOP RESUMING',
      'RUNNING_P2P STOP STOP_COPY',
      'STOP RUNNING_P2P PRE_COPY_P2P',
      'STOP RUNNING_P2P RUNNING',
      'STOP RUNNING_P2P RUNNING PRE_COPY',
      'STOP_COPY STOP RESUMING',
      'STOP_COPY STOP RUNNING_P2P',
      'STOP_COPY STOP RUNNING_P2P RUNNING',
    ];
    for (const line of listed) {
      const path = line.split(' ').map((n) => M[n as keyof typeof M]);
      const arcs = walk(ALL, path[0]!, path[path.length - 1]!);
      expect([path[0]!, ...arcs.map((a) => a.to)].map(name).join(' ')).toBe(line);
    }
  });

  it('walks every supported pair with primitive arcs along a shortest group-respecting path (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...FLAG_SETS), fc.nat(7), fc.nat(7), (flags, a, b) => {
        const ok = isStateSupported(flags, a) && isStateSupported(flags, b);
        const blocked = a === M.STOP_COPY && (b === M.PRE_COPY || b === M.PRE_COPY_P2P);
        if (a === b) {
          expect(walk(flags, a, b)).toEqual([]);
          return;
        }
        if (!ok || blocked) {
          expect(errnoOf(() => walk(flags, a, b))).toBe('EINVAL');
          return;
        }
        const arcs = walk(flags, a, b);
        let at: number = a;
        for (const arc of arcs) {
          expect(arc.from).toBe(at);
          expect(isPrimitiveArc(flags, arc.from, arc.to)).toBe(true);
          at = arc.to;
        }
        expect(at).toBe(b);
        expect(arcs.length).toBe(bfsLength(flags, a, b));
      }),
      { numRuns: 500 },
    );
  });

  it('never uses a saving state as an interior hop when starting outside the group', () => {
    for (const flags of FLAG_SETS) {
      for (const a of migrationStatesFor(flags)) {
        for (const b of migrationStatesFor(flags)) {
          if (a === b || isSavingState(a) || errnoOf(() => walk(flags, a, b))) continue;
          const interior = walk(flags, a, b).slice(0, -1).map((arc) => arc.to);
          expect(interior.some(isSavingState)).toBe(false);
        }
      }
    }
  });
});

describe('registration checks (§2.3, §2.4)', () => {
  const ops = { migrationSetState: true, migrationGetState: true, migrationGetDataSize: true };
  it('needs STOP_COPY and all three migration ops', () => {
    expect(errnoOf(() => { validateMigrationRegistration(VFIO_MIGRATION_STOP_COPY, ops); })).toBeUndefined();
    expect(errnoOf(() => { validateMigrationRegistration(VFIO_MIGRATION_P2P, ops); })).toBe('EINVAL');
    expect(errnoOf(() => { validateMigrationRegistration(VFIO_MIGRATION_STOP_COPY, { ...ops, migrationGetDataSize: undefined }); })).toBe('EINVAL');
    expect(errnoOf(() => { validateMigrationRegistration(VFIO_MIGRATION_STOP_COPY, { ...ops, migrationSetState: undefined }); })).toBe('EINVAL');
    expect(errnoOf(() => { validateMigrationRegistration(VFIO_MIGRATION_STOP_COPY, { ...ops, migrationGetState: undefined }); })).toBe('EINVAL');
  });
  it('needs all three log ops', () => {
    expect(errnoOf(() => { validateLogRegistration({ logStart: 1, logStop: 1, logReadAndClear: 1 }); })).toBeUndefined();
    expect(errnoOf(() => { validateLogRegistration({ logStart: 1, logStop: 1 }); })).toBe('EINVAL');
  });
});
