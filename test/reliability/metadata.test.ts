/**
 * Metadata read from files — a checkpoint's robust metadata, the zoo's index.json — is checked
 * before use: any field of the wrong type or range is one RobustError naming the file and field.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../cli/model-input.js';
import { pretrainedDir, pretrainedEntries } from '../../models/pretrained.js';
import { RobustError } from '../../util/errors.js';
import { robust, tinyCheckpoint } from '../cli/fixtures.js';
import { tmpDir } from '../helpers.js';

/** Values of every JSON type, including ones that break each field's rule. */
const wrongValue = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    'abc',
    '',
    -1,
    0,
    1.5,
    1e9,
    -1e308,
    [],
    [1, 2],
    {},
    { a: 1 },
    '../../etc',
    ['x', 3],
  ),
  fc.string({ maxLength: 8 }),
  fc.double(),
);

let ckpt: string;
beforeAll(async () => {
  ckpt = await tinyCheckpoint('metadata');
});

describe('checkpoint metadata', () => {
  const fields = [
    'model',
    'width',
    'data',
    'defense',
    'classes',
    'defenseConfig',
    'defenseConfig.noiseSamples',
    'defenseConfig.noiseStd',
    'defenseConfig.names',
  ];
  it('any field set to any value either loads as a valid value or is one RobustError naming the field', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields), wrongValue, async (field, value) => {
        const d = path.join(path.dirname(ckpt), `meta-${n++}`);
        fs.cpSync(ckpt, d, { recursive: true });
        const json = JSON.parse(fs.readFileSync(path.join(d, 'model.json'), 'utf8'));
        const meta = json.userDefinedMetadata.robust;
        const [head, tail] = field.split('.');
        if (tail) meta[head] = { names: ['noise'], noiseStd: 0.1, noiseSamples: 2, [tail]: value };
        else meta[head] = value;
        fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
        try {
          const { model, meta: read } = await loadCheckpoint(d);
          model.dispose();
          // accepted: then it has the field's type
          const v = tail
            ? (read.defenseConfig as Record<string, unknown>)[tail]
            : (read as Record<string, unknown>)[head];
          const ok: Record<string, (v: unknown) => boolean> = {
            model: (v) => typeof v === 'string',
            data: (v) => typeof v === 'string',
            defense: (v) => typeof v === 'string',
            width: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 256,
            classes: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
            defenseConfig: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
            noiseSamples: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1000,
            noiseStd: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
            names: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
          };
          expect(ok[tail ?? head](v), `${field} = ${JSON.stringify(value)} accepted`).toBe(true);
        } catch (e) {
          expect(e, `${field} = ${JSON.stringify(value)}`).toBeInstanceOf(RobustError);
          expect((e as Error).message).toContain(
            `metadata robust${tail ? '.defenseConfig' : ''}.${tail ?? head} must be`,
          );
        }
      }),
      { numRuns: 60, seed: 3 },
    );
  });

  it('a class name with a control character is refused, shown escaped', async () => {
    const d = path.join(path.dirname(ckpt), 'meta-control');
    fs.cpSync(ckpt, d, { recursive: true });
    const json = JSON.parse(fs.readFileSync(path.join(d, 'model.json'), 'utf8'));
    json.userDefinedMetadata.robust.classes = ['cat', 'd\u001b[2Jog'];
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
    await expect(loadCheckpoint(d)).rejects.toThrow(
      /metadata robust\.classes: class name "d\\u001b\[2Jog" holds a control character$/,
    );
  });

  it('a model, data or defense name with a control character is refused, shown escaped', async () => {
    for (const key of ['model', 'data', 'defense']) {
      const d = path.join(path.dirname(ckpt), `meta-control-${key}`);
      fs.cpSync(ckpt, d, { recursive: true });
      const json = JSON.parse(fs.readFileSync(path.join(d, 'model.json'), 'utf8'));
      json.userDefinedMetadata.robust[key] = 'res\u001bnet\n20';
      fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
      await expect(loadCheckpoint(d)).rejects.toThrow(
        new RegExp(
          `metadata robust\\.${key}: "res\\\\u001bnet\\\\u000a20" holds a control character$`,
        ),
      );
    }
  });

  it('through the CLI: a width of the wrong type is one line and exit 2', () => {
    const d = path.join(path.dirname(ckpt), 'meta-cli');
    fs.cpSync(ckpt, d, { recursive: true });
    fs.writeFileSync(
      path.join(d, 'model.json'),
      fs.readFileSync(path.join(d, 'model.json'), 'utf8').replace('"width":4', '"width":"four"'),
    );
    const r = robust(['attack', '--model', d, '--limit', '4', '--backend', 'wasm']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^robust: .*metadata robust\.width must be an integer from 1 to 256, got "four"$/,
    );
  });
});

describe('zoo/index.json', () => {
  const real = JSON.parse(fs.readFileSync(path.join(pretrainedDir(), 'index.json'), 'utf8'));
  const fields = [
    'name',
    'architecture',
    'width',
    'data',
    'defense',
    'eps',
    'command',
    'epochs',
    'train_seconds',
    'backend',
    'test_acc',
    'note',
    'sha256',
  ];

  function withIndex<T>(text: string, f: () => T): T {
    const dir = tmpDir('zoo-index');
    fs.writeFileSync(path.join(dir, 'index.json'), text);
    const before = process.env.ROBUST_ZOO_DIR;
    process.env.ROBUST_ZOO_DIR = dir;
    try {
      return f();
    } finally {
      if (before === undefined) delete process.env.ROBUST_ZOO_DIR;
      else process.env.ROBUST_ZOO_DIR = before;
    }
  }

  it('the shipped index passes', () => {
    expect(pretrainedEntries().length).toBeGreaterThan(0);
  });

  it('any field of any entry set to any value: valid, or one RobustError', () => {
    fc.assert(
      fc.property(
        fc.nat(real.entries.length - 1),
        fc.constantFrom(...fields),
        wrongValue,
        (i, field, value) => {
          const index = structuredClone(real);
          index.entries[i][field] = value;
          withIndex(JSON.stringify(index), () => {
            try {
              const e = pretrainedEntries()[i] as unknown as Record<string, unknown>;
              expect(JSON.stringify(e[field])).toBe(JSON.stringify(value)); // accepted as is: it was valid
              if (field === 'name') expect(String(value)).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
            } catch (err) {
              expect(err, `${field} = ${JSON.stringify(value)}`).toBeInstanceOf(RobustError);
            }
          });
        },
      ),
      { numRuns: 80, seed: 4 },
    );
  });

  it('truncated, not an object, a duplicate name, a path as a name, a bad hash: one line each', () => {
    const text = JSON.stringify(real);
    const dup = structuredClone(real);
    dup.entries.push(dup.entries[0]);
    const escape = structuredClone(real);
    escape.entries[0].sha256 = { '../../x': '0'.repeat(64) };
    for (const bad of [
      text.slice(0, text.length / 2),
      '[]',
      '{}',
      '{"entries": {}}',
      JSON.stringify(dup),
      JSON.stringify(escape),
    ]) {
      withIndex(bad, () =>
        expect(() => pretrainedEntries(), bad.slice(0, 30)).toThrow(RobustError),
      );
    }
  });

  it('through the CLI: `robust models` with a damaged index is one line and exit 2', () => {
    const dir = tmpDir('zoo-index-cli');
    fs.writeFileSync(path.join(dir, 'index.json'), '{"entries": [{"name": 5}]}');
    const r = robust(['models', '--backend', 'wasm'], { ROBUST_ZOO_DIR: dir });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/entries\[0\]\.name must be a plain folder name, got 5/);
  });
});
