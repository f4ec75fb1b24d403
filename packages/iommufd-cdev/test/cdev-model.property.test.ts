/**
 * Group/cdev exclusivity as a property (inventory §1.3, §1.10): random sequences of group opens and closes,
 * SET/UNSET_CONTAINER with an iommufd, GET_DEVICE_FD, cdev opens, binds and closes, checked against a small
 * reference model of Linux 6.12's rules (vfio_group_fops_open, vfio_device_block_group, vfio_df_open). Every call
 * must answer the model's errno, and after closing everything the device is closed and the group free.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cString, createHost, intArg } from '@vfio-ts/core';
import type { Process, VfioDevice } from '@vfio-ts/core';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import { VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER, isSysError } from '@vfio-ts/uapi';
import { iommufd } from '../src/index.js';
import { bindIommufd } from '../src/cdev.js';

const BDF = '0000:00:03.0';

type Op =
  | { kind: 'openGroup' }
  | { kind: 'closeGroup' }
  | { kind: 'setContainer' }
  | { kind: 'unsetContainer' }
  | { kind: 'getDeviceFd' }
  | { kind: 'closeGroupDevice'; i: number }
  | { kind: 'openCdev' }
  | { kind: 'bind'; i: number }
  | { kind: 'closeCdev'; i: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant<Op>({ kind: 'openGroup' }),
  fc.constant<Op>({ kind: 'closeGroup' }),
  fc.constant<Op>({ kind: 'setContainer' }),
  fc.constant<Op>({ kind: 'unsetContainer' }),
  fc.constant<Op>({ kind: 'getDeviceFd' }),
  fc.nat(3).map<Op>((i) => ({ kind: 'closeGroupDevice', i })),
  fc.constant<Op>({ kind: 'openCdev' }),
  fc.nat(3).map<Op>((i) => ({ kind: 'bind', i })),
  fc.nat(3).map<Op>((i) => ({ kind: 'closeCdev', i })),
);

/** The reference model: what Linux keeps about one group with one device. */
interface Model {
  groupFd: number | undefined;
  /** The group's iommufd (dropped when the group file is released). */
  iommufd: boolean;
  groupDevices: number[];
  cdevs: { fd: number; bound: boolean }[];
}

function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (isSysError(e)) return e.errno;
    throw e;
  }
}

describe('group/cdev exclusivity against a reference model', () => {
  it('answers every call as the model does and ends closed', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        let device: VfioDevice | undefined;
        const config = new Uint8Array(256);
        config.set([0x34, 0x12, 0x78, 0x56]);
        const platform = simPlatform({
          iommu: 'vtd',
          devices: [{ bdf: BDF, fn: pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' }), driver: 'vfio-model' }],
        });
        const host = createHost({
          platform,
          plugins: [
            iommufd(),
            {
              name: 'vfio-model',
              setup(api) {
                api.registerPciDriver({
                  name: 'vfio-model',
                  driverManagedDma: true,
                  probe(pdev) {
                    device = api.allocDevice({ name: pdev.bdf, data: null, ops: {} });
                    api.registerGroupDevice(device);
                  },
                  remove: async () => undefined,
                });
              },
            },
          ],
        });
        const p: Process = host.spawn({ uid: 0 });
        const dev = device!;
        const groupPath = `/dev/vfio/${dev.group!.id}`;
        const cdevPath = `/dev/vfio/devices/${dev.devName}`;
        const ifd = p.open('/dev/iommu');
        const m: Model = { groupFd: undefined, iommufd: false, groupDevices: [], cdevs: [] };
        // Device fds pin the group file: it lives while its fd or any device fd is open.
        const groupFileAlive = (): boolean => m.groupFd !== undefined || m.groupDevices.length > 0;
        const anyBound = (): boolean => m.cdevs.some((c) => c.bound);
        const release = (): void => {
          if (!groupFileAlive()) m.iommufd = false;
        };

        for (const op of ops) {
          let want: string;
          let got: string;
          switch (op.kind) {
            case 'openGroup': {
              want = groupFileAlive() || anyBound() ? 'EBUSY' : 'ok';
              let fd = -1;
              got = errnoOf(() => {
                fd = p.open(groupPath);
              });
              if (got === 'ok') m.groupFd = fd;
              break;
            }
            case 'closeGroup': {
              if (m.groupFd === undefined) continue;
              p.close(m.groupFd);
              m.groupFd = undefined;
              release();
              want = got = 'ok';
              break;
            }
            case 'setContainer': {
              if (m.groupFd === undefined) continue;
              want = m.iommufd ? 'EINVAL' : 'ok';
              got = errnoOf(() => p.ioctl(m.groupFd!, VFIO_GROUP_SET_CONTAINER, intArg(ifd)));
              if (got === 'ok') m.iommufd = true;
              break;
            }
            case 'unsetContainer': {
              if (m.groupFd === undefined) continue;
              // With an iommufd, open devices do not make UNSET busy.
              want = m.iommufd ? 'ok' : 'EINVAL';
              got = errnoOf(() => p.ioctl(m.groupFd!, VFIO_GROUP_UNSET_CONTAINER));
              if (got === 'ok') m.iommufd = false;
              break;
            }
            case 'getDeviceFd': {
              if (m.groupFd === undefined) continue;
              want = m.iommufd ? 'ok' : 'EINVAL';
              let fd = -1;
              got = errnoOf(() => {
                fd = p.ioctl(m.groupFd!, VFIO_GROUP_GET_DEVICE_FD, cString(BDF));
              });
              if (got === 'ok') m.groupDevices.push(fd);
              break;
            }
            case 'closeGroupDevice': {
              const fd = m.groupDevices[op.i % Math.max(1, m.groupDevices.length)];
              if (fd === undefined) continue;
              p.close(fd);
              m.groupDevices.splice(m.groupDevices.indexOf(fd), 1);
              release();
              want = got = 'ok';
              break;
            }
            case 'openCdev': {
              want = 'ok';
              got = errnoOf(() => {
                m.cdevs.push({ fd: p.open(cdevPath), bound: false });
              });
              break;
            }
            case 'bind': {
              const c = m.cdevs[op.i % Math.max(1, m.cdevs.length)];
              if (!c) continue;
              // Block the group first (EBUSY), then one bind per file, then one open of the device (EINVAL).
              want = groupFileAlive() ? 'EBUSY' : c.bound || anyBound() ? 'EINVAL' : 'ok';
              got = errnoOf(() => bindIommufd(p, c.fd, ifd));
              if (got === 'ok') c.bound = true;
              break;
            }
            case 'closeCdev': {
              const c = m.cdevs[op.i % Math.max(1, m.cdevs.length)];
              if (!c) continue;
              p.close(c.fd);
              m.cdevs.splice(m.cdevs.indexOf(c), 1);
              want = got = 'ok';
              break;
            }
          }
          expect(got, op.kind).toBe(want);
          const expectOpen = m.groupDevices.length > 0 || anyBound() ? 1 : 0;
          expect(dev.openCount > 0 ? 1 : 0).toBe(expectOpen);
        }
        for (const fd of [...m.groupDevices, ...m.cdevs.map((c) => c.fd)]) p.close(fd);
        if (m.groupFd !== undefined) p.close(m.groupFd);
        expect(dev.openCount).toBe(0);
        expect(dev.registrationRefs).toBe(1);
        p.close(p.open(groupPath));
        p.close(ifd);
      }),
      { numRuns: 150 },
    );
  });
});
