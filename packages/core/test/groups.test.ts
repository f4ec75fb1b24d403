/**
 * Topology → groups → viability (inventory §2.8): a switch without ACS puts its functions in one IOMMU group, a
 * DMA-doing host driver on a sibling makes the group non-viable, and SET_CONTAINER / GET_DEVICE_FD fail as on Linux.
 */
import { simPlatform } from '@vfio-ts/sim';
import type { SimPciDeviceEntry } from '@vfio-ts/sim';
import {
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioGroupStatus,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { createHost } from '../src/index.js';
import type { Process } from '../src/index.js';
import { bindTo, cstr, expectErrno, expectErrnoAsync, fn, s32, testBackend, testDriver } from './helpers.js';

const A = '0000:03:00.0';
const B = '0000:03:00.1';

function topology(acs: boolean): SimPciDeviceEntry[] {
  return [
    { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
    { bdf: '0000:01:00.0', bridge: 'pcie-switch-upstream', secondaryBus: 2, acs },
    { bdf: '0000:02:00.0', bridge: 'pcie-switch-downstream', secondaryBus: 3, acs },
    { bdf: '0000:02:01.0', bridge: 'pcie-switch-downstream', secondaryBus: 4, acs },
    // A multifunction device: functions without ACS are not isolated from each other (§2.8).
    { bdf: A, fn: fn(), acs },
    { bdf: B, fn: fn(0x8086, 0x100e), driver: 'e1000', acs },
    { bdf: '0000:04:00.0', fn: fn() },
  ];
}

function make(acs: boolean) {
  const platform = simPlatform({ iommu: 'vtd', devices: topology(acs), hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }] });
  const driver = testDriver();
  const host = createHost({ platform, plugins: [testBackend().plugin, driver.plugin] });
  bindTo(platform, A);
  const p = host.spawn({ uid: 0 });
  return { platform, host, p, driver };
}

function status(p: Process, g: number): number {
  const st = vfioGroupStatus.encode({ argsz: 8 });
  p.ioctl(g, VFIO_GROUP_GET_STATUS, st);
  return vfioGroupStatus.decode(st).flags;
}

describe('IOMMU groups from the topology', () => {
  it('a switch without ACS shares one group; with ACS each function has its own', () => {
    const shared = make(false).platform;
    const ga = shared.pci.device(A)!.iommuGroup!.id;
    // The functions share with each other and with the downstream port above them.
    expect(shared.pci.device(B)!.iommuGroup!.id).toBe(ga);
    expect(shared.pci.device('0000:02:00.0')!.iommuGroup!.id).toBe(ga);
    expect(shared.pci.device('0000:04:00.0')!.iommuGroup!.id).not.toBe(ga);
    const isolated = make(true).platform;
    expect(isolated.pci.device(A)!.iommuGroup!.id).not.toBe(isolated.pci.device(B)!.iommuGroup!.id);
    expect(isolated.pci.device(A)!.iommuGroup!.id).not.toBe(isolated.pci.device('0000:02:00.0')!.iommuGroup!.id);
  });

  it('a host driver on a sibling makes the group non-viable: SET_CONTAINER EPERM, GET_DEVICE_FD EINVAL', async () => {
    const { platform, p, host } = make(false);
    const gid = platform.pci.device(A)!.iommuGroup!.id;
    // Only groups with a VFIO device get a node.
    expect(p.readdir('/dev/vfio')).toEqual([String(gid), 'devices', 'vfio']);
    const c = p.open('/dev/vfio/vfio');
    const g = p.open(`/dev/vfio/${gid}`);
    expect(status(p, g)).toBe(0);
    expectErrno(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c)), 'EPERM');
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'EINVAL');
    expect((host.describe().groups[0] as { viable: boolean }).viable).toBe(false);

    // Unbinding the host driver makes it viable; user ownership then keeps DMA-doing drivers away (EBUSY).
    await platform.pci.unbind(B);
    expect(status(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE);
    expect(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c))).toBe(0);
    expect(status(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    expectErrno(() => {
      platform.pci.bind(B, 'e1000');
    }, 'EBUSY');
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    // The sibling has no VFIO driver: not found in the group.
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(B)), 'ENODEV');
    p.close(d);
    p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER);
    // Ownership released: the host driver binds again and the group is non-viable again.
    platform.pci.bind(B, 'e1000');
    expect(status(p, g)).toBe(0);
    await expectErrnoAsync(Promise.resolve().then(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c))), 'EPERM');
  });

  it('with ACS the sibling driver does not matter', () => {
    const { platform, p } = make(true);
    const g = p.open(`/dev/vfio/${platform.pci.device(A)!.iommuGroup!.id}`);
    expect(status(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE);
    expect(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(p.open('/dev/vfio/vfio')))).toBe(0);
  });

  it('two VFIO devices of one group are both reachable through the one group fd', () => {
    const { platform, p, driver } = make(false);
    // Replace the host driver with the VFIO one.
    return platform.pci.unbind(B).then(() => {
      bindTo(platform, B);
      const c = p.open('/dev/vfio/vfio');
      const g = p.open(`/dev/vfio/${platform.pci.device(A)!.iommuGroup!.id}`);
      p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
      p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
      const da = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
      const db = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(B));
      expect(driver.devices.get(A)!.openCount).toBe(1);
      expect(driver.devices.get(B)!.openCount).toBe(1);
      expect(new Set([da, db]).size).toBe(2);
    });
  });

  it('sysfs shows the vfio-dev node of a registered device', () => {
    const { p, driver } = make(true);
    const dev = driver.devices.get(A)!;
    expect(p.readdir(`/sys/bus/pci/devices/${A}/vfio-dev`)).toEqual([dev.devName]);
    expect(p.readlink(`/sys/bus/pci/devices/${A}/iommu_group`)).toMatch(/iommu_groups\/\d+$/);
  });
});
