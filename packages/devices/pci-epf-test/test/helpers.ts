/**
 * The model bench: `FakeHost` is @vfio-ts/sim's `ModelTestContext` (sparse fake RAM behind an IOMMU with explicit
 * mapped windows, recorded interrupts, and a manual clock that only moves when the test says so) at 0000:00:03.0,
 * and its little-endian helpers for BAR accesses.
 */
export { ModelTestContext as FakeHost, toLe as le, fromLe } from '@vfio-ts/sim';
