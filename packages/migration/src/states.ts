/**
 * The migration v2 state machine as data (inventory §5): which states a device's `migration_flags` allow, the
 * next-hop table Linux 6.12 uses to break a request into primitive arcs (`vfio_mig_get_next_state`), and the
 * registration-time completeness checks (§2.3, §2.4, vfio_pci_core_register_device).
 */
import {
  SysError,
  VFIO_DEVICE_STATE_ERROR,
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
  migStateName,
} from '@vfio-ts/uapi';
import type { VfioDeviceMigState } from '@vfio-ts/uapi';

/** A migration v2 state value (0..7), re-exported from uapi for convenience. */
export type MigState = VfioDeviceMigState;

/** One primitive arc of the state machine: the driver moves the device from `from` to `to` in one step. */
export interface MigrationArc {
  readonly from: MigState;
  readonly to: MigState;
}

/** Every VFIO_MIGRATION_* bit Linux defines. */
export const VFIO_MIGRATION_ALL_FLAGS = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

const S = {
  ERROR: VFIO_DEVICE_STATE_ERROR,
  STOP: VFIO_DEVICE_STATE_STOP,
  RUNNING: VFIO_DEVICE_STATE_RUNNING,
  STOP_COPY: VFIO_DEVICE_STATE_STOP_COPY,
  RESUMING: VFIO_DEVICE_STATE_RESUMING,
  RUNNING_P2P: VFIO_DEVICE_STATE_RUNNING_P2P,
  PRE_COPY: VFIO_DEVICE_STATE_PRE_COPY,
  PRE_COPY_P2P: VFIO_DEVICE_STATE_PRE_COPY_P2P,
} as const;

const NUM_STATES = 8;

/** Sentinel for ERROR's requirement: no flag set can satisfy it, so ERROR is never a supported target (§5). */
const NEVER = -1;

/**
 * Flags a device needs before a state may be used (§5 "state requirement table"). ERROR needs every bit,
 * including ones that do not exist, so it can never be requested.
 */
const REQUIRED_FLAGS: readonly number[] = [
  /* ERROR */ NEVER,
  /* STOP */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING */ VFIO_MIGRATION_STOP_COPY,
  /* STOP_COPY */ VFIO_MIGRATION_STOP_COPY,
  /* RESUMING */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
  /* PRE_COPY */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
  /* PRE_COPY_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
];

/**
 * Linux's next-hop table, written for a device that supports every state: `NEXT[cur][target]` is the state to
 * move to next. Saving states only appear as end points, which keeps a data session from opening by accident.
 * (§5 table; drivers/vfio/vfio_main.c vfio_from_fsm_table in 6.12.)
 */
const NEXT: readonly (readonly MigState[])[] = (() => {
  const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = S;
  // Column order: ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P.
  const rows: Record<MigState, readonly MigState[]> = {
    [ERROR]: [ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR],
    [STOP]: [ERROR, STOP, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P],
    [RUNNING]: [ERROR, RUNNING_P2P, RUNNING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P, PRE_COPY, RUNNING_P2P],
    [STOP_COPY]: [ERROR, STOP, STOP, STOP_COPY, STOP, STOP, ERROR, ERROR],
    [RESUMING]: [ERROR, STOP, STOP, STOP, RESUMING, STOP, STOP, STOP],
    [RUNNING_P2P]: [ERROR, STOP, RUNNING, STOP, STOP, RUNNING_P2P, RUNNING, PRE_COPY_P2P],
    [PRE_COPY]: [ERROR, RUNNING, RUNNING, PRE_COPY_P2P, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P],
    [PRE_COPY_P2P]: [ERROR, RUNNING_P2P, RUNNING_P2P, STOP_COPY, RUNNING_P2P, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P],
  };
  const out: MigState[][] = [];
  for (let s = 0; s < NUM_STATES; s++) out.push([...rows[s as MigState]]);
  return out;
})();

/** True when `state` is an integer naming one of the eight migration states. */
export function isMigState(state: number): state is MigState {
  return Number.isInteger(state) && state >= 0 && state < NUM_STATES;
}

/** True when the device's `flags` allow `state` (ERROR is never allowed: it cannot be requested). */
export function isStateSupported(flags: number, state: number): state is MigState {
  if (!isMigState(state)) return false;
  const need = REQUIRED_FLAGS[state]!;
  return need !== NEVER && (flags & need) === need;
}

/** The VFIO_MIGRATION_* flags a state needs (§5); ERROR returns `undefined` (never settable). */
export function requiredFlags(state: MigState): number | undefined {
  const need = REQUIRED_FLAGS[state]!;
  return need === NEVER ? undefined : need;
}

/** The states a device with `flags` can be asked to enter, in numeric order. Without STOP_COPY there are none. */
export function migrationStatesFor(flags: number): MigState[] {
  const out: MigState[] = [];
  for (let s = 0; s < NUM_STATES; s++) if (isStateSupported(flags, s)) out.push(s);
  return out;
}

/** True for the saving group (PRE_COPY, PRE_COPY_P2P, STOP_COPY), whose states share one data session (§5). */
export function isSavingState(state: number): boolean {
  return state === S.PRE_COPY || state === S.PRE_COPY_P2P || state === S.STOP_COPY;
}

/** True for the PRE_COPY states, where VFIO_MIG_GET_PRECOPY_INFO answers and reads may return ENOMSG (§5). */
export function isPreCopyState(state: number): boolean {
  return state === S.PRE_COPY || state === S.PRE_COPY_P2P;
}

function stateLabel(state: number): string {
  return migStateName(state) ?? String(state);
}

/**
 * `vfio_mig_get_next_state`: the next hop from `cur` towards `target` for a device with `flags`. Unsupported
 * `cur` or `target` (including ERROR, and values outside 0..7) is EINVAL; hops through states the device lacks
 * are skipped by following the table from the skipped state; a result of ERROR (STOP_COPY → PRE_COPY*) is EINVAL.
 * With `cur === target` the answer is `cur`.
 */
export function nextState(flags: number, cur: number, target: number): MigState {
  if (!isStateSupported(flags, cur)) throw new SysError('EINVAL', `current state ${stateLabel(cur)} is not supported`);
  if (!isStateSupported(flags, target)) {
    throw new SysError('EINVAL', `target state ${stateLabel(target)} is not supported by migration flags ${flags}`);
  }
  let next = NEXT[cur]![target]!;
  // Optional states the device lacks are skipped by following the table from them (§5); at most the three
  // optional states can be skipped in a row, the guard only protects against a corrupted table.
  for (let guard = 0; !isStateSupported(flags, next) && next !== S.ERROR; guard++) {
    if (guard > NUM_STATES) throw new SysError('EINVAL', 'migration table does not converge');
    next = NEXT[next]![target]!;
  }
  if (next === S.ERROR) {
    throw new SysError('EINVAL', `no transition from ${stateLabel(cur)} to ${stateLabel(target)}`);
  }
  return next;
}

/**
 * The full sequence of primitive arcs that `nextState` produces from `cur` to `target` (empty when they are
 * equal). Throws EINVAL exactly when the first `nextState` call would.
 */
export function walk(flags: number, cur: number, target: number): MigrationArc[] {
  const arcs: MigrationArc[] = [];
  if (cur === target) return arcs;
  let at = cur;
  while (at !== target) {
    const next = nextState(flags, at, target);
    arcs.push({ from: at as MigState, to: next });
    at = next;
    // The table reaches any target in at most 5 arcs; a longer walk would be a table bug.
    if (arcs.length > NUM_STATES) throw new SysError('EINVAL', 'migration walk does not converge');
  }
  return arcs;
}

/**
 * True when `from → to` is an arc a driver with `flags` must implement as one step (the list in the comment
 * above vfio_mig_get_next_state, §5 "Primitive arcs"). Written from that list, not from the table, so tests can
 * check one against the other.
 */
export function isPrimitiveArc(flags: number, from: number, to: number): boolean {
  if (!isStateSupported(flags, from) || !isStateSupported(flags, to) || from === to) return false;
  const p2p = (flags & VFIO_MIGRATION_P2P) !== 0;
  const pre = (flags & VFIO_MIGRATION_PRE_COPY) !== 0;
  const is = (a: MigState, b: MigState): boolean => from === a && to === b;
  // Always: the resume and stop-copy loops around STOP.
  if (is(S.RESUMING, S.STOP) || is(S.STOP, S.RESUMING) || is(S.STOP, S.STOP_COPY) || is(S.STOP_COPY, S.STOP)) return true;
  if (p2p) {
    if (is(S.RUNNING, S.RUNNING_P2P) || is(S.RUNNING_P2P, S.RUNNING)) return true;
    if (is(S.RUNNING_P2P, S.STOP) || is(S.STOP, S.RUNNING_P2P)) return true;
  } else if (is(S.RUNNING, S.STOP) || is(S.STOP, S.RUNNING)) {
    return true;
  }
  if (pre) {
    if (is(S.RUNNING, S.PRE_COPY) || is(S.PRE_COPY, S.RUNNING)) return true;
    if (!p2p) return is(S.PRE_COPY, S.STOP_COPY);
    return (
      is(S.PRE_COPY, S.PRE_COPY_P2P) ||
      is(S.PRE_COPY_P2P, S.PRE_COPY) ||
      is(S.PRE_COPY_P2P, S.RUNNING_P2P) ||
      is(S.PRE_COPY_P2P, S.STOP_COPY) ||
      is(S.RUNNING_P2P, S.PRE_COPY_P2P)
    );
  }
  return false;
}

/** The three `vfio_migration_ops` members, as booleans "is it present", for {@link validateMigrationRegistration}. */
export interface MigrationOpsPresence {
  readonly migrationSetState?: unknown;
  readonly migrationGetState?: unknown;
  readonly migrationGetDataSize?: unknown;
}

/**
 * The register-time check vfio-pci-core applies to a device with migration ops (§2.3): all three ops present and
 * STOP_COPY in `migration_flags`, else EINVAL. Like Linux, other bits are not checked.
 */
export function validateMigrationRegistration(flags: number, ops: MigrationOpsPresence): void {
  if (!ops.migrationSetState || !ops.migrationGetState || !ops.migrationGetDataSize) {
    throw new SysError('EINVAL', 'migration ops need migration_set_state, migration_get_state and migration_get_data_size');
  }
  if ((flags & VFIO_MIGRATION_STOP_COPY) === 0) throw new SysError('EINVAL', 'migration flags must include STOP_COPY');
}

/** The three `vfio_log_ops` members, for {@link validateLogRegistration}. */
export interface LogOpsPresence {
  readonly logStart?: unknown;
  readonly logStop?: unknown;
  readonly logReadAndClear?: unknown;
}

/** The register-time check for DMA logging ops (§2.4): all three or EINVAL. */
export function validateLogRegistration(ops: LogOpsPresence): void {
  if (!ops.logStart || !ops.logStop || !ops.logReadAndClear) {
    throw new SysError('EINVAL', 'log ops need log_start, log_stop and log_read_and_clear');
  }
}
