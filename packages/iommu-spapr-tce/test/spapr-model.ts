/** The 'spapr' IOMMU hardware model of `@vfio-ts/sim` (packages/sim/src/spapr), as the tests use it. */
export * from '@vfio-ts/sim';
