/**
 * Bad input at every vfio-pci device-fd entry point (common rules): short argsz, unknown flags, overflow and wrap,
 * wrong fd types and use after close, each table-driven. Every row checks the errno Linux 6.12 gives
 * (vfio_pci_core_ioctl, vfio_set_irqs_validate_and_prepare, vfio_pci_ioeventfd, vfio_pci_core_mmap, ksys_pread64),
 * that the error is a SysError, and that the host — mappings, locked pages, open counts, interrupt state,
 * ioeventfds, config space — is exactly as it was before the call.
 */
import type { VfioDevice } from '@vfio-ts/core';
import {
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_IOEVENTFD_32,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioDeviceFeature,
  vfioDeviceInfo,
  vfioDeviceIoeventfd,
  vfioIommuType1DmaMap,
  vfioIrqInfo,
  vfioIrqSet,
  vfioPciHotReset,
  vfioPciHotResetInfo,
  vfioPciOffset,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { VfioPciCoreDevice } from '../src/index.js';
import { e1000eFunction, eduPassive, echoAsync, makeHost, openDev, setIdle, until } from './driver-helpers.js';
import type { TestHost } from './driver-helpers.js';

const A = '0000:01:00.0'; // e1000e: INTx, MSI, MSI-X (5 vectors), BAR0 128 KiB
const B = '0000:01:00.1'; // edu: a second function on the bus, in its own group

type Row = readonly [name: string, call: () => unknown, errno: string];

/** Runs `f`, expecting a SysError with `errno`. */
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

function bigintJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
}

function coreDevice(t: TestHost, bdf: string): VfioPciCoreDevice {
  const d = [...t.host.vfio.devices.values()].find((x) => x.name === bdf) as VfioDevice<VfioPciCoreDevice> | undefined;
  return d!.data;
}

function s32s(...v: number[]): Uint8Array {
  const b = new Uint8Array(4 * v.length);
  v.forEach((x, i) => {
    new DataView(b.buffer).setInt32(4 * i, x, true);
  });
  return b;
}

function irqSet(flags: number, index: number, start: number, count: number, data: Uint8Array = new Uint8Array(0), argsz?: number): Uint8Array {
  const b = new Uint8Array(20 + data.length);
  b.set(vfioIrqSet.encode({ argsz: argsz ?? b.length, flags, index, start, count }));
  b.set(data, 20);
  return b;
}

function hotReset(flags: number, count: number, fds: number[], argsz?: number): Uint8Array {
  const b = new Uint8Array(12 + 4 * fds.length);
  b.set(vfioPciHotReset.encode({ argsz: argsz ?? b.length, flags, count }));
  b.set(s32s(...fds), 12);
  return b;
}

function ioeventfd(flags: number, offset: bigint, fd: number, argsz = 32): Uint8Array {
  return vfioDeviceIoeventfd.encode({ argsz, flags, offset, data: 0x1234n, fd });
}

/**
 * A root port with the e1000e and the edu behind it (a bus reset reaches both), both bound to vfio-pci, A opened
 * the QEMU way with live state to protect: a DMA mapping, MSI-X vector 0 on an eventfd, an ioeventfd on BAR0 and
 * an mmap of BAR0.
 */
function setup() {
  const t = makeHost([
    { bdf: '0000:00:1c.0', bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
    { bdf: A, fn: e1000eFunction(), driver: 'vfio-pci', acs: true },
    { bdf: B, fn: eduPassive(), driver: 'vfio-pci', acs: true },
  ]);
  const { p } = t;
  const a = openDev(t, A);
  const gB = p.open(`/dev/vfio/${t.platform.pci.device(B)!.iommuGroup!.id}`);
  p.ioctl(gB, VFIO_GROUP_SET_CONTAINER, s32s(a.container));
  const b = p.ioctl(gB, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${B}\0`));
  const va = p.mmap({ length: 0x10000 });
  p.ioctl(a.container, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({
    argsz: 32, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr: va, iova: 0x100000n, size: 0x10000n,
  }));
  const ev = p.eventfd(0);
  p.ioctl(a.device, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, s32s(ev)));
  const iev = p.eventfd(0);
  p.ioctl(a.device, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, vfioPciOffset(0) + 0x100n, iev));
  const bar = p.mmap({ length: 0x1000, fd: a.device, offset: vfioPciOffset(0) });
  const devnull = p.open('/dev/null');
  const snapshot = (): string =>
    bigintJson({
      host: t.host.describe(),
      a: coreDevice(t, A).describe(),
      b: coreDevice(t, B).describe(),
      fds: p.fds(),
      config: [...p.pread(a.device, 64, vfioPciOffset(7))],
      bar: [...p.memory.read(bar, 16)],
    });
  return { t, p, ...a, gA: a.group, gB, b, va, ev, iev, bar, devnull, snapshot };
}

/** Runs each row against a fresh view of the same host, checking errno, SysError and an unchanged snapshot. */
function runRows(s: { snapshot: () => string }, rows: readonly Row[]): void {
  for (const [name, call, errno] of rows) {
    const before = s.snapshot();
    rejects(call, errno, name);
    expect(s.snapshot(), `${name}: state changed`).toBe(before);
  }
}

describe('vfio-pci device fd: bad input', () => {
  it('short argsz and short buffers', () => {
    const s = setup();
    const { p, device: d } = s;
    const rows: Row[] = [
      // minsz is offsetofend(num_irqs) = 16: cap_offset is optional.
      ['GET_INFO argsz 15', () => p.ioctl(d, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: 15 })), 'EINVAL'],
      ['GET_REGION_INFO argsz 31', () => p.ioctl(d, VFIO_DEVICE_GET_REGION_INFO, vfioRegionInfo.encode({ argsz: 31 })), 'EINVAL'],
      ['GET_IRQ_INFO argsz 15', () => p.ioctl(d, VFIO_DEVICE_GET_IRQ_INFO, vfioIrqInfo.encode({ argsz: 15 })), 'EINVAL'],
      ['SET_IRQS argsz 19', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, new Uint8Array(0), 19)), 'EINVAL'],
      // The data array must fit in argsz - minsz: one eventfd needs 4 bytes.
      ['SET_IRQS eventfd data past argsz', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 1, 1, s32s(s.ev), 23)), 'EINVAL'],
      ['SET_IRQS bool data past argsz', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 2, new Uint8Array(1))), 'EINVAL'],
      ['HOT_RESET_INFO argsz 11', () => p.ioctl(d, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, vfioPciHotResetInfo.encode({ argsz: 11 })), 'EINVAL'],
      ['PCI_HOT_RESET argsz 11', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 2, [s.gA, s.gB], 11)), 'EINVAL'],
      ['IOEVENTFD argsz 27', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, vfioPciOffset(0) + 0x200n, s.iev, 27)), 'EINVAL'],
      ['FEATURE argsz 7', () => p.ioctl(d, VFIO_DEVICE_FEATURE, vfioDeviceFeature.encode({ argsz: 7, flags: 0 })), 'EINVAL'],
      // A user buffer shorter than the fixed header faults in copy_from_user.
      ...([
        VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_SET_IRQS,
        VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, VFIO_DEVICE_PCI_HOT_RESET, VFIO_DEVICE_IOEVENTFD, VFIO_DEVICE_FEATURE,
      ].map((req): Row => [`request ${req.toString(16)} with a 3-byte buffer`, () => p.ioctl(d, req, new Uint8Array(3)), 'EFAULT'])),
      ['GET_INFO at an unmapped address', () => p.ioctl(d, VFIO_DEVICE_GET_INFO, 0x1000), 'EFAULT'],
      ['SET_IRQS at address 0', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, 0), 'EFAULT'],
    ];
    runRows(s, rows);
  });

  it('unknown and conflicting flags', () => {
    const s = setup();
    const { p, device: d } = s;
    const T = VFIO_IRQ_SET_ACTION_TRIGGER;
    const rows: Row[] = [
      ['SET_IRQS unknown flag bit 6', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T | (1 << 6), VFIO_PCI_MSIX_IRQ_INDEX, 0, 1)), 'EINVAL'],
      ['SET_IRQS flag bit 31', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T | 0x80000000, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1)), 'EINVAL'],
      ['SET_IRQS two data types', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | T, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, new Uint8Array(4))), 'EINVAL'],
      ['SET_IRQS no data type', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(T, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1)), 'EINVAL'],
      // No handler for the (index, action) pair: vfio_pci_set_irqs_ioctl returns ENOTTY.
      ['SET_IRQS MSI-X mask', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1)), 'ENOTTY'],
      ['SET_IRQS two actions', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1)), 'ENOTTY'],
      ['SET_IRQS no action', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1)), 'ENOTTY'],
      ['SET_IRQS ERR mask', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, VFIO_PCI_ERR_IRQ_INDEX, 0, 1)), 'ENOTTY'],
      ['IOEVENTFD unknown flag', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32 | 0x10, vfioPciOffset(0) + 0x200n, s.iev)), 'EINVAL'],
      ['IOEVENTFD two sizes', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(0x3, vfioPciOffset(0) + 0x200n, s.iev)), 'EINVAL'],
      ['IOEVENTFD no size', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(0, vfioPciOffset(0) + 0x200n, s.iev)), 'EINVAL'],
      ['PCI_HOT_RESET flags 1', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(1, 2, [s.gA, s.gB])), 'EINVAL'],
      ['PCI_HOT_RESET flags bit 31', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0x80000000, 2, [s.gA, s.gB])), 'EINVAL'],
      ['FEATURE unknown flag bit', () => p.ioctl(d, VFIO_DEVICE_FEATURE, vfioDeviceFeature.encode({ argsz: 8, flags: (1 << 20) | 1 })), 'EINVAL'],
    ];
    runRows(s, rows);
  });

  it('overflow and wrap: indexes, counts and offsets', () => {
    const s = setup();
    const { p, device: d } = s;
    const T = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    const rows: Row[] = [
      ['GET_REGION_INFO index 9', () => p.ioctl(d, VFIO_DEVICE_GET_REGION_INFO, vfioRegionInfo.encode({ argsz: 32, index: 9 })), 'EINVAL'],
      ['GET_REGION_INFO index 0xffffffff', () => p.ioctl(d, VFIO_DEVICE_GET_REGION_INFO, vfioRegionInfo.encode({ argsz: 32, index: 0xffffffff })), 'EINVAL'],
      ['GET_IRQ_INFO index 5', () => p.ioctl(d, VFIO_DEVICE_GET_IRQ_INFO, vfioIrqInfo.encode({ argsz: 16, index: 5 })), 'EINVAL'],
      ['GET_IRQ_INFO index 0xffffffff', () => p.ioctl(d, VFIO_DEVICE_GET_IRQ_INFO, vfioIrqInfo.encode({ argsz: 16, index: 0xffffffff })), 'EINVAL'],
      ['SET_IRQS index 5', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(T, 5, 0, 1)), 'EINVAL'],
      ['SET_IRQS index 0xffffffff', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(T, 0xffffffff, 0, 1)), 'EINVAL'],
      // count >= U32_MAX - start catches start + count wrapping a u32.
      ['SET_IRQS start 0xffffffff count 1', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(T, VFIO_PCI_MSIX_IRQ_INDEX, 0xffffffff, 1)), 'EINVAL'],
      ['SET_IRQS start 1 count 0xffffffff', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(T, VFIO_PCI_MSIX_IRQ_INDEX, 1, 0xffffffff)), 'EINVAL'],
      ['SET_IRQS start 0x80000000 count 0x80000000', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(T, VFIO_PCI_MSIX_IRQ_INDEX, 0x80000000, 0x80000000)), 'EINVAL'],
      ['SET_IRQS past the vector count', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(T, VFIO_PCI_MSIX_IRQ_INDEX, 4, 2)), 'EINVAL'],
      ['SET_IRQS eventfd count*4 wraps u32', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 0x40000001, s32s(s.ev))), 'EINVAL'],
      ['IOEVENTFD offset ~0', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, 0xfffffffffffffffcn, s.iev)), 'EINVAL'],
      ['IOEVENTFD crossing the end of BAR0', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, vfioPciOffset(0) + 0x1fffen, s.iev)), 'EINVAL'],
      ['IOEVENTFD offset wraps the BAR offset mask', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, vfioPciOffset(0) + 0xfffffffffcn, s.iev)), 'EINVAL'],
      ['IOEVENTFD on config space', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, vfioPciOffset(7), s.iev)), 'EINVAL'],
      ['PCI_HOT_RESET count 0xffffffff', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 0xffffffff, [s.gA, s.gB])), 'EINVAL'],
      ['PCI_HOT_RESET more fds than devices', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 3, [s.gA, s.gB, s.gB])), 'EINVAL'],
      ['PCI_HOT_RESET count past the buffer', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 2, [s.gA])), 'EFAULT'],
      ['PCI_HOT_RESET count 0 on a group-opened device', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 0, [])), 'EINVAL'],
      ['pread at a negative offset', () => p.pread(d, 4, -1n), 'EINVAL'],
      ['pread region index 0xffffff', () => p.pread(d, 4, 0xffffffn << 40n), 'EINVAL'],
      ['pread region index 9', () => p.pread(d, 4, vfioPciOffset(9)), 'EINVAL'],
      ['pread past the end of BAR0', () => p.pread(d, 4, vfioPciOffset(0) + 0x20000n), 'EINVAL'],
      ['pwrite at a negative offset', () => p.pwrite(d, new Uint8Array(4), -4n), 'EINVAL'],
      ['pwrite region index 9', () => p.pwrite(d, new Uint8Array(4), vfioPciOffset(9)), 'EINVAL'],
      ['pwrite past the end of BAR0', () => p.pwrite(d, new Uint8Array(4), vfioPciOffset(0) + 0x20000n), 'EINVAL'],
      ['mmap past the end of BAR0', () => p.mmap({ length: 0x1000, fd: d, offset: vfioPciOffset(0) + 0x20000n }), 'EINVAL'],
      ['mmap longer than BAR0', () => p.mmap({ length: 0x21000, fd: d, offset: vfioPciOffset(0) }), 'EINVAL'],
      ['mmap of config space', () => p.mmap({ length: 0x1000, fd: d, offset: vfioPciOffset(7) }), 'EINVAL'],
      ['mmap region index 0xffffff', () => p.mmap({ length: 0x1000, fd: d, offset: 0xffffffn << 40n }), 'EINVAL'],
      ['mmap private', () => p.mmap({ length: 0x1000, fd: d, offset: vfioPciOffset(0), shared: false }), 'EINVAL'],
    ];
    runRows(s, rows);
  });

  it('wrong fd types: in arguments, and device requests on other files', () => {
    const s = setup();
    const { p, device: d } = s;
    const ef = (index: number, start: number, fd: number): Uint8Array =>
      irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start, 1, s32s(fd));
    const rows: Row[] = [
      // eventfd_ctx_fdget: not an eventfd → EINVAL, no such fd → EBADF.
      ['SET_IRQS MSI-X vector 1 on /dev/null', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_MSIX_IRQ_INDEX, 1, s.devnull)), 'EINVAL'],
      ['SET_IRQS MSI-X vector 1 on a group fd', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_MSIX_IRQ_INDEX, 1, s.gA)), 'EINVAL'],
      ['SET_IRQS MSI-X vector 1 on fd 999', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_MSIX_IRQ_INDEX, 1, 999)), 'EBADF'],
      // A block over the live vector 0 with one bad fd: every eventfd is resolved before any vector changes, so
      // vector 0 keeps its trigger (Linux 6.12's vfio_msi_set_block would leave the touched vectors without one;
      // the project rule — a refused call changes nothing — is stricter).
      ['SET_IRQS MSI-X block [eventfd, /dev/null] over a live vector', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 2, s32s(s.iev, s.devnull))), 'EINVAL'],
      ['SET_IRQS ERR on /dev/null', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_ERR_IRQ_INDEX, 0, s.devnull)), 'EINVAL'],
      ['SET_IRQS REQ on the container', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_REQ_IRQ_INDEX, 0, s.container)), 'EINVAL'],
      // B has nothing enabled: a bad trigger fd must leave it with no interrupt type.
      ['SET_IRQS INTx on /dev/null (B)', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_INTX_IRQ_INDEX, 0, s.devnull)), 'EINVAL'],
      ['SET_IRQS MSI on /dev/null (B)', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_MSI_IRQ_INDEX, 0, s.devnull)), 'EINVAL'],
      ['SET_IRQS MSI on fd 999 (B)', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, ef(VFIO_PCI_MSI_IRQ_INDEX, 0, 999)), 'EBADF'],
      ['IOEVENTFD on /dev/null', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, vfioPciOffset(0) + 0x200n, s.devnull)), 'EINVAL'],
      ['IOEVENTFD on fd 999', () => p.ioctl(d, VFIO_DEVICE_IOEVENTFD, ioeventfd(VFIO_DEVICE_IOEVENTFD_32, vfioPciOffset(0) + 0x200n, 999)), 'EBADF'],
      // vfio_pci_ioctl_pci_hot_reset_groups: fget fails → EBADF; not a group file → EINVAL.
      ['PCI_HOT_RESET with /dev/null', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 2, [s.gA, s.devnull])), 'EINVAL'],
      ['PCI_HOT_RESET with an eventfd', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 2, [s.ev, s.gB])), 'EINVAL'],
      ['PCI_HOT_RESET with the container', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 2, [s.gA, s.container])), 'EINVAL'],
      ['PCI_HOT_RESET with a device fd', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 2, [s.gA, s.b])), 'EINVAL'],
      ['PCI_HOT_RESET with fd 999', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 2, [s.gA, 999])), 'EBADF'],
      // vfio_pci_dev_set_hot_reset: a device of the set outside the groups given is not owned → EINVAL.
      ['PCI_HOT_RESET missing a group', () => p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, hotReset(0, 1, [s.gA])), 'EINVAL'],
      // Device requests on files that are not devices: group and plain files → ENOTTY; the container passes
      // unknown requests to type1, which answers ENOTTY.
      ...[VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET].flatMap((req): Row[] => [
        [`device request ${req.toString(16)} on the group`, () => p.ioctl(s.gA, req, new Uint8Array(64).fill(0xff)), 'ENOTTY'],
        [`device request ${req.toString(16)} on the container`, () => p.ioctl(s.container, req, new Uint8Array(64).fill(0xff)), 'ENOTTY'],
        [`device request ${req.toString(16)} on /dev/null`, () => p.ioctl(s.devnull, req, new Uint8Array(64)), 'ENOTTY'],
        [`device request ${req.toString(16)} on an eventfd`, () => p.ioctl(s.ev, req, new Uint8Array(64)), 'ENOTTY'],
      ]),
      // Container and group requests on a device fd go to vfio-pci, which knows none of them.
      ['GET_API_VERSION on the device', () => p.ioctl(d, VFIO_GET_API_VERSION), 'ENOTTY'],
      ['CHECK_EXTENSION on the device', () => p.ioctl(d, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 'ENOTTY'],
      ['SET_IOMMU on the device', () => p.ioctl(d, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'ENOTTY'],
      ['GROUP_GET_STATUS on the device', () => p.ioctl(d, VFIO_GROUP_GET_STATUS, new Uint8Array(8).fill(8, 0, 1)), 'ENOTTY'],
      ['GROUP_SET_CONTAINER on the device', () => p.ioctl(d, VFIO_GROUP_SET_CONTAINER, s32s(s.container)), 'ENOTTY'],
      ['GROUP_UNSET_CONTAINER on the device', () => p.ioctl(d, VFIO_GROUP_UNSET_CONTAINER), 'ENOTTY'],
      ['GROUP_GET_DEVICE_FD on the device', () => p.ioctl(d, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${A}\0`)), 'ENOTTY'],
      // UNMAP_DMA shares its number with QUERY_GFX_PLANE, which vfio-pci does not implement.
      ['UNMAP_DMA on the device (= QUERY_GFX_PLANE)', () => p.ioctl(d, VFIO_IOMMU_UNMAP_DMA, new Uint8Array(64).fill(0)), 'ENOTTY'],
      ['QUERY_GFX_PLANE on vfio-pci', () => p.ioctl(d, VFIO_DEVICE_QUERY_GFX_PLANE, new Uint8Array(64)), 'ENOTTY'],
      // MAP_DMA shares its number with PCI_HOT_RESET: the map flags read as hot-reset flags.
      ['MAP_DMA on the device (= PCI_HOT_RESET)', () => p.ioctl(d, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: 3, size: 0x1000n })), 'EINVAL'],
      // cdev-only requests on a group-opened device.
      ['BIND_IOMMUFD on a group-opened device', () => p.ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, new Uint8Array(24).fill(24, 0, 1)), 'EINVAL'],
      ['ATTACH_IOMMUFD_PT on a group-opened device', () => p.ioctl(d, VFIO_DEVICE_ATTACH_IOMMUFD_PT, new Uint8Array(12).fill(12, 0, 1)), 'ENOTTY'],
      ['mmap of the group fd', () => p.mmap({ length: 0x1000, fd: s.gA }), 'ENODEV'],
      ['read on the container fd', () => p.read(s.container, 4), 'EINVAL'],
    ];
    runRows(s, rows);
  });

  it('use after close: every entry point on a closed device fd is EBADF; mappings of it stay', () => {
    const s = setup();
    const { p, device: d, t } = s;
    const openCount = (): number => (t.host.describe().devices as { name: string; openCount: number }[]).find((x) => x.name === A)!.openCount;
    p.close(d);
    // The BAR mmap holds the file: the device stays open and the mapping keeps working.
    expect(openCount()).toBe(1);
    const rows: Row[] = [
      ['GET_INFO', () => p.ioctl(d, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: 24 })), 'EBADF'],
      ['SET_IRQS', () => p.ioctl(d, VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 0)), 'EBADF'],
      ['RESET', () => p.ioctl(d, VFIO_DEVICE_RESET), 'EBADF'],
      ['FEATURE', () => p.ioctl(d, VFIO_DEVICE_FEATURE, vfioDeviceFeature.encode({ argsz: 8, flags: 0x10000 })), 'EBADF'],
      ['pread', () => p.pread(d, 4, vfioPciOffset(7)), 'EBADF'],
      ['pwrite', () => p.pwrite(d, new Uint8Array(4), vfioPciOffset(0)), 'EBADF'],
      ['read', () => p.read(d, 4), 'EBADF'],
      ['mmap', () => p.mmap({ length: 0x1000, fd: d, offset: vfioPciOffset(0) }), 'EBADF'],
      ['close', () => { p.close(d); }, 'EBADF'],
      ['ioctl on fd -1', () => p.ioctl(-1, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: 24 })), 'EBADF'],
    ];
    runRows({ snapshot: () => bigintJson({ h: t.host.describe(), a: coreDevice(t, A).describe(), fds: p.fds() }) }, rows);
    p.memory.write(s.bar + 0x10n, new Uint8Array([1, 2, 3, 4]));
    expect([...p.memory.read(s.bar + 0x10n, 4)]).toEqual([1, 2, 3, 4]);
    p.munmap(s.bar, 0x1000);
    expect(openCount()).toBe(0);
    // A closed group fd and container fd too.
    p.close(s.gB);
    rejects(() => p.ioctl(s.gB, VFIO_GROUP_GET_STATUS, new Uint8Array(8).fill(8, 0, 1)), 'EBADF');
  });

  it('a device unbound from vfio-pci: its fd works until closed, then the group has no device and no container', async () => {
    const s = setup();
    const { p, t } = s;
    // Release B and its group first so only A holds the container.
    p.close(s.b);
    await until(() => setIdle(t, B));
    p.ioctl(s.gB, VFIO_GROUP_UNSET_CONTAINER);
    let unbound = false;
    const unbind = echoAsync(p, '/sys/bus/pci/drivers/vfio-pci/unbind', A).then(() => {
      unbound = true;
    });
    // Linux blocks the unbind until the user lets go (REQ is signalled); the fd keeps working meanwhile.
    for (let i = 0; i < 10; i++) await new Promise<void>((r) => { setImmediate(r); });
    expect(unbound).toBe(false);
    const info = vfioDeviceInfo.encode({ argsz: 24 });
    expect(p.ioctl(s.device, VFIO_DEVICE_GET_INFO, info)).toBe(0);
    expect(vfioDeviceInfo.decode(info).num_regions).toBe(9);
    p.munmap(s.bar, 0x1000);
    p.close(s.device);
    await unbind;
    expect(unbound).toBe(true);
    // The device is gone from vfio: asking for it by name is ENODEV, the group fd answers ENODEV.
    rejects(() => p.ioctl(s.gA, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${A}\0`)), 'ENODEV');
    rejects(() => p.ioctl(s.gA, VFIO_GROUP_GET_STATUS, vfioPciHotResetInfo.encode({ argsz: 8 }).slice(0, 8)), 'ENODEV');
    rejects(() => p.ioctl(s.gA, VFIO_GROUP_SET_CONTAINER, s32s(s.container)), 'ENODEV');
    // Detaching the last group released the IOMMU backend with its mappings and pins.
    const desc = t.host.describe();
    expect(desc.processes[0]!.lockedPages).toBe(0);
    rejects(() => p.ioctl(s.container, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({
      argsz: 32, flags: 3, vaddr: s.va, iova: 0x100000n, size: 0x1000n,
    })), 'EINVAL');
  });

  it('structured fuzz: SET_IRQS and IOEVENTFD with boundary values; a refused call leaves the interrupt state alone', () => {
    const dataTypes = [VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD, 0, 3, 1 << 6];
    const actions = [VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_ACTION_TRIGGER, 0, VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_TRIGGER];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('irqs' as const),
        dev: fc.nat(1),
        data: fc.constantFrom(...dataTypes),
        action: fc.constantFrom(...actions),
        index: fc.constantFrom(0, 1, 2, 3, 4, 5, 0xffffffff),
        start: fc.constantFrom(0, 1, 4, 5, 0xffffffff),
        count: fc.constantFrom(0, 1, 2, 5, 6, 0xffffffff),
        fds: fc.array(fc.nat(4), { minLength: 0, maxLength: 6 }),
        shortBy: fc.constantFrom(0, 0, 1, 4),
      }),
      fc.record({
        kind: fc.constant('ioeventfd' as const),
        flags: fc.constantFrom(0, 1, 2, 4, 8, 3, 0x10),
        bar: fc.constantFrom(0, 3, 7, 0xffffff),
        off: fc.constantFrom(0n, 0x100n, 0x104n, 0x1fffcn, 0x20000n),
        fd: fc.nat(4),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 15 }), (ops) => {
        const s = setup();
        const { p, t } = s;
        const spare = p.eventfd(0);
        const fdOf = (k: number): number => [s.ev, spare, -1, s.devnull, 999][k]!;
        const irqState = (): string => bigintJson({ a: coreDevice(t, A).describe(), b: coreDevice(t, B).describe(), fds: p.fds() });
        for (const o of ops) {
          let req: number;
          let arg: Uint8Array;
          if (o.kind === 'irqs') {
            const dev = o.dev === 0 ? s.device : s.b;
            const data = o.data === VFIO_IRQ_SET_DATA_EVENTFD ? s32s(...o.fds.map(fdOf)) : new Uint8Array(o.fds.length);
            const full = irqSet(o.data | o.action, o.index, o.start, o.count, data);
            arg = o.shortBy ? full.subarray(0, Math.max(0, full.length - o.shortBy)) : full;
            req = VFIO_DEVICE_SET_IRQS;
            const before = irqState();
            try {
              p.ioctl(dev, req, arg);
            } catch (e) {
              if (!(e instanceof SysError)) throw e;
              // Stricter than Linux's vfio_msi_set_block, which leaves a failed block's vectors without triggers.
              expect(irqState(), `SET_IRQS refused with ${e.errno} but changed state`).toBe(before);
            }
          } else {
            arg = ioeventfd(o.flags, vfioPciOffset(0) + (BigInt(o.bar) << 40n) + o.off, fdOf(o.fd));
            const before = irqState();
            try {
              p.ioctl(s.device, VFIO_DEVICE_IOEVENTFD, arg);
            } catch (e) {
              if (!(e instanceof SysError)) throw e;
              expect(irqState(), `IOEVENTFD refused with ${e.errno} but changed state`).toBe(before);
            }
          }
        }
      }),
      { numRuns: 80 },
    );
  });

  it('INTx unmask through an eventfd (virqfd): bad fds refused, the unmask eventfd and the trigger kept', async () => {
    const s = setup();
    const { p, t } = s;
    const T = VFIO_IRQ_SET_DATA_EVENTFD;
    const trig = p.eventfd(0);
    const unmaskFd = p.eventfd(0);
    // B: INTx on an eventfd, with an unmask eventfd (a virqfd) already in place.
    p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, irqSet(T | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, s32s(trig)));
    p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, irqSet(T | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, s32s(unmaskFd)));
    const state = (): string => bigintJson({ b: coreDevice(t, B).describe(), fds: p.fds() });
    const intx = (JSON.parse(state()) as { b: { irqs: { intx: { eventfd: unknown; unmaskEventfd: unknown } } } }).b.irqs.intx;
    expect(intx.eventfd).not.toBeNull();
    expect(intx.unmaskEventfd).not.toBeNull();
    const unmask = (fd: number, start = 0, count = 1): Uint8Array => irqSet(T | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, start, count, s32s(fd));
    runRows({ snapshot: state }, [
      // vfio_virqfd_enable: fdget fails → EBADF; not an eventfd → EINVAL.
      ['UNMASK eventfd on /dev/null', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, unmask(s.devnull)), 'EINVAL'],
      ['UNMASK eventfd on the group', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, unmask(s.gB)), 'EINVAL'],
      ['UNMASK eventfd on fd 999', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, unmask(999)), 'EBADF'],
      // INTx has one vector: start 1 or count 2 is out of range.
      ['UNMASK start 1', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, unmask(unmaskFd, 1, 1)), 'EINVAL'],
      ['UNMASK count 2', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, irqSet(T | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 2, s32s(unmaskFd, unmaskFd))), 'EINVAL'],
      // A valid eventfd while an unmask virqfd exists: vfio_virqfd_enable finds the slot taken (EBUSY).
      ['UNMASK eventfd over an existing one', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, unmask(trig)), 'EBUSY'],
      ['TRIGGER on /dev/null while INTx is on', () => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, irqSet(T | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, s32s(s.devnull))), 'EINVAL'],
    ]);
    // Use after close of the unmask eventfd's fd number is EBADF.
    p.close(unmaskFd);
    rejects(() => p.ioctl(s.b, VFIO_DEVICE_SET_IRQS, unmask(unmaskFd)), 'EBADF');
    // Closing the last reference of the eventfd releases the virqfd (EPOLLHUP → virqfd_shutdown), as on Linux.
    await until(() => (coreDevice(t, B).describe().irqs as { intx: { unmaskEventfd: unknown } }).intx.unmaskEventfd === null);
  });
});
