/**
 * A ready-made `vfio_migration_ops` for vendor drivers (inventory §2.3, §5): the driver implements one primitive
 * arc at a time; {@link MigrationStateMachine} walks Linux's next-state table, owns the data sessions (one shared
 * session for the saving group, one for RESUMING), validates a resume stream before the driver loads it, and
 * keeps ERROR sticky until reset.
 */
import {
  SysError,
  VFIO_DEVICE_STATE_ERROR,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_STOP,
  isSysError,
  migStateName,
} from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import type { MigrationDataSession, ResumedStream, SavingSource, SessionOptions } from './sessions.js';
import type { MigRecord } from './stream.js';
import { ResumingSession, SavingSession } from './sessions.js';
import type { MigState, MigrationArc } from './states.js';
import { isSavingState, nextState, validateMigrationRegistration } from './states.js';

/** One arc as the driver receives it. */
export interface MigrationArcRequest extends MigrationArc {
  /** Only on RESUMING → STOP: the validated stream the user wrote, to load into the device. */
  readonly resumed?: ResumedStream;
}

/**
 * What a vendor driver implements to get migration v2 (§2.3) through {@link MigrationStateMachine}.
 */
export interface MigrationDriver {
  /** VFIO_MIGRATION_* flags the device supports; STOP_COPY is mandatory. */
  readonly migrationFlags: number;
  /**
   * Performs one primitive arc (see `isPrimitiveArc`). Arcs entering the saving group from outside
   * (RUNNING → PRE_COPY, RUNNING_P2P → PRE_COPY_P2P, STOP → STOP_COPY) return the {@link SavingSource} of the
   * new session. Throw a SysError to fail the arc — the device stays in `arc.from` — or a
   * {@link MigrationArcError} with `toError` when the failure left the device in an unknown state.
   */
  setState(arc: MigrationArcRequest): SavingSource | void;
  /** `migration_get_data_size`: estimated STOP_COPY length in bytes (any state). */
  dataSize(): number | bigint;
  /**
   * Optional: called during RESUMING with each data record as soon as it validated (framing, CRC, order), so
   * the driver can parse it into a staging area while the stream is still arriving and keep RESUMING → STOP
   * short. It must not change the device. Throw (a SysError) to reject the stream: RESUMING → STOP then fails
   * with that errno and the device goes to ERROR. The whole stream still arrives at RESUMING → STOP in
   * `arc.resumed`; staging left by a session that never got there is the driver's to drop at the next
   * STOP → RESUMING arc.
   */
  stageRecord?(record: MigRecord): void;
}

/**
 * The operations the MIGRATION, MIG_DEVICE_STATE and MIG_DATA_SIZE features need from a device (Linux
 * `vfio_migration_ops` plus `migration_flags`). {@link MigrationStateMachine} implements it.
 */
export interface MigrationFeatureOps {
  readonly migrationFlags: number;
  /** `migration_get_state`. */
  getState(): number;
  /**
   * `migration_set_state`: move to `target` (any u32 the user passed). Returns the new data session when the
   * transition opened one, `null` otherwise; throws the errno of the failure.
   */
  setState(target: number): MigrationDataSession | null;
  /** `migration_get_data_size`. */
  getDataSize(): number | bigint;
}

/** A failed arc; with `toError` the state machine moves the device to ERROR (reset is the only way out). */
export class MigrationArcError extends SysError {
  readonly toError: boolean;
  constructor(errno: ErrnoName, message?: string, options: { toError?: boolean } = {}) {
    super(errno, message);
    this.name = 'MigrationArcError';
    this.toError = options.toError ?? false;
  }
}

/** Options of a {@link MigrationStateMachine}. */
export type MigrationStateMachineOptions = SessionOptions;

/** What {@link MigrationStateMachine.describe} reports (§ "Observable" in DESIGN). */
export interface MigrationDescription {
  readonly state: string;
  readonly session: 'saving' | 'resuming' | null;
}

/**
 * Drives a {@link MigrationDriver}'s single-arc op through Linux's walk (§5). Starts in RUNNING.
 *
 * - `setState(target)` returns immediately with `null` when the device is already there (even in ERROR, as the
 *   drivers' `while (new != cur)` loops do); otherwise each hop comes from `nextState` (EINVAL for an unsupported
 *   target, for any target from ERROR, and for STOP_COPY → PRE_COPY*, with no arc run).
 * - The first failing arc stops the walk: the device stays in the state it reached, or goes to ERROR when the
 *   driver says so (or throws something that is not a SysError, reported as EIO).
 * - The saving group shares one {@link SavingSession}; STOP → RESUMING opens a {@link ResumingSession} whose
 *   stream is validated at RESUMING → STOP before the driver sees it. A stream that does not validate fails
 *   the arc with EINVAL and puts the device in ERROR: nothing half-loaded ever runs.
 * - `reset()` (VFIO_DEVICE_RESET) and `close()` (last close) end every session and return to RUNNING.
 */
export class MigrationStateMachine implements MigrationFeatureOps {
  private current: MigState = VFIO_DEVICE_STATE_RUNNING;
  private saving: SavingSession | undefined;
  private resuming: ResumingSession | undefined;

  /** Validates the driver as vfio-pci-core does at registration (EINVAL without STOP_COPY). */
  constructor(
    private readonly driver: MigrationDriver,
    private readonly options: MigrationStateMachineOptions,
  ) {
    validateMigrationRegistration(driver.migrationFlags, {
      migrationSetState: typeof driver.setState === 'function',
      migrationGetState: true,
      migrationGetDataSize: typeof driver.dataSize === 'function',
    });
  }

  /** The device's VFIO_MIGRATION_* flags. */
  get migrationFlags(): number {
    return this.driver.migrationFlags;
  }

  /** The current migration state. */
  get state(): MigState {
    return this.current;
  }

  /** The open data session, if any. */
  get session(): MigrationDataSession | undefined {
    return this.saving ?? this.resuming;
  }

  /** `migration_get_state`. */
  getState(): MigState {
    return this.current;
  }

  /** `migration_get_data_size`, as a bigint. */
  getDataSize(): bigint {
    const n = this.driver.dataSize();
    return typeof n === 'bigint' ? n : BigInt(Math.max(0, Math.floor(n)));
  }

  /** `migration_set_state`: walks to `target`; see the class comment for the rules. */
  setState(target: number): MigrationDataSession | null {
    let opened: MigrationDataSession | null = null;
    while (this.current !== target) {
      const next = nextState(this.driver.migrationFlags, this.current, target);
      if (opened) {
        // Drivers WARN and fail when a file appears before the last arc; the table never produces that.
        opened.end();
        throw new SysError('EINVAL', 'a data session opened before the final arc');
      }
      opened = this.step({ from: this.current, to: next });
    }
    return opened;
  }

  /** VFIO_DEVICE_RESET: every session ends and the device is RUNNING again (the only way out of ERROR). */
  reset(): void {
    this.endSessions();
    this.current = VFIO_DEVICE_STATE_RUNNING;
  }

  /** The device's last close (`close_device`): sessions end; the next open starts in RUNNING. */
  close(): void {
    this.reset();
  }

  /** The state and session kind, for a host's self-description. */
  describe(): MigrationDescription {
    return {
      state: migStateName(this.current) ?? String(this.current),
      session: this.saving ? 'saving' : this.resuming ? 'resuming' : null,
    };
  }

  private step(arc: MigrationArc): MigrationDataSession | null {
    const { from, to } = arc;
    let resumed: ResumedStream | undefined;
    if (from === VFIO_DEVICE_STATE_RESUMING && to === VFIO_DEVICE_STATE_STOP) {
      try {
        if (!this.resuming) throw new SysError('EINVAL', 'no resume stream');
        resumed = this.resuming.finish();
      } catch (e) {
        this.fail(e, true);
      }
    }
    let source: SavingSource | void = undefined;
    try {
      source = this.driver.setState(resumed ? { from, to, resumed } : { from, to });
    } catch (e) {
      this.fail(e, e instanceof MigrationArcError ? e.toError : !isSysError(e));
    }
    this.current = to;
    try {
      const fromSaving = isSavingState(from);
      const toSaving = isSavingState(to);
      if (toSaving && !fromSaving) {
        if (!source) throw new SysError('EINVAL', `driver returned no saving source for ${migStateName(from)} → ${migStateName(to)}`);
        this.saving = new SavingSession(source, to, this.options, () => this.current);
        return this.saving;
      }
      source?.release?.();
      if (toSaving) {
        this.saving?.moveTo(to);
      } else if (fromSaving) {
        this.saving?.end();
        this.saving = undefined;
      }
      if (to === VFIO_DEVICE_STATE_RESUMING) {
        const stage = this.driver.stageRecord?.bind(this.driver);
        this.resuming = stage ? new ResumingSession(this.options, stage) : new ResumingSession(this.options);
        return this.resuming;
      }
      if (from === VFIO_DEVICE_STATE_RESUMING) {
        this.resuming?.end();
        this.resuming = undefined;
      }
      return null;
    } catch (e) {
      // The hardware already moved; a session that could not be set up leaves nothing consistent to return to.
      return this.fail(e, true);
    }
  }

  private fail(e: unknown, toError: boolean): never {
    if (toError) {
      this.endSessions();
      this.current = VFIO_DEVICE_STATE_ERROR;
    }
    if (isSysError(e)) throw e;
    throw new SysError('EIO', `migration driver failed: ${e instanceof Error ? e.message : String(e)}`);
  }

  private endSessions(): void {
    this.saving?.end();
    this.saving = undefined;
    this.resuming?.end();
    this.resuming = undefined;
  }
}

/** DESIGN's name for a device's migration ops (Linux `vfio_migration_ops` plus `migration_flags`). */
export type VfioMigrationOps = MigrationFeatureOps;
