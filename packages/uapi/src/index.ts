/**
 * @vfio-ts/uapi — the bytes of Linux's VFIO and iommufd ABI: ioctl numbers, struct layouts with codecs,
 * capability chains, flags and errno.
 * @packageDocumentation
 */
export * from './errno.js';
export * from './struct.js';
export * from './args.js';
export * from './structs.js';
export * from './ioctl.js';
export * from './vfio.js';
export * from './iommufd.js';
export * from './caps.js';
export * from './syscall.js';
export * from './pci-regs.js';
export * from './user.js';
