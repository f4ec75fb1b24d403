import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { checkDependencies, checkSourcePackage, checkTarball, importsOf, packageNameOf, readTarball } from '../src/index.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** A minimal ustar writer (with a pax header for names over 100 bytes), to build fixture tarballs. */
function tarball(files: Record<string, string>): Uint8Array {
  const blocks: Buffer[] = [];
  const header = (name: string, size: number, type: string): Buffer => {
    const h = Buffer.alloc(512);
    h.write(name.slice(0, 99), 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write(type, 156);
    h.write('ustar\0' + '00', 257);
    h.fill(' ', 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    return h;
  };
  const body = (data: Buffer): Buffer => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
  for (const [name, text] of Object.entries(files)) {
    const path = `package/${name}`;
    if (path.length > 99) {
      const rec = ` path=${path}\n`;
      let len = rec.length + 2;
      if (`${len}${rec}`.length !== len) len += 1;
      const pax = Buffer.from(`${len}${rec}`);
      blocks.push(header('PaxHeader', pax.length, 'x'), body(pax));
    }
    const data = Buffer.from(text);
    blocks.push(header(path, data.length, '0'), body(data));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

describe('import scanning', () => {
  test('package names from specifiers', () => {
    expect(packageNameOf('@vfio-ts/uapi')).toBe('@vfio-ts/uapi');
    expect(packageNameOf('@vfio-ts/uapi/structs')).toBe('@vfio-ts/uapi');
    expect(packageNameOf('commander/esm.mjs')).toBe('commander');
    for (const s of ['./x.js', '../y.js', '/abs', 'node:fs', 'fs', 'fs/promises', '#internal', 'data:text/javascript,1']) expect(packageNameOf(s)).toBeNull();
  });

  test('run-time and type imports; comments and strings do not count', () => {
    const ts = [
      "import type { A } from 'only-types';",
      "export type { B } from 'more-types';",
      "import { type C } from 'kept-by-verbatim';",
      "import d from 'default-import';",
      "import 'side-effect';",
      "export * from 'reexport';",
      "import { readFileSync } from 'node:fs';",
      "const x: import('type-position').T = await import('dynamic');",
      "/** @example import { createHost } from '@vfio-ts/core'; */",
      "// import x from 'commented'",
      "const s = \"import y from 'in-a-string'\";",
    ].join('\n');
    const sets = importsOf('a.ts', ts);
    expect([...sets.runtime].sort()).toEqual(['default-import', 'dynamic', 'kept-by-verbatim', 'reexport', 'side-effect']);
    expect([...sets.types].sort()).toEqual(['more-types', 'only-types', 'type-position']);
    const dts = importsOf('index.d.ts', "import { Command } from 'commander';\nexport declare const x: import('@vfio-ts/uapi').T;");
    expect([...dts.runtime]).toEqual([]);
    expect([...dts.types].sort()).toEqual(['@vfio-ts/uapi', 'commander']);
    expect([...importsOf('x.cjs', "const a = require('cjs-dep');").runtime]).toEqual(['cjs-dep']);
  });

  test('dependency check: missing, dev-only, type-only and unused', () => {
    const manifest = { name: '@vfio-ts/x', dependencies: { used: '1.0.0', typesOnly: '1.0.0', unused: '1.0.0' }, devDependencies: { devOnly: '1.0.0' } };
    const problems = checkDependencies(manifest, {
      runtime: new Set(['used', 'missing', 'devOnly', '@vfio-ts/x']),
      types: new Set(['typesOnly', 'undeclaredTypes']),
    });
    expect(problems).toEqual([
      "imports 'devOnly' but does not declare it in dependencies (it is only a devDependency, which consumers do not install)",
      "imports 'missing' but does not declare it in dependencies",
      "its types import 'undeclaredTypes' but it is not a dependency",
      "declares dependency 'unused' but never imports it",
    ]);
    expect(checkDependencies({ peerDependencies: { peer: '1' } }, { runtime: new Set(['peer']), types: new Set() })).toEqual([]);
  });
});

describe('every package in packages/ declares exactly what its src imports', () => {
  const dirs = ['packages', 'packages/devices', 'examples']
    .filter((r) => existsSync(join(root, r)))
    .flatMap((r) => readdirSync(join(root, r)).map((n) => join(root, r, n)))
    .filter((d) => existsSync(join(d, 'package.json')) && existsSync(join(d, 'src')));
  test('there are packages to check', () => { expect(dirs.length).toBeGreaterThan(0); });
  test.each(dirs.map((d) => [d.slice(root.length), d]))('%s', (_name, dir) => {
    expect(checkSourcePackage(dir)).toEqual([]);
  });
});

describe('tarball checker', () => {
  const good = {
    'package.json': JSON.stringify({
      name: '@vfio-ts/demo', version: '1.1.0', bin: { demo: './dist/bin.js' },
      exports: { '.': { '@vfio-ts/source': './src/index.ts', types: './dist/index.d.ts', import: './dist/index.js' } },
      dependencies: { '@vfio-ts/uapi': '^1.0.0', commander: '14.0.3', '@vfio-ts/platform': '^0.2.0' },
    }),
    'dist/index.js': "import { Command } from 'commander';\nexport * from '@vfio-ts/uapi';\n/** import x from 'not-a-dep' */\nimport { join } from 'node:path';\n",
    'dist/index.d.ts': "import type { Memory } from '@vfio-ts/platform';\nexport * from '@vfio-ts/uapi';\n",
    'dist/bin.js': "#!/usr/bin/env node\nimport('./index.js');\n",
    [`dist/${'deep/'.repeat(25)}module.js`]: "import 'commander';\n",
  };
  const versions = new Map([['@vfio-ts/uapi', '1.2.0'], ['@vfio-ts/platform', '0.2.1'], ['@vfio-ts/demo', '1.1.0']]);

  test('reads every file, long names included', () => {
    const files = readTarball(tarball(good));
    expect([...files.keys()]).toContain(`package/dist/${'deep/'.repeat(25)}module.js`);
    expect(files.get('package/dist/bin.js')?.toString()).toBe("#!/usr/bin/env node\nimport('./index.js');\n");
  });

  test('a correct package passes', () => {
    expect(checkTarball(tarball(good), versions)).toEqual({ name: '@vfio-ts/demo', version: '1.1.0', files: 5, problems: [] });
  });

  test('each kind of mistake is reported', () => {
    const bad = {
      ...good,
      'package.json': JSON.stringify({
        name: '@vfio-ts/demo', version: '1.1.0', bin: { demo: './dist/bin.js', gone: './dist/gone.js' },
        exports: { '.': { types: './dist/index.d.ts', import: './dist/main.js' } },
        dependencies: { '@vfio-ts/uapi': 'workspace:^', '@vfio-ts/platform': '^0.1.0', 'left-pad': '1.3.0' },
      }),
      'dist/bin.js': "import('./index.js');\n",
      'dist/.tsbuildinfo': '{}',
    };
    expect(checkTarball(tarball(bad), versions).problems).toEqual([
      "imports 'commander' but does not declare it in dependencies",
      "declares dependency 'left-pad' but never imports it",
      "dependencies: '@vfio-ts/uapi' is still 'workspace:^' (pack with pnpm, which rewrites workspace ranges)",
      "dependencies: '@vfio-ts/platform@^0.1.0' does not admit the version being released (0.2.1)",
      "exports/main points at './dist/main.js', which is not in the tarball",
      "ships the build cache 'dist/.tsbuildinfo' (add \"!dist/.tsbuildinfo\" to \"files\")",
      "bin 'demo' (./dist/bin.js) has no #! line",
      "bin 'gone' points at './dist/gone.js', which is not in the tarball",
    ]);
  });

  test('a tarball without package.json', () => {
    expect(checkTarball(tarball({ 'x.js': '' })).problems).toEqual(['the tarball has no package/package.json']);
  });
});

