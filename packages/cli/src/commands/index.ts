/**
 * Every `vfio` subcommand, in the order `vfio --help` lists them. A new command is a module in this
 * directory exporting a `VfioCommand`, plus one line here.
 */
import type { VfioCommand } from '../command.js';
import { uapiCommand } from './uapi.js';

/** The commands vfio-ts ships. */
export const COMMANDS: readonly VfioCommand[] = [uapiCommand];
