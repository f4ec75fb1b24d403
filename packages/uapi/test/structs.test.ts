import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STRUCTS, vfioIommuType1DmaMap, vfioRegionInfo } from '../src/index.js';
import type { FieldLayout, StructCodec } from '../src/index.js';

/** sizeof and minsz of every struct, as literals (inventory §1; iommufd minsz from main.c's IOCTL_OP table). */
const SIZES: Record<string, [size: number, minsz: number]> = {
  vfio_info_cap_header: [8, 8],
  vfio_group_status: [8, 8],
  vfio_device_info: [24, 16],
  vfio_region_info: [32, 32],
  vfio_region_sparse_mmap_area: [16, 16],
  vfio_region_info_cap_sparse_mmap: [16, 16],
  vfio_region_info_cap_type: [16, 16],
  vfio_region_gfx_edid: [24, 24],
  vfio_device_migration_info: [32, 32],
  vfio_region_info_cap_nvlink2_ssatgt: [16, 16],
  vfio_region_info_cap_nvlink2_lnkspd: [16, 16],
  vfio_device_info_cap_pci_atomic_comp: [16, 16],
  vfio_irq_info: [16, 16],
  vfio_irq_set: [20, 20],
  vfio_pci_dependent_device: [8, 8],
  vfio_pci_hot_reset_info: [12, 12],
  vfio_pci_hot_reset: [12, 12],
  vfio_device_gfx_plane_info: [64, 60],
  vfio_device_ioeventfd: [32, 28],
  vfio_device_feature: [8, 8],
  vfio_device_bind_iommufd: [24, 16],
  vfio_device_attach_iommufd_pt: [16, 12],
  vfio_device_detach_iommufd_pt: [12, 8],
  vfio_device_feature_migration: [8, 8],
  vfio_device_feature_mig_state: [8, 8],
  vfio_device_low_power_entry_with_wakeup: [8, 8],
  vfio_device_feature_dma_logging_control: [24, 24],
  vfio_device_feature_dma_logging_range: [16, 16],
  vfio_device_feature_dma_logging_report: [32, 32],
  vfio_device_feature_mig_data_size: [8, 8],
  vfio_device_feature_bus_master: [4, 4],
  vfio_region_dma_range: [16, 16],
  vfio_device_feature_dma_buf: [16, 16],
  vfio_precopy_info: [24, 24],
  vfio_iommu_type1_info: [24, 16],
  vfio_iova_range: [16, 16],
  vfio_iommu_type1_info_cap_iova_range: [16, 16],
  vfio_iommu_type1_info_cap_migration: [32, 32],
  vfio_iommu_type1_info_dma_avail: [12, 12],
  vfio_iommu_type1_dma_map: [32, 32],
  vfio_bitmap: [24, 24],
  vfio_iommu_type1_dma_unmap: [24, 24],
  vfio_iommu_type1_dirty_bitmap: [8, 8],
  vfio_iommu_type1_dirty_bitmap_get: [40, 40],
  vfio_iommu_spapr_tce_ddw_info: [16, 16],
  vfio_iommu_spapr_tce_info: [32, 16],
  vfio_eeh_pe_err: [24, 24],
  vfio_eeh_pe_op: [40, 12],
  vfio_iommu_spapr_register_memory: [24, 24],
  vfio_iommu_spapr_tce_create: [40, 40],
  vfio_iommu_spapr_tce_remove: [16, 16],
  iommu_destroy: [8, 8],
  iommu_ioas_alloc: [12, 12],
  iommu_iova_range: [16, 16],
  iommu_ioas_allow_iovas: [24, 24],
  iommu_ioas_copy: [40, 40],
  iommu_ioas_iova_ranges: [32, 32],
  iommu_ioas_map: [40, 40],
  iommu_ioas_unmap: [24, 24],
  iommu_option: [24, 24],
  iommu_vfio_ioas: [12, 12],
  iommu_hwpt_alloc: [48, 24],
  iommu_hwpt_vtd_s1: [24, 24],
  iommu_hw_info: [40, 32],
  iommu_hw_info_vtd: [24, 24],
  iommu_hwpt_set_dirty_tracking: [16, 16],
  iommu_hwpt_get_dirty_bitmap: [48, 48],
  iommu_hwpt_invalidate: [32, 32],
  iommu_hwpt_vtd_s1_invalidate: [24, 24],
  iommu_fault_alloc: [16, 16],
};

/**
 * Each struct's members in declaration order, copied by hand from the C header (`pad N` is the compiler's
 * padding, nested structs/unions flattened as the codecs do). The test lays these out with C's natural alignment
 * rules independently of the codecs, fills distinct values and compares bytes.
 */
const HDR = 'u16 header_id; u16 header_version; u32 header_next;';
const LAYOUTS: Record<string, string> = {
  vfio_info_cap_header: 'u16 id; u16 version; u32 next',
  vfio_group_status: 'u32 argsz; u32 flags',
  vfio_device_info: 'u32 argsz; u32 flags; u32 num_regions; u32 num_irqs; u32 cap_offset; u32 pad',
  vfio_region_info: 'u32 argsz; u32 flags; u32 index; u32 cap_offset; u64 size; u64 offset',
  vfio_region_sparse_mmap_area: 'u64 offset; u64 size',
  vfio_region_info_cap_sparse_mmap: `${HDR} u32 nr_areas; u32 reserved`,
  vfio_region_info_cap_type: `${HDR} u32 type; u32 subtype`,
  vfio_region_gfx_edid: 'u32 edid_offset; u32 edid_max_size; u32 edid_size; u32 max_xres; u32 max_yres; u32 link_state',
  vfio_device_migration_info: 'u32 device_state; u32 reserved; u64 pending_bytes; u64 data_offset; u64 data_size',
  vfio_region_info_cap_nvlink2_ssatgt: `${HDR} u64 tgt`,
  vfio_region_info_cap_nvlink2_lnkspd: `${HDR} u32 link_speed; u32 pad`,
  vfio_device_info_cap_pci_atomic_comp: `${HDR} u32 flags; u32 reserved`,
  vfio_irq_info: 'u32 argsz; u32 flags; u32 index; u32 count',
  vfio_irq_set: 'u32 argsz; u32 flags; u32 index; u32 start; u32 count',
  vfio_pci_dependent_device: 'u32 group_id; u16 segment; u8 bus; u8 devfn',
  vfio_pci_hot_reset_info: 'u32 argsz; u32 flags; u32 count',
  vfio_pci_hot_reset: 'u32 argsz; u32 flags; u32 count',
  vfio_device_gfx_plane_info:
    'u32 argsz; u32 flags; u32 drm_plane_type; u32 drm_format; u64 drm_format_mod; u32 width; u32 height; u32 stride; u32 size; u32 x_pos; u32 y_pos; u32 x_hot; u32 y_hot; u32 region_index; u32 reserved',
  vfio_device_ioeventfd: 'u32 argsz; u32 flags; u64 offset; u64 data; s32 fd; u32 reserved',
  vfio_device_feature: 'u32 argsz; u32 flags',
  vfio_device_bind_iommufd: 'u32 argsz; u32 flags; s32 iommufd; u32 out_devid; u64 token_uuid_ptr',
  vfio_device_attach_iommufd_pt: 'u32 argsz; u32 flags; u32 pt_id; u32 pasid',
  vfio_device_detach_iommufd_pt: 'u32 argsz; u32 flags; u32 pasid',
  vfio_device_feature_migration: 'u64 flags',
  vfio_device_feature_mig_state: 'u32 device_state; s32 data_fd',
  vfio_device_low_power_entry_with_wakeup: 's32 wakeup_eventfd; u32 reserved',
  vfio_device_feature_dma_logging_control: 'u64 page_size; u32 num_ranges; u32 __reserved; u64 ranges',
  vfio_device_feature_dma_logging_range: 'u64 iova; u64 length',
  vfio_device_feature_dma_logging_report: 'u64 iova; u64 length; u64 page_size; u64 bitmap',
  vfio_device_feature_mig_data_size: 'u64 stop_copy_length',
  vfio_device_feature_bus_master: 'u32 op',
  vfio_region_dma_range: 'u64 offset; u64 length',
  vfio_device_feature_dma_buf: 'u32 region_index; u32 open_flags; u32 flags; u32 nr_ranges',
  vfio_precopy_info: 'u32 argsz; u32 flags; u64 initial_bytes; u64 dirty_bytes',
  vfio_iommu_type1_info: 'u32 argsz; u32 flags; u64 iova_pgsizes; u32 cap_offset; u32 pad',
  vfio_iova_range: 'u64 start; u64 end',
  vfio_iommu_type1_info_cap_iova_range: `${HDR} u32 nr_iovas; u32 reserved`,
  vfio_iommu_type1_info_cap_migration: `${HDR} u32 flags; pad 4; u64 pgsize_bitmap; u64 max_dirty_bitmap_size`,
  vfio_iommu_type1_info_dma_avail: `${HDR} u32 avail`,
  vfio_iommu_type1_dma_map: 'u32 argsz; u32 flags; u64 vaddr; u64 iova; u64 size',
  vfio_bitmap: 'u64 pgsize; u64 size; u64 data',
  vfio_iommu_type1_dma_unmap: 'u32 argsz; u32 flags; u64 iova; u64 size',
  vfio_iommu_type1_dirty_bitmap: 'u32 argsz; u32 flags',
  vfio_iommu_type1_dirty_bitmap_get: 'u64 iova; u64 size; u64 bitmap_pgsize; u64 bitmap_size; u64 bitmap_data',
  vfio_iommu_spapr_tce_ddw_info: 'u64 pgsizes; u32 max_dynamic_windows_supported; u32 levels',
  vfio_iommu_spapr_tce_info:
    'u32 argsz; u32 flags; u32 dma32_window_start; u32 dma32_window_size; u64 ddw_pgsizes; u32 ddw_max_dynamic_windows_supported; u32 ddw_levels',
  vfio_eeh_pe_err: 'u32 type; u32 func; u64 addr; u64 mask',
  vfio_eeh_pe_op: 'u32 argsz; u32 flags; u32 op; pad 4; u32 err_type; u32 err_func; u64 err_addr; u64 err_mask',
  vfio_iommu_spapr_register_memory: 'u32 argsz; u32 flags; u64 vaddr; u64 size',
  vfio_iommu_spapr_tce_create:
    'u32 argsz; u32 flags; u32 page_shift; u32 __resv1; u64 window_size; u32 levels; u32 __resv2; u64 start_addr',
  vfio_iommu_spapr_tce_remove: 'u32 argsz; u32 flags; u64 start_addr',
  iommu_destroy: 'u32 size; u32 id',
  iommu_ioas_alloc: 'u32 size; u32 flags; u32 out_ioas_id',
  iommu_iova_range: 'u64 start; u64 last',
  iommu_ioas_allow_iovas: 'u32 size; u32 ioas_id; u32 num_iovas; u32 __reserved; u64 allowed_iovas',
  iommu_ioas_copy: 'u32 size; u32 flags; u32 dst_ioas_id; u32 src_ioas_id; u64 length; u64 dst_iova; u64 src_iova',
  iommu_ioas_iova_ranges: 'u32 size; u32 ioas_id; u32 num_iovas; u32 __reserved; u64 allowed_iovas; u64 out_iova_alignment',
  iommu_ioas_map: 'u32 size; u32 flags; u32 ioas_id; u32 __reserved; u64 user_va; u64 length; u64 iova',
  iommu_ioas_unmap: 'u32 size; u32 ioas_id; u64 iova; u64 length',
  iommu_option: 'u32 size; u32 option_id; u16 op; u16 __reserved; u32 object_id; u64 val64',
  iommu_vfio_ioas: 'u32 size; u32 ioas_id; u16 op; u16 __reserved',
  iommu_hwpt_alloc:
    'u32 size; u32 flags; u32 dev_id; u32 pt_id; u32 out_hwpt_id; u32 __reserved; u32 data_type; u32 data_len; u64 data_uptr; u32 fault_id; u32 __reserved2',
  iommu_hwpt_vtd_s1: 'u64 flags; u64 pgtbl_addr; u32 addr_width; u32 __reserved',
  iommu_hw_info: 'u32 size; u32 flags; u32 dev_id; u32 data_len; u64 data_uptr; u32 out_data_type; u32 __reserved; u64 out_capabilities',
  iommu_hw_info_vtd: 'u32 flags; u32 __reserved; u64 cap_reg; u64 ecap_reg',
  iommu_hwpt_set_dirty_tracking: 'u32 size; u32 flags; u32 hwpt_id; u32 __reserved',
  iommu_hwpt_get_dirty_bitmap: 'u32 size; u32 hwpt_id; u32 flags; u32 __reserved; u64 iova; u64 length; u64 page_size; u64 data',
  iommu_hwpt_invalidate: 'u32 size; u32 hwpt_id; u64 data_uptr; u32 data_type; u32 entry_len; u32 entry_num; u32 __reserved',
  iommu_hwpt_vtd_s1_invalidate: 'u64 addr; u64 npages; u32 flags; u32 __reserved',
  iommu_fault_alloc: 'u32 size; u32 flags; u32 out_fault_id; u32 out_fault_fd',
};

const WIDTH: Record<string, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };

/** Lays out a hand-written member list with distinct values; asserts natural alignment like a C compiler. */
function handLayout(decl: string): { bytes: Uint8Array; value: Record<string, number | bigint> } {
  const out: number[] = [];
  const value: Record<string, number | bigint> = {};
  let i = 0;
  for (const member of decl.split(';').map((s) => s.trim()).filter(Boolean)) {
    const [type = '', name = ''] = member.split(/\s+/);
    if (type === 'pad') {
      for (let k = 0; k < Number(name); k++) out.push(0);
      continue;
    }
    const w = WIDTH[type];
    if (w === undefined) throw new Error(`bad type ${type}`);
    expect(out.length % w, `${name} is naturally aligned`).toBe(0);
    i++;
    // Distinct, recognisable values: every byte of a field differs from its neighbours'.
    let v: bigint;
    if (type === 's32') {
      value[name] = -i;
      v = BigInt.asUintN(32, BigInt(-i));
    } else if (w === 8) {
      v = 0x0102030405060700n + BigInt(i);
      value[name] = v;
    } else {
      v = (0x11223344n + BigInt(i)) & ((1n << BigInt(w * 8)) - 1n);
      value[name] = Number(v);
    }
    for (let k = 0; k < w; k++) out.push(Number((v >> BigInt(8 * k)) & 0xffn));
  }
  // C rounds sizeof up to the largest member alignment.
  const maxAlign = Math.max(...decl.split(';').map((m) => WIDTH[m.trim().split(/\s+/)[0] ?? ''] ?? 1));
  while (out.length % maxAlign !== 0) out.push(0);
  return { bytes: Uint8Array.from(out), value };
}

const codecs = Object.entries(STRUCTS) as [string, StructCodec<Record<string, unknown>>][];

describe('struct sizes', () => {
  it('lists exactly the exported structs', () => {
    expect(Object.keys(SIZES).sort()).toEqual(Object.keys(STRUCTS).sort());
    expect(Object.keys(LAYOUTS).sort()).toEqual(Object.keys(STRUCTS).sort());
  });

  it.each(codecs)('%s has the Linux sizeof and minsz', (name, codec) => {
    expect(codec.name).toBe(name);
    expect([codec.size, codec.minsz]).toEqual(SIZES[name]);
  });
});

describe('struct encodings against the header layout', () => {
  it.each(codecs)('%s', (name, codec) => {
    const { bytes, value } = handLayout(LAYOUTS[name] ?? '');
    expect(bytes.length).toBe(codec.size);
    expect(codec.fields.map((f: FieldLayout) => f.name).sort()).toEqual(Object.keys(value).sort());
    expect(Array.from(codec.encode(value))).toEqual(Array.from(bytes));
    expect(codec.decode(bytes)).toEqual(value);
  });

  it('vfio_iommu_type1_dma_map, byte by byte', () => {
    const bytes = vfioIommuType1DmaMap.encode({ argsz: 32, flags: 3, vaddr: 0x7f0000001000n, iova: 0x100000n, size: 0x200000n });
    // prettier-ignore
    expect(Array.from(bytes)).toEqual([
      0x20, 0, 0, 0, /* argsz */ 0x03, 0, 0, 0, /* flags READ|WRITE */
      0x00, 0x10, 0, 0, 0, 0x7f, 0, 0, /* vaddr */
      0, 0, 0x10, 0, 0, 0, 0, 0, /* iova */
      0, 0, 0x20, 0, 0, 0, 0, 0, /* size */
    ]);
  });

  it('vfio_region_info: offset is index << 40', () => {
    const bytes = vfioRegionInfo.encode({ argsz: 32, index: 7, size: 256n, offset: 7n << 40n, flags: 3 });
    expect(Array.from(bytes.subarray(24, 32))).toEqual([0, 0, 0, 0, 0, 0x07, 0, 0]);
    expect(Array.from(bytes.subarray(16, 24))).toEqual([0, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('offsetOf / offsetOfEnd answer like offsetof()', () => {
    expect(vfioRegionInfo.offsetOf('cap_offset')).toBe(12);
    expect(vfioIommuType1DmaMap.offsetOfEnd('size')).toBe(32);
    expect(() => vfioRegionInfo.offsetOf('nope' as 'index')).toThrow();
  });
});

function arbitraryFor(f: FieldLayout): fc.Arbitrary<unknown> {
  switch (f.type) {
    case 'u8': return fc.integer({ min: 0, max: 0xff });
    case 'u16': return fc.integer({ min: 0, max: 0xffff });
    case 'u32': return fc.integer({ min: 0, max: 0xffffffff });
    case 's32': return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'u64': return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    case 's64': return fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
    case 'bytes': return fc.uint8Array({ minLength: f.size, maxLength: f.size });
  }
}

describe('round trip', () => {
  it.each(codecs)('decode(encode(v)) == v for %s', (_name, codec) => {
    const rec = Object.fromEntries(codec.fields.map((f) => [f.name, arbitraryFor(f)]));
    fc.assert(
      fc.property(fc.record(rec), (v) => {
        const bytes = codec.encode(v);
        expect(bytes.length).toBe(codec.size);
        expect(codec.decode(bytes)).toEqual(v);
        // Decoding from an offset inside a bigger buffer gives the same value.
        const big = new Uint8Array(codec.size + 13);
        codec.write(big, v, 5);
        expect(codec.decode(big, 5)).toEqual(v);
      }),
      { numRuns: 60 },
    );
  });
});
