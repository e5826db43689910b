/** Parsing and checking declared preprocessing: what float32 cannot hold is refused, never turned into Inf/NaN inputs. */
import { describe, expect, it } from 'vitest';
import { checkPreprocess, parseInputRange, parseMean, parseStd } from '../../models/preprocess.js';

describe('preprocessing flags', () => {
  it('accepts the usual values', () => {
    expect(parseInputRange('0,255')).toEqual([0, 255]);
    expect(parseInputRange('-1, 1')).toEqual([-1, 1]);
    expect(parseMean('0.485,0.456,0.406')).toEqual([0.485, 0.456, 0.406]);
    expect(parseStd('58.4')).toEqual([58.4]);
  });

  const refused: [string, () => unknown, RegExp][] = [
    ['--input-range 1,0', () => parseInputRange('1,0'), /lo < hi/],
    ['--input-range 0,0', () => parseInputRange('0,0'), /lo < hi/],
    ['--input-range 0,1e39', () => parseInputRange('0,1e39'), /float32's range/],
    ['--input-range -3e38,3e38', () => parseInputRange('-3e38,3e38'), /lo < hi/],
    ['--input-range nan,1', () => parseInputRange('nan,1'), /float32's range/],
    ['--mean 1e300', () => parseMean('1e300'), /float32's range/],
    ['--mean 1,2,3,4,5', () => parseMean('1,2,3,4,5'), /1 to 4/],
    ['--std 0', () => parseStd('0'), /positive/],
    ['--std -1', () => parseStd('-1'), /positive/],
    ['--std 1e-40', () => parseStd('1e-40'), /positive \(at least/],
    ['--std 1e309', () => parseStd('1e309'), /float32's range/],
  ];
  for (const [what, parse, message] of refused)
    it(`refuses ${what}`, () => expect(parse).toThrow(message));

  it('the library checks what it is given as the flags are checked', () => {
    expect(() => checkPreprocess({ range: [0, 1], std: [0] }, 3, 'm')).toThrow(
      /std must be positive/,
    );
    expect(() => checkPreprocess({ range: [Number.NaN, 1] }, 3, 'm')).toThrow(/input range/);
    expect(() => checkPreprocess({ range: [0, 1], mean: [1, 2] }, 3, 'm')).toThrow(
      /: mean has 2 values but the model takes 3 channel/,
    );
    expect(() =>
      checkPreprocess({ range: [0, 255], mean: [1, 2, 3], std: [4] }, 3, 'm'),
    ).not.toThrow();
  });
});
