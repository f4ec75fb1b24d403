import { createHost } from '@vfio-ts/core';
import { simPlatform } from '@vfio-ts/sim';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { registerMdevParent } from '../src/index.js';
import { cat, echo, errnoOf, MTEST_TYPES, mtestDriver, mtestLog } from './helpers.js';

const POOL = [
  '00000000-0000-0000-0000-000000000001',
  '00000000-0000-0000-0000-000000000002',
  'DEADBEEF-0000-0000-0000-000000000003',
  'deadbeef-0000-0000-0000-000000000004',
  '12345678-9abc-def0-1234-56789abcdef0',
];
const TYPES = '/sys/devices/virtual/mtest/mtest/mdev_supported_types';

type Op = { kind: 'create'; uuid: number; type: number; newline: boolean } | { kind: 'remove'; uuid: number; value: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), uuid: fc.nat(POOL.length - 1), type: fc.nat(1), newline: fc.boolean() }),
  fc.record({ kind: fc.constant('remove' as const), uuid: fc.nat(POOL.length - 1), value: fc.constantFrom('1', '0', '1\n', '7', 'x') }),
);

describe('create/remove against a model', () => {
  it('keeps sysfs, the UUID list and available_instances equal to the model', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.array(opArb, { maxLength: 40 }), (max, ops) => {
        const log = mtestLog();
        const host = createHost({
          platform: simPlatform(),
          plugins: [
            {
              name: 'mtest',
              setup(api) {
                registerMdevParent(api, { parent: { virtual: { class: 'mtest', name: 'mtest' } }, driver: mtestDriver(log, max), types: MTEST_TYPES });
              },
            },
          ],
        });
        const p = host.spawn({ uid: 0 });
        const model = new Map<string, number>();
        for (const op of ops) {
          const uuid = POOL[op.uuid]!;
          const name = uuid.toLowerCase();
          if (op.kind === 'create') {
            const path = `${TYPES}/${op.type === 0 ? 'mtest-a' : 'mtest-b'}/create`;
            const write = (): number => echo(p, path, op.newline ? `${uuid}\n` : uuid);
            if (model.has(name)) expect(errnoOf(write)).toBe('EEXIST');
            else if (model.size >= max) expect(errnoOf(write)).toBe('EUSERS');
            else {
              write();
              model.set(name, op.type);
            }
          } else {
            const path = `/sys/bus/mdev/devices/${name}/remove`;
            if (!model.has(name)) expect(errnoOf(() => echo(p, path, op.value))).toBe('ENOENT');
            else if (op.value === 'x') expect(errnoOf(() => echo(p, path, op.value))).toBe('EINVAL');
            else {
              echo(p, path, op.value);
              if (op.value !== '0') model.delete(name);
            }
          }
          expect(p.readdir('/sys/bus/mdev/devices').sort()).toEqual([...model.keys()].sort());
          for (const [t, dir] of ['mtest-a', 'mtest-b'].entries()) {
            expect(cat(p, `${TYPES}/${dir}/available_instances`)).toBe(`${max - model.size}\n`);
            expect(p.readdir(`${TYPES}/${dir}/devices`).sort()).toEqual([...model].filter(([, ty]) => ty === t).map(([u]) => u).sort());
          }
        }
        expect(host.describe().devices).toHaveLength(model.size);
      }),
      { numRuns: 60 },
    );
  });
});
