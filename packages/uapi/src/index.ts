/**
 * @vfio-ts/uapi — the bytes of Linux's VFIO and iommufd ABI: ioctl numbers, struct layouts with codecs,
 * capability chains, flags and errno.
 * @packageDocumentation
 */
export * from './errno.js';
export * from './struct.js';
