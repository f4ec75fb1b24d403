/**
 * Builds the `vfio` program from the command list and runs it against a {@link CliIO}, in-process. A fresh
 * program per run: commander keeps parse state on the command objects, and no state may outlive a run.
 */
import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands/index.js';
import type { VfioCommand } from './command.js';
import { CliError, EXIT_USAGE, formatError, toCliError } from './errors.js';
import { printReport, type CliIO } from './output.js';
import { cliVersion } from './version.js';

/** Builds the program. `commands` defaults to every command vfio-ts ships. */
export function createProgram(io: CliIO, commands: readonly VfioCommand[] = COMMANDS): Command {
  const program = new Command('vfio')
    .description('Inspect and drive vfio-ts, the Linux VFIO framework in TypeScript.')
    .version(cliVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .configureOutput({
      writeOut: (s) => { io.stdout(s); },
      writeErr: (s) => { io.stderr(s); },
      // Commander's own errors are reworded in run() into the one-line form every error uses.
      outputError: () => undefined,
    })
    // --json is accepted before the command too (`vfio --json uapi`); each command also lists it in its help.
    .option('--json', 'print JSON instead of tables (every command)')
    .showSuggestionAfterError(true)
    .exitOverride();
  program.addHelpText('after', '\nRun \'vfio <command> --help\' for a command\'s arguments.');

  for (const spec of commands) {
    const cmd = program.command(spec.name);
    spec.configure(cmd);
    cmd.option('--json', 'print JSON instead of tables').exitOverride();
    cmd.action(async (...params: unknown[]) => {
      const self = params.at(-1) as Command;
      const options = self.optsWithGlobals();
      const report = await spec.run({ args: self.processedArgs as unknown[], options });
      printReport(io, report, options['json'] === true);
    });
  }
  return program;
}

/** `error: unknown command 'x'\n(Did you mean uapi?)` → `unknown command 'x' (did you mean uapi?)`. */
function usageError(err: CommanderError): CliError {
  const [first = '', ...rest] = err.message.replace(/^error: /, '').split('\n');
  const suggestion = rest.join(' ').trim().replace(/^\(Did you mean/, '(did you mean');
  const what = suggestion ? `${first.replace(/\.$/, '')} ${suggestion}` : first.replace(/\.$/, '');
  return new CliError(what, "run 'vfio --help' (or 'vfio <command> --help') for usage", EXIT_USAGE);
}

/**
 * Runs `vfio` with `argv` (the words after `vfio`) and returns the exit status. Nothing is thrown: every error
 * is printed on `io.stderr` as `vfio: what was wrong — what to do`.
 *
 * @example
 * const status = await run(['uapi', 'VFIO_IOMMU_MAP_DMA', '--json'], { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) });
 */
export async function run(argv: readonly string[], io: CliIO, commands?: readonly VfioCommand[]): Promise<number> {
  const program = createProgram(io, commands);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help, --version and a bare `vfio` (help on stderr) have already printed what they had to.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        return error.exitCode;
      }
      io.stderr(`${formatError(usageError(error))}\n`);
      return EXIT_USAGE;
    }
    const cliError = toCliError(error);
    io.stderr(`${formatError(cliError)}\n`);
    return cliError.exitCode;
  }
}
