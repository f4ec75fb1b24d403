/**
 * Variant drivers (inventory §2.2, §3.3 P14, P1): a driver built on the vfio-pci core spreads its ops and
 * overrides members, adds device-specific regions, and has its migration ops checked at registration.
 */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { parseCapChain, regionTypeCapPayload, VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_REGION_INFO_CAP_TYPE, VFIO_REGION_INFO_FLAG_CAPS, VFIO_REGION_INFO_FLAG_READ, VFIO_TYPE1v2_IOMMU, vfioDeviceInfo, vfioPciOffset, vfioRegionInfo } from '@vfio-ts/uapi';
import { simPlatform } from '@vfio-ts/sim';
import { describe, expect, it } from 'vitest';
import { createVfioPciCore, registerVfioPciVariant, vfioPci, vfioPciVariant } from '../src/index.js';
import type { VfioPciCoreDevice, VfioPciVariantSpec } from '../src/index.js';
import { EDU_BDF, eduPassive } from './driver-helpers.js';

function hostWith(spec: VfioPciVariantSpec) {
  const platform = simPlatform({ devices: [{ bdf: EDU_BDF, fn: eduPassive() }] });
  const host = createHost({ platform, plugins: [type1(), vfioPci(), vfioPciVariant(spec)] });
  const p = host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });
  return { platform, host, p };
}

describe('vfio-pci variant drivers', () => {
  it('bind by their ids, override ops and add a device-specific region', () => {
    const opened: string[] = [];
    const { platform, p } = hostWith({
      name: 'edu-vfio-pci',
      ids: ['1234:11e8'],
      ops: (core) => ({
        ...core,
        openDevice(d) {
          core.openDevice(d);
          opened.push(d.name);
          d.data.registerRegion({
            type: (1 << 31) | 0x1234,
            subtype: 1,
            size: 16n,
            flags: VFIO_REGION_INFO_FLAG_READ,
            rw: (_dev, offset, data, write) => (write ? 0 : new Uint8Array(data as number).fill(Number(offset) + 1)),
          });
        },
      }),
    });
    expect(platform.pci.device(EDU_BDF)!.driver).toBe('edu-vfio-pci');
    const fds = openVfioDevice(p, { group: platform.pci.device(EDU_BDF)!.iommuGroup!.id, device: EDU_BDF, iommuType: VFIO_TYPE1v2_IOMMU });
    expect(opened).toEqual([EDU_BDF]);
    const info = vfioDeviceInfo.encode({ argsz: 24 });
    p.ioctl(fds.device, VFIO_DEVICE_GET_INFO, info);
    expect(vfioDeviceInfo.decode(info).num_regions).toBe(10);
    const r = new Uint8Array(64);
    r.set(vfioRegionInfo.encode({ argsz: 64, index: 9 }));
    p.ioctl(fds.device, VFIO_DEVICE_GET_REGION_INFO, r);
    expect(vfioRegionInfo.decode(r)).toMatchObject({ flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_CAPS, size: 16n, offset: 9n << 40n, cap_offset: 32 });
    const [cap] = parseCapChain(r, 32, { minOffset: 32 });
    expect(cap).toMatchObject({ id: VFIO_REGION_INFO_CAP_TYPE, version: 1 });
    expect([...cap!.bytes.subarray(8, 16)]).toEqual([...regionTypeCapPayload((1 << 31) | 0x1234, 1)]);
    expect([...p.pread(fds.device, 2, vfioPciOffset(9) + 4n)]).toEqual([5, 5]);
    // Device regions go away at last close; the next open registers its own.
    p.close(fds.device);
  });

  it('refuses a device whose migration ops are incomplete or lack STOP_COPY (EINVAL)', () => {
    const { platform, host } = hostWith({
      name: 'bad-mig',
      ids: ['1234:11e8'],
      migrationFlags: 1,
      migOps: { migrationSetState: () => undefined, migrationGetState: () => 0 },
    });
    expect(platform.pci.device(EDU_BDF)!.driver).toBeUndefined();
    expect(host.log().map((l) => l.text)).toContain(`bad-mig ${EDU_BDF}: probe with driver bad-mig failed with error -22`);
    const ok = hostWith({
      name: 'good-mig',
      ids: ['1234:11e8'],
      migrationFlags: 1,
      migOps: { migrationSetState: () => undefined, migrationGetState: () => 0, migrationGetDataSize: () => 0n },
    });
    expect(ok.platform.pci.device(EDU_BDF)!.driver).toBe('good-mig');
  });

  it('puts the migration ops, log ops and flags on the VFIO device, where the migration() handlers look', () => {
    const migOps = { migrationSetState: () => null, migrationGetState: () => 2, migrationGetDataSize: () => 0n };
    const logOps = { logStart: () => undefined, logStop: () => undefined, logReadAndClear: () => undefined };
    let bound: VfioPciCoreDevice | undefined;
    const { platform } = hostWith({ name: 'mig', ids: ['1234:11e8'], migrationFlags: 1 | 4, migOps, logOps, init: (d) => { bound = d; } });
    expect(platform.pci.device(EDU_BDF)!.driver).toBe('mig');
    expect(bound!.vdev.migrationOps).toBe(migOps);
    expect(bound!.vdev.logOps).toBe(logOps);
    expect(bound!.vdev.migrationFlags).toBe(1 | 4);
    let plain: VfioPciCoreDevice | undefined;
    hostWith({ name: 'plain', ids: ['1234:11e8'], init: (d) => { plain = d; } });
    expect([plain!.vdev.migrationOps, plain!.vdev.logOps, plain!.vdev.migrationFlags]).toEqual([undefined, undefined, 0]);
  });

  it('registers through registerVfioPciVariant as a plugin or from a plugin setup', () => {
    const asPlugin = registerVfioPciVariant({ name: 'v1', ids: ['1234:11e8'] });
    const a = createHost({ platform: simPlatform({ devices: [{ bdf: EDU_BDF, fn: eduPassive() }] }), plugins: [type1(), asPlugin] });
    expect(a.platform.pci.device(EDU_BDF)!.driver).toBe('v1');
    let handle: ReturnType<typeof registerVfioPciVariant> | undefined;
    const b = createHost({
      platform: simPlatform({ devices: [{ bdf: EDU_BDF, fn: eduPassive() }] }),
      plugins: [type1(), { name: 'mine', setup: (api) => { handle = registerVfioPciVariant(api, { name: 'v2', ids: ['1234:11e8'] }); } }],
    });
    expect(b.platform.pci.device(EDU_BDF)!.driver).toBe('v2');
    expect(handle!.device(EDU_BDF)?.name).toBe(EDU_BDF);
  });

  it('exposes the core ops for composition', () => {
    const core = createVfioPciCore('x');
    expect(core.name).toBe('x');
    expect(Object.keys(core).sort()).toEqual(
      ['closeDevice', 'deviceFeature', 'ioctl', 'mmap', 'mmapFault', 'name', 'openDevice', 'pmRuntimeGet', 'pmRuntimePut', 'read', 'readInto', 'request', 'write'].sort(),
    );
  });
});
