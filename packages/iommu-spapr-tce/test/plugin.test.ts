import { Container, Group } from '@vfio-ts/core';
import type { ContainerHost, HostPluginApiBase, SyscallContext, VfioIommuDriverOps } from '@vfio-ts/core';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_EEH,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioIommuSpaprTceCreate,
  vfioIommuSpaprTceInfo,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { SPAPR_TCE_MODULE, SPAPR_TCE_NAME, spaprTce, spaprTceDriverOps } from '../src/index.js';
import { Bench, GiB, expectErrno } from './helpers.js';
import { TCE_BYPASS_BASE, spaprTableGroupOf } from './spapr-model.js';

describe('plugin', () => {
  it('registers "iommu-vfio-powerpc" and returns the undo', () => {
    const registered: VfioIommuDriverOps[] = [];
    let undone = 0;
    const logs: string[] = [];
    const api: HostPluginApiBase = {
      registerIommuDriver(ops) {
        registered.push(ops);
        return () => {
          undone++;
        };
      },
      declareParam() {},
      param: () => '',
      log: (t) => {
        logs.push(t);
      },
    };
    const plugin = spaprTce();
    expect(plugin.name).toBe(SPAPR_TCE_NAME);
    const undo = plugin.setup(api);
    expect(registered.map((o) => [o.name, o.module])).toEqual([[SPAPR_TCE_NAME, SPAPR_TCE_MODULE]]);
    undo();
    expect(undone).toBe(1);
  });

  it('CHECK_EXTENSION before selection: 2 and 7 yes, type1 no; open refuses other types', () => {
    const b = new Bench();
    const ops = spaprTceDriverOps();
    expect(ops.ioctl(null, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU, b.call)).toBe(1);
    expect(ops.ioctl(null, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU, b.call)).toBe(1);
    expect(ops.ioctl(null, VFIO_CHECK_EXTENSION, VFIO_EEH, b.call)).toBe(1);
    expect(ops.ioctl(null, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU, b.call)).toBe(0);
    expect(ops.ioctl(null, VFIO_CHECK_EXTENSION, 1234, b.call)).toBe(0);
    expectErrno(() => ops.open(VFIO_TYPE1v2_IOMMU, b.env, b.call), 'EINVAL');
    expect(b.log).toEqual(['tce_vfio: Wrong IOMMU type']);
    const c = ops.open(VFIO_SPAPR_TCE_IOMMU, b.env, b.call);
    expectErrno(() => ops.ioctl(c, 0x3b00 | 200, undefined, b.call), 'ENOTTY');
  });

  it("core's container selects the backend with SET_IOMMU and forwards ioctls to it", () => {
    const b = new Bench({ memlockLimit: null });
    const ops = spaprTceDriverOps();
    let gone = 0;
    const host: ContainerHost = {
      iommuDrivers: () => [ops],
      noiommuDriver: { ...(ops as VfioIommuDriverOps), name: 'vfio-noiommu' },
      backendEnv: () => b.env,
      groupViable: (g) => !(g.iommuGroup?.dmaOwnerClaimed ?? false),
      containerGone: () => {
        gone++;
      },
    };
    const pe = b.iommu.newGroup(40);
    const group = new Group(40, 'iommu', pe);
    const container = new Container(1, host);
    const call = b.call as SyscallContext;
    container.attachGroup(group, call);
    // Claiming the IOMMU group took the PE's windows away from the host (take_ownership).
    expect(spaprTableGroupOf(pe)?.isOwned).toBe(true);
    expect(spaprTableGroupOf(pe)?.bypassEnabled).toBe(false);
    expect(container.ioctl(VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU, call)).toBe(0);
    const info = vfioIommuSpaprTceInfo.encode({ argsz: 32 });
    expect(container.ioctl(VFIO_IOMMU_SPAPR_TCE_GET_INFO, info, call)).toBe(0);
    expect(vfioIommuSpaprTceInfo.decode(info).ddw_max_dynamic_windows_supported).toBe(2);
    const create = vfioIommuSpaprTceCreate.encode({ argsz: 40, page_shift: 21, window_size: 64n * GiB, levels: 1 });
    expect(container.ioctl(VFIO_IOMMU_SPAPR_TCE_CREATE, create, call)).toBe(0);
    expect(vfioIommuSpaprTceCreate.decode(create).start_addr).toBe(TCE_BYPASS_BASE);
    expect(container.describe().iommu).toMatchObject({ version: 2, groups: [40] });
    // Removing the last group releases the backend and the PE goes back to the host.
    container.detachGroup(group);
    expect(b.mm.memlock.lockedPages).toBe(0);
    expect(spaprTableGroupOf(pe)?.isOwned).toBe(false);
    expect(spaprTableGroupOf(pe)?.tables[0]?.pageShift).toBe(12);
    expect(spaprTableGroupOf(pe)?.tables[1]).toBeUndefined();
    expect(gone).toBe(0);
  });
});
