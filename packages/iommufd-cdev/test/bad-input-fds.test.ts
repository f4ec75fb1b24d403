/**
 * /dev/iommu bad input the other iommufd tests leave out (common rules): wrong fd types both ways, use after
 * close, and overflow/wrap rows with a full state check — object count, locked pages, pin counts and the IOAS's
 * contents must be exactly as before each refused call.
 */
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_SET,
  SysError,
  VFIO_DEVICE_GET_INFO,
  VFIO_GROUP_GET_STATUS,
  iommuDestroy,
  iommuIoasAlloc,
  iommuIoasAllowIovas,
  iommuIoasCopy,
  iommuIoasIovaRanges,
  iommuIoasMap,
  iommuIoasUnmap,
  iommuIovaRange,
  iommuOption,
  iommuVfioIoas,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { FIXED, MiB, PAGE, RW, setup } from './helpers.js';

const U64_MAX = (1n << 64n) - 1n;

type Row = readonly [name: string, call: () => unknown, errno: string];

function rejects(f: () => unknown, errno: string, name = ''): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `${name}: expected ${errno}`).toBeInstanceOf(SysError);
  expect((err as SysError).errno, name).toBe(errno);
}

function fixture() {
  const f = setup();
  const ioas = f.ioasAlloc();
  const other = f.ioasAlloc();
  f.device(ioas);
  const buf = f.buffer(8n * PAGE);
  f.p.memory.write(buf, new Uint8Array([5, 6, 7, 8]));
  f.map(ioas, buf, 4n * PAGE, { iova: MiB });
  const devnull = f.p.open('/dev/null');
  const ev = f.p.eventfd(0);
  const container = f.p.open('/dev/vfio/vfio');
  const pins = (): number[] => {
    const out: number[] = [];
    for (let i = 0n; i < 8n; i++) {
      const page = f.p.mm.lookup(buf + i * PAGE);
      out.push(page ? f.platform.memory.pinCount(page.pfn) : -1);
    }
    return out;
  };
  // IOVA_RANGES into an array allocated once (a fresh mmap per snapshot could fill a hole a row relies on).
  const rangesAt = f.p.mmap({ length: 4096 });
  const usable = (): string => {
    const b = iommuIoasIovaRanges.encode({ size: 32, ioas_id: ioas, num_iovas: 8, allowed_iovas: rangesAt });
    f.p.ioctl(f.fd, IOMMU_IOAS_IOVA_RANGES, b);
    return [...f.p.memory.read(rangesAt, 16 * iommuIoasIovaRanges.decode(b).num_iovas)].join(',');
  };
  const snapshot = (): string =>
    JSON.stringify({
      objects: f.ctx.objectCount,
      locked: f.sub.userLockedPages(1000),
      pins: pins(),
      fds: f.p.fds(),
      ranges: usable(),
    });
  return { ...f, ioas, other, buf, devnull, ev, container, snapshot };
}

function runRows(snapshot: () => string, rows: readonly Row[]): void {
  for (const [name, call, errno] of rows) {
    const before = snapshot();
    rejects(call, errno, name);
    expect(snapshot(), `${name}: state changed`).toBe(before);
  }
}

describe('/dev/iommu: wrong fd types, use after close, overflow with state checks', () => {
  it('iommufd commands on files that are not /dev/iommu, and VFIO device/group requests on /dev/iommu', () => {
    const s = fixture();
    const { p } = s;
    const cmds: [string, number, Uint8Array][] = [
      ['IOAS_ALLOC', IOMMU_IOAS_ALLOC, iommuIoasAlloc.encode({ size: 12 })],
      ['IOAS_MAP', IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW, ioas_id: s.ioas, user_va: s.buf, length: PAGE })],
      ['IOAS_UNMAP', IOMMU_IOAS_UNMAP, iommuIoasUnmap.encode({ size: 24, ioas_id: s.ioas, iova: MiB, length: 4n * PAGE })],
      ['DESTROY', IOMMU_DESTROY, iommuDestroy.encode({ size: 8, id: s.other })],
      ['OPTION', IOMMU_OPTION, iommuOption.encode({ size: 24 })],
    ];
    const rows: Row[] = cmds.flatMap(([name, req, arg]): Row[] => [
      [`${name} on /dev/null`, () => p.ioctl(s.devnull, req, arg.slice()), 'ENOTTY'],
      [`${name} on an eventfd`, () => p.ioctl(s.ev, req, arg.slice()), 'ENOTTY'],
      // A VFIO container passes unknown requests to its backend; without one it answers EINVAL.
      [`${name} on a VFIO container`, () => p.ioctl(s.container, req, arg.slice()), 'EINVAL'],
    ]);
    rows.push(
      // iommufd_fops_ioctl: a request outside the iommufd range (VFIO's device/group numbers) is ENOTTY unless the
      // VFIO compat layer claims it — it claims only container requests.
      ['VFIO_DEVICE_GET_INFO on /dev/iommu', () => p.ioctl(s.fd, VFIO_DEVICE_GET_INFO, new Uint8Array(24).fill(24, 0, 1)), 'ENOTTY'],
      ['VFIO_GROUP_GET_STATUS on /dev/iommu', () => p.ioctl(s.fd, VFIO_GROUP_GET_STATUS, new Uint8Array(8).fill(8, 0, 1)), 'ENOTTY'],
      ['mmap of /dev/iommu', () => p.mmap({ length: 0x1000, fd: s.fd }), 'ENODEV'],
    );
    runRows(s.snapshot, rows);
  });

  it('overflow and wrap with the state checked after each', () => {
    const s = fixture();
    const { p } = s;
    const allowAt = p.mmap({ length: 4096 });
    p.memory.write(allowAt, iommuIovaRange.encode({ start: 0x2000n, last: 0x1000n }));
    p.memory.write(allowAt + 16n, iommuIovaRange.encode({ start: 0x1000n, last: 0x1000n }));
    // A valid range in the last 16 bytes of a page whose successor is unmapped.
    const two = p.mmap({ length: 8192 });
    p.munmap(two + 4096n, 4096);
    const edge = two + 4096n - 16n;
    p.memory.write(edge, iommuIovaRange.encode({ start: 0x1000n, last: 0x1fffn }));
    runRows(s.snapshot, [
      ['IOAS_MAP user_va + length wraps', () => p.ioctl(s.fd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW, ioas_id: s.ioas, user_va: U64_MAX - PAGE + 1n, length: 2n * PAGE })), 'EOVERFLOW'],
      ['IOAS_MAP fixed iova + length wraps', () => p.ioctl(s.fd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW | FIXED, ioas_id: s.ioas, user_va: s.buf, length: 2n * PAGE, iova: U64_MAX - PAGE + 1n })), 'EOVERFLOW'],
      ['IOAS_MAP over an existing area', () => p.ioctl(s.fd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW | FIXED, ioas_id: s.ioas, user_va: s.buf, length: PAGE, iova: MiB + PAGE })), 'EEXIST'],
      ['IOAS_UNMAP iova + length wraps', () => p.ioctl(s.fd, IOMMU_IOAS_UNMAP, iommuIoasUnmap.encode({ size: 24, ioas_id: s.ioas, iova: U64_MAX - PAGE + 1n, length: 2n * PAGE })), 'EOVERFLOW'],
      // Cutting into an area is refused and the area stays whole.
      ['IOAS_UNMAP part of an area', () => p.ioctl(s.fd, IOMMU_IOAS_UNMAP, iommuIoasUnmap.encode({ size: 24, ioas_id: s.ioas, iova: MiB + PAGE, length: PAGE })), 'ENOENT'],
      ['IOAS_COPY src + length wraps', () => p.ioctl(s.fd, IOMMU_IOAS_COPY, iommuIoasCopy.encode({ size: 40, flags: RW, dst_ioas_id: s.other, src_ioas_id: s.ioas, length: U64_MAX, src_iova: MiB })), 'EOVERFLOW'],
      ['ALLOW_IOVAS start > last', () => p.ioctl(s.fd, IOMMU_IOAS_ALLOW_IOVAS, iommuIoasAllowIovas.encode({ size: 24, ioas_id: s.ioas, num_iovas: 1, allowed_iovas: allowAt })), 'EINVAL'],
      // Ranges are read one at a time: the first bad one decides (start >= last is EINVAL, even start == last).
      ['ALLOW_IOVAS num_iovas 2^32-1, first range bad', () => p.ioctl(s.fd, IOMMU_IOAS_ALLOW_IOVAS, iommuIoasAllowIovas.encode({ size: 24, ioas_id: s.ioas, num_iovas: 0xffffffff, allowed_iovas: allowAt })), 'EINVAL'],
      ['ALLOW_IOVAS start == last', () => p.ioctl(s.fd, IOMMU_IOAS_ALLOW_IOVAS, iommuIoasAllowIovas.encode({ size: 24, ioas_id: s.ioas, num_iovas: 1, allowed_iovas: allowAt + 16n })), 'EINVAL'],
      ['ALLOW_IOVAS array running into unmapped memory', () => p.ioctl(s.fd, IOMMU_IOAS_ALLOW_IOVAS, iommuIoasAllowIovas.encode({ size: 24, ioas_id: s.ioas, num_iovas: 2, allowed_iovas: edge })), 'EFAULT'],
      ['IOVA_RANGES into an unmapped array', () => p.ioctl(s.fd, IOMMU_IOAS_IOVA_RANGES, iommuIoasIovaRanges.encode({ size: 32, ioas_id: s.ioas, num_iovas: 8, allowed_iovas: 0x1000n })), 'EFAULT'],
      ['DESTROY id 0xffffffff', () => p.ioctl(s.fd, IOMMU_DESTROY, iommuDestroy.encode({ size: 8, id: 0xffffffff })), 'ENOENT'],
      ['VFIO_IOAS SET of id 0xffffffff', () => p.ioctl(s.fd, IOMMU_VFIO_IOAS, iommuVfioIoas.encode({ size: 12, ioas_id: 0xffffffff, op: IOMMU_VFIO_IOAS_SET })), 'ENOENT'],
    ]);
  });

  it('use after close: EBADF on the closed fd; closing released every object and pin', () => {
    const s = fixture();
    const { p, fd } = s;
    p.close(fd);
    const rows: Row[] = [
      ['IOAS_ALLOC', () => p.ioctl(fd, IOMMU_IOAS_ALLOC, iommuIoasAlloc.encode({ size: 12 })), 'EBADF'],
      ['IOAS_MAP', () => p.ioctl(fd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW, ioas_id: s.ioas, user_va: s.buf, length: PAGE })), 'EBADF'],
      ['DESTROY', () => p.ioctl(fd, IOMMU_DESTROY, iommuDestroy.encode({ size: 8, id: s.ioas })), 'EBADF'],
      ['mmap', () => p.mmap({ length: 0x1000, fd }), 'EBADF'],
      ['close', () => { p.close(fd); }, 'EBADF'],
    ];
    for (const [name, call, errno] of rows) rejects(call, errno, name);
    // The last reference went with the fd: every object, pin and locked page is gone.
    expect(s.ctx.objectCount).toBe(0);
    expect(s.sub.userLockedPages(1000)).toBe(0);
    for (let i = 0n; i < 8n; i++) {
      const page = p.mm.lookup(s.buf + i * PAGE);
      if (page) expect(s.platform.memory.pinCount(page.pfn)).toBe(0);
    }
    expect(p.fds()).not.toContain(fd);
  });
});
