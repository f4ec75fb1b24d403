import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { Host, HostPlugin, Process } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1v2_IOMMU,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { mdevBus, registerMdevParent } from '../src/index.js';
import type { MdevParent } from '../src/index.js';
import { cat, echo, echoAsync, errnoOf, groupOf, MTEST_TYPES, mtestDriver, mtestLog, settle } from './helpers.js';
import type { MtestLog } from './helpers.js';

const U1 = '11111111-2222-3333-4444-555555555555';
const U2 = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const U3 = '01234567-89ab-cdef-0123-456789abcdef';
const TYPES = '/sys/devices/virtual/mtest/mtest/mdev_supported_types';

interface Setup {
  host: Host;
  p: Process;
  log: MtestLog;
  parent: () => MdevParent<{ weight: number }>;
}

function setup(maxInstances = 3): Setup {
  const log = mtestLog();
  let parent: MdevParent<{ weight: number }> | undefined;
  const plugin: HostPlugin = {
    name: 'mtest',
    setup(api) {
      parent = registerMdevParent(api, {
        parent: { virtual: { class: 'mtest', name: 'mtest' } },
        driver: mtestDriver(log, maxInstances),
        types: MTEST_TYPES,
      });
    },
  };
  const host = createHost({ platform: simPlatform(), plugins: [type1(), plugin] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_RAWIO', 'CAP_DAC_OVERRIDE'], memlockLimit: 64n << 20n });
  return { host, p, log, parent: () => parent! };
}

describe('sysfs of a parent', () => {
  it('lists the types with Linux attribute text', () => {
    const { p } = setup();
    expect(p.readdir(TYPES).sort()).toEqual(['mtest-a', 'mtest-b']);
    expect(p.readdir(`${TYPES}/mtest-a`).sort()).toEqual(
      ['available_instances', 'create', 'description', 'device_api', 'devices', 'name', 'weight'].sort(),
    );
    expect(cat(p, `${TYPES}/mtest-a/name`)).toBe('Type A\n');
    expect(cat(p, `${TYPES}/mtest-b/name`)).toBe('b\n');
    expect(cat(p, `${TYPES}/mtest-a/device_api`)).toBe('vfio-pci\n');
    expect(cat(p, `${TYPES}/mtest-a/available_instances`)).toBe('3\n');
    expect(cat(p, `${TYPES}/mtest-b/description`)).toBe('test type of weight 2\n');
    expect(cat(p, `${TYPES}/mtest-b/weight`)).toBe('2\n');
    expect(errnoOf(() => cat(p, `${TYPES}/mtest-a/create`))).toBe('EACCES');
    expect(p.readdir(`${TYPES}/mtest-a/devices`)).toEqual([]);
    expect(p.readlink('/sys/class/mdev_bus/mtest')).toBe('../../devices/virtual/mtest/mtest');
    expect(p.readdir('/sys/class/mtest')).toEqual(['mtest']);
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([]);
  });

  it('hides description when the driver has no showDescription', () => {
    const host = createHost({
      platform: simPlatform(),
      plugins: [
        {
          name: 'plain',
          setup(api) {
            registerMdevParent(api, {
              parent: { virtual: { class: 'plain', name: 'plain0' } },
              driver: { name: 'plain', deviceApi: 'vfio-ccw', maxInstances: 1, probe: () => undefined, remove: () => undefined },
              types: [{ sysfsName: 'x', data: undefined }],
            });
          },
        },
      ],
    });
    const p = host.spawn({ uid: 0 });
    const dir = '/sys/devices/virtual/plain/plain0/mdev_supported_types/plain-x';
    expect(p.readdir(dir).sort()).toEqual(['available_instances', 'create', 'device_api', 'devices', 'name']);
    expect(cat(p, `${dir}/device_api`)).toBe('vfio-ccw\n');
  });
});

describe('create and remove by UUID', () => {
  it('creates a device with its links and its own emulated IOMMU group', () => {
    const { host, p, log } = setup();
    expect(echo(p, `${TYPES}/mtest-a/create`, `${U1}\n`)).toBe(37);
    expect(log.probes).toEqual([U1]);
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([U1]);
    expect(p.readlink(`/sys/bus/mdev/devices/${U1}`)).toBe(`../../../devices/virtual/mtest/mtest/${U1}`);
    const dir = `/sys/bus/mdev/devices/${U1}`;
    expect(p.readdir(dir).sort()).toEqual(['driver', 'iommu_group', 'mdev_type', 'remove', 'subsystem', 'vendor', 'vfio-dev'].sort());
    expect(p.readlink(`${dir}/mdev_type`)).toBe('../mdev_supported_types/mtest-a');
    expect(cat(p, `${dir}/mdev_type/name`)).toBe('Type A\n');
    expect(p.readlink(`${dir}/driver`)).toBe('../../../../../bus/mdev/drivers/mtest');
    expect(cat(p, `${dir}/vendor/hello`)).toBe(`hello ${U1}\n`);
    expect(p.readdir(`${TYPES}/mtest-a/devices`)).toEqual([U1]);
    expect(p.readlink(`${TYPES}/mtest-a/devices/${U1}`)).toBe(`../../../${U1}`);
    expect(p.readdir('/sys/bus/mdev/drivers/mtest')).toEqual([U1]);
    const g = groupOf(p, U1);
    expect(p.readdir('/dev/vfio')).toContain(String(g));
    expect(p.readdir(`/sys/kernel/iommu_groups/${g}/devices`)).toEqual([U1]);
    expect(p.readlink(`/sys/kernel/iommu_groups/${g}/devices/${U1}`)).toBe(`../../../../devices/virtual/mtest/mtest/${U1}`);
    expect(cat(p, `/sys/kernel/iommu_groups/${g}/devices/${U1}/mdev_type/name`)).toBe('Type A\n');
    expect(cat(p, `/sys/kernel/iommu_groups/${g}/name`)).toBe('vfio-noiommu\n');
    const vfio = log.devices.get(U1)!;
    expect(p.readdir(`${dir}/vfio-dev`)).toEqual([vfio.devName]);
    expect(vfio.group?.type).toBe('emulated-iommu');
    // A second mdev gets a group of its own.
    echo(p, `${TYPES}/mtest-b/create`, U2);
    expect(groupOf(p, U2)).not.toBe(g);
    expect(host.log().some((l) => l.text.includes(`${U1}: MDEV: created (mtest-a)`))).toBe(true);
  });

  it('lets only root write create and remove', () => {
    const { host, p } = setup();
    const user = host.spawn({ uid: 1000 });
    expect(errnoOf(() => echo(user, `${TYPES}/mtest-a/create`, U1))).toBe('EACCES');
    expect(cat(user, `${TYPES}/mtest-a/available_instances`)).toBe('3\n');
    echo(p, `${TYPES}/mtest-a/create`, U1);
    expect(errnoOf(() => echo(user, `/sys/bus/mdev/devices/${U1}/remove`, '1'))).toBe('EACCES');
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([U1]);
  });

  it('parses UUIDs as create_store does', () => {
    const { p, log } = setup();
    const create = `${TYPES}/mtest-a/create`;
    expect(errnoOf(() => echo(p, create, U1.slice(0, 35)))).toBe('EINVAL');
    expect(errnoOf(() => echo(p, create, `${U1}\n\n`))).toBe('EINVAL');
    expect(errnoOf(() => echo(p, create, U1.replace('-', 'x')))).toBe('EINVAL');
    expect(errnoOf(() => echo(p, create, U1.replace('1', 'g')))).toBe('EINVAL');
    expect(errnoOf(() => echo(p, create, ` ${U1}`))).toBe('EINVAL');
    expect(log.probes).toEqual([]);
    // 37 bytes: the extra byte need not be a newline (only the first 36 are parsed); upper case is the same GUID.
    echo(p, create, `${U3.toUpperCase()}x`);
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([U3]);
    expect(errnoOf(() => echo(p, create, U3))).toBe('EEXIST');
    expect(errnoOf(() => echo(p, `${TYPES}/mtest-b/create`, U3.toUpperCase()))).toBe('EEXIST');
    expect(cat(p, `${TYPES}/mtest-a/available_instances`)).toBe('2\n');
  });

  it('counts available_instances down and up and answers EUSERS when exhausted', () => {
    const { p, parent } = setup(2);
    const avail = (t: string): string => cat(p, `${TYPES}/${t}/available_instances`);
    echo(p, `${TYPES}/mtest-a/create`, U1);
    expect([avail('mtest-a'), avail('mtest-b')]).toEqual(['1\n', '1\n']);
    echo(p, `${TYPES}/mtest-b/create`, U2);
    expect([avail('mtest-a'), avail('mtest-b')]).toEqual(['0\n', '0\n']);
    expect(errnoOf(() => echo(p, `${TYPES}/mtest-a/create`, U3))).toBe('EUSERS');
    expect(parent().availableInstances).toBe(0);
    echo(p, `/sys/bus/mdev/devices/${U1}/remove`, '1');
    expect(avail('mtest-a')).toBe('1\n');
    echo(p, `${TYPES}/mtest-a/create`, U3);
    expect(avail('mtest-b')).toBe('0\n');
    expect(p.readdir('/sys/bus/mdev/devices').sort()).toEqual([U3, U2].sort());
  });

  it('unwinds a failed probe', () => {
    const { p, log } = setup();
    log.failProbe = 'ENOSPC';
    expect(errnoOf(() => echo(p, `${TYPES}/mtest-a/create`, U1))).toBe('ENOSPC');
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([]);
    expect(p.readdir('/sys/devices/virtual/mtest/mtest')).toEqual(['mdev_supported_types', 'subsystem']);
    expect(cat(p, `${TYPES}/mtest-a/available_instances`)).toBe('3\n');
    echo(p, `${TYPES}/mtest-a/create`, U1);
    expect(log.probes).toEqual([U1]);
  });

  it('removes by writing a non-zero number to remove', () => {
    const { p, log } = setup();
    echo(p, `${TYPES}/mtest-a/create`, U1);
    const g = groupOf(p, U1);
    const remove = `/sys/bus/mdev/devices/${U1}/remove`;
    expect(errnoOf(() => echo(p, remove, 'yes'))).toBe('EINVAL');
    expect(errnoOf(() => echo(p, remove, '-1'))).toBe('EINVAL');
    expect(echo(p, remove, '0')).toBe(1);
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([U1]);
    expect(echo(p, remove, '0x1\n')).toBe(4);
    expect(log.removes).toEqual([U1]);
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([]);
    expect(p.readdir(`${TYPES}/mtest-a/devices`)).toEqual([]);
    expect(p.readdir('/sys/devices/virtual/mtest/mtest')).toEqual(['mdev_supported_types', 'subsystem']);
    expect(p.readdir('/dev/vfio')).not.toContain(String(g));
    expect(errnoOf(() => p.open(remove))).toBe('ENOENT');
    // The UUID is free again.
    echo(p, `${TYPES}/mtest-b/create`, U1);
    expect(cat(p, `/sys/bus/mdev/devices/${U1}/mdev_type/name`)).toBe('b\n');
  });
});

function groupOfDevice(log: MtestLog, uuid: string): number {
  return log.devices.get(uuid)!.group!.id;
}

function mapDma(p: Process, container: number, iova: bigint, size: bigint): bigint {
  const vaddr = p.mmap({ length: size });
  const map = vfioIommuType1DmaMap.encode({
    argsz: vfioIommuType1DmaMap.size,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    vaddr,
    iova,
    size,
  });
  p.ioctl(container, VFIO_IOMMU_MAP_DMA, map);
  return vaddr;
}

describe('an open mdev', () => {
  it('removal waits until the user closes the device', async () => {
    const { p, log, host } = setup();
    echo(p, `${TYPES}/mtest-a/create`, U1);
    const fds = openVfioDevice(p, { group: groupOf(p, U1), device: U1, iommuType: VFIO_TYPE1v2_IOMMU });
    let done = false;
    const removal = echoAsync(p, `/sys/bus/mdev/devices/${U1}/remove`, '1').then((n) => {
      done = true;
      return n;
    });
    await settle();
    expect(done).toBe(false);
    expect(log.requests).toEqual([{ uuid: U1, count: 0 }]);
    // While waiting: off the bus and out of the type, the device directory still there, no new opens.
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([]);
    expect(p.readdir(`${TYPES}/mtest-a/devices`)).toEqual([]);
    expect(p.readdir('/sys/devices/virtual/mtest/mtest')).toContain(U1);
    expect(errnoOf(() => echo(p, `${TYPES}/mtest-b/create`, U1))).toBe('EEXIST');
    expect(cat(p, `${TYPES}/mtest-a/available_instances`)).toBe('2\n');
    expect(mdevBus(host.api).describe().devices).toEqual([
      { uuid: U1, type: 'mtest-a', parent: 'mtest', state: 'removing', group: groupOfDevice(log, U1), openCount: 1 },
    ]);
    p.close(fds.device);
    expect(await removal).toBe(1);
    expect(done).toBe(true);
    expect(log.removes).toEqual([U1]);
    expect(p.readdir('/sys/devices/virtual/mtest/mtest')).not.toContain(U1);
    expect(cat(p, `${TYPES}/mtest-a/available_instances`)).toBe('3\n');
    expect(host.describe().devices).toEqual([]);
    expect(mdevBus(host.api).describe()).toMatchObject({
      devices: [],
      parents: [{ name: 'mtest', driver: 'mtest', types: [{ dir: 'mtest-a', availableInstances: 3, devices: [] }, { dir: 'mtest-b' }] }],
    });
    p.close(fds.group);
    p.close(fds.container);
  });

  it('pins through the container, dma_rw copies, and dma_unmap makes the driver unpin', () => {
    const { p, log, host } = setup();
    echo(p, `${TYPES}/mtest-a/create`, U1);
    const fds = openVfioDevice(p, { group: groupOf(p, U1), device: U1, iommuType: VFIO_TYPE1v2_IOMMU });
    const iova = 0x10_0000n;
    const vaddr = mapDma(p, fds.container, iova, 0x4000n);
    const dev = log.devices.get(U1)!;
    const locked = (): number => host.describe().processes.find((x) => x.pid === p.pid)!.lockedPages;
    const before = locked();
    const pfns = dev.pinPages(iova + 0x1000n, 2, 3);
    expect(pfns).toHaveLength(2);
    dev.data.pins.set(iova + 0x1000n, 1);
    dev.data.pins.set(iova + 0x2000n, 1);
    // Only an emulated group: the pins are what is accounted.
    expect(locked()).toBe(before + 2);
    dev.dmaRw(iova + 0x1010n, new TextEncoder().encode('from the device'), true);
    expect(new TextDecoder().decode(p.memory.read(vaddr + 0x1010n, 15))).toBe('from the device');
    p.memory.write(vaddr + 0x20n, new Uint8Array([1, 2, 3]));
    const back = new Uint8Array(3);
    dev.dmaRw(iova + 0x20n, back, false);
    expect([...back]).toEqual([1, 2, 3]);
    // Unmapping a range with pins calls the driver's dmaUnmap, which unpins; the unmap then succeeds.
    const unmap = vfioIommuType1DmaUnmap.encode({ argsz: vfioIommuType1DmaUnmap.size, iova, size: 0x4000n });
    p.ioctl(fds.container, VFIO_IOMMU_UNMAP_DMA, unmap);
    expect(log.unmaps).toEqual([{ iova, length: 0x4000n }]);
    expect(dev.data.pins.size).toBe(0);
    expect(vfioIommuType1DmaUnmap.decode(unmap).size).toBe(0x4000n);
    expect(locked()).toBe(before);
    expect(errnoOf(() => dev.pinPages(iova, 1, 1))).toBe('EINVAL');
    p.close(fds.device);
    // Closed: the helpers refuse.
    expect(errnoOf(() => dev.pinPages(iova, 1, 1))).toBe('EINVAL');
  });
});

describe('parents', () => {
  it('unregistering removes every child, waiting for open ones, and refuses creates meanwhile', async () => {
    const { p, parent, log } = setup();
    echo(p, `${TYPES}/mtest-a/create`, U1);
    echo(p, `${TYPES}/mtest-b/create`, U2);
    const fds = openVfioDevice(p, { group: groupOf(p, U2), device: U2, iommuType: VFIO_TYPE1v2_IOMMU });
    let done = false;
    const gone = parent().unregister().then(() => {
      done = true;
    });
    await settle();
    expect(done).toBe(false);
    expect(log.removes.sort()).toEqual([U1, U2].sort());
    expect(errnoOf(() => echo(p, `${TYPES}/mtest-a/create`, U3))).toBe('ENODEV');
    p.close(fds.device);
    await gone;
    expect(errnoOf(() => p.readdir(TYPES))).toBe('ENOENT');
    expect(p.readdir('/sys/bus/mdev/devices')).toEqual([]);
    expect(p.readdir('/sys/class/mdev_bus')).toEqual([]);
    expect(mdevBus(parent().bus.api).parents).toEqual([]);
  });

  it('a PCI function can be a parent: types and devices live in its sysfs directory', () => {
    const config = new Uint8Array(256);
    new DataView(config.buffer).setUint32(0, 0x11118086, true);
    const log = mtestLog();
    const host = createHost({
      platform: simPlatform({ devices: [{ bdf: '0000:00:02.0', fn: pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' }) }] }),
      plugins: [
        type1(),
        {
          name: 'vgpu',
          setup(api) {
            registerMdevParent(api, { parent: { pci: '0000:00:02.0' }, driver: mtestDriver(log), types: MTEST_TYPES });
          },
        },
      ],
    });
    const p = host.spawn({ uid: 0 });
    const types = '/sys/bus/pci/devices/0000:00:02.0/mdev_supported_types';
    expect(p.readdir(types).sort()).toEqual(['pci-a', 'pci-b']);
    echo(p, `${types}/pci-b/create`, U2);
    expect(p.readlink(`/sys/bus/mdev/devices/${U2}`)).toBe(`../../../devices/pci0000:00/0000:00:02.0/${U2}`);
    expect(p.readdir('/sys/bus/pci/devices/0000:00:02.0')).toContain(U2);
    expect(p.readlink(`/sys/bus/mdev/devices/${U2}/mdev_type`)).toBe('../mdev_supported_types/pci-b');
    expect(p.readlink('/sys/class/mdev_bus/0000:00:02.0')).toBe('../../devices/pci0000:00/0000:00:02.0');
    echo(p, `/sys/bus/mdev/devices/${U2}/remove`, '1');
    expect(p.readdir('/sys/bus/pci/devices/0000:00:02.0')).not.toContain(U2);
  });

  it('refuses bad registrations', () => {
    const host = createHost({ platform: simPlatform() });
    const bus = mdevBus(host.api);
    const driver = mtestDriver(mtestLog());
    expect(errnoOf(() => bus.registerParent({ parent: { pci: '0000:00:09.0' }, driver, types: MTEST_TYPES }))).toBe('ENODEV');
    expect(errnoOf(() => bus.registerParent({ parent: { virtual: { class: 'x', name: 'y' } }, driver, types: [] }))).toBe('EINVAL');
    const dup = [MTEST_TYPES[0]!, MTEST_TYPES[0]!];
    expect(errnoOf(() => bus.registerParent({ parent: { virtual: { class: 'x', name: 'y' } }, driver, types: dup }))).toBe('EINVAL');
    bus.registerParent({ parent: { virtual: { class: 'x', name: 'y' } }, driver, types: MTEST_TYPES });
    expect(errnoOf(() => bus.registerParent({ parent: { virtual: { class: 'x', name: 'y' } }, driver, types: MTEST_TYPES }))).toBe('EEXIST');
    // Two hosts never share a bus.
    const other = createHost({ platform: simPlatform() });
    expect(mdevBus(other.api).parents).toEqual([]);
  });
});
