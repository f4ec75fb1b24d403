import type { PciDeviceHandle, PciDriver, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { describe, expect, it } from 'vitest';
import { pciFunctionFromConfig, simPlatform, type SimPciDeviceEntry, type SimPlatform } from '../src/index.js';
import { expectErrno, expectErrnoAsync, fixture, fn } from './helpers.js';

const PCIE_ENDPOINT = 0;

function groupsOf(p: SimPlatform): Record<string, number> {
  return Object.fromEntries(p.pci.devices().map((d) => [d.bdf, d.iommuGroup!.id]));
}

describe('IOMMU groups from the topology (pci_device_group)', () => {
  it('matches the DESIGN.md example', () => {
    const p = simPlatform({
      iommu: 'vtd',
      devices: [
        { bdf: '0000:00:03.0', fn: fn() },
        { bdf: '0000:00:04.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
        { bdf: '0000:01:00.0', fn: fn(0x8086, 0x100e), driver: 'e1000' },
      ],
      hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }],
    });
    expect(groupsOf(p)).toEqual({ '0000:00:03.0': 0, '0000:00:04.0': 1, '0000:01:00.0': 2 });
    expect(p.pci.device('0000:01:00.0')!.driver).toBe('e1000');
    expect(p.pci.device('0000:00:04.0')!.driver).toBe('pcieport');
    expect(p.pci.device('0000:00:03.0')!.driver).toBeUndefined();
    expect(p.pci.device('0000:01:00.0')!.parent).toBe('0000:00:04.0');
    expect(p.pci.device('0000:01:00.0')!.bus).toBe(1);
  });

  it('a switch downstream port without ACS shares its group with what is below; with ACS it does not', () => {
    const topo = (acs: boolean): SimPciDeviceEntry[] => [
      { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: '0000:01:00.0', bridge: 'pcie-switch-upstream', secondaryBus: 2 },
      { bdf: '0000:02:00.0', bridge: 'pcie-switch-downstream', secondaryBus: 3, acs },
      { bdf: '0000:02:01.0', bridge: 'pcie-switch-downstream', secondaryBus: 4, acs: true },
      { bdf: '0000:03:00.0', fn: fn(0x1, 0x1, { pcie: PCIE_ENDPOINT }) },
      { bdf: '0000:04:00.0', fn: fn(0x1, 0x2, { pcie: PCIE_ENDPOINT }) },
    ];
    const shared = groupsOf(simPlatform({ devices: topo(false) }));
    expect(shared['0000:03:00.0']).toBe(shared['0000:02:00.0']);
    expect(shared['0000:04:00.0']).not.toBe(shared['0000:02:01.0']);
    const isolated = groupsOf(simPlatform({ devices: topo(true) }));
    expect(isolated['0000:03:00.0']).not.toBe(isolated['0000:02:00.0']);
    expect(new Set(Object.values(isolated)).size).toBe(6);
  });

  it('a root port without ACS pulls everything below it into its group', () => {
    const g = groupsOf(
      simPlatform({
        devices: [
          { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1 },
          { bdf: '0000:01:00.0', bridge: 'pcie-switch-upstream', secondaryBus: 2 },
          { bdf: '0000:02:00.0', bridge: 'pcie-switch-downstream', secondaryBus: 3, acs: true },
          { bdf: '0000:03:00.0', fn: fn(0x1, 0x1, { pcie: PCIE_ENDPOINT }) },
        ],
      }),
    );
    expect(new Set(Object.values(g))).toEqual(new Set([0]));
  });

  it('functions of a multifunction device share a group unless they have ACS', () => {
    const devices = (acs: boolean): SimPciDeviceEntry[] => [
      { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: '0000:01:00.0', fn: fn(0x1, 0x1, { pcie: PCIE_ENDPOINT, multifunction: true, acs }) },
      { bdf: '0000:01:00.1', fn: fn(0x1, 0x2, { pcie: PCIE_ENDPOINT, multifunction: true, acs }) },
      { bdf: '0000:00:1f.0', fn: fn(0x1, 0x3) },
      { bdf: '0000:00:1f.3', fn: fn(0x1, 0x4) }, // several functions in one slot = multifunction
    ];
    const without = groupsOf(simPlatform({ devices: devices(false) }));
    expect(without['0000:01:00.0']).toBe(without['0000:01:00.1']);
    expect(without['0000:00:1f.0']).toBe(without['0000:00:1f.3']);
    const withAcs = groupsOf(simPlatform({ devices: devices(true) }));
    expect(withAcs['0000:01:00.0']).not.toBe(withAcs['0000:01:00.1']);
  });

  it('everything behind a conventional PCI bridge shares the bridge group; bus-0 endpoints are isolated', () => {
    const g = groupsOf(
      simPlatform({
        devices: [
          { bdf: '0000:00:02.0', fn: fn(0x1, 0x1) },
          { bdf: '0000:00:03.0', fn: fn(0x1, 0x2) },
          { bdf: '0000:00:05.0', bridge: 'pci-bridge', secondaryBus: 1 },
          { bdf: '0000:01:01.0', fn: fn(0x1, 0x3) },
          { bdf: '0000:01:02.0', fn: fn(0x1, 0x4) },
        ],
      }),
    );
    expect(g).toEqual({ '0000:00:02.0': 0, '0000:00:03.0': 1, '0000:00:05.0': 2, '0000:01:01.0': 2, '0000:01:02.0': 2 });
  });

  it('rejects bad topologies', () => {
    expectErrno(() => simPlatform({ devices: [{ bdf: '0000:00:20.0', fn: fn() }] }), 'EINVAL');
    expectErrno(() => simPlatform({ devices: [{ bdf: '00:03.0', fn: fn() }] }), 'EINVAL');
    expectErrno(() => simPlatform({ devices: [{ bdf: '0000:00:03.0', fn: fn() }, { bdf: '0000:00:03.0', fn: fn() }] }), 'EEXIST');
    expectErrno(() => simPlatform({ devices: [{ bdf: '0000:00:03.0', fn: fn(), driver: '' }] }), 'EINVAL');
    expectErrno(
      () => simPlatform({ devices: [{ bdf: '0000:01:00.0', bridge: 'pcie-root-port', secondaryBus: 1 }] }),
      'EINVAL',
    );
  });
});

function ownershipHost(): SimPlatform {
  return simPlatform({
    devices: [
      { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: '0000:01:00.0', fn: fn(0x8086, 0x10d3, { pcie: PCIE_ENDPOINT, multifunction: true }) },
      { bdf: '0000:01:00.1', fn: fn(0x8086, 0x10d4, { pcie: PCIE_ENDPOINT, multifunction: true }), driver: 'e1000e' },
    ],
    hostDrivers: [{ name: 'e1000e', ids: ['8086:10d3', '8086:10d4'] }],
  });
}

function vfioDriver(log: string[] = [], removeWait?: Promise<void>): PciDriver {
  return {
    name: 'vfio-pci',
    driverManagedDma: true,
    probe: (d: PciDeviceHandle) => {
      log.push(`probe ${d.bdf}`);
    },
    remove: (d: PciDeviceHandle) => {
      log.push(`remove ${d.bdf}`);
      return removeWait;
    },
  };
}

describe('DMA ownership (driver_managed_dma)', () => {
  it('user space cannot claim a group while a DMA-doing driver is bound, and vice versa', async () => {
    const p = ownershipHost();
    const group = p.pci.device('0000:01:00.0')!.iommuGroup!;
    expect(p.pci.device('0000:01:00.1')!.iommuGroup).toBe(group);
    expect(group.dmaOwnerClaimed).toBe(true);
    const owner = {};
    expectErrno(() => { group.claimDmaOwner(owner); }, 'EPERM');
    await p.pci.unbind('0000:01:00.1');
    expect(group.dmaOwnerClaimed).toBe(false);
    group.claimDmaOwner(owner);
    group.claimDmaOwner(owner); // same owner again: counted
    expectErrno(() => { group.claimDmaOwner({}); }, 'EPERM');
    // Binding a DMA-doing driver to a device of an owned group fails EBUSY; a driver-managed one may bind.
    expectErrno(() => { p.pci.bind('0000:01:00.1', 'e1000e'); }, 'EBUSY');
    expect(p.pci.device('0000:01:00.1')!.driver).toBeUndefined();
    p.pci.device('0000:01:00.1')!.driverOverride = 'pci-stub';
    p.pci.bind('0000:01:00.1', 'pci-stub');
    expect(p.pci.device('0000:01:00.1')!.driver).toBe('pci-stub');
    group.releaseDmaOwner(owner);
    expect(group.dmaOwner).toBe(owner);
    group.releaseDmaOwner(owner);
    expect(group.dmaOwner).toBeUndefined();
    p.pci.bind('0000:01:00.0', 'e1000e');
    expect(group.dmaOwnerClaimed).toBe(true);
  });

  it('claiming is refused while a domain is attached outside ownership', () => {
    const p = simPlatform({ devices: [{ bdf: '0000:00:03.0', fn: fn() }] });
    const g = p.iommuGroup(0)!;
    const d = g.allocDomain();
    g.attachDomain(d);
    expectErrno(() => { g.attachDomain(g.allocDomain()); }, 'EBUSY');
    expectErrno(() => { g.claimDmaOwner({}); }, 'EBUSY');
    g.detachDomain(d);
    g.claimDmaOwner({});
  });
});

describe('drivers: register, bind, unbind, probe, dynamic ids', () => {
  it('a boot driver that is not registered yet binds when it registers (driver_override)', () => {
    const p = simPlatform({ devices: [{ bdf: '0000:00:03.0', fn: fn(), driver: 'vfio-pci' }] });
    const dev = p.pci.device('0000:00:03.0')!;
    expect(dev.driver).toBeUndefined();
    expect(dev.driverOverride).toBe('vfio-pci');
    p.pci.registerDriver(vfioDriver());
    expect(dev.driver).toBe('vfio-pci');
  });

  it('registerDriver probes unbound matching devices including driver_override, and the undo unbinds', async () => {
    const p = ownershipHost();
    const log: string[] = [];
    p.pci.device('0000:01:00.0')!.driverOverride = 'vfio-pci';
    const undo = p.pci.registerDriver(vfioDriver(log));
    expect(log).toEqual(['probe 0000:01:00.0']);
    expect(p.pci.device('0000:01:00.0')!.driver).toBe('vfio-pci');
    expectErrno(() => p.pci.registerDriver(vfioDriver()), 'EBUSY');
    await undo();
    expect(log).toEqual(['probe 0000:01:00.0', 'remove 0000:01:00.0']);
    expect(p.pci.device('0000:01:00.0')!.driver).toBeUndefined();
    expect(p.pci.driver('vfio-pci')).toBeUndefined();
  });

  it('bind needs a match (ENODEV), an unbound device (EBUSY); a failing probe leaves it unbound', () => {
    const p = ownershipHost();
    p.pci.registerDriver(vfioDriver());
    expectErrno(() => { p.pci.bind('0000:01:00.0', 'vfio-pci'); }, 'ENODEV');
    expectErrno(() => { p.pci.bind('0000:09:00.0', 'vfio-pci'); }, 'ENODEV');
    expectErrno(() => { p.pci.bind('0000:01:00.1', 'e1000e'); }, 'EBUSY');
    p.pci.addDynamicId('vfio-pci', '8086:10d3');
    expect(p.pci.device('0000:01:00.0')!.driver).toBe('vfio-pci'); // new_id probes at once
    expectErrno(() => { p.pci.addDynamicId('vfio-pci', '8086:10d3'); }, 'EEXIST');
    expectErrno(() => { p.pci.addDynamicId('vfio-pci', 'zz'); }, 'EINVAL');
    const refusing: PciDriver = {
      name: 'picky',
      ids: ['8086:10d3'],
      driverManagedDma: false,
      probe: () => {
        throw new (class extends Error {})('no');
      },
      remove: () => undefined,
    };
    p.pci.registerDriver(refusing);
    return p.pci.unbind('0000:01:00.0').then(() => {
      expect(() => { p.pci.bind('0000:01:00.0', 'picky'); }).toThrow('no');
      expect(p.pci.device('0000:01:00.0')!.driver).toBeUndefined();
      // The failed probe did not leave the group marked as used by a kernel driver beyond e1000e's use.
      const g = p.pci.device('0000:01:00.0')!.iommuGroup!;
      return p.pci.unbind('0000:01:00.1').then(() => {
        expect(g.dmaOwnerClaimed).toBe(false);
      });
    });
  });

  it('unbind waits for an asynchronous remove; a second unbind then fails ENODEV', async () => {
    const p = ownershipHost();
    let release!: () => void;
    const wait = new Promise<void>((r) => (release = r));
    const log: string[] = [];
    p.pci.registerDriver(vfioDriver(log, wait));
    p.pci.device('0000:01:00.0')!.driverOverride = 'vfio-pci';
    p.pci.probe('0000:01:00.0');
    const first = p.pci.unbind('0000:01:00.0');
    const second = p.pci.unbind('0000:01:00.0');
    let done = false;
    void first.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    expect(p.pci.device('0000:01:00.0')!.driver).toBe('vfio-pci');
    release();
    await first;
    await expectErrnoAsync(second, 'ENODEV');
    expect(p.pci.device('0000:01:00.0')!.driver).toBeUndefined();
    await expectErrnoAsync(p.pci.unbind('0000:01:00.0'), 'ENODEV');
  });
});

describe('resets', () => {
  it('function reset methods follow the capabilities; the reset restores the saved config', () => {
    const e1000e = pciFunctionFromConfig({
      config: fixture('e1000e'),
      bars: '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000,rom:0x40000',
    });
    const flr = fn(0x1, 0x2, { pcie: PCIE_ENDPOINT });
    const p = simPlatform({
      devices: [
        { bdf: '0000:00:02.0', fn: pciFunctionFromConfig({ config: fixture('edu'), bars: '0:mem32:0x100000' }) },
        { bdf: '0000:00:03.0', fn: e1000e },
        { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
        { bdf: '0000:01:00.0', fn: flr },
      ],
    });
    const edu = p.pci.device('0000:00:02.0')!;
    expect(edu.resetMethods).toEqual([]);
    expectErrno(() => { edu.functionReset(); }, 'ENOTTY');
    expectErrno(() => edu.busResetScope(), 'ENOTTY');
    expectErrno(() => { edu.busReset(); }, 'ENOTTY');
    const nic = p.pci.device('0000:00:03.0')!;
    expect(nic.resetMethods).toEqual(['pm']);
    expectErrno(() => { nic.functionReset('flr'); }, 'ENOTTY');
    nic.functionReset();
    expect(e1000e.resets).toEqual(['pm']);
    expect(e1000e.configRead(0x10, 4)).toBe(0xfeb80000); // restored by pci_restore_state
    const dev = p.pci.device('0000:01:00.0')!;
    expect(dev.resetMethods).toEqual(['flr', 'bus']);
    dev.fn.configWrite(0x04, 2, 0x0006);
    dev.functionReset('flr');
    expect(flr.resets).toEqual(['flr']);
    expect(dev.fn.configRead(0x04, 2)).toBe(0x0006);
    expect(dev.busResetScope().map((d) => d.bdf)).toEqual(['0000:01:00.0']);
    dev.busReset();
    expect(flr.resets).toEqual(['flr', 'bus']);
    // Writing the FLR bit in the PCIe device control register resets the function too.
    dev.fn.configWrite(0x48, 2, 0x8000);
    expect(flr.resets).toEqual(['flr', 'bus', 'flr']);
    expect(dev.fn.configRead(0x48, 2) & 0x8000).toBe(0);
  });
});

describe('interrupts and DMA from models', () => {
  it('routes INTx levels and MSI vectors to the installed handlers', () => {
    let ctx!: PciFunctionContext;
    const base = fn();
    const model: PciFunction = {
      configRead: (o, s) => base.configRead(o, s),
      configWrite: (o, s, v) => {
        base.configWrite(o, s, v);
      },
      bars: base.bars,
      attach: (c) => {
        ctx = c;
      },
    };
    const p = simPlatform({ devices: [{ bdf: '0000:00:05.0', fn: model }] });
    expect(ctx.bdf).toBe('0000:00:05.0');
    const dev = p.pci.device('0000:00:05.0')!;
    const seen: string[] = [];
    ctx.setIntx(true); // nobody listening yet
    dev.onIntx((l) => seen.push(`intx ${l}`));
    dev.onMsi((v) => seen.push(`msi ${v}`));
    ctx.setIntx(true); // level unchanged: no edge
    ctx.setIntx(false);
    ctx.msiNotify(3);
    dev.onMsi(undefined);
    ctx.msiNotify(4);
    expect(seen).toEqual(['intx false', 'msi 3']);
    expect(dev.interruptCounts).toEqual({ intx: 1, msi: 2 });
    // DMA goes through the identity default domain while the group is unowned.
    ctx.dma.write(0x2000n, new Uint8Array([7]));
    expect(p.memory.read(0x2000n, 1)[0]).toBe(7);
    expect(ctx.clock).toBe(p.clock);
  });
});
