/**
 * The exported helpers (openVfioDevice, groupStatus) and the external file helpers (§2.8): KVM propagation,
 * enforced coherency, file_has_dev.
 */
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE, VFIO_SPAPR_TCE_IOMMU, VFIO_TYPE1v2_IOMMU } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { createHost, groupStatus, openVfioDevice } from '../src/index.js';
import { bindTo, expectErrno, fn, testBackend, testDriver } from './helpers.js';

const A = '0000:00:03.0';

describe('openVfioDevice', () => {
  it('does the QEMU flow and unwinds on failure', () => {
    const driver = testDriver();
    const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({ platform, plugins: [testBackend().plugin, driver.plugin] });
    bindTo(platform, A);
    const gid = platform.pci.device(A)!.iommuGroup!.id;
    const p = host.spawn({ uid: 0 });
    expectErrno(() => openVfioDevice(p, { group: gid, device: A, iommuType: VFIO_SPAPR_TCE_IOMMU }), 'ENODEV');
    expect(p.fds()).toEqual([]);
    const fds = openVfioDevice(p, { group: gid, device: A, iommuType: VFIO_TYPE1v2_IOMMU });
    expect(fds).toEqual({ container: 3, group: 4, device: 5 });
    expect(groupStatus(p, fds.group)).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    const dev = driver.devices.get(A)!;
    const api = driver.api();
    expect(api.fileHasDevice(p.file(fds.group), dev)).toBe(true);
    expect(api.fileHasDevice(p.file(fds.device), dev)).toBe(true);
    expect(api.fileHasDevice(p.file(fds.container), dev)).toBe(false);
    expect(api.fileIsGroup(p.file(fds.group))).toBe(true);
    expect(api.deviceOfFile(p.file(fds.device))).toBe(dev);
    expect(api.fileEnforcedCoherent(p.file(fds.group))).toBe(true);
    expect(api.fileEnforcedCoherent(p.file(fds.container))).toBe(undefined);
  });

  it('hands the group KVM pointer to the device between first open and last close', () => {
    const driver = testDriver();
    const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({ platform, plugins: [testBackend().plugin, driver.plugin] });
    bindTo(platform, A);
    const p = host.spawn({ uid: 0 });
    const gid = platform.pci.device(A)!.iommuGroup!.id;
    const g = p.open(`/dev/vfio/${gid}`);
    const kvm = { vm: 1 };
    driver.api().fileSetKvm(p.file(g), kvm);
    p.close(g);
    const fds = openVfioDevice(p, { group: `/dev/vfio/${gid}`, device: A, iommuType: VFIO_TYPE1v2_IOMMU });
    expect(driver.devices.get(A)!.kvm).toBe(kvm);
    p.close(fds.device);
    expect(driver.devices.get(A)!.kvm).toBe(undefined);
  });
});
