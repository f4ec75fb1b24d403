/**
 * Permissions and no-IOMMU mode (inventory §1.3, §2.9): group nodes are root 0600, no-IOMMU needs the module
 * parameter and CAP_SYS_RAWIO, and never mixes with real groups in a container.
 */
import { simPlatform } from '@vfio-ts/sim';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { createHost, O_RDONLY, O_WRONLY, R_OK, W_OK } from '../src/index.js';
import { bindTo, cstr, expectErrno, fn, s32, TEST_BACKEND_IOCTL, testBackend, testDriver } from './helpers.js';

const A = '0000:00:03.0';

describe('permissions', () => {
  it('uid 1000 gets EACCES on a root 0600 group node until an admin chowns it', () => {
    const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({ platform, plugins: [testBackend().plugin, testDriver().plugin] });
    bindTo(platform, A);
    const gid = platform.pci.device(A)!.iommuGroup!.id;
    const user = host.spawn({ uid: 1000, capabilities: [] });
    // The container node is 0666: anyone may open it.
    expect(user.open('/dev/vfio/vfio')).toBe(3);
    expectErrno(() => user.open(`/dev/vfio/${gid}`), 'EACCES');
    expectErrno(() => user.access(`/dev/vfio/${gid}`, R_OK | W_OK), 'EACCES');
    expect(user.access(`/dev/vfio/${gid}`)).toBe(0);
    host.chown(`/dev/vfio/${gid}`, 1000, 1000);
    const g = user.open(`/dev/vfio/${gid}`);
    expect(user.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(3))).toBe(0);
    // chmod back to 0600 for another uid.
    const other = host.spawn({ uid: 1001 });
    expectErrno(() => other.open(`/dev/vfio/${gid}`), 'EACCES');
    host.chmod(`/dev/vfio/${gid}`, 0o666);
    expectErrno(() => other.open(`/dev/vfio/${gid}`), 'EBUSY');
  });

  it('module parameters: 0644 writable by root only, 0444 by nobody', () => {
    const platform = simPlatform({});
    const host = createHost({
      platform,
      plugins: [
        {
          name: 'params',
          setup(api) {
            api.declareParam('demo', 'ro', { default: '7', mode: 0o444 });
          },
        },
      ],
      params: { 'demo.ro': 9 },
    });
    const root = host.spawn({ uid: 0, capabilities: ['CAP_DAC_OVERRIDE'] });
    const user = host.spawn({ uid: 1000 });
    const path = '/sys/module/vfio/parameters/enable_unsafe_noiommu_mode';
    expect(new TextDecoder().decode(user.read(user.open(path, O_RDONLY), 16))).toBe('N\n');
    expectErrno(() => user.open(path, O_WRONLY), 'EACCES');
    const w = root.open(path, O_WRONLY);
    expect(root.write(w, new TextEncoder().encode('1\n'))).toBe(2);
    expect(host.param('vfio', 'enable_unsafe_noiommu_mode')).toBe('Y');
    expectErrno(() => root.write(w, new TextEncoder().encode('maybe')), 'EINVAL');
    expect(host.param('vfio', 'enable_unsafe_noiommu_mode')).toBe('Y');
    expect(host.param('demo', 'ro')).toBe('9');
    expectErrno(() => root.open('/sys/module/demo/parameters/ro', O_WRONLY), 'EACCES');
    expect(root.readdir('/sys/module')).toEqual(['demo', 'vfio']);
  });

  it('an unknown module parameter in the options throws', () => {
    expectErrno(() => createHost({ platform: simPlatform({}), params: { 'vfio.nope': 1 } }), 'EINVAL');
    expectErrno(() => createHost({ platform: simPlatform({}), params: { 'vfio.enable_unsafe_noiommu_mode': 'maybe' } }), 'EINVAL');
  });
});

describe('no-IOMMU mode', () => {
  function make(enable: boolean) {
    const backend = testBackend();
    const driver = testDriver();
    const platform = simPlatform({ iommu: 'none', devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({
      platform,
      plugins: [backend.plugin, driver.plugin],
      params: { 'vfio.enable_unsafe_noiommu_mode': enable },
    });
    return { host, platform, driver, backend };
  }

  it('is off by default: a device without an IOMMU group cannot register', () => {
    const { platform, driver } = make(false);
    expectErrno(() => {
      bindTo(platform, A);
    }, 'EINVAL');
    expect(driver.devices.size).toBe(0);
  });

  it('with the opt-in: noiommu-N group, taint, RAWIO gates, only the noiommu backend', () => {
    const { platform, host, driver } = make(true);
    bindTo(platform, A);
    const dev = driver.devices.get(A)!;
    const node = `noiommu-${dev.group!.id}`;
    expect(host.log().some((l) => l.text.includes('taint'))).toBe(true);
    expect(host.vfio.describe().groups).toEqual([expect.objectContaining({ type: 'no-iommu', node: `/dev/vfio/${node}` })]);

    const plain = host.spawn({ uid: 0 });
    expectErrno(() => plain.open(`/dev/vfio/${node}`), 'EPERM');

    const p = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'] });
    const c = p.open('/dev/vfio/vfio');
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU)).toBe(1);
    const g = p.open(`/dev/vfio/${node}`);
    expect(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c))).toBe(0);
    // A no-IOMMU container polls only the no-IOMMU backend.
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expectErrno(() => p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'ENODEV');
    // Dropping RAWIO: the backend's open refuses (EPERM is the last error).
    const child = p.fork();
    child.capset({ effective: [] });
    expectErrno(() => child.ioctl(c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), 'EPERM');
    expect(p.ioctl(c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU)).toBe(0);
    expectErrno(() => p.ioctl(c, TEST_BACKEND_IOCTL), 'ENOTTY');
    // Device use needs RAWIO too.
    expectErrno(() => child.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'EPERM');
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expect(d).toBeGreaterThan(0);
    expect(host.log().some((l) => l.text.includes('vfio-noiommu device opened by user'))).toBe(true);
    // Turning the parameter off hides extension 8 from new containers.
    host.setParam('vfio', 'enable_unsafe_noiommu_mode', false);
    expect(p.ioctl(p.open('/dev/vfio/vfio'), VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU)).toBe(0);
  });

  it('never mixes no-IOMMU and IOMMU groups in one container', () => {
    const driver = testDriver();
    const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({
      platform,
      plugins: [testBackend().plugin, driver.plugin],
      params: { 'vfio.enable_unsafe_noiommu_mode': 'Y' },
    });
    bindTo(platform, A);
    // An emulated-IOMMU-less device: register one through the API with no group in the platform.
    const api = driver.api();
    const nd = api.allocDevice({
      name: 'platform-dev',
      ops: {},
      data: null,
    });
    api.registerGroupDevice(nd);
    const p = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'] });
    const c = p.open('/dev/vfio/vfio');
    const real = p.open(`/dev/vfio/${platform.pci.device(A)!.iommuGroup!.id}`);
    const fake = p.open(`/dev/vfio/noiommu-${nd.group!.id}`);
    p.ioctl(real, VFIO_GROUP_SET_CONTAINER, s32(c));
    expectErrno(() => p.ioctl(fake, VFIO_GROUP_SET_CONTAINER, s32(c)), 'EPERM');
    const c2 = p.open('/dev/vfio/vfio');
    p.ioctl(fake, VFIO_GROUP_SET_CONTAINER, s32(c2));
    expectErrno(() => p.ioctl(real, VFIO_GROUP_SET_CONTAINER, s32(c2)), 'EINVAL');
    p.ioctl(real, VFIO_GROUP_UNSET_CONTAINER);
    expectErrno(() => p.ioctl(real, VFIO_GROUP_SET_CONTAINER, s32(c2)), 'EPERM');
  });
});
