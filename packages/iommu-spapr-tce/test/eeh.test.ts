import {
  VFIO_EEH,
  VFIO_EEH_PE_CONFIGURE,
  VFIO_EEH_PE_DISABLE,
  VFIO_EEH_PE_ENABLE,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_RESET_DEACTIVATE,
  VFIO_EEH_PE_RESET_FUNDAMENTAL,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_STATE_NORMAL,
  VFIO_EEH_PE_STATE_RESET,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_EEH_PE_STATE_STOPPED_DMA,
  VFIO_EEH_PE_STATE_UNAVAIL,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
  VFIO_CHECK_EXTENSION,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { EEH_STATE_DMA_ENABLED, EEH_STATE_MMIO_ENABLED, EEH_STATE_RESET_ACTIVE, vfioEehStateOf } from '../src/index.js';
import { Bench, expectErrno } from './helpers.js';

describe('VFIO_EEH_PE_OP', () => {
  it('GET_STATE folds the PE state into the VFIO values', () => {
    expect(vfioEehStateOf(EEH_STATE_DMA_ENABLED | EEH_STATE_MMIO_ENABLED)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    expect(vfioEehStateOf(EEH_STATE_RESET_ACTIVE)).toBe(VFIO_EEH_PE_STATE_RESET);
    expect(vfioEehStateOf(0)).toBe(VFIO_EEH_PE_STATE_STOPPED);
    expect(vfioEehStateOf(EEH_STATE_MMIO_ENABLED)).toBe(VFIO_EEH_PE_STATE_STOPPED_DMA);
    expect(vfioEehStateOf(EEH_STATE_DMA_ENABLED)).toBe(VFIO_EEH_PE_STATE_UNAVAIL);
  });

  it('inject, thaw MMIO, thaw DMA, hot reset, deactivate: the state walks as on PowerNV', () => {
    const b = new Bench();
    const g = b.group();
    const c = b.open(7, g.ref);
    expect(b.eeh(c, VFIO_EEH_PE_ENABLE)).toBe(0);
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    expect(b.eeh(c, VFIO_EEH_PE_INJECT_ERR, { err_type: 1, err_func: 16, err_addr: 0x1000n, err_mask: 0xfffn })).toBe(0);
    expect(g.hw.spaprTableGroup.eeh?.stats.injected).toEqual([{ type: 1, func: 16, addr: 0x1000n, mask: 0xfffn }]);
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED);
    // A frozen PE blocks device DMA.
    expectErrno(() => b.deviceRead(g.hw, 0n, 4), 'EFAULT');
    expect(b.eeh(c, VFIO_EEH_PE_UNFREEZE_IO)).toBe(0);
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED_DMA);
    expect(b.eeh(c, VFIO_EEH_PE_UNFREEZE_DMA)).toBe(0);
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    expect(b.eeh(c, VFIO_EEH_PE_RESET_HOT)).toBe(0);
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_RESET);
    expect(b.eeh(c, VFIO_EEH_PE_RESET_DEACTIVATE)).toBe(0);
    expect(b.eeh(c, VFIO_EEH_PE_CONFIGURE)).toBe(0);
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    expect(b.eeh(c, VFIO_EEH_PE_RESET_FUNDAMENTAL)).toBe(0);
    expect(g.hw.spaprTableGroup.eeh?.stats.resets).toBe(2);
    expect(b.eeh(c, VFIO_EEH_PE_DISABLE)).toBe(0);
  });

  it('applies to every group and returns the first non-zero result', () => {
    const b = new Bench();
    const g1 = b.group();
    const g2 = b.group();
    const c = b.open(7, g1.ref, g2.ref);
    expect(b.eeh(c, VFIO_EEH_PE_RESET_HOT)).toBe(0);
    expect(g1.hw.spaprTableGroup.eeh?.stats.resets).toBe(1);
    expect(g2.hw.spaprTableGroup.eeh?.stats.resets).toBe(1);
    expect(b.eeh(c, VFIO_EEH_PE_RESET_DEACTIVATE)).toBe(0);
    g1.hw.spaprTableGroup.eeh?.freeze();
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED);
    // No group: nothing to do.
    expect(b.eeh(b.open(7), VFIO_EEH_PE_GET_STATE)).toBe(0);
  });

  it('argument errors: argsz, flags, unknown op, INJECT_ERR argsz/type/func, no PE', () => {
    const b = new Bench();
    const g = b.group();
    const c = b.open(7, g.ref);
    expectErrno(() => b.eeh(c, VFIO_EEH_PE_GET_STATE, {}, 11), 'EINVAL');
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE, {}, 12)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    expectErrno(() => b.eeh(c, VFIO_EEH_PE_GET_STATE, { flags: 1 }), 'EINVAL');
    expectErrno(() => b.eeh(c, 10), 'EINVAL');
    expectErrno(() => b.eeh(c, VFIO_EEH_PE_INJECT_ERR, { err_type: 0, err_func: 0 }, 39), 'EINVAL');
    expectErrno(() => b.eeh(c, VFIO_EEH_PE_INJECT_ERR, { err_type: 2, err_func: 0 }), 'EINVAL');
    expectErrno(() => b.eeh(c, VFIO_EEH_PE_INJECT_ERR, { err_type: 0, err_func: 20 }), 'EINVAL');
    expect(b.eeh(c, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    const noPe = b.group({ eeh: false });
    const c2 = b.open(7, noPe.ref);
    expectErrno(() => b.eeh(c2, VFIO_EEH_PE_GET_STATE), 'ENODEV');
  });

  it('CHECK_EXTENSION(VFIO_EEH) follows the platform; ENABLE is EIO without EEH', () => {
    const b = new Bench({ backend: { eeh: false } });
    const g = b.group();
    expect(b.ops.ioctl(null, VFIO_CHECK_EXTENSION, VFIO_EEH, b.call)).toBe(0);
    const c = b.open(7, g.ref);
    expectErrno(() => b.eeh(c, VFIO_EEH_PE_ENABLE), 'EIO');
    expect(new Bench().ops.ioctl(null, VFIO_CHECK_EXTENSION, VFIO_EEH, b.call)).toBe(1);
  });
});
