/**
 * Errors the `vfio` command reports. Every failure prints one line on stderr in the form
 * `vfio: what was wrong — what to do` and the process exits non-zero, so scripts can rely on the status.
 */
import { isSysError } from '@vfio-ts/uapi';

/** Exit status for a wrong command line (unknown command, option or argument), as most Unix tools use. */
export const EXIT_USAGE = 2;

/** Exit status for a command that ran and failed. */
export const EXIT_FAILURE = 1;

/**
 * A failure a command expects and explains: `what` says what was wrong, `hint` what the user can do about it.
 *
 * @example
 * throw new CliError(`no ioctl named 'FOO'`, `run 'vfio uapi' to list them`, EXIT_USAGE);
 */
export class CliError extends Error {
  /** What was wrong, e.g. `no ioctl named 'VFIO_MAP'`. */
  readonly what: string;
  /** What to do about it, e.g. `did you mean VFIO_IOMMU_MAP_DMA?`. */
  readonly hint: string;
  /** The process exit status (non-zero). */
  readonly exitCode: number;

  constructor(what: string, hint: string, exitCode: number = EXIT_FAILURE) {
    super(`${what} — ${hint}`);
    this.name = 'CliError';
    this.what = what;
    this.hint = hint;
    this.exitCode = exitCode === 0 ? EXIT_FAILURE : exitCode;
  }
}

/** The one line printed for an error (without the trailing newline). */
export function formatError(error: CliError): string {
  return `vfio: ${error.what} — ${error.hint}`;
}

/**
 * Turns anything thrown by a command into a `CliError`. A `SysError` (a call a simulated host refused) keeps its
 * errno in the message; anything else is a bug in vfio-ts and says so.
 */
export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (isSysError(error)) {
    // The message already leads with the errno name ("EINVAL: ...").
    return new CliError(error.message, 'the call was refused as Linux would refuse it; check the arguments');
  }
  if (error instanceof Error) {
    return new CliError(`internal error: ${error.message}`, 'this is a bug in vfio-ts; please report it with the command you ran');
  }
  return new CliError(`internal error: ${String(error)}`, 'this is a bug in vfio-ts; please report it with the command you ran');
}
