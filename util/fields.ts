/**
 * Checking the fields of objects read from files (checkpoint metadata, zoo/index.json, cell files,
 * results.json) before anything uses them. A check returns null when a value is fine, else what
 * is wrong ("must be an integer from 1 to 256, got \"four\""); checks compose (optional, either,
 * nested objects), and `checkFields` turns the first problem into a one-line RobustError.
 */
import { RobustError } from './errors.js';

/** null when `v` is fine; else `must be …, got …`, or `.field must be …` for a nested object. */
export type Check = (v: unknown) => string | null;
export type Shape = Record<string, Check>;

/** `v` as JSON, except that numbers JSON cannot hold show as themselves (NaN, not null). */
export function showValue(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `[${v.map(showValue).join(',')}]`;
  return JSON.stringify(v) ?? String(v);
}
const show = (v: unknown) => showValue(v).slice(0, 40);
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
/** A check from a test and what the value must be. */
export const leaf =
  (test: (v: unknown) => boolean, want: string): Check =>
  (v) =>
    test(v) ? null : `must be ${want}, got ${v === undefined ? 'nothing' : show(v)}`;

const range = (min: number, max: number) =>
  max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`;
export const str = leaf((v) => typeof v === 'string', 'a string');
export const bool = leaf((v) => typeof v === 'boolean', 'true or false');
export const strings = leaf(
  (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
  'a list of strings',
);
export const object = leaf(isObject, 'an object');
export const num = (min = -Infinity, max = Infinity): Check =>
  leaf(
    (v) => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max,
    `a number ${range(min, max)}`,
  );
export const int = (min: number, max = Infinity): Check =>
  leaf(
    (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max,
    `an integer ${range(min, max)}`,
  );
export const matching = (re: RegExp, want: string): Check =>
  leaf((v) => typeof v === 'string' && re.test(v), want);
export const oneOf = (...xs: unknown[]): Check =>
  leaf((v) => xs.includes(v), `one of ${xs.map((x) => JSON.stringify(x)).join(', ')}`);
export const optional =
  (c: Check): Check =>
  (v) =>
    v === undefined ? null : c(v);
export const either =
  (a: Check, b: Check): Check =>
  (v) =>
    a(v) === null || b(v) === null ? null : a(v);
export const nested =
  (shape: Shape): Check =>
  (v) => {
    const p = fieldProblem(v, shape);
    return p === null || p.startsWith('must') ? p : `.${p}`;
  };

/** The first field of `o` that fails its check, as `field must be …` (or `must be an object` for `o` itself); null when all pass. */
export function fieldProblem(o: unknown, shape: Shape): string | null {
  if (!isObject(o)) return object(o);
  for (const [k, c] of Object.entries(shape)) {
    const why = c(o[k]);
    if (why) return why.startsWith('.') ? `${k}${why}` : `${k} ${why}`;
  }
  return null;
}

/** Throws a RobustError for the first field of `o` that fails its check (`where`: the file and the object's path in it). */
export function checkFields(o: unknown, shape: Shape, where: string): void {
  const p = fieldProblem(o, shape);
  if (p) throw new RobustError(`${where}${p.startsWith('must') ? ' ' : '.'}${p}`);
}
