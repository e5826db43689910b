/** Parsing and checking of CLI values: each bad value is a one-line RobustError. */
import { RobustError } from '../util/errors.js';

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new RobustError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new RobustError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

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
    console.error(`${name}: ${e.message}`);
    process.exit(2);
  }
}
