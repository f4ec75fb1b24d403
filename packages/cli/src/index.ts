/**
 * @vfio-ts/cli — the `vfio` command. The binary is `dist/bin.js`; this entry lets other tools run the same
 * commands in-process (`run`) or build new ones on the same output layer.
 * @packageDocumentation
 */
export { run, createProgram } from './program.js';
export type { VfioCommand, CommandInput } from './command.js';
export { COMMANDS } from './commands/index.js';
export { demoCommand, demoReport } from './commands/demo.js';
export type { DemoView } from './commands/demo.js';
export { lspciCommand } from './commands/lspci.js';
export { statusCommand } from './commands/status.js';
export { inspectCommand, inspectDevice, inspectReport, optionRomImage, INSPECT_BDF } from './commands/inspect.js';
export type { InspectIrq, InspectRegion, InspectView } from './commands/inspect.js';
export { buildDemoHost, DEMO_TOPOLOGY } from './sim-host.js';
export type { ConfigImageDevice, DemoHost, DemoHostOptions } from './sim-host.js';
export { uapiCommand, makeUapiCommand, describeIoctl, describeStruct, listIoctls, resolveUapiName } from './commands/uapi.js';
export type { IoctlLike, IoctlView, StructLike, StructView, UapiMatch, UapiTables } from './commands/uapi.js';
export { CliError, EXIT_FAILURE, EXIT_USAGE, formatError, toCliError } from './errors.js';
export {
  fields, hex, printReport, renderBlocks, renderFields, renderJson, renderTable, renderTree, table, text, tree,
} from './output.js';
export type { Block, CliIO, Column, Report, TreeNode } from './output.js';
export { closeMatches, editDistance } from './suggest.js';
export { cliVersion } from './version.js';
