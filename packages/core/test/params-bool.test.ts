import { describe, expect, it } from 'vitest';
import { isSysError } from '@vfio-ts/uapi';
import { parseBoolParam } from '../src/index.js';

const errno = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return isSysError(e) ? e.errno : 'not a SysError';
  }
};

describe('bool module parameters follow Linux 6.12 kstrtobool', () => {
  it.each([
    ['Y', 'Y'], ['y', 'Y'], ['1', 'Y'], ['t', 'Y'], ['True', 'Y'], ['on', 'Y'], ['ON\n', 'Y'], ['yes please', 'Y'],
    ['N', 'N'], ['n\n', 'N'], ['0', 'N'], ['f', 'N'], ['false', 'N'], ['off', 'N'], ['oF', 'N'],
  ])('%j reads as %s', (text, want) => {
    expect(parseBoolParam(text)).toBe(want);
  });

  it.each([[' y'], [''], ['o'], ['ox'], ['2'], ['\ny'], ['x']])('%j is EINVAL (only the first characters count, nothing is trimmed)', (text) => {
    expect(errno(() => parseBoolParam(text))).toBe('EINVAL');
  });
});
