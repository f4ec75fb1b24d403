import { expect, test } from 'vitest';
import { VFIO_TYPE } from '../src/index.js';
test('type', () => { expect(VFIO_TYPE).toBe(0x3b); });
