// The README example, verbatim apart from console.log → expect.
import { createHost, openVfioDevice } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { migration, setDeviceState } from '@vfio-ts/migration';
import { simPlatform } from '@vfio-ts/sim';
import { VFIO_DEVICE_STATE_RESUMING, VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_STOP_COPY, VFIO_TYPE1v2_IOMMU } from '@vfio-ts/uapi';
import { expect, it } from 'vitest';
import { MIG_REG, migratableFunction, migratableVfioPci } from '../src/index.js';

it('runs the README example', () => {
  const BDF = '0000:00:05.0';
  function boot() {
    const platform = simPlatform({ clock: 'manual', devices: [{ bdf: BDF, fn: migratableFunction() }] });
    const host = createHost({ platform, plugins: [type1(), migratableVfioPci(), migration()] });
    platform.pci.device(BDF)!.driverOverride = 'vfio-migratable';
    platform.pci.bind(BDF, 'vfio-migratable');
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 1n << 30n });
    const group = platform.pci.device(BDF)!.iommuGroup!.id;
    const { device } = openVfioDevice(p, { group, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
    p.pwrite(device, Uint8Array.of(0x06, 0x00), (7n << 40n) + 4n); // COMMAND: memory decoding + bus master
    const reg = (off: number) => new DataView(p.pread(device, 4, BigInt(off)).buffer).getUint32(0, true);
    const setReg = (off: number, v: number) => p.pwrite(device, new Uint8Array(new Uint32Array([v]).buffer), BigInt(off));
    return { p, device, reg, setReg };
  }

  const src = boot();
  const dst = boot();
  src.setReg(MIG_REG.SCRATCH, 0xcafe);
  src.setReg(MIG_REG.IRQ_RAISE, 0x100); // a pending interrupt
  src.p.pwrite(src.device, new TextEncoder().encode('hello from the source'), 2n << 40n); // BAR2 memory

  const out = setDeviceState(src.p, src.device, VFIO_DEVICE_STATE_STOP_COPY); // RUNNING → … → STOP_COPY
  const into = setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RESUMING);
  for (let chunk = src.p.read(out, 1 << 20); chunk.length > 0; chunk = src.p.read(out, 1 << 20)) dst.p.write(into, chunk);
  setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RUNNING); // RESUMING → STOP (load) → … → RUNNING

  expect(dst.reg(MIG_REG.SCRATCH).toString(16)).toBe('cafe');
  expect(dst.reg(MIG_REG.IRQ_STATUS).toString(16)).toBe('100');
  expect(new TextDecoder().decode(dst.p.pread(dst.device, 21, 2n << 40n))).toBe('hello from the source');
});
