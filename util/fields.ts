/**
 * Checking the fields of an object read from a file (checkpoint metadata, zoo/index.json) before
 * anything uses them: a wrong type is one line naming the file, the field and what it must be.
 */
import { RobustError } from './errors.js';

export interface FieldRule {
  test: (v: unknown) => boolean;
  /** What the value must be, as the message says it ("a positive integer"). */
  want: string;
  optional?: boolean;
}

export const rule = {
  string: (optional = false): FieldRule => ({ test: (v) => typeof v === 'string', want: 'a string', optional }),
  strings: (optional = false): FieldRule => ({ test: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'), want: 'a list of strings', optional }),
  number: (min: number, max: number, optional = false): FieldRule => ({
    test: (v) => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max,
    want: `a number from ${min} to ${max}`,
    optional,
  }),
  integer: (min: number, max: number, optional = false): FieldRule => ({ test: (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max, want: `an integer from ${min} to ${max}`, optional }),
  object: (optional = false): FieldRule => ({ test: (v) => typeof v === 'object' && v !== null && !Array.isArray(v), want: 'an object', optional }),
  matching: (re: RegExp, want: string, optional = false): FieldRule => ({ test: (v) => typeof v === 'string' && re.test(v), want, optional }),
};

/** Throws a RobustError for the first field of `o` that breaks its rule (`where`: the file and the object's path in it). */
export function checkFields(o: unknown, rules: Record<string, FieldRule>, where: string): void {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new RobustError(`${where}: expected an object, got ${JSON.stringify(o)?.slice(0, 40)}`);
  for (const [key, r] of Object.entries(rules)) {
    const v = (o as Record<string, unknown>)[key];
    if (v === undefined && r.optional) continue;
    if (!r.test(v)) throw new RobustError(`${where}.${key} must be ${r.want}, got ${JSON.stringify(v)?.slice(0, 40) ?? 'nothing'}`);
  }
}
