/**
 * Sparse BAR backing store: 4 KiB pages allocated on first write, zero elsewhere (pci_epf_alloc_space hands out
 * zeroed coherent memory), so a 1 MiB test BAR costs nothing until the host writes it.
 */
const PAGE_SHIFT = 12;
const PAGE_SIZE = 1 << PAGE_SHIFT;

export class SparseMemory {
  private readonly pages = new Map<number, Uint8Array>();

  constructor(readonly size: number) {}

  read(offset: number, length: number, out: Uint8Array = new Uint8Array(length), at = 0): Uint8Array {
    let pos = 0;
    while (pos < length) {
      const addr = offset + pos;
      const index = addr >>> PAGE_SHIFT;
      const within = addr & (PAGE_SIZE - 1);
      const n = Math.min(PAGE_SIZE - within, length - pos);
      const page = this.pages.get(index);
      if (page) out.set(page.subarray(within, within + n), at + pos);
      else out.fill(0, at + pos, at + pos + n);
      pos += n;
    }
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    let pos = 0;
    while (pos < data.length) {
      const addr = offset + pos;
      const index = addr >>> PAGE_SHIFT;
      const within = addr & (PAGE_SIZE - 1);
      const n = Math.min(PAGE_SIZE - within, data.length - pos);
      let page = this.pages.get(index);
      if (!page) {
        page = new Uint8Array(PAGE_SIZE);
        this.pages.set(index, page);
      }
      page.set(data.subarray(pos, pos + n), within);
      pos += n;
    }
  }

  u32(offset: number): number {
    const b = this.read(offset, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  setU32(offset: number, value: number): void {
    this.write(offset, new Uint8Array([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24]));
  }

  /** Pages currently backed (for tests of sparseness). */
  get pagesInUse(): number {
    return this.pages.size;
  }

  clear(): void {
    this.pages.clear();
  }
}
