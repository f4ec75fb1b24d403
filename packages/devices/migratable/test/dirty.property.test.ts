/**
 * Acceptance (b): dirty tracking reports exactly the pages written, checked against a model.
 *
 * - Device DMA logging (DMA_LOGGING_START/REPORT/STOP on the sample device): random DMA writes into guest RAM,
 *   random tracked ranges, a logging page size and a *different* report page size; the report is exactly the
 *   report pages that overlap a logging page the device wrote inside a tracked range, and reading clears it.
 * - type1 dirty bitmaps (VFIO_IOMMU_DIRTY_PAGES): for an emulated device (pinned-page dirty scope) the bitmap is
 *   exactly the pages written through dma_rw; for an IOMMU-backed device type1 cannot see DMA and reports every
 *   mapped page (Linux's rule) — which is why devices bring their own logging.
 */
import fc from 'fast-check';
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { HostPlugin, Process, VfioDevice } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { reportDmaLogging, startDmaLogging, stopDmaLogging } from '@vfio-ts/migration';
import { simPlatform } from '@vfio-ts/sim';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_MAP_DMA,
  VFIO_TYPE1v2_IOMMU,
  vfioIommuType1DirtyBitmap,
  vfioIommuType1DirtyBitmapGet,
  vfioIommuType1DmaMap,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { MIG_DMA_CMD, MIG_DMA_STATUS, MIG_REG } from '../src/index.js';
import { RAM_SIZE, machine } from './helpers.js';

const RAM = Number(RAM_SIZE);

function setBits(bm: Uint8Array): number[] {
  const out: number[] = [];
  bm.forEach((b, i) => {
    for (let j = 0; j < 8; j++) if ((b >> j) & 1) out.push(i * 8 + j);
  });
  return out;
}

const write = fc.record({ iova: fc.integer({ min: 0, max: RAM - 1 }), length: fc.integer({ min: 1, max: 20000 }) });

describe('device DMA logging reports exactly the pages the device wrote', () => {
  const m = machine({ dmaChunkBytes: 1 << 20 });
  m.p.pwrite(m.device, new Uint8Array(0x8000).fill(0xab), 2n << 40n);

  function dma(iova: number, length: number): void {
    m.setReg(MIG_REG.DMA_BAR_OFFSET, 0);
    m.setReg(MIG_REG.DMA_IOVA_LO, iova);
    m.setReg(MIG_REG.DMA_LENGTH, length);
    m.setReg(MIG_REG.DMA_CMD, MIG_DMA_CMD.START | MIG_DMA_CMD.TO_RAM);
    m.advance(1);
    expect(m.reg(MIG_REG.DMA_STATUS) & (MIG_DMA_STATUS.BUSY | MIG_DMA_STATUS.ERROR)).toBe(0);
  }

  it('for any writes, tracked ranges, logging page size and report page size', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4096, 8192, 16384, 65536),
        fc.constantFrom(4096, 8192, 32768, 1 << 21),
        fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 4 }),
        fc.array(write, { maxLength: 12 }),
        (logPage, reportPage, slots, writes) => {
          // Tracked ranges: 64 KiB slots of RAM (aligned to every logging page size).
          const ranges = slots.sort((a, b) => a - b).map((s) => ({ iova: BigInt(s * 0x10000), length: 0x10000n }));
          expect(startDmaLogging(m.p, m.device, ranges, BigInt(logPage))).toBe(BigInt(logPage));
          const dirtyLogPages = new Set<number>();
          for (const w of writes) {
            const length = Math.min(w.length, RAM - w.iova, 0x8000);
            dma(w.iova, length);
            for (let a = w.iova; a < w.iova + length; a++) {
              if (slots.includes(Math.floor(a / 0x10000))) dirtyLogPages.add(Math.floor(a / logPage));
            }
          }
          const expected = new Set<number>();
          for (const p of dirtyLogPages) {
            const start = p * logPage;
            for (let r = Math.floor(start / reportPage); r * reportPage < start + logPage; r++) expected.add(r);
          }
          const report = reportDmaLogging(m.p, m.device, 0n, RAM_SIZE, BigInt(reportPage));
          expect(setBits(report)).toEqual([...expected].sort((a, b) => a - b));
          // Read and clear.
          expect(setBits(reportDmaLogging(m.p, m.device, 0n, RAM_SIZE, BigInt(reportPage)))).toEqual([]);
          stopDmaLogging(m.p, m.device);
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** Guest RAM mapped at IOVA 0 and type1 dirty tracking started for `p`'s container. */
function mapAndTrack(p: Process, container: number): bigint {
  const ram = p.mmap({ length: RAM_SIZE });
  p.ioctl(
    container,
    VFIO_IOMMU_MAP_DMA,
    vfioIommuType1DmaMap.encode({ argsz: 32, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr: ram, iova: 0n, size: RAM_SIZE }),
  );
  p.ioctl(container, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START }));
  return ram;
}

/** VFIO_IOMMU_DIRTY_PAGES GET_BITMAP of all guest RAM at 4 KiB. */
function type1Bitmap(p: Process, container: number): Uint8Array {
  const bytes = RAM / 4096 / 8;
  const data = p.mmap({ length: 4096 });
  const b = new Uint8Array(48);
  vfioIommuType1DirtyBitmap.write(b, { argsz: 48, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP });
  vfioIommuType1DirtyBitmapGet.write(b, { iova: 0n, size: RAM_SIZE, bitmap_pgsize: 4096n, bitmap_size: BigInt(bytes), bitmap_data: data }, 8);
  p.ioctl(container, VFIO_IOMMU_DIRTY_PAGES, b);
  const out = p.memory.read(data, bytes);
  p.munmap(data, 4096);
  return out;
}

describe('type1 dirty bitmaps', () => {
  it('report exactly the pages an emulated device wrote through dma_rw', () => {
    let device: VfioDevice | undefined;
    const emulated: HostPlugin = {
      name: 'emu',
      setup(api) {
        device = api.allocDevice({ name: 'emu0', ops: {}, data: null });
        api.registerEmulatedDevice(device);
      },
    };
    const host = createHost({ platform: simPlatform({ iommu: 'vtd' }), plugins: [type1(), emulated] });
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 1n << 30n });
    const { container } = openVfioDevice(p, { group: device!.group!.id, device: 'emu0', iommuType: VFIO_TYPE1v2_IOMMU });
    const ram = mapAndTrack(p, container);
    fc.assert(
      fc.property(fc.array(write, { maxLength: 10 }), (writes) => {
        type1Bitmap(p, container); // clears what earlier runs left
        const pages = new Set<number>();
        for (const w of writes) {
          const length = Math.min(w.length, RAM - w.iova);
          device!.dmaRw(BigInt(w.iova), new Uint8Array(length).fill(1), true);
          for (let pg = Math.floor(w.iova / 4096); pg * 4096 < w.iova + length; pg++) pages.add(pg);
          // A read marks nothing.
          device!.dmaRw(BigInt(w.iova), new Uint8Array(Math.min(64, length)), false);
        }
        expect(setBits(type1Bitmap(p, container))).toEqual([...pages].sort((a, b) => a - b));
        expect(p.memory.read(ram, 1).length).toBe(1);
      }),
      { numRuns: 40 },
    );
  });

  it('report every mapped page for an IOMMU-backed device (it can DMA without pinning)', () => {
    const m = machine();
    // machine() mapped RAM already; start tracking on its container (fd 3).
    m.p.ioctl(3, VFIO_IOMMU_DIRTY_PAGES, vfioIommuType1DirtyBitmap.encode({ argsz: 8, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START }));
    expect(setBits(type1Bitmap(m.p, 3)).length).toBe(RAM / 4096);
  });
});
