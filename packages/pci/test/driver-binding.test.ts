/**
 * Binding vfio-pci through sysfs and probe rules (inventory §3.1 P1–P3, §2.7): driver_override + drivers_probe,
 * new_id, the ids option, bridges and denylisted devices refused, unbind waiting for the user with REQ signalled.
 */
import { isSysError, VFIO_DEVICE_SET_IRQS, VFIO_GROUP_GET_DEVICE_FD, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_PCI_REQ_IRQ_INDEX, vfioIrqSet } from '@vfio-ts/uapi';
import { cString } from '@vfio-ts/core';
import { describe, expect, it } from 'vitest';
import { cat, e1000eFunction, echo, echoAsync, EDU_BDF, eduPassive, makeHost, openDev } from './driver-helpers.js';
import { fixture } from './helpers.js';
import { pciFunctionFromConfig } from '@vfio-ts/sim';

function expectErrno(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    expect(isSysError(e) ? e.errno : e).toBe(errno);
    return;
  }
  throw new Error(`expected ${errno}`);
}

describe('binding vfio-pci', () => {
  it('does not bind by itself: no static ids', () => {
    const t = makeHost([{ bdf: EDU_BDF, fn: eduPassive() }]);
    expect(t.platform.pci.device(EDU_BDF)!.driver).toBeUndefined();
    expect(t.p.readdir('/dev/vfio').filter((n) => /^\d+$/.test(n))).toEqual([]);
  });

  it('binds through driver_override and drivers_probe, registering a VFIO device in the IOMMU group', () => {
    const t = makeHost([{ bdf: EDU_BDF, fn: eduPassive() }]);
    echo(t.p, `/sys/bus/pci/devices/${EDU_BDF}/driver_override`, 'vfio-pci');
    echo(t.p, '/sys/bus/pci/drivers_probe', EDU_BDF);
    const pdev = t.platform.pci.device(EDU_BDF)!;
    expect(pdev.driver).toBe('vfio-pci');
    expect(t.p.readdir('/dev/vfio')).toContain(String(pdev.iommuGroup!.id));
    expect(t.p.readdir(`/sys/bus/pci/devices/${EDU_BDF}/vfio-dev`)).toEqual(['vfio0']);
    expect(t.p.readlink(`/sys/bus/pci/devices/${EDU_BDF}/driver`)).toMatch(/drivers\/vfio-pci$/);
  });

  it('binds through new_id "1234 11e8"', () => {
    const t = makeHost([{ bdf: EDU_BDF, fn: eduPassive() }]);
    echo(t.p, '/sys/bus/pci/drivers/vfio-pci/new_id', '1234 11e8');
    expect(t.platform.pci.device(EDU_BDF)!.driver).toBe('vfio-pci');
  });

  it('binds devices named by the ids option and the vfio_pci.ids parameter', () => {
    const a = makeHost([{ bdf: EDU_BDF, fn: eduPassive() }], { vfioPci: { ids: ['1234:11e8'] } });
    expect(a.platform.pci.device(EDU_BDF)!.driver).toBe('vfio-pci');
    const b = makeHost([{ bdf: EDU_BDF, fn: eduPassive() }], { params: { 'vfio_pci.ids': '1234:11e8:ffffffff:ffffffff,bogus' } });
    expect(b.platform.pci.device(EDU_BDF)!.driver).toBe('vfio-pci');
    expect(b.host.log().map((l) => l.text)).toContain('vfio_pci: unable to parse id string "bogus"');
  });

  it('publishes its module parameters', () => {
    const t = makeHost([], { params: { 'vfio_pci.disable_idle_d3': true } });
    expect(cat(t.p, '/sys/module/vfio_pci/parameters/disable_idle_d3')).toBe('Y\n');
    expect(cat(t.p, '/sys/module/vfio_pci/parameters/nointxmask')).toBe('N\n');
  });

  it('refuses a bridge (header type 1) with EINVAL', () => {
    const t = makeHost([
      { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: '0000:01:00.0', fn: eduPassive() },
    ]);
    const bridge = t.platform.pci.device('0000:00:1c.0')!;
    expect(bridge.driver).toBe('pcieport');
    echo(t.p, '/sys/bus/pci/drivers/pcieport/unbind', '0000:00:1c.0');
    echo(t.p, '/sys/bus/pci/devices/0000:00:1c.0/driver_override', 'vfio-pci');
    echo(t.p, '/sys/bus/pci/drivers_probe', '0000:00:1c.0');
    expect(bridge.driver).toBeUndefined();
    expect(t.host.log().map((l) => l.text)).toContain('vfio-pci 0000:00:1c.0: probe with driver vfio-pci failed with error -22');
  });

  it('refuses denylisted devices unless disable_denylist', () => {
    const qat = fixture('edu');
    qat.set([0x86, 0x80, 0x43, 0x04]); // 8086:0443 (QAT DH895XCC VF)
    const fn = (): ReturnType<typeof pciFunctionFromConfig> => pciFunctionFromConfig({ config: qat, bars: '0:mem32:0x1000' });
    const t = makeHost([{ bdf: EDU_BDF, fn: fn(), driver: 'vfio-pci' }]);
    expect(t.platform.pci.device(EDU_BDF)!.driver).toBeUndefined();
    expect(t.host.log().some((l) => l.text.includes('exists in vfio-pci device denylist'))).toBe(true);
    const u = makeHost([{ bdf: EDU_BDF, fn: fn(), driver: 'vfio-pci' }], { params: { 'vfio_pci.disable_denylist': true } });
    expect(u.platform.pci.device(EDU_BDF)!.driver).toBe('vfio-pci');
    expect(u.host.log().some((l) => l.text.includes('device denylist disabled'))).toBe(true);
  });

  it('puts functions of a bus in one device set, and a root-bus function in its own', () => {
    const t = makeHost([
      { bdf: '0000:00:03.0', fn: eduPassive(), driver: 'vfio-pci' },
      { bdf: '0000:00:04.0', fn: e1000eFunction(), driver: 'vfio-pci' },
      { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
      { bdf: '0000:01:00.0', fn: eduPassive(), driver: 'vfio-pci', acs: true },
      { bdf: '0000:01:00.1', fn: eduPassive(), driver: 'vfio-pci', acs: true },
    ]);
    const devs = t.host.describe().devices as { name: string; setSize: number }[];
    const size = (bdf: string): number | undefined => devs.find((d) => d.name === bdf)?.setSize;
    expect(size('0000:00:03.0')).toBe(1);
    expect(size('0000:00:04.0')).toBe(1);
    expect(size('0000:01:00.0')).toBe(2);
    expect(size('0000:01:00.1')).toBe(2);
  });
});

describe('unbinding vfio-pci', () => {
  it('unbinds an idle device at once', async () => {
    const t = makeHost([{ bdf: EDU_BDF, fn: eduPassive(), driver: 'vfio-pci' }]);
    await echoAsync(t.p, '/sys/bus/pci/drivers/vfio-pci/unbind', EDU_BDF);
    expect(t.platform.pci.device(EDU_BDF)!.driver).toBeUndefined();
    expect(t.p.readdir('/dev/vfio').filter((n) => /^\d+$/.test(n))).toEqual([]);
  });

  it('waits for the user of an open device, signalling REQ, and completes when the user closes it', async () => {
    const t = makeHost([{ bdf: EDU_BDF, fn: eduPassive(), driver: 'vfio-pci' }]);
    const fds = openDev(t, EDU_BDF);
    const req = t.p.eventfd(0, 0o4000);
    const set = new Uint8Array(24);
    set.set(vfioIrqSet.encode({ argsz: 24, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index: VFIO_PCI_REQ_IRQ_INDEX, start: 0, count: 1 }));
    new DataView(set.buffer).setInt32(20, req, true);
    t.p.ioctl(fds.device, VFIO_DEVICE_SET_IRQS, set);
    let done = false;
    const unbind = echoAsync(t.p, '/sys/bus/pci/drivers/vfio-pci/unbind', EDU_BDF).then(() => {
      done = true;
    });
    await t.p.poll([{ fd: req, events: 1 }], 1000);
    expect(new DataView(t.p.read(req, 8).buffer).getBigUint64(0, true)).toBe(1n);
    expect(done).toBe(false);
    expect(t.platform.pci.device(EDU_BDF)!.driver).toBe('vfio-pci');
    // No new opens while the device goes away.
    expectErrno(() => t.p.ioctl(fds.group, VFIO_GROUP_GET_DEVICE_FD, cString(EDU_BDF)), 'ENODEV');
    t.p.close(fds.device);
    await unbind;
    expect(done).toBe(true);
    expect(t.platform.pci.device(EDU_BDF)!.driver).toBeUndefined();
  });

  it('logs that it is blocked when the user set no REQ eventfd', async () => {
    const t = makeHost([{ bdf: EDU_BDF, fn: eduPassive(), driver: 'vfio-pci' }]);
    const fds = openDev(t, EDU_BDF);
    const unbind = echoAsync(t.p, '/sys/bus/pci/drivers/vfio-pci/unbind', EDU_BDF);
    await Promise.resolve();
    expect(t.host.log().map((l) => l.text)).toContain(
      `vfio-pci ${EDU_BDF}: No device request channel registered, blocked until released by user`,
    );
    t.p.close(fds.device);
    await unbind;
    expect(t.platform.pci.device(EDU_BDF)!.driver).toBeUndefined();
  });
});
