import { expect, test } from 'vitest';
test('t', () => { expect(1).toBe(1); });
