import { run } from '../src/index.js';
import type { VfioCommand } from '../src/index.js';

/** Runs `vfio ...argv` in-process and collects what it printed. */
export async function vfio(argv: readonly string[], commands?: readonly VfioCommand[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await run(argv, { stdout: (s) => { out += s; }, stderr: (s) => { err += s; } }, commands);
  return { status, out, err };
}
