/** attack --save/--grid: any pair of names is either refused in one line or gives distinct, writable files that replace no input. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { attackOutputs, checkOutputs } from '../../eval/output-files.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

describe('attack output files', () => {
  it('fuzz: refused with a RobustError, or distinct files in existing folders that replace nothing protected', () => {
    const root = tmpDir('outputs');
    const model = path.join(root, 'ckpt');
    fs.mkdirSync(model);
    for (const f of ['model.json', 'weights.bin']) fs.writeFileSync(path.join(model, f), 'x');
    fs.mkdirSync(path.join(root, 'out'));
    fs.writeFileSync(path.join(root, 'out', 'old.bin'), 'x');
    fs.writeFileSync(path.join(root, 'file'), 'x');
    fs.symlinkSync(path.join(root, 'out'), path.join(root, 'out-link'));
    fs.symlinkSync(model, path.join(root, 'ckpt-link'));
    const folder = fc.constantFrom(
      '',
      'out',
      'out-link',
      'out/.',
      'out/../out',
      'ckpt',
      'ckpt-link',
      'missing',
      'file',
      '/',
      '.',
    );
    const name = fc.constantFrom(
      'adv',
      'adv.bin',
      'adv.png',
      'adv.bin.labels',
      'adv.grid.png',
      'old.bin',
      'model.json',
      'weights.bin',
      '',
      '.',
      '..',
      'new/',
    );
    const file = fc
      .tuple(folder, name)
      .map(([d, n]) =>
        d === '/' ? `/${n}` : path.join(root, d, n) + (n.endsWith('/') ? '/' : ''),
      );
    fc.assert(
      fc.property(
        fc.option(file, { nil: undefined }),
        fc.option(file, { nil: undefined }),
        fc.constantFrom(1, 3),
        (save, grid, channels) => {
          const outputs = attackOutputs(save, grid, channels);
          try {
            checkOutputs(outputs.files, [{ what: 'the model', dir: model }]);
          } catch (e) {
            expect(e, String(e)).toBeInstanceOf(RobustError);
            expect((e as Error).message.split('\n')).toHaveLength(1);
            return;
          }
          const landed = outputs.files.map((o) =>
            path.join(fs.realpathSync(path.dirname(path.resolve(o.file))), path.basename(o.file)),
          );
          expect(new Set(landed).size).toBe(landed.length);
          for (const l of landed) {
            expect(fs.existsSync(l) && fs.statSync(l).isDirectory()).toBe(false);
            expect(fs.existsSync(l) && l.startsWith(fs.realpathSync(model) + path.sep)).toBe(false);
          }
          expect(outputs.files.length).toBe(
            (save !== undefined ? (channels === 3 ? 1 : 2) : 0) +
              (save !== undefined || grid !== undefined ? 1 : 0),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
