import type { PciDriver, VfsNode } from '@vfio-ts/platform';
import { describe, expect, it } from 'vitest';
import { ConfigSpaceFunction, pciFunctionFromConfig, simPlatform, type SimPlatform } from '../src/index.js';
import { cat, echo, expectErrno, expectErrnoAsync, file, fixture, fn, ls, readlink } from './helpers.js';

const E1000E_BARS = '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000,rom:0x40000';

function host(): SimPlatform {
  return simPlatform({
    iommu: 'vtd',
    devices: [
      { bdf: '0000:00:02.0', fn: pciFunctionFromConfig({ config: fixture('edu'), bars: '0:mem32:0x100000' }) },
      { bdf: '0000:00:04.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: '0000:01:00.0', fn: pciFunctionFromConfig({ config: fixture('e1000e'), bars: E1000E_BARS }), driver: 'e1000e' },
    ],
    hostDrivers: [{ name: 'e1000e', ids: ['8086:10d3'] }],
  });
}

describe('sysfs: /sys/bus/pci/devices', () => {
  it('prints ids, class and resources as Linux does', () => {
    const p = host();
    const d = '/sys/bus/pci/devices/0000:01:00.0';
    expect(cat(p, `${d}/vendor`)).toBe('0x8086\n');
    expect(cat(p, `${d}/device`)).toBe('0x10d3\n');
    expect(cat(p, `${d}/subsystem_vendor`)).toBe('0x8086\n');
    expect(cat(p, `${d}/subsystem_device`)).toBe('0x0000\n');
    expect(cat(p, `${d}/class`)).toBe('0x020000\n');
    expect(cat(p, '/sys/bus/pci/devices/0000:00:02.0/class')).toBe('0x00ff00\n');
    expect(cat(p, `${d}/driver_override`)).toBe('(null)\n');
    expect(cat(p, `${d}/reset_method`)).toBe('pm bus\n');
    expect(cat(p, `${d}/resource`).split('\n').slice(0, 7)).toEqual([
      '0x00000000feb80000 0x00000000feb9ffff 0x0000000000040200',
      '0x00000000feba0000 0x00000000febbffff 0x0000000000040200',
      '0x000000000000c040 0x000000000000c05f 0x0000000000040101',
      '0x00000000febc0000 0x00000000febc3fff 0x0000000000040200',
      '0x0000000000000000 0x0000000000000000 0x0000000000000000',
      '0x0000000000000000 0x0000000000000000 0x0000000000000000',
      '0x00000000feb40000 0x00000000feb7ffff 0x0000000000046200',
    ]);
    expect(file(p, `${d}/vendor`).mode).toBe(0o444);
    expect(file(p, `${d}/driver_override`).mode).toBe(0o644);
    expect(file(p, `${d}/reset`).mode).toBe(0o200);
  });

  it('links devices, iommu groups and drivers with Linux relative paths', () => {
    const p = host();
    expect(readlink(p, '/sys/bus/pci/devices/0000:01:00.0')).toBe('../../../devices/pci0000:00/0000:00:04.0/0000:01:00.0');
    expect(readlink(p, '/sys/bus/pci/devices/0000:00:02.0/iommu_group')).toBe('../../../kernel/iommu_groups/0');
    expect(readlink(p, '/sys/bus/pci/devices/0000:01:00.0/iommu_group')).toBe('../../../../kernel/iommu_groups/2');
    expect(readlink(p, '/sys/bus/pci/devices/0000:01:00.0/driver')).toBe('../../../../bus/pci/drivers/e1000e');
    expect(readlink(p, '/sys/bus/pci/drivers/e1000e/0000:01:00.0')).toBe('../../../../devices/pci0000:00/0000:00:04.0/0000:01:00.0');
    expect(readlink(p, '/sys/kernel/iommu_groups/2/devices/0000:01:00.0')).toBe('../../../../devices/pci0000:00/0000:00:04.0/0000:01:00.0');
    // Following the links lands on the same directory.
    expect(p.lookupSysfs('/sys/kernel/iommu_groups/2/devices/0000:01:00.0/iommu_group').path).toBe('/sys/kernel/iommu_groups/2');
    expect(ls(p, '/sys/bus/pci/devices/0000:00:02.0')).not.toContain('driver');
    expect(ls(p, '/sys/kernel/iommu_groups')).toEqual(['0', '1', '2']);
    expect(ls(p, '/sys/bus/pci/drivers')).toEqual(['e1000e', 'pci-stub', 'pcieport']);
    expect(ls(p, '/sys/bus/pci/drivers/e1000e')).toEqual(['0000:01:00.0', 'bind', 'new_id', 'remove_id', 'unbind']);
    expectErrno(() => p.lookupSysfs('/sys/bus/pci/devices/0000:09:00.0'), 'ENOENT');
  });

  it('iommu group attributes', () => {
    const p = host();
    expect(cat(p, '/sys/kernel/iommu_groups/0/type')).toBe('DMA\n');
    expect(cat(p, '/sys/kernel/iommu_groups/0/reserved_regions')).toBe('0x00000000fee00000 0x00000000feefffff msi\n');
    const soft = p.allocSoftGroup('vfio-noiommu');
    expect(soft.id).toBe(3);
    expect(cat(p, '/sys/kernel/iommu_groups/3/name')).toBe('vfio-noiommu\n');
    expect(cat(p, '/sys/kernel/iommu_groups/3/reserved_regions')).toBe('');
  });

  it('config is a binary attribute with pread/pwrite of naturally aligned cycles', () => {
    const p = host();
    const cfg = file(p, '/sys/bus/pci/devices/0000:01:00.0/config');
    expect(cfg.read().length).toBe(4096);
    expect(file(p, '/sys/bus/pci/devices/0000:00:02.0/config').read()).toEqual(fixture('edu'));
    expect([...cfg.pread!(3, 1)]).toEqual([0x80, 0xd3, 0x10]);
    expect(cfg.pwrite!(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0x10)).toBe(4);
    expect([...cfg.pread!(4, 0x10)]).toEqual([0x00, 0x00, 0xfe, 0xff]);
    expect(cfg.pread!(16, 4090).length).toBe(6);
  });
});

describe('sysfs: binding through the driver files', () => {
  it('driver_override + drivers_probe, unbind, bind, new_id', async () => {
    const p = host();
    const log: string[] = [];
    const vfio: PciDriver = {
      name: 'vfio-pci',
      driverManagedDma: true,
      probe: (d) => {
        log.push(`probe ${d.bdf}`);
      },
      remove: async (d) => {
        await Promise.resolve();
        log.push(`remove ${d.bdf}`);
      },
    };
    p.pci.registerDriver(vfio);
    const dev = '/sys/bus/pci/devices/0000:01:00.0';
    await echo(p, '/sys/bus/pci/drivers/e1000e/unbind', '0000:01:00.0\n');
    expect(ls(p, dev)).not.toContain('driver');
    await expectErrnoAsync(echo(p, '/sys/bus/pci/drivers/e1000e/unbind', '0000:01:00.0'), 'ENODEV');
    await echo(p, `${dev}/driver_override`, 'vfio-pci\n');
    expect(cat(p, `${dev}/driver_override`)).toBe('vfio-pci\n');
    // With an override, only that driver matches.
    expectErrno(() => echo(p, '/sys/bus/pci/drivers/e1000e/bind', '0000:01:00.0'), 'ENODEV');
    await echo(p, '/sys/bus/pci/drivers_probe', '0000:01:00.0');
    expect(readlink(p, `${dev}/driver`)).toBe('../../../../bus/pci/drivers/vfio-pci');
    await echo(p, '/sys/bus/pci/drivers/vfio-pci/unbind', '0000:01:00.0');
    expect(log).toEqual(['probe 0000:01:00.0', 'remove 0000:01:00.0']);
    await echo(p, `${dev}/driver_override`, '\n');
    expect(cat(p, `${dev}/driver_override`)).toBe('(null)\n');
    await echo(p, '/sys/bus/pci/drivers/e1000e/bind', '0000:01:00.0');
    expect(readlink(p, `${dev}/driver`)).toBe('../../../../bus/pci/drivers/e1000e');
    // new_id on pci-stub: the edu device gets bound at once; a second identical new_id is EEXIST.
    await echo(p, '/sys/bus/pci/drivers/pci-stub/new_id', '1234 11e8');
    expect(readlink(p, '/sys/bus/pci/devices/0000:00:02.0/driver')).toBe('../../../bus/pci/drivers/pci-stub');
    expectErrno(() => echo(p, '/sys/bus/pci/drivers/pci-stub/new_id', '1234 11e8\n'), 'EEXIST');
    expectErrno(() => echo(p, '/sys/bus/pci/drivers/pci-stub/new_id', '1234'), 'EINVAL');
    await echo(p, '/sys/bus/pci/drivers/pci-stub/remove_id', '1234 11e8');
    expectErrno(() => echo(p, '/sys/bus/pci/drivers/pci-stub/remove_id', '1234 11e8'), 'ENODEV');
    expectErrno(() => echo(p, '/sys/bus/pci/drivers_probe', '0000:09:00.0'), 'ENODEV');
  });

  it('reset attribute runs a function reset; write-only files refuse reads', () => {
    const p = host();
    const f = p.pci.device('0000:01:00.0')!.fn;
    if (!(f instanceof ConfigSpaceFunction)) throw new Error('expected a config-space function');
    void echo(p, '/sys/bus/pci/devices/0000:01:00.0/reset', '1\n');
    expect(f.resets).toEqual(['pm']);
    expectErrno(() => echo(p, '/sys/bus/pci/devices/0000:01:00.0/reset', '2'), 'EINVAL');
    expect(ls(p, '/sys/bus/pci/devices/0000:00:02.0')).not.toContain('reset'); // edu has no reset method
    expectErrno(() => cat(p, '/sys/bus/pci/devices/0000:01:00.0/reset'), 'EACCES');
  });
});

describe('addSysfsNode', () => {
  it('adds nodes under platform directories (through symlinks) and undoes them', () => {
    const p = host();
    const node: VfsNode = { kind: 'dir', mode: 0o755, uid: 0, gid: 0, entries: () => new Map() };
    const undo = p.addSysfsNode('/sys/bus/pci/devices/0000:00:02.0', 'vfio-dev', node);
    expect(ls(p, '/sys/devices/pci0000:00/0000:00:02.0')).toContain('vfio-dev');
    expectErrno(() => p.addSysfsNode('/sys/bus/pci/devices/0000:00:02.0', 'vfio-dev', node), 'EEXIST');
    expectErrno(() => p.addSysfsNode('/sys/bus/pci/devices/0000:00:02.0', 'vendor', node), 'EEXIST');
    expectErrno(() => p.addSysfsNode('/sys/nowhere', 'x', node), 'ENOENT');
    expectErrno(() => p.addSysfsNode('/sys/bus/pci/devices/0000:00:02.0/vfio-dev', 'x', node), 'EINVAL');
    const mod = p.addSysfsNode('/sys', 'module', node);
    expect(ls(p, '/sys')).toEqual(['bus', 'devices', 'kernel', 'module']);
    undo();
    mod();
    expect(ls(p, '/sys/bus/pci/devices/0000:00:02.0')).not.toContain('vfio-dev');
    expect(ls(p, '/sys')).toEqual(['bus', 'devices', 'kernel']);
  });

  it('works without an IOMMU: no iommu_group links', () => {
    const p = simPlatform({ iommu: 'none', devices: [{ bdf: '0000:00:03.0', fn: fn() }] });
    expect(ls(p, '/sys/bus/pci/devices/0000:00:03.0')).not.toContain('iommu_group');
    expect(ls(p, '/sys/kernel/iommu_groups')).toEqual([]);
    p.allocSoftGroup('vfio-noiommu', '0000:00:03.0');
    expect(readlink(p, '/sys/bus/pci/devices/0000:00:03.0/iommu_group')).toBe('../../../kernel/iommu_groups/0');
    expect(cat(p, '/sys/kernel/iommu_groups/0/type')).toBe('unknown\n');
  });
});
