/**
 * Test fixtures: a simulated address space from `@vfio-ts/sim`, the 'spapr' IOMMU hardware model, fake tasks and
 * thin ioctl wrappers that speak the binary structs of `@vfio-ts/uapi`.
 */
import type { CallContext, IoctlArg, VfioGroupRef, VfioIommuDriverOps } from '@vfio-ts/core';
import type { AddressSpace, Capability, Task } from '@vfio-ts/platform';
import { simPlatform } from '@vfio-ts/sim';
import type { SimPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_EEH_PE_OP,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO,
  VFIO_IOMMU_SPAPR_TCE_REMOVE,
  VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
  VFIO_IOMMU_UNMAP_DMA,
  vfioEehPeOp,
  vfioIommuSpaprRegisterMemory,
  vfioIommuSpaprTceCreate,
  vfioIommuSpaprTceInfo,
  vfioIommuSpaprTceRemove,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import type { ErrnoName, StructOf } from '@vfio-ts/uapi';
import { expect } from 'vitest';
import { spaprTceDriverOps } from '../src/index.js';
import type { SpaprTceOptions, TceContainer } from '../src/index.js';
import { SpaprIommu } from './spapr-model.js';
import type { SpaprIommuGroup, SpaprTableGroupOptions } from './spapr-model.js';

export const KiB = 1024n;
export const MiB = 1024n * KiB;
export const GiB = 1024n * MiB;

let nextPid = 100;

/** A task (Linux `current`) over `mm`. */
export function makeTask(mm: AddressSpace, opts: { caps?: Capability[]; memlockLimit?: bigint | null } = {}): Task {
  const caps = new Set(opts.caps ?? []);
  const log: string[] = [];
  return {
    pid: nextPid++,
    uid: 1000,
    gid: 1000,
    mm,
    capable: (c) => caps.has(c),
    memlockLimit: opts.memlockLimit === undefined ? 64n * MiB : opts.memlockLimit,
    log: (t) => {
      log.push(t);
    },
  };
}

/** Expects `fn` to throw a SysError with `errno`. */
export function expectErrno(fn: () => unknown, errno: ErrnoName): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${errno}`).toBeInstanceOf(SysError);
  expect((caught as SysError).errno).toBe(errno);
}

let nextGroupId = 1;

/** A container test bench: one simulated host's memory, the spapr IOMMU, the backend ops. */
export class Bench {
  readonly platform: SimPlatform = simPlatform({ iommu: 'none' });
  readonly iommu = new SpaprIommu();
  readonly ops: VfioIommuDriverOps<TceContainer>;
  readonly log: string[] = [];
  readonly mm: AddressSpace;
  readonly task: Task;
  readonly call: CallContext;
  readonly env = { param: () => '', log: (t: string) => { this.log.push(t); } };

  constructor(opts: { memlockLimit?: bigint | null; caps?: Capability[]; backend?: SpaprTceOptions } = {}) {
    this.ops = spaprTceDriverOps(opts.backend ?? {});
    this.mm = this.platform.createAddressSpace();
    const taskOpts: { caps?: Capability[]; memlockLimit?: bigint | null } = {};
    if (opts.caps) taskOpts.caps = opts.caps;
    if (opts.memlockLimit !== undefined) taskOpts.memlockLimit = opts.memlockLimit;
    this.task = makeTask(this.mm, taskOpts);
    this.call = { task: this.task };
  }

  /** A new PE and the VFIO group reference a container sees for it. */
  group(options: SpaprTableGroupOptions = {}): { hw: SpaprIommuGroup; ref: VfioGroupRef } {
    const id = nextGroupId++;
    const hw = this.iommu.newGroup(id, options);
    // The container claims DMA ownership before attaching (vfio_container_attach_group).
    const ref: VfioGroupRef = { id, type: 'iommu', iommuGroup: hw };
    hw.claimDmaOwner(ref);
    return { hw, ref };
  }

  /** SET_IOMMU: open the backend and attach the groups. */
  open(type: 2 | 7, ...refs: VfioGroupRef[]): TceContainer {
    const c = this.ops.open(type, this.env, this.call);
    for (const r of refs) this.ops.attachGroup(c, r, this.call);
    return c;
  }

  ioctl(c: TceContainer, cmd: number, arg: IoctlArg, call: CallContext = this.call): number {
    return this.ops.ioctl(c, cmd, arg, call);
  }

  info(c: TceContainer, argsz = 32): StructOf<typeof vfioIommuSpaprTceInfo> & { raw: Uint8Array } {
    const raw = new Uint8Array(32).fill(0xee);
    vfioIommuSpaprTceInfo.write(raw, { argsz }, 0, 4);
    this.ioctl(c, VFIO_IOMMU_SPAPR_TCE_GET_INFO, raw);
    return { ...vfioIommuSpaprTceInfo.decode(raw), raw };
  }

  map(c: TceContainer, p: { vaddr: bigint; iova: bigint; size: bigint; flags?: number }, call?: CallContext): number {
    const buf = vfioIommuType1DmaMap.encode({ argsz: 32, flags: p.flags ?? 3, vaddr: p.vaddr, iova: p.iova, size: p.size });
    return this.ioctl(c, VFIO_IOMMU_MAP_DMA, buf, call);
  }

  unmap(c: TceContainer, p: { iova: bigint; size: bigint; flags?: number }, call?: CallContext): number {
    const buf = vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: p.flags ?? 0, iova: p.iova, size: p.size });
    return this.ioctl(c, VFIO_IOMMU_UNMAP_DMA, buf, call);
  }

  register(c: TceContainer, vaddr: bigint, size: bigint, call?: CallContext, flags = 0): number {
    const buf = vfioIommuSpaprRegisterMemory.encode({ argsz: 24, flags, vaddr, size });
    return this.ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, buf, call);
  }

  unregister(c: TceContainer, vaddr: bigint, size: bigint, call?: CallContext): number {
    const buf = vfioIommuSpaprRegisterMemory.encode({ argsz: 24, flags: 0, vaddr, size });
    return this.ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, buf, call);
  }

  create(c: TceContainer, p: { pageShift: number; windowSize: bigint; levels: number; flags?: number }, call?: CallContext): bigint {
    const buf = vfioIommuSpaprTceCreate.encode({
      argsz: 40,
      flags: p.flags ?? 0,
      page_shift: p.pageShift,
      window_size: p.windowSize,
      levels: p.levels,
    });
    this.ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, buf, call);
    return vfioIommuSpaprTceCreate.decode(buf).start_addr;
  }

  remove(c: TceContainer, startAddr: bigint, call?: CallContext): number {
    const buf = vfioIommuSpaprTceRemove.encode({ argsz: 16, flags: 0, start_addr: startAddr });
    return this.ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, buf, call);
  }

  eeh(c: TceContainer, op: number, err: Partial<StructOf<typeof vfioEehPeOp>> = {}, argsz = 40): number {
    const buf = vfioEehPeOp.encode({ argsz, flags: 0, op, ...err });
    return this.ioctl(c, VFIO_EEH_PE_OP, buf);
  }

  /** Anonymous memory filled with a recognizable pattern. */
  buffer(size: bigint, hugepage?: '2M' | '1G'): bigint {
    const va = this.mm.mmapAnonymous(size, hugepage ? { hugepage } : {});
    return va;
  }

  /** What a device reads at `busAddr` through the PE's TCEs. */
  deviceRead(hw: SpaprIommuGroup, busAddr: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let off = 0;
    for (const ch of hw.translateDma('0000:01:00.0', busAddr, length, false)) {
      out.set(this.platform.memory.read(ch.pa, ch.length), off);
      off += ch.length;
    }
    return out;
  }

  /** A device write at `busAddr` through the PE's TCEs. */
  deviceWrite(hw: SpaprIommuGroup, busAddr: bigint, data: Uint8Array): void {
    let off = 0;
    for (const ch of hw.translateDma('0000:01:00.0', busAddr, data.length, true)) {
      this.platform.memory.write(ch.pa, data.subarray(off, off + ch.length));
      off += ch.length;
    }
  }
}

export function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}
