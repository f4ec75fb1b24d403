/**
 * @vfio-ts/cli — the `vfio` command. The binary is `dist/bin.js`; this entry lets other tools run the same
 * commands in-process (`run`) or build new ones on the same output layer.
 * @packageDocumentation
 */
export { run, createProgram } from './program.js';
export type { VfioCommand, CommandInput } from './command.js';
export { COMMANDS } from './commands/index.js';
export { uapiCommand, makeUapiCommand, describeIoctl, describeStruct, listIoctls, resolveUapiName } from './commands/uapi.js';
export type { IoctlLike, IoctlView, StructLike, StructView, UapiMatch, UapiTables } from './commands/uapi.js';
export { CliError, EXIT_FAILURE, EXIT_USAGE, formatError, toCliError } from './errors.js';
export {
  fields, hex, printReport, renderBlocks, renderFields, renderJson, renderTable, renderTree, table, text, tree,
} from './output.js';
export type { Block, CliIO, Column, Report, TreeNode } from './output.js';
export { closeMatches, editDistance } from './suggest.js';
export { cliVersion } from './version.js';
