/**
 * The exported helpers (openVfioDevice, groupStatus) and the external file helpers (§2.8): KVM propagation,
 * enforced coherency, file_has_dev.
 */
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE, VFIO_SPAPR_TCE_IOMMU, VFIO_TYPE1v2_IOMMU } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { createHost, groupStatus, openVfioDevice } from '../src/index.js';
import type { HostPluginApi } from '../src/index.js';
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

describe('zapping device mappings', () => {
  it('revokes every mapping; the next access goes through mmapFault', () => {
    const driver = testDriver();
    const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({ platform, plugins: [testBackend().plugin, driver.plugin] });
    bindTo(platform, A);
    const p = host.spawn({ uid: 0 });
    const fds = openVfioDevice(p, { group: platform.pci.device(A)!.iommuGroup!.id, device: A, iommuType: VFIO_TYPE1v2_IOMMU });
    const dev = driver.devices.get(A)!;
    const va = p.mmap({ length: 4096, fd: fds.device });
    const vb = p.mmap({ length: 4096, fd: fds.device });
    expect(dev.mappingCount).toBe(2);
    p.memory.write(va, new Uint8Array([7]));
    dev.zapMappings();
    dev.data.memoryOff = true;
    expectErrno(() => p.memory.read(va, 1), 'EFAULT');
    dev.data.memoryOff = false;
    expect([...p.memory.read(va, 1)]).toEqual([7]);
    expect([...p.memory.read(vb, 1)]).toEqual([7]);
    expect(driver.trace.filter((t) => t.startsWith('fault'))).toHaveLength(3);
    // Faulted back in: no more faults until the next zap.
    p.memory.read(va, 1);
    expect(driver.trace.filter((t) => t.startsWith('fault'))).toHaveLength(3);
    p.munmap(vb, 4096n);
    expect(dev.mappingCount).toBe(1);
    p.exit();
    expect(dev.mappingCount).toBe(0);
    expect(dev.openCount).toBe(0);
  });
});

describe('runtime PM bracketing', () => {
  it('resumes around every device ioctl and fails with EIO when resume fails', () => {
    const trace: string[] = [];
    let fail = false;
    let api!: HostPluginApi;
    const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({
      platform,
      plugins: [
        testBackend().plugin,
        {
          name: 'pm',
          setup(a) {
            api = a;
          },
        },
      ],
    });
    const dev = api.allocDevice({
      name: A,
      data: null,
      ops: {
        pmRuntimeGet: () => {
          if (fail) throw new Error('D3cold');
          trace.push('get');
        },
        pmRuntimePut: () => trace.push('put'),
        ioctl: () => {
          trace.push('ioctl');
          return 5;
        },
      },
    });
    api.registerGroupDevice(dev);
    const p = host.spawn({ uid: 0 });
    const fds = openVfioDevice(p, { group: platform.pci.device(A)!.iommuGroup!.id, device: A, iommuType: VFIO_TYPE1v2_IOMMU });
    expect(p.ioctl(fds.device, 0x3b00 + 100 + 7, new Uint8Array(24))).toBe(5);
    expect(trace).toEqual(['get', 'ioctl', 'put']);
    fail = true;
    expectErrno(() => p.ioctl(fds.device, 0x3b00 + 100 + 7, new Uint8Array(24)), 'EIO');
    expect(trace).toEqual(['get', 'ioctl', 'put']);
  });
});

describe('migration and logging ops slots', () => {
  it('carries the driver ops a feature handler needs', () => {
    let api!: HostPluginApi;
    const seen: unknown[] = [];
    createHost({
      platform: simPlatform({}),
      plugins: [
        {
          name: 'mig',
          setup(a) {
            api = a;
            a.registerFeatureHandler(1, (device) => {
              seen.push(device.migrationOps, device.migrationFlags);
              return 0;
            });
          },
        },
      ],
    });
    const migOps = { getState: () => 2 };
    const dev = api.allocDevice({ name: 'x', ops: {}, data: null, migrationOps: migOps, migrationFlags: 1 });
    expect(dev.migrationOps).toBe(migOps);
    expect(dev.logOps).toBe(undefined);
    expect(dev.migrationFlags).toBe(1);
  });
});
