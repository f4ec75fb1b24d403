import { readFileSync } from 'node:fs';

/**
 * The CLI's own version, read from its package.json. Both `src/` (tests) and `dist/` (the binary) sit one
 * directory below the package root, so the same relative URL works for both.
 */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}
