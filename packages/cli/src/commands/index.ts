/**
 * Every `vfio` subcommand, in the order `vfio --help` lists them. A new command is a module in this
 * directory exporting a `VfioCommand`, plus one line here.
 */
import type { VfioCommand } from '../command.js';
import { demoCommand } from './demo.js';
import { inspectCommand } from './inspect.js';
import { lspciCommand } from './lspci.js';
import { migrateCommand } from './migrate.js';
import { statusCommand } from './status.js';
import { uapiCommand } from './uapi.js';

/** The commands vfio-ts ships. */
export const COMMANDS: readonly VfioCommand[] = [demoCommand, lspciCommand, statusCommand, inspectCommand, migrateCommand, uapiCommand];
