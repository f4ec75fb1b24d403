import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { runMinimal } from '../src/flow.js';

const exampleDir = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/**
 * The runtime dependency closure as installed: from a package directory, follow `dependencies` (and peer/optional)
 * through each package's own node_modules, the way Node resolves them. devDependencies do not ship.
 */
function closure(dir: string, seen = new Map<string, string>()): Map<string, string> {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
  const deps = { ...manifest.dependencies, ...manifest.peerDependencies, ...manifest.optionalDependencies };
  for (const name of Object.keys(deps)) {
    if (seen.has(name)) continue;
    const at = realpathSync(join(dir, 'node_modules', name));
    seen.set(name, at);
    closure(at, seen);
  }
  return seen;
}

describe('examples/minimal', () => {
  test('runs: edu opened through VFIO, 5! with an MSI, DMA both ways, reset', async () => {
    const lines: string[] = [];
    const r = await runMinimal((l) => lines.push(l));
    expect(r.ok).toBe(true);
    expect(r.factorial.value).toBe(120);
    expect(r.dma.verified).toBe(true);
    expect(r.interrupts).toEqual({ msi: 3, mode: 'msi' });
    expect(r.reset.done).toBe(true);
    expect(lines[0]).toMatch(/^Open the container: /);
    expect(lines.at(-1)).toMatch(/^Close everything: /);
  });

  test('installs only core, iommu-type1, pci, one device package and sim — and what they need, nothing else', () => {
    const deps = closure(exampleDir);
    expect([...deps.keys()].sort()).toEqual([
      '@vfio-ts/core',
      '@vfio-ts/device-edu',
      '@vfio-ts/iommu-type1',
      '@vfio-ts/pci',
      '@vfio-ts/platform', // the contracts core and the backends stand on
      '@vfio-ts/sim', // a platform to run on: the simulated machine
      '@vfio-ts/uapi', // the structs and numbers of the uAPI
      '@vfio-ts/virqfd', // vfio-pci's eventfd-triggered handlers
    ]);
    // The packages a minimal user must not get: other backends, other drivers, the CLI and its libraries.
    for (const absent of ['@vfio-ts/cli', '@vfio-ts/migration', '@vfio-ts/mdev', '@vfio-ts/iommufd-cdev', '@vfio-ts/iommu-spapr-tce', '@vfio-ts/vfio-user', 'commander', 'cli-table3']) {
      expect(deps.has(absent), absent).toBe(false);
    }
  });
});
