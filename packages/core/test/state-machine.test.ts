/**
 * The container/group/device state machine (inventory §1.2, §1.3, §2.8) against a small reference model: random
 * sequences of opens, closes, SET/UNSET_CONTAINER, SET_IOMMU and GET_DEVICE_FD on two groups and two container
 * slots must give Linux's answers and keep the backend's bookkeeping balanced.
 */
import { simPlatform } from '@vfio-ts/sim';
import {
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  SysError,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost, groupStatus } from '../src/index.js';
import { bindTo, cstr, fn, s32, testBackend, testDriver } from './helpers.js';

const BDFS = ['0000:00:03.0', '0000:00:04.0'];

interface MContainer {
  id: number;
  fdOpen: boolean;
  groups: Set<number>;
  iommu: boolean;
}

type Op =
  | { kind: 'openContainer' | 'closeContainer' | 'setIommu'; slot: number }
  | { kind: 'openGroup' | 'closeGroup' | 'unset' | 'getDevice' | 'closeDevice'; g: number }
  | { kind: 'set'; g: number; slot: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('openContainer' as const, 'closeContainer' as const, 'setIommu' as const), slot: fc.nat(1) }),
  fc.record({ kind: fc.constantFrom('openGroup' as const, 'closeGroup' as const, 'unset' as const, 'getDevice' as const, 'closeDevice' as const), g: fc.nat(1) }),
  fc.record({ kind: fc.constant('set' as const), g: fc.nat(1), slot: fc.nat(1) }),
);

describe('container/group state machine', () => {
  it('matches the reference model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const backend = testBackend();
        const platform = simPlatform({ devices: BDFS.map((bdf) => ({ bdf, fn: fn() })) });
        const host = createHost({ platform, plugins: [backend.plugin, testDriver().plugin] });
        for (const b of BDFS) bindTo(platform, b);
        const gids = BDFS.map((b) => platform.pci.device(b)!.iommuGroup!.id);
        const p = host.spawn({ uid: 0 });

        // Model.
        let nextId = 1;
        const cslots: (MContainer | undefined)[] = [undefined, undefined];
        const cfd: (number | undefined)[] = [undefined, undefined];
        const groups = gids.map(() => ({ fdOpen: false, fd: -1, container: undefined as MContainer | undefined, devFds: [] as number[] }));
        const live = new Set<MContainer>();
        const held = (g: (typeof groups)[number]): boolean => g.fdOpen || g.devFds.length > 0;
        const detach = (g: (typeof groups)[number], gi: number): void => {
          const c = g.container!;
          c.groups.delete(gi);
          g.container = undefined;
          if (c.groups.size === 0) {
            c.iommu = false;
            if (!c.fdOpen) live.delete(c);
          }
        };

        const attempt = (f: () => unknown): string | number => {
          try {
            const r = f();
            return typeof r === 'number' ? r : 0;
          } catch (e) {
            if (e instanceof SysError) return e.errno;
            throw e;
          }
        };

        for (const op of ops) {
          let want: string | undefined;
          let got: string | number;
          switch (op.kind) {
            case 'openContainer': {
              if (cfd[op.slot] !== undefined) continue;
              cfd[op.slot] = p.open('/dev/vfio/vfio');
              const c = { id: nextId++, fdOpen: true, groups: new Set<number>(), iommu: false };
              cslots[op.slot] = c;
              live.add(c);
              continue;
            }
            case 'closeContainer': {
              const fd = cfd[op.slot];
              if (fd === undefined) continue;
              p.close(fd);
              cfd[op.slot] = undefined;
              const c = cslots[op.slot]!;
              c.fdOpen = false;
              if (c.groups.size === 0) live.delete(c);
              continue;
            }
            case 'setIommu': {
              const fd = cfd[op.slot];
              if (fd === undefined) continue;
              const c = cslots[op.slot]!;
              want = c.groups.size === 0 || c.iommu ? 'EINVAL' : undefined;
              got = attempt(() => p.ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
              if (!want) c.iommu = true;
              break;
            }
            case 'openGroup': {
              const g = groups[op.g]!;
              want = held(g) ? 'EBUSY' : undefined;
              got = attempt(() => p.open(`/dev/vfio/${gids[op.g]!}`));
              if (!want) {
                g.fdOpen = true;
                g.fd = got as number;
              }
              break;
            }
            case 'closeGroup': {
              const g = groups[op.g]!;
              if (!g.fdOpen) continue;
              p.close(g.fd);
              g.fdOpen = false;
              if (g.devFds.length === 0 && g.container) detach(g, op.g);
              continue;
            }
            case 'set': {
              const g = groups[op.g]!;
              if (!g.fdOpen) continue;
              const fd = cfd[op.slot];
              const c = cslots[op.slot];
              if (fd === undefined) want = 'EBADF';
              else if (g.container) want = 'EINVAL';
              got = attempt(() => p.ioctl(g.fd, VFIO_GROUP_SET_CONTAINER, s32(fd ?? 99)));
              if (!want) {
                g.container = c;
                c!.groups.add(op.g);
              }
              break;
            }
            case 'unset': {
              const g = groups[op.g]!;
              if (!g.fdOpen) continue;
              want = !g.container ? 'EINVAL' : g.devFds.length > 0 ? 'EBUSY' : undefined;
              got = attempt(() => p.ioctl(g.fd, VFIO_GROUP_UNSET_CONTAINER));
              if (!want) detach(g, op.g);
              break;
            }
            case 'getDevice': {
              const g = groups[op.g]!;
              if (!g.fdOpen) continue;
              want = !g.container || !g.container.iommu ? 'EINVAL' : undefined;
              got = attempt(() => p.ioctl(g.fd, VFIO_GROUP_GET_DEVICE_FD, cstr(BDFS[op.g]!)));
              if (!want) g.devFds.push(got as number);
              break;
            }
            case 'closeDevice': {
              const g = groups[op.g]!;
              const fd = g.devFds.pop();
              if (fd === undefined) continue;
              p.close(fd);
              if (g.devFds.length === 0 && !g.fdOpen && g.container) detach(g, op.g);
              continue;
            }
          }
          if (want) expect(got).toBe(want);
          else expect(typeof got).toBe('number');
          // Invariants after every checked step.
          groups.forEach((g, i) => {
            if (g.fdOpen) {
              expect(groupStatus(p, g.fd)).toBe(VFIO_GROUP_FLAGS_VIABLE | (g.container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0));
            }
            expect(host.vfio.groups.get(gids[i]!)!.containerUsers).toBe(g.container ? 1 + (g.devFds.length > 0 ? 1 : 0) : 0);
          });
          const liveBackends = backend.log.instances.filter((s) => !s.released);
          expect(liveBackends.length).toBe([...live].filter((c) => c.iommu).length);
          expect(host.vfio.containers.size).toBe(live.size);
          for (const s of liveBackends) expect(s.groups.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 150 },
    );
  });
});
