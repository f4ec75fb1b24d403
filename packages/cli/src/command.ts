/**
 * What a `vfio` subcommand is. Each lives in its own module under `src/commands/` and is listed once in
 * `src/commands/index.ts`; the program (src/program.ts) adds `--json`, runs it and prints its report.
 */
import type { Command } from 'commander';
import type { Report } from './output.js';

/** The parsed command line handed to a command's `run`. */
export interface CommandInput {
  /** Positional arguments in declaration order, as commander parsed them (`undefined` when an optional one is absent). */
  readonly args: readonly unknown[];
  /** The command's options (camel-cased names), `json` included. */
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * A subcommand of `vfio`.
 *
 * @example
 * export const helloCommand: VfioCommand = {
 *   name: 'hello',
 *   configure: (cmd) => cmd.summary('say hello').argument('[who]', 'whom to greet', 'world'),
 *   run: ({ args }) => ({ data: { greeting: `hello ${String(args[0])}` }, blocks: [text(`hello ${String(args[0])}`)] }),
 * };
 */
export interface VfioCommand {
  /** The word typed after `vfio`. */
  readonly name: string;
  /** Declares the summary, description, arguments and options on the commander command. */
  configure(cmd: Command): void;
  /** Does the work and returns what to print; throws `CliError` for expected failures. */
  run(input: CommandInput): Report | Promise<Report>;
}
