import { createHost, O_WRONLY, openVfioDevice } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import {
  getMigrationFlags,
  migration,
  probeFeature,
  reportDmaLogging,
  startDmaLogging,
  stopDmaLogging,
} from '@vfio-ts/migration';
import { simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_TYPE1v2_IOMMU,
  vfioDeviceFeature,
  vfioDeviceInfo,
  vfioPrecopyInfo,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import {
  loadMttyState,
  MTTY_MIGRATION_FLAGS,
  mtty,
  mttyDataSize,
  mttyRegionOffset,
  MttyState,
  saveMttyState,
  UART_FCR,
  UART_FCR_ENABLE_FIFO,
  UART_LCR,
  UART_RX,
  UART_SCR,
  UART_TX,
} from '../src/index.js';

const U = '6d0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b';

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SysError);
    return (e as SysError).errno;
  }
  throw new Error('expected a SysError');
}

/** A host with an mtty card of `type` open; `migration()` is installed unless `withPlugin` is false. */
function card(type: 'mtty-1' | 'mtty-2', withPlugin = true): { p: Process; device: number } {
  const plugins = withPlugin ? [type1(), mtty(), migration()] : [type1(), mtty()];
  const host = createHost({ platform: simPlatform(), plugins });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
  const fd = p.open(`/sys/devices/virtual/mtty/mtty/mdev_supported_types/${type}/create`, O_WRONLY);
  p.write(fd, new TextEncoder().encode(U));
  p.close(fd);
  const group = Number(p.readlink(`/sys/bus/mdev/devices/${U}/iommu_group`).split('/').at(-1));
  const { device } = openVfioDevice(p, { group, device: U, iommuType: VFIO_TYPE1v2_IOMMU });
  p.ioctl(device, VFIO_DEVICE_GET_INFO, vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size }));
  return { p, device };
}

/** VFIO_DEVICE_FEATURE with an 8-byte payload; returns the payload after the call. */
function feature(p: Process, device: number, flags: number, payload: Uint8Array = new Uint8Array(8)): DataView {
  const buf = new Uint8Array(vfioDeviceFeature.size + payload.length);
  vfioDeviceFeature.write(buf, { argsz: buf.length, flags });
  buf.set(payload, vfioDeviceFeature.size);
  p.ioctl(device, VFIO_DEVICE_FEATURE, buf);
  return new DataView(buf.buffer, vfioDeviceFeature.size);
}

/** SET MIG_DEVICE_STATE; returns data_fd (−1 when none). */
function setState(p: Process, device: number, state: number): number {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint32(0, state, true);
  return feature(p, device, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, payload).getInt32(4, true);
}

function getState(p: Process, device: number): number {
  return feature(p, device, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE).getUint32(0, true);
}

function reg(p: Process, device: number, port: number, offset: number, value?: number): number {
  const at = mttyRegionOffset(port) + BigInt(offset);
  if (value === undefined) return p.pread(device, 1, at)[0]!;
  p.pwrite(device, new Uint8Array([value]), at);
  return value;
}

describe('mtty migration v2', () => {
  it('serialises struct mtty_data as Linux lays it out', () => {
    const s = new MttyState(2, 'loopback');
    s.uarts.write(0, UART_FCR, UART_FCR_ENABLE_FIFO);
    s.uarts.write(0, UART_TX, 0x41);
    s.uarts.write(1, UART_SCR, 0x77);
    const bytes = saveMttyState(s);
    expect(bytes.length).toBe(mttyDataSize(2));
    expect(bytes.length).toBe(96);
    const dv = new DataView(bytes.buffer);
    expect(dv.getBigUint64(0, true)).toBe(0x7e9d09898c3e2c4en);
    expect([dv.getUint32(8, true), dv.getUint32(12, true), dv.getUint32(16, true), dv.getUint32(20, true)]).toEqual([1, 0, 2, 0]);
    expect(bytes[24 + 8]).toBe(0x41); // port 0 fifo[0]
    expect([bytes[24 + 24], bytes[24 + 25], bytes[24 + 26]]).toEqual([1, 0, 1]); // head, tail, count
    expect(bytes[24 + 36 + 7]).toBe(0x77); // port 1 SCR
    const t = new MttyState(2, 'loopback');
    loadMttyState(t, bytes);
    expect(t.uarts.read(0, UART_RX)).toBe(0x41);
    expect(t.uarts.read(1, UART_SCR)).toBe(0x77);
    const one = new MttyState(1, 'loopback');
    expect(errnoOf(() => { loadMttyState(one, bytes); })).toBe('EINVAL');
    expect(errnoOf(() => { loadMttyState(t, bytes.subarray(0, 95)); })).toBe('EINVAL');
  });

  it('moves a card through PRE_COPY and STOP_COPY to another host with mtty + migration(), UART state and all', () => {
    const src = card('mtty-2');
    const flags = feature(src.p, src.device, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION).getBigUint64(0, true);
    expect(flags).toBe(BigInt(MTTY_MIGRATION_FLAGS));
    expect(feature(src.p, src.device, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE).getBigUint64(0, true)).toBe(96n);
    reg(src.p, src.device, 0, UART_FCR, UART_FCR_ENABLE_FIFO);
    for (const c of 'hey') reg(src.p, src.device, 0, UART_TX, c.charCodeAt(0));
    reg(src.p, src.device, 1, UART_SCR, 0x5a);
    reg(src.p, src.device, 1, UART_LCR, 0x03);

    const dataFd = setState(src.p, src.device, VFIO_DEVICE_STATE_PRE_COPY);
    expect(dataFd).toBeGreaterThan(2);
    expect(getState(src.p, src.device)).toBe(VFIO_DEVICE_STATE_PRE_COPY);
    const info = vfioPrecopyInfo.encode({ argsz: vfioPrecopyInfo.size });
    src.p.ioctl(dataFd, VFIO_MIG_GET_PRECOPY_INFO, info);
    expect(vfioPrecopyInfo.decode(info).initial_bytes).toBeGreaterThan(0n);
    const chunks: Uint8Array[] = [];
    for (let c = src.p.read(dataFd, 7); ; ) {
      chunks.push(c);
      try {
        c = src.p.read(dataFd, 7);
      } catch (e) {
        expect((e as SysError).errno).toBe('ENOMSG'); // pre-copy drained
        break;
      }
      if (c.length === 0) break;
    }
    // PRE_COPY → STOP_COPY goes through PRE_COPY_P2P and keeps the same data fd.
    expect(setState(src.p, src.device, VFIO_DEVICE_STATE_STOP_COPY)).toBe(-1);
    for (let c = src.p.read(dataFd, 64); c.length > 0; c = src.p.read(dataFd, 64)) chunks.push(c);
    expect(setState(src.p, src.device, VFIO_DEVICE_STATE_STOP)).toBe(-1);
    src.p.close(dataFd);

    const dst = card('mtty-2');
    expect(setState(dst.p, dst.device, VFIO_DEVICE_STATE_STOP)).toBe(-1);
    const resumeFd = setState(dst.p, dst.device, VFIO_DEVICE_STATE_RESUMING);
    for (const c of chunks) if (c.length > 0) dst.p.write(resumeFd, c);
    expect(setState(dst.p, dst.device, VFIO_DEVICE_STATE_RUNNING)).toBe(-1);
    dst.p.close(resumeFd);
    expect(String.fromCharCode(reg(dst.p, dst.device, 0, UART_RX), reg(dst.p, dst.device, 0, UART_RX), reg(dst.p, dst.device, 0, UART_RX))).toBe('hey');
    expect(reg(dst.p, dst.device, 1, UART_SCR)).toBe(0x5a);
    expect(reg(dst.p, dst.device, 1, UART_LCR)).toBe(0x03);
  });

  it('refuses a stream from a different card and resets back to RUNNING', () => {
    const src = card('mtty-1');
    setState(src.p, src.device, VFIO_DEVICE_STATE_STOP);
    const out = setState(src.p, src.device, VFIO_DEVICE_STATE_STOP_COPY);
    const chunks: Uint8Array[] = [];
    for (let c = src.p.read(out, 64); c.length > 0; c = src.p.read(out, 64)) chunks.push(c);

    const dst = card('mtty-2');
    setState(dst.p, dst.device, VFIO_DEVICE_STATE_STOP);
    const into = setState(dst.p, dst.device, VFIO_DEVICE_STATE_RESUMING);
    for (const c of chunks) dst.p.write(into, c);
    expect(errnoOf(() => setState(dst.p, dst.device, VFIO_DEVICE_STATE_STOP))).toBe('EINVAL');
    expect(dst.p.ioctl(dst.device, VFIO_DEVICE_RESET)).toBe(0);
    expect(getState(dst.p, dst.device)).toBe(VFIO_DEVICE_STATE_RUNNING);
    // An index mtty does not serve.
    expect(errnoOf(() => feature(dst.p, dst.device, VFIO_DEVICE_FEATURE_GET | 3))).toBe('EINVAL');
  });

  it('gives migration() its log ops: DMA logging starts, reports nothing (mtty does no DMA) and stops', () => {
    const { p, device } = card('mtty-1');
    expect(probeFeature(p, device, VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET)).toBe(true);
    startDmaLogging(p, device, [{ iova: 0x10000n, length: 0x4000n }], 4096n);
    expect([...reportDmaLogging(p, device, 0x10000n, 0x4000n, 4096n)].every((b) => b === 0)).toBe(true);
    stopDmaLogging(p, device);
    expect(getMigrationFlags(p, device)).toBe(MTTY_MIGRATION_FLAGS);
  });

  it('has no VFIO_DEVICE_FEATURE op of its own: without migration() the migration indexes are EINVAL', () => {
    const { p, device } = card('mtty-2', false);
    for (const index of [
      VFIO_DEVICE_FEATURE_MIGRATION,
      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
      VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
      VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
      VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
      VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
    ]) {
      expect(errnoOf(() => feature(p, device, VFIO_DEVICE_FEATURE_GET | index))).toBe('EINVAL');
    }
    // The card itself works as before.
    reg(p, device, 1, UART_SCR, 0x33);
    expect(reg(p, device, 1, UART_SCR)).toBe(0x33);
  });
});
