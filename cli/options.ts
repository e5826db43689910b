/** Parsing and checking of CLI values: each bad value is a one-line RobustError. */
import { cliMessage } from './flags.js';
import { RobustError } from '../util/errors.js';

/** A whole number written in decimal (1e3 too), or NaN: no hex, binary or empty strings. */
function integerValue(v: string): number {
  return /^\s*\+?\d+(?:\.\d*)?(?:e\+?\d+)?\s*$/i.test(v) ? Number(v) : NaN;
}

/** A count from 1 to `max`: give every count flag its bound from util/limits.ts. */
export function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = integerValue(v);
    if (!Number.isInteger(n) || n <= 0)
      throw new RobustError(`${name} must be a positive integer, got '${v}'`);
    if (n > max) throw new RobustError(`${name} must be at most ${max}, got '${v}'`);
    return n;
  };
}

/** A count from 0 to `max`. */
export function nonNegativeInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = integerValue(v);
    if (!Number.isInteger(n) || n < 0)
      throw new RobustError(`${name} must be a non-negative integer, got '${v}'`);
    if (n > max) throw new RobustError(`${name} must be at most ${max}, got '${v}'`);
    return n;
  };
}

export { LIMITS } from '../util/limits.js';
export { number } from '../util/numbers.js';

/**
 * For scripts outside the robust CLI: runs `parse` (their commander parsing and checks) and ends
 * the process on a RobustError with `name: message` on one line and exit status 2.
 */
export function optionsOrExit<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof RobustError)) throw e;
    console.error(`${name}: ${cliMessage(e)}`);
    process.exit(2);
  }
}
