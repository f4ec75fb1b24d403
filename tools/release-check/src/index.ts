/**
 * Release checks: does a package declare exactly the dependencies its code imports?
 *
 * - `checkSourcePackage(dir)` reads a workspace package's `src/` (test files excluded) — fast, no build.
 * - `checkTarball(file, versions)` reads a tarball made by `pnpm pack`: the imports of its JavaScript must be
 *   declared dependencies, every dependency must be imported by its JavaScript or its type declarations,
 *   no `workspace:` range may be left, internal ranges must admit the versions being released, the files
 *   `exports`/`bin` point at must be in the tarball, and no `.tsbuildinfo` may be shipped.
 *
 * Imports are read with TypeScript's parser, so comments and strings (TSDoc examples are full of
 * `import ... from '@vfio-ts/core'`) never count. `node:` and bare built-in modules are not dependencies.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import ts from 'typescript';

/** Package names a file imports: `runtime` survives into JavaScript, `types` is needed only by type checks. */
export interface ImportSets {
  readonly runtime: Set<string>;
  readonly types: Set<string>;
}

/** The parts of package.json the checks read. */
export interface Manifest {
  readonly name?: string;
  readonly version?: string;
  readonly private?: boolean;
  readonly bin?: string | Readonly<Record<string, string>>;
  readonly exports?: unknown;
  readonly main?: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
}

const BUILTINS = new Set(builtinModules);

/**
 * The package a module specifier names, or null for relative paths, `#imports`, URLs and Node built-ins.
 * `@scope/name/sub` → `@scope/name`, `name/sub` → `name`.
 */
export function packageNameOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('#') || /^[a-z]+:/i.test(specifier)) return null;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return BUILTINS.has(name) ? null : name;
}

function scriptKind(fileName: string): ts.ScriptKind {
  return /\.[cm]?tsx?$/.test(fileName) ? ts.ScriptKind.TS : ts.ScriptKind.JS;
}

/**
 * The packages `text` imports. In a `.d.ts` every import is a type import; elsewhere `import type` and
 * `export type ... from` (and `import('x')` in a type position) are type imports, everything else — static
 * imports, re-exports, dynamic `import('x')`, `require('x')` — is a run-time import. Under
 * `verbatimModuleSyntax`, `import { type A } from 'x'` stays in the JavaScript, so it counts as run-time.
 */
export function importsOf(fileName: string, text: string): ImportSets {
  const sets: ImportSets = { runtime: new Set(), types: new Set() };
  const declarationFile = /\.d\.[cm]?ts$/.test(fileName);
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, scriptKind(fileName));
  const add = (specifier: ts.Node | undefined, typeOnly: boolean): void => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return;
    const name = packageNameOf(specifier.text);
    if (name !== null) (declarationFile || typeOnly ? sets.types : sets.runtime).add(name);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly === true);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression, node.isTypeOnly);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal, true);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sets;
}

/** Adds `from`'s names into `into`. */
function merge(into: ImportSets, from: ImportSets): void {
  for (const n of from.runtime) into.runtime.add(n);
  for (const n of from.types) into.types.add(n);
}

/**
 * The problems with `manifest`'s dependencies given what its code imports (empty when it is exact):
 * a run-time import must be in dependencies, peerDependencies or optionalDependencies; a type import too
 * (a consumer's type check would fail otherwise); and each entry of dependencies must be imported somewhere.
 */
export function checkDependencies(manifest: Manifest, imports: ImportSets): string[] {
  const problems: string[] = [];
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ]);
  const dev = new Set(Object.keys(manifest.devDependencies ?? {}));
  const self = manifest.name;
  const where = (n: string): string => (dev.has(n) ? ' (it is only a devDependency, which consumers do not install)' : '');
  for (const n of [...imports.runtime].sort()) {
    if (n !== self && !declared.has(n)) problems.push(`imports '${n}' but does not declare it in dependencies${where(n)}`);
  }
  for (const n of [...imports.types].sort()) {
    if (n !== self && !declared.has(n) && !imports.runtime.has(n)) problems.push(`its types import '${n}' but it is not a dependency${where(n)}`);
  }
  for (const n of Object.keys(manifest.dependencies ?? {}).sort()) {
    if (!imports.runtime.has(n) && !imports.types.has(n)) problems.push(`declares dependency '${n}' but never imports it`);
  }
  return problems;
}

function walk(dir: string, keep: (path: string) => boolean, out: string[] = []): string[] {
  for (const entry of readdirSync(dir).sort()) {
    if (entry === 'node_modules') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, keep, out);
    else if (keep(path)) out.push(path);
  }
  return out;
}

/** Is `path` a test file or under a test directory (not shipped, so its imports need no dependency)? */
function isTestPath(path: string): boolean {
  return /(^|[\\/])(test|tests|__tests__)[\\/]/.test(path) || /\.(test|spec)\.[cm]?[jt]sx?$/.test(path);
}

/** The imports of a workspace package's `src/` TypeScript and JavaScript, test files excluded. */
export function sourceImports(pkgDir: string): ImportSets {
  const sets: ImportSets = { runtime: new Set(), types: new Set() };
  const src = join(pkgDir, 'src');
  let files: string[] = [];
  try { files = walk(src, (p) => /\.([cm]?ts|[cm]?js|tsx)$/.test(p) && !isTestPath(p.slice(src.length))); } catch { /* no src/ */ }
  for (const file of files) merge(sets, importsOf(file, readFileSync(file, 'utf8')));
  return sets;
}

/** Checks a workspace package's declared dependencies against its `src/` imports. */
export function checkSourcePackage(pkgDir: string): string[] {
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Manifest;
  return checkDependencies(manifest, sourceImports(pkgDir));
}

/**
 * The regular files of a `.tgz` (gzip'd ustar, as `npm pack`/`pnpm pack` write), path → bytes. Understands
 * ustar name prefixes, pax `path` records and GNU long names.
 */
export function readTarball(bytes: Uint8Array): Map<string, Buffer> {
  const tar = gunzipSync(bytes);
  const files = new Map<string, Buffer>();
  const str = (at: number, len: number): string => {
    const raw = tar.subarray(at, at + len);
    const nul = raw.indexOf(0);
    return raw.subarray(0, nul < 0 ? len : nul).toString('utf8');
  };
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    if (tar.subarray(offset, offset + 512).every((b) => b === 0)) break;
    const size = parseInt(str(offset + 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(tar[offset + 156] ?? 0);
    let name = str(offset, 100);
    if (str(offset + 257, 5) === 'ustar') {
      const prefix = str(offset + 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const body = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      // pax records: "<len> key=value\n"
      for (const m of body.toString('utf8').matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)) if (m[1] === 'path') longName = m[2];
      continue;
    }
    if (type === 'L') { longName = body.toString('utf8').replace(/\0+$/, ''); continue; }
    if (type === 'g') continue;
    if (longName !== undefined) { name = longName; longName = undefined; }
    if (type === '0' || type === '\0' || type === '7') files.set(name, Buffer.from(body));
  }
  return files;
}

/**
 * The condition under which the workspace resolves a package to its TypeScript sources (tests, tsx). Its
 * targets are not shipped and no consumer sets it, so its targets are not looked for in a tarball.
 */
export const SOURCE_CONDITION = '@vfio-ts/source';

/** Every string target of an `exports` map (conditions and subpaths flattened), the source condition left out. */
function exportTargets(exports: unknown, out: string[] = []): string[] {
  if (typeof exports === 'string') out.push(exports);
  else if (Array.isArray(exports)) for (const e of exports) exportTargets(e, out);
  else if (exports && typeof exports === 'object') {
    for (const [key, v] of Object.entries(exports)) if (key !== SOURCE_CONDITION) exportTargets(v, out);
  }
  return out;
}

/** The base version of a simple range (`^1.2.3`, `~1.2.3`, `1.2.3`), or null for anything else. */
function rangeBase(range: string): string | null {
  const m = /^[\^~]?(\d+\.\d+\.\d+(?:-[\w.]+)?)$/.exec(range.trim());
  return m ? m[1]! : null;
}

/** Does a simple range admit `version`? `^` and `~` with the same base do; so does an exact match. */
function admits(range: string, version: string): boolean {
  const base = rangeBase(range);
  if (base === null) return false;
  if (base === version) return true;
  const [a = 0, b = 0, c = 0] = base.split(/[.-]/).map(Number);
  const [x = 0, y = 0, z = 0] = version.split(/[.-]/).map(Number);
  if (range.startsWith('^')) return a > 0 ? x === a && (y > b || (y === b && z >= c)) : b > 0 ? x === 0 && y === b && z >= c : x === 0 && y === 0 && z === c;
  if (range.startsWith('~')) return x === a && y === b && z >= c;
  return false;
}

/** What `checkTarball` found. */
export interface TarballReport {
  readonly name: string;
  readonly version: string;
  readonly files: number;
  readonly problems: string[];
}

/**
 * Checks a packed package. `versions` maps the internal packages being released to their new versions, so
 * a dependency range on one of them must admit it.
 */
export function checkTarball(bytes: Uint8Array, versions: ReadonlyMap<string, string> = new Map()): TarballReport {
  const files = new Map([...readTarball(bytes)].map(([path, body]) => [path.replace(/^package\//, ''), body] as const));
  const rawManifest = files.get('package.json');
  if (!rawManifest) return { name: '?', version: '?', files: files.size, problems: ['the tarball has no package/package.json'] };
  const manifest = JSON.parse(rawManifest.toString('utf8')) as Manifest;
  const name = manifest.name ?? '?';
  const imports: ImportSets = { runtime: new Set(), types: new Set() };
  for (const [path, body] of files) {
    if (/\.([cm]?js|d\.[cm]?ts)$/.test(path)) merge(imports, importsOf(path, body.toString('utf8')));
  }
  const problems = checkDependencies(manifest, imports);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
    for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
      if (range.startsWith('workspace:')) problems.push(`${field}: '${dep}' is still '${range}' (pack with pnpm, which rewrites workspace ranges)`);
      const released = versions.get(dep);
      if (released !== undefined && !range.startsWith('workspace:') && !admits(range, released)) {
        problems.push(`${field}: '${dep}@${range}' does not admit the version being released (${released})`);
      }
    }
  }
  const targets = [...exportTargets(manifest.exports), ...(manifest.main ? [manifest.main] : [])];
  for (const target of targets) {
    const path = target.replace(/^\.\//, '');
    if (path.includes('*')) continue;
    if (!files.has(path)) problems.push(`exports/main points at '${target}', which is not in the tarball`);
  }
  for (const path of files.keys()) {
    // tsc -b's incremental state: machine-specific, useless to consumers (add "!dist/.tsbuildinfo" to files).
    if (path.endsWith('.tsbuildinfo')) problems.push(`ships the build cache '${path}' (add "!${path}" to "files")`);
  }
  const bins = typeof manifest.bin === 'string' ? { [name]: manifest.bin } : manifest.bin ?? {};
  for (const [cmd, target] of Object.entries(bins)) {
    const body = files.get(target.replace(/^\.\//, ''));
    if (!body) problems.push(`bin '${cmd}' points at '${target}', which is not in the tarball`);
    else if (!body.toString('utf8').startsWith('#!')) problems.push(`bin '${cmd}' (${target}) has no #! line`);
  }
  return { name, version: manifest.version ?? '?', files: files.size, problems };
}
