export const VFIO_TYPE = 0x3b;
