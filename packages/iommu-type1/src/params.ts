/**
 * Module parameter parsing the way Linux's param_set_bool / param_set_uint do (inventory §4 "Module params").
 */
import { parseBoolParam } from '@vfio-ts/core';
import { SysError } from '@vfio-ts/uapi';

/** kstrtobool as the core implements it for every module parameter (re-exported for compatibility). */
export { parseBoolParam };

/** Reads a bool parameter value (as stored by {@link parseBoolParam}). */
export function boolParam(text: string): boolean {
  try {
    return parseBoolParam(text) === 'Y';
  } catch {
    return false;
  }
}

/** Parses a uint parameter (kstrtouint, base auto-detected): EINVAL on junk, ERANGE above 2^32-1. */
export function parseUintParam(text: string): string {
  const t = text.replace(/\n$/, '').trim();
  let n: bigint;
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) n = BigInt(t);
  else if (/^0[0-7]*$/.test(t)) n = BigInt('0o' + (t.slice(1) || '0'));
  else if (/^\+?[0-9]+$/.test(t)) n = BigInt(t.replace(/^\+/, ''));
  else throw new SysError('EINVAL', `invalid uint parameter value '${text}'`);
  if (n > 0xffffffffn) throw new SysError('ERANGE', `uint parameter value '${text}' out of range`);
  return n.toString();
}

/** Reads a uint parameter value, falling back to `fallback` if the text does not parse. */
export function uintParam(text: string, fallback: number): number {
  try {
    return Number(parseUintParam(text));
  } catch {
    return fallback;
  }
}
