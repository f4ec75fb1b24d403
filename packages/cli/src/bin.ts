#!/usr/bin/env node
// The `vfio` binary: runs the program on the process's arguments and streams.
import { run } from './program.js';

process.exitCode = await run(process.argv.slice(2), {
  stdout: (s) => { process.stdout.write(s); },
  stderr: (s) => { process.stderr.write(s); },
});
