import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CapChainBuilder,
  SysError,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  cString,
  deviceInfo,
  disableIrqIndex,
  dmaAvailCapPayload,
  groupStatus,
  groupStatusFlags,
  intArg,
  iovaRangeCapPayload,
  irqInfo,
  mapDma,
  maskIrq,
  openVfioDevice,
  regionInfo,
  regionTypeCapPayload,
  setIrqEventfds,
  sparseMmapCapPayload,
  type1Info,
  unmapDma,
  unmaskIrq,
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
  vfioIrqInfo,
  vfioIrqSet,
  vfioRegionInfo,
  writeInfoWithCaps,
} from '../src/index.js';
import type { VfioUserProcess } from '../src/index.js';

/** One ioctl the fake saw: the arg is copied as it was passed in (before the handler wrote into it). */
interface Call {
  readonly fd: number;
  readonly request: number;
  readonly arg: number | Uint8Array | undefined;
}

type Handler = (fd: number, arg: number | Uint8Array | undefined, fake: FakeProcess) => number;

/**
 * A scripted process: a file table with Linux's lowest-free-fd rule, a log of every call, and one handler per
 * ioctl request. An ioctl with no handler is ENOTTY, as an unknown request is in Linux.
 */
class FakeProcess implements VfioUserProcess {
  readonly open_ = new Map<number, string>();
  readonly log: string[] = [];
  readonly calls: Call[] = [];
  readonly handlers = new Map<number, Handler>();
  readonly failOpen = new Set<string>();

  open(path: string): number {
    if (this.failOpen.has(path)) throw new SysError('ENOENT', path);
    let fd = 3;
    while (this.open_.has(fd)) fd++;
    this.open_.set(fd, path);
    this.log.push(`open ${path} = ${fd}`);
    return fd;
  }

  close(fd: number): void {
    if (!this.open_.delete(fd)) throw new SysError('EBADF', `fd ${fd}`);
    this.log.push(`close ${fd}`);
  }

  ioctl(fd: number, request: number, arg?: number | Uint8Array): number {
    if (!this.open_.has(fd)) throw new SysError('EBADF', `fd ${fd}`);
    this.calls.push({ fd, request, arg: arg instanceof Uint8Array ? arg.slice() : arg });
    this.log.push(`ioctl ${fd} ${request.toString(16)}`);
    const h = this.handlers.get(request);
    if (!h) throw new SysError('ENOTTY', `request ${request.toString(16)}`);
    return h(fd, arg, this);
  }

  on(request: number, handler: Handler): this {
    this.handlers.set(request, handler);
    return this;
  }
}

const bytes = (arg: number | Uint8Array | undefined): Uint8Array => {
  if (!(arg instanceof Uint8Array)) throw new Error('expected a struct argument');
  return arg;
};
const u32At = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
const i32At = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getInt32(off, true);

describe('argument builders', () => {
  it('cString appends one NUL and encodes UTF-8', () => {
    expect([...cString('0000:00:03.0')]).toEqual([...new TextEncoder().encode('0000:00:03.0'), 0]);
    expect([...cString('')]).toEqual([0]);
  });

  it('intArg is a little-endian int32; anything that is no C int is a RangeError', () => {
    expect([...intArg(4)]).toEqual([4, 0, 0, 0]);
    expect([...intArg(-1)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(i32At(intArg(0x7fffffff), 0)).toBe(0x7fffffff);
    for (const bad of [1.5, 2 ** 31, -(2 ** 31) - 1, Number.NaN]) expect(() => intArg(bad)).toThrow(RangeError);
  });
});

describe('groupStatus', () => {
  it('sends a vfio_group_status with argsz 8 and decodes the flags', () => {
    const p = new FakeProcess().on(VFIO_GROUP_GET_STATUS, (_fd, arg) => {
      vfioGroupStatus.write(bytes(arg), { flags: VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET });
      return 0;
    });
    const fd = p.open('/dev/vfio/7');
    expect(groupStatus(p, fd)).toBe(3);
    expect(groupStatusFlags(p, fd)).toBe(3);
    expect(p.calls.map((c) => u32At(bytes(c.arg), 0))).toEqual([vfioGroupStatus.size, vfioGroupStatus.size]);
  });

  it('passes the errno of the call through', () => {
    const p = new FakeProcess();
    expect(() => groupStatus(p, 9)).toThrow(expect.objectContaining({ errno: 'EBADF' }));
  });
});

/** The kernel side of the QEMU flow, failing at step `failAt` (0-based over the ioctls) when given. */
function qemuFlowFake(failAt?: number): FakeProcess {
  let step = 0;
  const maybeFail = (): void => {
    if (step++ === failAt) throw new SysError('EBUSY', `step ${step - 1}`);
  };
  return new FakeProcess()
    .on(VFIO_GROUP_SET_CONTAINER, () => { maybeFail(); return 0; })
    .on(VFIO_SET_IOMMU, () => { maybeFail(); return 0; })
    .on(VFIO_GROUP_GET_DEVICE_FD, (_fd, _arg, fake) => { maybeFail(); return fake.open('anon:[vfio-device]'); });
}

describe('openVfioDevice', () => {
  it('opens the container and the group, joins them, selects the IOMMU and gets the device fd', () => {
    const p = qemuFlowFake();
    const opened = openVfioDevice(p, { group: 12, device: '0000:00:03.0', iommuType: VFIO_TYPE1v2_IOMMU });
    expect(opened).toEqual({ container: 3, group: 4, device: 5 });
    expect(p.calls.map((c) => [c.fd, c.request])).toEqual([
      [4, VFIO_GROUP_SET_CONTAINER],
      [3, VFIO_SET_IOMMU],
      [4, VFIO_GROUP_GET_DEVICE_FD],
    ]);
    expect([...bytes(p.calls[0]?.arg)]).toEqual([...intArg(3)]);
    expect(p.calls[1]?.arg).toBe(VFIO_TYPE1v2_IOMMU);
    expect([...bytes(p.calls[2]?.arg)]).toEqual([...cString('0000:00:03.0')]);
    expect(p.log.slice(0, 2)).toEqual(['open /dev/vfio/vfio = 3', 'open /dev/vfio/12 = 4']);
  });

  it('joins a given container without SET_IOMMU and takes a group path as is', () => {
    const p = qemuFlowFake();
    const container = p.open('/dev/vfio/vfio');
    const opened = openVfioDevice(p, { group: '/dev/vfio/noiommu-0', device: 'd', iommuType: VFIO_TYPE1v2_IOMMU, container });
    expect(opened).toEqual({ container, group: 4, device: 5 });
    expect(p.calls.map((c) => c.request)).toEqual([VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_GET_DEVICE_FD]);
    expect(p.open_.get(4)).toBe('/dev/vfio/noiommu-0');
  });

  it('a missing group node closes the container it opened and throws ENOENT', () => {
    const p = qemuFlowFake();
    p.failOpen.add('/dev/vfio/12');
    expect(() => openVfioDevice(p, { group: 12, device: 'd', iommuType: VFIO_TYPE1v2_IOMMU })).toThrow(expect.objectContaining({ errno: 'ENOENT' }));
    expect(p.open_.size).toBe(0);
    expect(p.log).toEqual(['open /dev/vfio/vfio = 3', 'close 3']);
  });

  it('property: whichever call fails, the same error comes out and the fd table is as before (a given container stays)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 }), fc.boolean(), fc.integer({ min: 0, max: 3 }), (failAt, given, preopen) => {
      const p = qemuFlowFake(failAt);
      for (let i = 0; i < preopen; i++) p.open(`/tmp/f${i}`);
      const container = given ? p.open('/dev/vfio/vfio') : undefined;
      const before = [...p.open_.entries()];
      let thrown: unknown;
      try {
        openVfioDevice(p, { group: 1, device: 'd', iommuType: VFIO_TYPE1v2_IOMMU, ...(container === undefined ? {} : { container }) });
      } catch (e) {
        thrown = e;
      }
      // With a given container there is no SET_IOMMU, so step 2 never comes and the flow succeeds.
      const steps = given ? 2 : 3;
      if (failAt < steps) {
        expect(thrown).toBeInstanceOf(SysError);
        expect((thrown as SysError).message).toContain(`step ${failAt}`);
        expect([...p.open_.entries()]).toEqual(before);
        // Closed newest first.
        const closes = p.log.filter((l) => l.startsWith('close'));
        expect(closes).toEqual([...closes].sort().reverse());
      } else {
        expect(thrown).toBeUndefined();
      }
    }));
  });
});

describe('deviceInfo and irqInfo', () => {
  it('decode the fixed structs', () => {
    const p = new FakeProcess()
      .on(VFIO_DEVICE_GET_INFO, (_fd, arg) => { vfioDeviceInfo.write(bytes(arg), { flags: 3, num_regions: 9, num_irqs: 5 }); return 0; })
      .on(VFIO_DEVICE_GET_IRQ_INFO, (_fd, arg) => {
        const b = bytes(arg);
        const index = u32At(b, 8);
        vfioIrqInfo.write(b, { flags: index === VFIO_PCI_INTX_IRQ_INDEX ? 0xf : 0x9, count: index === VFIO_PCI_MSIX_IRQ_INDEX ? 64 : 1 });
        return 0;
      });
    const fd = p.open('dev');
    expect(deviceInfo(p, fd)).toEqual({ flags: 3, numRegions: 9, numIrqs: 5 });
    expect(u32At(bytes(p.calls[0]?.arg), 0)).toBe(vfioDeviceInfo.size);
    expect(irqInfo(p, fd, VFIO_PCI_INTX_IRQ_INDEX)).toEqual({ index: 0, flags: 0xf, count: 1 });
    expect(irqInfo(p, fd, VFIO_PCI_MSIX_IRQ_INDEX)).toEqual({ index: 2, flags: 0x9, count: 64 });
    expect(u32At(bytes(p.calls[2]?.arg), 8)).toBe(VFIO_PCI_MSIX_IRQ_INDEX);
  });
});

/** A region-info handler that answers like Linux (§1.0): the chain only when argsz has room for it. */
function regionFake(caps: (index: number) => CapChainBuilder): FakeProcess {
  return new FakeProcess().on(VFIO_DEVICE_GET_REGION_INFO, (_fd, arg) => {
    const b = bytes(arg);
    const index = u32At(b, 8);
    writeInfoWithCaps(b, vfioRegionInfo, {
      argsz: u32At(b, 0), flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP, index, cap_offset: 0,
      size: 0x4000n, offset: BigInt(index) << 40n,
    }, VFIO_REGION_INFO_FLAG_CAPS, caps(index));
    return 0;
  });
}

describe('regionInfo', () => {
  it('asks a second time with the argsz the kernel reported and decodes SPARSE_MMAP and TYPE', () => {
    const p = regionFake(() => new CapChainBuilder()
      .add(VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, sparseMmapCapPayload([{ offset: 0n, size: 0x1000n }, { offset: 0x3000n, size: 0x1000n }]))
      .add(VFIO_REGION_INFO_CAP_TYPE, 1, regionTypeCapPayload(0x8086, 3)));
    const fd = p.open('dev');
    const r = regionInfo(p, fd, 2);
    expect(r).toEqual({
      index: 2, flags: 0xd, size: 0x4000n, offset: 2n << 40n,
      caps: [{ id: VFIO_REGION_INFO_CAP_SPARSE_MMAP, version: 1 }, { id: VFIO_REGION_INFO_CAP_TYPE, version: 1 }],
      sparseMmap: [{ offset: 0n, size: 0x1000n }, { offset: 0x3000n, size: 0x1000n }],
      type: { type: 0x8086, subtype: 3 },
    });
    expect(p.calls.map((c) => u32At(bytes(c.arg), 0))).toEqual([32, 32 + 48 + 16]);
    // The second call still names the index.
    expect(p.calls.map((c) => u32At(bytes(c.arg), 8))).toEqual([2, 2]);
  });

  it('one call and no decoded fields when the region has no capabilities', () => {
    const p = regionFake(() => new CapChainBuilder());
    const fd = p.open('dev');
    expect(regionInfo(p, fd, 0)).toEqual({ index: 0, flags: 0x5, size: 0x4000n, offset: 0n, caps: [] });
    expect(p.calls).toHaveLength(1);
  });

  it('keeps unknown and header-only capabilities as id/version', () => {
    const p = regionFake(() => new CapChainBuilder().add(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1).add(0x77, 2, new Uint8Array(4)));
    const r = regionInfo(p, p.open('dev'), 3);
    expect(r.caps).toEqual([{ id: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, version: 1 }, { id: 0x77, version: 2 }]);
    expect('sparseMmap' in r || 'type' in r).toBe(false);
  });

  it('a malformed chain is EINVAL, and an absurd argsz is refused instead of allocated', () => {
    const loop = new FakeProcess().on(VFIO_DEVICE_GET_REGION_INFO, (_fd, arg) => {
      const b = bytes(arg);
      if (b.length < 48) { vfioRegionInfo.write(b, { argsz: 48, flags: VFIO_REGION_INFO_FLAG_CAPS }); return 0; }
      vfioRegionInfo.write(b, { argsz: 48, flags: VFIO_REGION_INFO_FLAG_CAPS, cap_offset: 32 });
      const v = new DataView(b.buffer, b.byteOffset);
      v.setUint16(32, 9, true);
      v.setUint32(36, 32, true); // next points back at itself
      return 0;
    });
    expect(() => regionInfo(loop, loop.open('dev'), 0)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    const huge = new FakeProcess().on(VFIO_DEVICE_GET_REGION_INFO, (_fd, arg) => { vfioRegionInfo.write(bytes(arg), { argsz: 0xffffffff }); return 0; });
    expect(() => regionInfo(huge, huge.open('dev'), 0)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });

  it('stops asking after a bounded number of tries when the chain keeps growing', () => {
    let need = 40;
    const p = new FakeProcess().on(VFIO_DEVICE_GET_REGION_INFO, (_fd, arg) => {
      need += 8;
      vfioRegionInfo.write(bytes(arg), { argsz: need, flags: VFIO_REGION_INFO_FLAG_CAPS, cap_offset: 0, size: 1n });
      return 0;
    });
    expect(regionInfo(p, p.open('dev'), 0)).toMatchObject({ size: 1n, caps: [] });
    expect(p.calls.length).toBe(4);
  });
});

describe('type1Info', () => {
  const ranges = [{ start: 0n, end: 0xfedfffffn }, { start: 0xfef00000n, end: (1n << 48n) - 1n }];
  const fake = (): FakeProcess => new FakeProcess().on(VFIO_IOMMU_GET_INFO, (_fd, arg) => {
    const b = bytes(arg);
    writeInfoWithCaps(b, vfioIommuType1Info, { argsz: u32At(b, 0), flags: VFIO_IOMMU_INFO_PGSIZES, iova_pgsizes: 0x40201000n, cap_offset: 0, pad: 0 },
      VFIO_IOMMU_INFO_CAPS, new CapChainBuilder()
        .add(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, iovaRangeCapPayload(ranges))
        .add(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, dmaAvailCapPayload(65535)));
    return 0;
  });

  it('decodes page sizes, IOVA ranges and DMA_AVAIL after the two-call dance', () => {
    const p = fake();
    const info = type1Info(p, p.open('/dev/vfio/vfio'));
    expect(info).toEqual({
      flags: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
      pgsizes: 0x40201000n,
      iovaRanges: ranges,
      caps: [{ id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1 }, { id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1 }],
      dmaAvail: 65535,
    });
    expect(p.calls.map((c) => u32At(bytes(c.arg), 0))).toEqual([24, 24 + 48 + 16]);
  });

  it('no chain: no ranges, no dmaAvail', () => {
    const p = new FakeProcess().on(VFIO_IOMMU_GET_INFO, (_fd, arg) => {
      vfioIommuType1Info.write(bytes(arg), { flags: VFIO_IOMMU_INFO_PGSIZES, iova_pgsizes: 0x1000n });
      return 0;
    });
    expect(type1Info(p, p.open('c'))).toEqual({ flags: 1, pgsizes: 0x1000n, iovaRanges: [], caps: [] });
  });
});

describe('mapDma and unmapDma', () => {
  it('MAP_DMA carries vaddr, iova, size and READ|WRITE by default', () => {
    const p = new FakeProcess().on(VFIO_IOMMU_MAP_DMA, () => 0);
    const c = p.open('c');
    mapDma(p, c, { vaddr: 0x7f0000000000n, iova: 0x100000n, size: 0x200000n });
    mapDma(p, c, { vaddr: 0x10000n, iova: 0n, size: 0x1000n, flags: VFIO_DMA_MAP_FLAG_READ });
    const [a, b] = p.calls.map((x) => vfioIommuType1DmaMap.decode(bytes(x.arg)));
    expect(a).toEqual({ argsz: 32, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr: 0x7f0000000000n, iova: 0x100000n, size: 0x200000n });
    expect(b?.flags).toBe(VFIO_DMA_MAP_FLAG_READ);
  });

  it('UNMAP_DMA returns the size the kernel wrote back', () => {
    const p = new FakeProcess().on(VFIO_IOMMU_UNMAP_DMA, (_fd, arg) => {
      const b = bytes(arg);
      const req = vfioIommuType1DmaUnmap.decode(b);
      vfioIommuType1DmaUnmap.write(b, { size: (req.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0 ? 0x300000n : 0x200000n });
      return 0;
    });
    const c = p.open('c');
    expect(unmapDma(p, c, { iova: 0x100000n, size: 0x1000n })).toBe(0x200000n);
    expect(unmapDma(p, c, { iova: 0n, size: 0n, flags: VFIO_DMA_UNMAP_FLAG_ALL })).toBe(0x300000n);
    expect(vfioIommuType1DmaUnmap.decode(bytes(p.calls[0]?.arg))).toEqual({ argsz: 24, flags: 0, iova: 0x100000n, size: 0x1000n });
  });

  it('a refused map throws the errno and leaves nothing to undo', () => {
    const p = new FakeProcess().on(VFIO_IOMMU_MAP_DMA, () => { throw new SysError('EEXIST', 'overlap'); });
    expect(() => { mapDma(p, p.open('c'), { vaddr: 0x10000n, iova: 0n, size: 0x1000n }); }).toThrow(expect.objectContaining({ errno: 'EEXIST' }));
  });
});

describe('SET_IRQS helpers', () => {
  const setIrqs = (): FakeProcess => new FakeProcess().on(VFIO_DEVICE_SET_IRQS, () => 0);

  it('setIrqEventfds: DATA_EVENTFD|ACTION_TRIGGER with one s32 per vector after the header', () => {
    const p = setIrqs();
    setIrqEventfds(p, p.open('dev'), VFIO_PCI_MSIX_IRQ_INDEX, 2, [7, -1, 9]);
    const b = bytes(p.calls[0]?.arg);
    expect(vfioIrqSet.decode(b)).toEqual({
      argsz: 20 + 12, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index: VFIO_PCI_MSIX_IRQ_INDEX, start: 2, count: 3,
    });
    expect([i32At(b, 20), i32At(b, 24), i32At(b, 28)]).toEqual([7, -1, 9]);
    expect(b.length).toBe(32);
  });

  it('disable, unmask and mask send DATA_NONE headers', () => {
    const p = setIrqs();
    const fd = p.open('dev');
    disableIrqIndex(p, fd, 1);
    unmaskIrq(p, fd, VFIO_PCI_INTX_IRQ_INDEX);
    maskIrq(p, fd, VFIO_PCI_INTX_IRQ_INDEX, 0, 1);
    unmaskIrq(p, fd, 2, 4, 3);
    expect(p.calls.map((c) => vfioIrqSet.decode(bytes(c.arg)))).toEqual([
      { argsz: 20, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index: 1, start: 0, count: 0 },
      { argsz: 20, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, index: 0, start: 0, count: 1 },
      { argsz: 20, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, index: 0, start: 0, count: 1 },
      { argsz: 20, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, index: 2, start: 4, count: 3 },
    ]);
  });
});
