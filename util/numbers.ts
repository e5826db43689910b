/** Parsing numbers the way users write budgets: 0.1, 1e-3 or fractions such as 8/255. */
import { optionError } from './errors.js';

/** A non-negative number, written plainly or as a fraction such as 8/255; `option` names it in errors. */
export function number(option: string, opts: { min?: number; max?: number } = {}) {
  return (v: string): number => {
    const m = /^\s*([0-9]*\.?[0-9]+(?:e-?\d+)?)\s*(?:\/\s*([0-9]*\.?[0-9]+))?\s*$/i.exec(v);
    const n = m ? (m[2] !== undefined ? Number(m[1]) / Number(m[2]) : Number(m[1])) : NaN;
    if (!Number.isFinite(n))
      throw optionError((n) => `${n(option)} must be a number such as 0.1 or 8/255, got '${v}'`);
    if (opts.min !== undefined && n < opts.min)
      throw optionError((n) => `${n(option)} must be ≥ ${opts.min}, got '${v}'`);
    if (opts.max !== undefined && n > opts.max)
      throw optionError((n) => `${n(option)} must be ≤ ${opts.max}, got '${v}'`);
    return n;
  };
}
