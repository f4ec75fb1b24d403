/**
 * GET_PCI_HOT_RESET_INFO and PCI_HOT_RESET on cdev-opened devices (inventory §1.6; Linux 6.12
 * vfio_pci_ioctl_get_pci_hot_reset_info / vfio_pci_fill_devs / vfio_pci_ioctl_pci_hot_reset /
 * vfio_pci_dev_set_hot_reset, vfio_iommufd_get_dev_id), through the system-call surface: two functions behind a
 * root port share a device set; they are opened through /dev/vfio/devices/vfioN and bound to an iommufd, or through
 * their group and a type1 container. The cdev caller learns devids (flags DEV_ID | DEV_ID_OWNED) and proves
 * ownership with its iommufd context (a zero-length array); the group caller keeps group ids and group fds.
 */
import { cString, createHost, openVfioDevice } from '@vfio-ts/core';
import type { Host, Process } from '@vfio-ts/core';
import { iommufd, openVfioCdev } from '@vfio-ts/iommufd-cdev';
import type { OpenedVfioCdev } from '@vfio-ts/iommufd-cdev';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import type { ConfigSpaceFunction, SimPciDeviceEntry, SimPlatform } from '@vfio-ts/sim';
import {
  IOMMU_IOAS_ALLOC,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_PCI_DEVID_NOT_OWNED,
  VFIO_PCI_DEVID_OWNED,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
  VFIO_TYPE1v2_IOMMU,
  iommuIoasAlloc,
  isSysError,
  vfioPciDependentDevice,
  vfioPciHotResetInfo,
  vfioPciOffset,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { vfioPci } from '../src/index.js';
import { eduPassive, e1000eFunction, le32, setIdle, u32, until } from './driver-helpers.js';

const PORT = '0000:00:1c.0';
const A = '0000:01:00.0';
const B = '0000:01:00.1';
const C = '0000:01:00.2';
const BAR0 = vfioPciOffset(0);
const DEV_ID = VFIO_PCI_HOT_RESET_FLAG_DEV_ID;
const DEV_ID_OWNED = VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
/** VFIO_PCI_DEVID_NOT_OWNED as the u32 the entry carries. */
const NOT_OWNED = VFIO_PCI_DEVID_NOT_OWNED >>> 0;

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isSysError(e)) return e.errno;
    throw e;
  }
  throw new Error('expected a SysError');
}

interface Bus {
  readonly platform: SimPlatform;
  readonly host: Host;
  readonly p: Process;
  readonly fa: ConfigSpaceFunction;
  readonly fb: ConfigSpaceFunction;
  /** Bus resets seen by A and B since the host came up. */
  busResets(): [number, number];
  spawn(): Process;
}

/**
 * A root port (ACS) with two edu functions behind it, both bound to vfio-pci and so in one device set. With
 * `sharedGroup` the functions have no ACS and share an IOMMU group; otherwise each has its own. `extra` adds
 * functions on the same bus (bound to host drivers listed in `hostDrivers`).
 */
function bus(opts: { sharedGroup?: boolean; extra?: SimPciDeviceEntry[]; hostDrivers?: { name: string; ids: string[] }[] } = {}): Bus {
  const fa = eduPassive();
  const fb = eduPassive();
  const acs = !opts.sharedGroup;
  const platform = simPlatform({
    iommu: 'vtd',
    devices: [
      { bdf: PORT, bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: A, fn: fa, driver: 'vfio-pci', acs },
      { bdf: B, fn: fb, driver: 'vfio-pci', acs },
      ...(opts.extra ?? []),
    ],
    ...(opts.hostDrivers ? { hostDrivers: opts.hostDrivers } : {}),
  });
  const host = createHost({ platform, plugins: [iommufd(), type1(), vfioPci()] });
  const spawn = (): Process => host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });
  const count = (f: ConfigSpaceFunction): number => f.resets.filter((r) => r === 'bus').length;
  return { platform, host, p: spawn(), fa, fb, busResets: () => [count(fa), count(fb)], spawn };
}

/** The cdev node name (vfioN) of a function bound to vfio-pci, from sysfs. */
function cdevName(p: Process, bdf: string): string {
  const [name] = p.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
  if (name === undefined) throw new Error(`${bdf} has no vfio-dev`);
  return name;
}

/** Opens `bdf` through its cdev and binds it to the iommufd `ifd`. */
function cdev(p: Process, bdf: string, ifd: number): OpenedVfioCdev {
  return openVfioCdev(p, { device: cdevName(p, bdf), iommufd: ifd });
}

function groupOf(p: Process, bdf: string): number {
  return Number(p.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`).split('/').pop());
}

interface Info {
  readonly flags: number;
  readonly count: number;
  readonly devices: { group_id: number; segment: number; bus: number; devfn: number }[];
}

function hotResetInfo(p: Process, fd: number, room = 4): Info {
  const b = new Uint8Array(12 + 8 * room);
  b.set(vfioPciHotResetInfo.encode({ argsz: b.length }));
  p.ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, b);
  const { flags, count } = vfioPciHotResetInfo.decode(b);
  const devices = Array.from({ length: count }, (_, i) => vfioPciDependentDevice.decode(b, 12 + 8 * i));
  return { flags, count, devices };
}

/** The devid (or group id) column of an info answer. */
function ids(info: Info): number[] {
  return info.devices.map((d) => d.group_id);
}

function hotReset(p: Process, fd: number, groupFds: readonly number[] = [], flags = 0): number {
  const b = new Uint8Array(12 + 4 * groupFds.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, groupFds.length, true);
  groupFds.forEach((g, i) => {
    v.setInt32(12 + 4 * i, g, true);
  });
  return p.ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, b);
}

function ioasAlloc(p: Process, ifd: number): number {
  const a = iommuIoasAlloc.encode({ size: iommuIoasAlloc.size });
  p.ioctl(ifd, IOMMU_IOAS_ALLOC, a);
  return iommuIoasAlloc.decode(a).out_ioas_id;
}

describe('GET_PCI_HOT_RESET_INFO from a cdev-opened device', () => {
  it('reports DEV_ID | DEV_ID_OWNED and each devid when every function is bound to the same iommufd', () => {
    const t = bus();
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    const b = cdev(t.p, B, ifd);
    expect(a.devid).not.toBe(b.devid);
    for (const fd of [a.device, b.device]) {
      const info = hotResetInfo(t.p, fd);
      expect(info.flags).toBe(DEV_ID | DEV_ID_OWNED);
      expect(info.devices).toEqual([
        { group_id: a.devid, segment: 0, bus: 1, devfn: 0 },
        { group_id: b.devid, segment: 0, bus: 1, devfn: 1 },
      ]);
    }
  });

  it('reports VFIO_PCI_DEVID_OWNED for an unbound function whose IOMMU group the iommufd owns', () => {
    const t = bus({ sharedGroup: true });
    expect(groupOf(t.p, A)).toBe(groupOf(t.p, B));
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    const info = hotResetInfo(t.p, a.device);
    expect(info.flags).toBe(DEV_ID | DEV_ID_OWNED);
    expect(ids(info)).toEqual([a.devid, VFIO_PCI_DEVID_OWNED]);
  });

  it('reports VFIO_PCI_DEVID_NOT_OWNED (and clears DEV_ID_OWNED) for a function the iommufd does not own', () => {
    const t = bus();
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    // B unopened, in its own group.
    let info = hotResetInfo(t.p, a.device);
    expect(info.flags).toBe(DEV_ID);
    expect(ids(info)).toEqual([a.devid, NOT_OWNED]);
    // B bound to another iommufd: still not owned by A's, and A is not owned by B's.
    const ifd2 = t.p.open('/dev/iommu');
    const b = cdev(t.p, B, ifd2);
    info = hotResetInfo(t.p, a.device);
    expect(info.flags).toBe(DEV_ID);
    expect(ids(info)).toEqual([a.devid, NOT_OWNED]);
    info = hotResetInfo(t.p, b.device);
    expect(info.flags).toBe(DEV_ID);
    expect(ids(info)).toEqual([NOT_OWNED, b.devid]);
  });

  it('reports a function outside the device set (bound to a host driver) as not owned', () => {
    const t = bus({ extra: [{ bdf: C, fn: e1000eFunction(), driver: 'e1000e', acs: true }], hostDrivers: [{ name: 'e1000e', ids: ['8086:10d3'] }] });
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    const b = cdev(t.p, B, ifd);
    const info = hotResetInfo(t.p, a.device);
    expect(info.flags).toBe(DEV_ID);
    expect(ids(info)).toEqual([a.devid, b.devid, NOT_OWNED]);
    expect(info.devices[2]).toMatchObject({ bus: 1, devfn: 2 });
    expect(errnoOf(() => hotReset(t.p, a.device))).toBe('EINVAL');
  });

  it('answers ENOSPC with the count and flags 0 when the array is short, ENODEV on a root bus', () => {
    const t = bus();
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    const b = new Uint8Array(12 + 8);
    b.set(vfioPciHotResetInfo.encode({ argsz: b.length }));
    expect(errnoOf(() => t.p.ioctl(a.device, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, b))).toBe('ENOSPC');
    expect(vfioPciHotResetInfo.decode(b)).toEqual({ argsz: 20, flags: 0, count: 2 });

    const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: '0000:00:03.0', fn: eduPassive(), driver: 'vfio-pci' }] });
    const host = createHost({ platform, plugins: [iommufd(), type1(), vfioPci()] });
    const p = host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });
    const lone = cdev(p, '0000:00:03.0', p.open('/dev/iommu'));
    expect(errnoOf(() => hotResetInfo(p, lone.device))).toBe('ENODEV');
    expect(errnoOf(() => hotReset(p, lone.device))).toBe('ENODEV');
  });
});

describe('PCI_HOT_RESET from a cdev-opened device', () => {
  it('resets the bus with a zero-length array when the iommufd owns every device of the set', () => {
    const t = bus();
    const ifd = t.p.open('/dev/iommu');
    const ioas = ioasAlloc(t.p, ifd);
    const a = openVfioCdev(t.p, { device: cdevName(t.p, A), iommufd: ifd, ptId: ioas });
    const b = cdev(t.p, B, ifd);
    // A BAR mapping of A is zapped by the reset and faults back in afterwards.
    const va = t.p.mmap({ length: 0x1000, fd: a.device, offset: BAR0 });
    t.p.memory.write(va, le32(0x5a5a));
    expect(hotReset(t.p, a.device)).toBe(0);
    expect(t.busResets()).toEqual([1, 1]);
    expect(hotReset(t.p, b.device)).toBe(0);
    expect(t.busResets()).toEqual([2, 2]);
    t.p.memory.write(va, le32(0x1234));
    expect(u32(t.p.memory.read(va, 4))).toBe(0x1234);
    // Both stay bound: the info is unchanged.
    expect(ids(hotResetInfo(t.p, a.device))).toEqual([a.devid, b.devid]);
  });

  it('counts an unbound function whose group the iommufd owns as owned', () => {
    const t = bus({ sharedGroup: true });
    const a = cdev(t.p, A, t.p.open('/dev/iommu'));
    expect(hotReset(t.p, a.device)).toBe(0);
    expect(t.busResets()).toEqual([1, 1]);
  });

  it('is EINVAL, with nothing reset, while a device of the set is not owned by the caller’s iommufd', async () => {
    const t = bus();
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    expect(errnoOf(() => hotReset(t.p, a.device))).toBe('EINVAL');
    // B bound to another context (here another process's iommufd).
    const other = t.spawn();
    const b = cdev(other, B, other.open('/dev/iommu'));
    expect(errnoOf(() => hotReset(t.p, a.device))).toBe('EINVAL');
    expect(errnoOf(() => hotReset(other, b.device))).toBe('EINVAL');
    expect(t.busResets()).toEqual([0, 0]);
    expect(ids(hotResetInfo(t.p, a.device))).toEqual([a.devid, NOT_OWNED]);
    // Once B is bound to A's iommufd the reset goes through.
    other.close(b.device);
    await until(() => setIdle(t, B));
    const b2 = cdev(t.p, B, ifd);
    expect(hotReset(t.p, b2.device)).toBe(0);
    expect(t.busResets()).toEqual([1, 1]);
  });

  it('refuses group fds (count > 0) and flags with EINVAL before looking at the fds', () => {
    const t = bus();
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    cdev(t.p, B, ifd);
    expect(errnoOf(() => hotReset(t.p, a.device, [999]))).toBe('EINVAL');
    expect(errnoOf(() => hotReset(t.p, a.device, [a.device]))).toBe('EINVAL');
    expect(errnoOf(() => hotReset(t.p, a.device, [], 1))).toBe('EINVAL');
    expect(errnoOf(() => t.p.ioctl(a.device, VFIO_DEVICE_PCI_HOT_RESET, new Uint8Array([11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])))).toBe('EINVAL');
    expect(t.busResets()).toEqual([0, 0]);
    expect(hotReset(t.p, a.device)).toBe(0);
  });
});

describe('mixing group-opened and cdev-opened devices in one set', () => {
  it('lets neither side reset: the cdev side does not own the group device, the group side cannot prove the cdev one', () => {
    const t = bus();
    const ifd = t.p.open('/dev/iommu');
    const a = cdev(t.p, A, ifd);
    const b = openVfioDevice(t.p, { group: groupOf(t.p, B), device: B, iommuType: VFIO_TYPE1v2_IOMMU });

    // The cdev caller sees B as not owned; the group caller keeps group ids and flags 0.
    const fromA = hotResetInfo(t.p, a.device);
    expect(fromA.flags).toBe(DEV_ID);
    expect(ids(fromA)).toEqual([a.devid, NOT_OWNED]);
    const fromB = hotResetInfo(t.p, b.device);
    expect(fromB.flags).toBe(0);
    expect(ids(fromB)).toEqual([groupOf(t.p, A), groupOf(t.p, B)]);

    expect(errnoOf(() => hotReset(t.p, a.device))).toBe('EINVAL');
    // A's group node cannot be opened while A is bound through its cdev, so B can only offer its own group.
    expect(errnoOf(() => t.p.open(`/dev/vfio/${groupOf(t.p, A)}`))).toBe('EBUSY');
    expect(errnoOf(() => hotReset(t.p, b.device, [b.group]))).toBe('EINVAL');
    // The zero-length array is the cdev form only.
    expect(errnoOf(() => hotReset(t.p, b.device))).toBe('EINVAL');
    expect(t.busResets()).toEqual([0, 0]);
  });

  it('keeps the group form for group-opened devices of a set with no cdev user', () => {
    const t = bus();
    const a = openVfioDevice(t.p, { group: groupOf(t.p, A), device: A, iommuType: VFIO_TYPE1v2_IOMMU });
    const gB = t.p.open(`/dev/vfio/${groupOf(t.p, B)}`);
    expect(hotResetInfo(t.p, a.device).flags).toBe(0);
    expect(hotReset(t.p, a.device, [a.group, gB])).toBe(0);
    expect(t.busResets()).toEqual([1, 1]);
  });
});

/* ------------------------------------------------------------------ every opening combination against a model */

/** How a function of the pair is held: not opened, cdev-bound to iommufd 1 or 2, or opened through its group (type1). */
type Holder = 'none' | 'ctx1' | 'ctx2' | 'group';
const HOLDERS: readonly Holder[] = ['none', 'ctx1', 'ctx2', 'group'];

/** Combinations the kernel lets a process set up (a shared group has one DMA owner). */
function combos(shared: boolean): [Holder, Holder][] {
  const all = HOLDERS.flatMap((a) => HOLDERS.map((b): [Holder, Holder] => [a, b]));
  if (!shared) return all;
  return all.filter(([a, b]) => {
    const owners = new Set([a, b].filter((h) => h !== 'none'));
    return owners.size <= 1;
  });
}

describe('hot reset info and ownership over every way of holding the pair', () => {
  for (const shared of [false, true]) {
    for (const [ha, hb] of combos(shared)) {
      it(`${shared ? 'shared' : 'separate'} groups, A ${ha}, B ${hb}`, () => {
        const t = bus({ sharedGroup: shared });
        const ifds = { ctx1: t.p.open('/dev/iommu'), ctx2: t.p.open('/dev/iommu') };
        let container: number | undefined;
        const groups = new Map<number, number>();
        const open = (bdf: string, h: Holder): { fd: number; devid: number } | undefined => {
          if (h === 'none') return undefined;
          if (h === 'group') {
            // A group node opens once: a second device of the same group comes from the same group fd.
            const g = groups.get(groupOf(t.p, bdf));
            if (g !== undefined) return { fd: t.p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(bdf)), devid: 0 };
            const o = openVfioDevice(t.p, { group: groupOf(t.p, bdf), device: bdf, iommuType: VFIO_TYPE1v2_IOMMU, ...(container === undefined ? {} : { container }) });
            container = o.container;
            groups.set(groupOf(t.p, bdf), o.group);
            return { fd: o.device, devid: 0 };
          }
          const o = cdev(t.p, bdf, ifds[h]);
          return { fd: o.device, devid: o.devid };
        };
        const held = [open(A, ha), open(B, hb)] as const;
        const holders = [ha, hb] as const;

        // The model (vfio_pci_fill_devs + vfio_iommufd_get_dev_id): what a cdev caller bound to `ctx` sees of function i.
        const seen = (ctx: Holder, i: 0 | 1): number => {
          if (holders[i] === ctx) return held[i]!.devid;
          if (shared && holders[1 - i] === ctx) return VFIO_PCI_DEVID_OWNED;
          return NOT_OWNED;
        };
        for (const i of [0, 1] as const) {
          const h = holders[i];
          const dev = held[i];
          if (!dev) continue;
          const before = t.busResets();
          const info = hotResetInfo(t.p, dev.fd);
          if (h === 'group') {
            expect(info.flags).toBe(0);
            expect(ids(info)).toEqual([groupOf(t.p, A), groupOf(t.p, B)]);
            expect(errnoOf(() => hotReset(t.p, dev.fd))).toBe('EINVAL');
            expect(t.busResets()).toEqual(before);
            continue;
          }
          const expected = [seen(h, 0), seen(h, 1)];
          const owned = !expected.includes(NOT_OWNED);
          expect(ids(info)).toEqual(expected);
          expect(info.flags).toBe(owned ? DEV_ID | DEV_ID_OWNED : DEV_ID);
          if (owned) {
            expect(hotReset(t.p, dev.fd)).toBe(0);
            expect(t.busResets()).toEqual([before[0] + 1, before[1] + 1]);
          } else {
            expect(errnoOf(() => hotReset(t.p, dev.fd))).toBe('EINVAL');
            expect(t.busResets()).toEqual(before);
          }
        }
      });
    }
  }
});
