import { createHost, O_RDONLY, O_WRONLY, openVfioDevice } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GFX_PLANE_TYPE_DMABUF,
  VFIO_GFX_PLANE_TYPE_PROBE,
  VFIO_GFX_PLANE_TYPE_REGION,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VFIO_TYPE1v2_IOMMU,
  vfioDeviceGfxPlaneInfo,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioIrqSet,
  vfioRegionInfo,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { DRM_FORMAT_XRGB8888, mdpy, MDPY_DISPLAY_REGION, MDPY_MEMORY_BAR_OFFSET } from '../src/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const TYPES = '/sys/devices/virtual/mdpy/mdpy/mdev_supported_types';
const uuid = (n: number): string => `5e1f0000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

function cat(p: Process, path: string): string {
  const fd = p.open(path, O_RDONLY);
  try {
    return dec.decode(p.read(fd, 4096));
  } finally {
    p.close(fd);
  }
}

function echo(p: Process, path: string, text: string): void {
  const fd = p.open(path, O_WRONLY);
  try {
    p.write(fd, enc.encode(text));
  } finally {
    p.close(fd);
  }
}

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SysError);
    return (e as SysError).errno;
  }
  throw new Error('expected a SysError');
}

function setup(params: Record<string, number> = {}): Process {
  const host = createHost({ platform: simPlatform(), plugins: [type1(), mdpy()], params });
  return host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_DAC_OVERRIDE'], memlockLimit: 64n << 20n });
}

function open(p: Process, type: string, id: string): number {
  echo(p, `${TYPES}/${type}/create`, id);
  const group = Number(p.readlink(`/sys/bus/mdev/devices/${id}/iommu_group`).split('/').at(-1));
  const { device } = openVfioDevice(p, { group, device: id, iommuType: VFIO_TYPE1v2_IOMMU });
  p.ioctl(device, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size }));
  return device;
}

function queryPlane(p: Process, device: number, flags: number, argsz = vfioDeviceGfxPlaneInfo.size): Uint8Array {
  const b = vfioDeviceGfxPlaneInfo.encode({ argsz, flags });
  p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, b);
  return b;
}

describe('mdpy parent', () => {
  it('offers three resolutions sharing the count budget (EUSERS when used up)', () => {
    const p = setup({ 'mdpy.count': 2 });
    expect(p.readdir(TYPES).sort()).toEqual(['mdpy-hd', 'mdpy-vga', 'mdpy-xga']);
    expect(cat(p, `${TYPES}/mdpy-xga/name`)).toBe('mdpy-xga\n');
    expect(cat(p, `${TYPES}/mdpy-hd/description`)).toBe('virtual display, 1920x1080 framebuffer\n');
    expect(cat(p, `${TYPES}/mdpy-vga/available_instances`)).toBe('2\n');
    expect(cat(p, '/sys/module/mdpy/parameters/count')).toBe('2\n');
    echo(p, `${TYPES}/mdpy-vga/create`, uuid(1));
    echo(p, `${TYPES}/mdpy-hd/create`, uuid(2));
    expect(cat(p, `${TYPES}/mdpy-xga/available_instances`)).toBe('0\n');
    expect(errnoOf(() => { echo(p, `${TYPES}/mdpy-xga/create`, uuid(3)); })).toBe('EUSERS');
    expect(cat(p, `/sys/bus/mdev/devices/${uuid(2)}/vendor/resolution`)).toBe('1920x1080\n');
    echo(p, `/sys/bus/mdev/devices/${uuid(1)}/remove`, '1');
    expect(cat(p, `${TYPES}/mdpy-xga/available_instances`)).toBe('1\n');
    echo(p, `${TYPES}/mdpy-xga/create`, uuid(3));
  });
});

describe('mdpy device', () => {
  it('answers QUERY_GFX_PLANE: PROBE, REGION and errno for bad flags', () => {
    const p = setup();
    const device = open(p, 'mdpy-xga', uuid(1));
    expect(p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, vfioDeviceGfxPlaneInfo.encode({ argsz: 64, flags: VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION }))).toBe(0);
    for (const flags of [
      VFIO_GFX_PLANE_TYPE_PROBE,
      VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF,
      VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION | VFIO_GFX_PLANE_TYPE_DMABUF,
      VFIO_GFX_PLANE_TYPE_DMABUF,
      VFIO_GFX_PLANE_TYPE_REGION | VFIO_GFX_PLANE_TYPE_DMABUF,
      0,
      8,
    ]) {
      expect(errnoOf(() => queryPlane(p, device, flags)), `flags ${flags}`).toBe('EINVAL');
    }
    expect(errnoOf(() => queryPlane(p, device, VFIO_GFX_PLANE_TYPE_REGION, 59))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, new Uint8Array(40)))).toBe('EFAULT');
    const b = vfioDeviceGfxPlaneInfo.encode({ argsz: 64, flags: VFIO_GFX_PLANE_TYPE_REGION, reserved: 0xee });
    p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, b);
    const plane = vfioDeviceGfxPlaneInfo.decode(b);
    // Only minsz (60) bytes are copied back: the reserved word stays as the caller left it.
    expect(plane.reserved).toBe(0xee);
    expect(plane).toMatchObject({
      flags: VFIO_GFX_PLANE_TYPE_REGION,
      drm_format: DRM_FORMAT_XRGB8888,
      drm_format_mod: 0n,
      width: 1024,
      height: 768,
      stride: 4096,
      size: 4 << 20,
      region_index: MDPY_DISPLAY_REGION,
      x_pos: 0,
      y_pos: 0,
    });
    // The plane's region is the framebuffer.
    const r = vfioRegionInfo.encode({ argsz: 32, index: MDPY_DISPLAY_REGION });
    p.ioctl(device, VFIO_DEVICE_GET_REGION_INFO, r);
    expect(vfioRegionInfo.decode(r)).toMatchObject({
      size: 4n << 20n,
      offset: BigInt(MDPY_MEMORY_BAR_OFFSET),
      flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP,
    });
  });

  it('lays out config, BAR0 and the display region as mdpy.c', () => {
    const p = setup();
    const device = open(p, 'mdpy-vga', uuid(1));
    const region = (index: number): ReturnType<typeof vfioRegionInfo.decode> => {
      const r = vfioRegionInfo.encode({ argsz: 32, index });
      p.ioctl(device, VFIO_DEVICE_GET_REGION_INFO, r);
      return vfioRegionInfo.decode(r);
    };
    expect(region(VFIO_PCI_CONFIG_REGION_INDEX)).toMatchObject({ offset: 0n, size: 0xffn, flags: 3 });
    expect(region(VFIO_PCI_BAR0_REGION_INDEX)).toMatchObject({ offset: 0x1000n, size: 2n << 20n, flags: 7 });
    expect(region(2)).toMatchObject({ offset: 0n, size: 0n, flags: 0 });
    expect(errnoOf(() => region(9))).toBe('EINVAL');
    expect(errnoOf(() => region(17))).toBe('EINVAL');
    const cfg = new DataView(p.pread(device, 0x50, 0n).buffer);
    expect([cfg.getUint16(0, true), cfg.getUint16(2, true), cfg.getUint16(0x2c, true), cfg.getUint16(0x2e, true)]).toEqual([0x1b36, 0x000f, 0x1af4, 0x1100]);
    expect(cfg.getUint16(0x0a, true)).toBe(0x0380);
    expect(cfg.getUint8(0x34)).toBe(0x40);
    expect([cfg.getUint8(0x40), cfg.getUint8(0x42)]).toEqual([0x09, 0x10]);
    expect([cfg.getUint32(0x44, true), cfg.getUint32(0x48, true), cfg.getUint32(0x4c, true)]).toEqual([DRM_FORMAT_XRGB8888, 640, 480]);
    // BAR0 sizing: a 2 MiB prefetchable memory BAR.
    p.pwrite(device, new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0x10n);
    expect(new DataView(p.pread(device, 4, 0x10n).buffer).getUint32(0, true)).toBe(0xffe00008);
    // No interrupts.
    const irq = vfioIrqInfo.encode({ argsz: 16, index: 0, flags: 0x5a });
    p.ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, irq);
    expect(vfioIrqInfo.decode(irq)).toMatchObject({ count: 0, flags: 0x5a });
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, vfioIrqInfo.encode({ argsz: 16, index: 5 })))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_SET_IRQS, vfioIrqSet.encode({ argsz: 20 })))).toBe('EINVAL');
    expect(errnoOf(() => p.pread(device, 4, 0x800n))).toBe('EFAULT');
    expect(errnoOf(() => p.pread(device, 4, 0x1000n + (2n << 20n) - 2n))).toBe('EFAULT');
  });

  it('serves the framebuffer by pread/pwrite and a shared mmap, and reset repaints it', () => {
    const p = setup();
    const device = open(p, 'mdpy-vga', uuid(1));
    const stride = 640 * 4;
    const fb = BigInt(MDPY_MEMORY_BAR_OFFSET);
    // The grey gradient: line i is filled with i * 255 / height.
    expect(p.pread(device, 4, fb)).toEqual(new Uint8Array([0, 0, 0, 0]));
    expect(p.pread(device, 4, fb + BigInt(240 * stride))[0]).toBe(127);
    expect(p.pread(device, 1, fb + BigInt(479 * stride))[0]).toBe(254);
    const vaddr = p.mmap({ length: 2n << 20n, fd: device, offset: fb, shared: true });
    expect(p.memory.read(vaddr + BigInt(240 * stride), 1)[0]).toBe(127);
    p.memory.write(vaddr + 8n, new Uint8Array([0x11, 0x22, 0x33, 0x44]));
    expect(p.pread(device, 4, fb + 8n)).toEqual(new Uint8Array([0x11, 0x22, 0x33, 0x44]));
    p.pwrite(device, new Uint8Array([9, 8, 7]), fb + 0x101n);
    expect(p.memory.read(vaddr + 0x101n, 3)).toEqual(new Uint8Array([9, 8, 7]));
    expect(p.ioctl(device, VFIO_DEVICE_RESET)).toBe(0);
    expect(p.memory.read(vaddr + 8n, 4)).toEqual(new Uint8Array([0, 0, 0, 0]));
    expect(errnoOf(() => p.mmap({ length: 0x1000n, fd: device, offset: 0n, shared: true }))).toBe('EINVAL');
    expect(errnoOf(() => p.mmap({ length: 0x1000n, fd: device, offset: fb, shared: false }))).toBe('EINVAL');
    expect(errnoOf(() => p.mmap({ length: 4n << 20n, fd: device, offset: fb, shared: true }))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(device, 0x3b7f))).toBe('ENOTTY');
  });

  it('reads and writes ioctl structs through user pointers', () => {
    const p = setup();
    const device = open(p, 'mdpy-hd', uuid(1));
    const mem = p.mmap({ length: 0x1000n });
    p.memory.write(mem, vfioDeviceGfxPlaneInfo.encode({ argsz: 64, flags: VFIO_GFX_PLANE_TYPE_REGION }));
    expect(p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, mem)).toBe(0);
    const plane = vfioDeviceGfxPlaneInfo.decode(p.memory.read(mem, 64));
    expect(plane).toMatchObject({ width: 1920, height: 1080, stride: 7680, size: 8 << 20 });
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, 0))).toBe('EFAULT');
    expect(errnoOf(() => p.ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, 0x7000_0000n))).toBe('EFAULT');
  });
});
