/**
 * The 'spapr' IOMMU hardware model of `@vfio-ts/sim` (packages/sim/src/spapr). Imported by path until the sim
 * package's public index re-exports it; then this becomes `export * from '@vfio-ts/sim'`.
 */
export * from '../../sim/src/spapr/index.js';
