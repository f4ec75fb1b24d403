/**
 * Process memory contracts: address spaces with anonymous, hugepage-backed and device mappings, page pinning and
 * RLIMIT_MEMLOCK accounting (Linux: mm_struct, pin_user_pages, locked_vm). Implemented by `@vfio-ts/sim`.
 */

/** Base page size of every simulated address space (x86_64). */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_SIZE_N = 4096n;

/** Protection bits, as mmap(2) spells them (ABI: defined in @vfio-ts/uapi). */
export { PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE } from '@vfio-ts/uapi';

/** Backing for anonymous mappings: base pages, or physically contiguous 2 MiB / 1 GiB pages. */
export type HugepageSize = '2M' | '1G';

/** Loads and stores on device memory (a BAR mapped into a process): offsets are relative to the mapping's start. */
export interface MmioHandler {
  read(offset: bigint, length: number): Uint8Array;
  write(offset: bigint, data: Uint8Array): void;
}

/** A run of pages that are virtually and physically contiguous, as pinned. `pfn` is the first page frame. */
export interface PinnedRun {
  readonly vaddr: bigint;
  readonly pfn: bigint;
  readonly npages: number;
}

/** What a virtual page resolves to. */
export interface PageLookup {
  readonly pfn: bigint;
  readonly prot: number;
  /** Size of the backing page (4K, 2M or 1G) that holds the address. */
  readonly pageSize: bigint;
  /** True for device (MMIO) mappings, which cannot be pinned. */
  readonly device: boolean;
}

export interface AnonymousMapOptions {
  prot?: number;
  shared?: boolean;
  hugepage?: HugepageSize;
  /** Place the mapping here (MAP_FIXED_NOREPLACE semantics: EEXIST if taken). */
  addr?: bigint;
}

/**
 * One process's virtual memory. Every failing call throws a `SysError` from `@vfio-ts/uapi` (EFAULT for an
 * access to an unmapped or wrongly protected address, ENOMEM, EINVAL for bad arguments).
 */
export interface AddressSpace {
  readonly id: number;
  /** Maps anonymous memory; pages cost nothing until touched. Returns the start address (never below 0x10000). */
  mmapAnonymous(length: bigint, options?: AnonymousMapOptions): bigint;
  /** Maps device memory served by `handler` (loads and stores call it); such pages cannot be pinned. */
  mmapDevice(length: bigint, handler: MmioHandler, options?: { prot?: number; addr?: bigint; onUnmap?: () => void }): bigint;
  /** Unmaps `[vaddr, vaddr+length)`; pinned pages stay allocated until unpinned. */
  munmap(vaddr: bigint, length: bigint): void;
  /** CPU load: EFAULT on unmapped or unreadable memory. */
  read(vaddr: bigint, length: number): Uint8Array;
  /** CPU store: EFAULT on unmapped or unwritable memory. */
  write(vaddr: bigint, data: Uint8Array): void;
  /** The page behind `vaddr`, faulting it in; `undefined` if unmapped. */
  lookup(vaddr: bigint): PageLookup | undefined;
  /**
   * Pins `npages` base pages from `vaddr` (page aligned), faulting them in, all or nothing: EFAULT if any page is
   * unmapped, a device page, or not writable when `write` is set. Returns the pages as physically contiguous runs
   * (a hugepage-backed range comes back in runs of at least the hugepage size). Each pinned page's pin count is
   * raised by one; pinning does not account locked memory (the caller does, see {@link MemlockAccount}).
   */
  pin(vaddr: bigint, npages: number, options: { write: boolean }): PinnedRun[];
  /** Drops one pin from each page of the physical range. */
  unpin(pfn: bigint, npages: number): void;
  /** The locked_vm counter of this address space (Linux mm->locked_vm), in pages. */
  readonly memlock: MemlockAccount;
  /** A copy-on-fork duplicate (private anonymous memory copied, shared mappings shared). */
  fork(): AddressSpace;
  /** Drops every mapping (process exit). Pinned pages stay until unpinned. */
  destroy(): void;
}

/** Locked-memory accounting of one address space (mm->locked_vm). */
export interface MemlockAccount {
  /** Pages currently accounted. */
  readonly lockedPages: number;
  /**
   * Adds (positive) or removes (negative) pages. When adding and `limitBytes` is given (the task's
   * RLIMIT_MEMLOCK, `null` meaning the task has CAP_IPC_LOCK), exceeding it throws ENOMEM and changes nothing.
   */
  adjust(deltaPages: number, limitBytes?: bigint | null): void;
}

/** Physical memory of the machine: sparse, a page costs memory only once touched. */
export interface PhysicalMemory {
  read(pa: bigint, length: number): Uint8Array;
  write(pa: bigint, data: Uint8Array): void;
  /** Number of pins currently held on the page frame. */
  pinCount(pfn: bigint): number;
  /** Base pages that hold data (touched), for tests that prove sparseness. */
  readonly residentPages: number;
}
