/**
 * Counts from flags and files are bounded: a huge, negative, fractional or non-numeric count is a
 * one-line error and exit 2, quickly — never a V8 abort, an out-of-memory or an endless loop.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Option } from 'commander';
import { program } from '../../cli/robust.js';
import { initBackend } from '../../backend/index.js';
import { classifierFor } from '../../cli/model-input.js';
import { commonInfo } from '../../attacks/attack.js';
import { defenseConfig } from '../../defenses/defense.js';
import { parseEvalConfig } from '../../eval/config.js';
import { createModel } from '../../models/zoo.js';
import { loadData } from '../../data/index.js';
import { trainModel, type TrainConfig } from '../../train/trainer.js';
import { RobustError } from '../../util/errors.js';
import { LIMITS } from '../../util/limits.js';
import { robust, tinyCheckpoint } from './fixtures.js';
import { ROOT, tmpDir } from '../helpers.js';

const BIN = path.join(ROOT, 'bin', 'robust.js');

/** Every option of every command that takes a count (written `<n>` in this CLI). */
const countFlags: { command: string; option: Option }[] = program.commands.flatMap((c) =>
  c.options.filter((o) => /<n>/.test(o.flags)).map((option) => ({ command: c.name(), option })),
);

/** Values no count flag may accept: beyond every bound (≥ 2³²), ≤ 0 where 0 is not a count, fractions, non-numbers. */
const hopeless = fc.oneof(
  fc.bigInt({ min: 2n ** 32n, max: 10n ** 30n }).map(String),
  fc.constantFrom(
    '1e10',
    '1e12',
    '1e400',
    '9007199254740993',
    'Infinity',
    '-Infinity',
    'NaN',
    '',
    ' ',
    '0x10',
    '1e-3',
    'ten',
    '--',
    '2.5',
    '-1',
  ),
  fc.integer({ min: -1e9, max: -1 }).map(String),
  fc
    .double({ min: 0.001, max: 1e6, noNaN: true })
    .filter((x) => !Number.isInteger(x))
    .map(String),
);

function rejects(parse: () => unknown): string {
  let error: unknown;
  try {
    parse();
  } catch (e) {
    error = e;
  }
  expect(error, 'accepted').toBeInstanceOf(RobustError);
  const message = (error as Error).message;
  expect(message.split('\n')).toHaveLength(1);
  return message;
}

describe('count flags', () => {
  it('the CLI has the count flags this test is about', () => {
    const names = new Set(countFlags.map((f) => `${f.command} ${f.option.long}`));
    for (const f of [
      'train --threads',
      'train --noise-samples',
      'train --batch-size',
      'train --epochs',
      'train --width',
      'attack --eot-samples',
      'attack --restarts',
      'eval --eot-samples',
      'eval --limit',
    ])
      expect(names).toContain(f);
  });

  it('every count flag of every command refuses huge, negative, fractional and non-numeric values in one line', () => {
    fc.assert(
      fc.property(fc.constantFrom(...countFlags), hopeless, ({ command, option }, v) => {
        const message = rejects(() => option.parseArg!(v, undefined));
        expect(message, `${command} ${option.long} ${v}`).toContain(option.long!);
      }),
      { numRuns: 600 },
    );
  });

  it('the examples from the issue, each against its own bound', () => {
    const parse = (command: string, long: string, v: string) =>
      countFlags.find((f) => f.command === command && f.option.long === long)!.option.parseArg!(
        v,
        undefined,
      );
    expect(rejects(() => parse('train', '--threads', '100000'))).toMatch(
      /--threads must be at most 256/,
    );
    expect(rejects(() => parse('train', '--noise-samples', '1e9'))).toMatch(/at most 1000/);
    expect(rejects(() => parse('train', '--batch-size', '100000000'))).toMatch(/at most 65536/);
    expect(rejects(() => parse('attack', '--eot-samples', '1e7'))).toMatch(/at most 1000/);
    expect(parse('train', '--threads', '2')).toBe(2);
    expect(parse('attack', '--seed', '0')).toBe(0);
    expect(parse('train', '--checkpoint-every', '0')).toBe(0);
  });

  it('end to end: one line on stderr and exit 2 within seconds', () => {
    const cases: [string[], string][] = [
      [['train', '--threads', '100000'], '--threads'],
      [
        ['train', '--noise-samples', '1e9', '--defense', 'noise', '--noise-std', '0.1'],
        '--noise-samples',
      ],
      [['train', '--batch-size', '100000000'], '--batch-size'],
      [['attack', '--model', 'x', '--eot-samples', '1e7'], '--eot-samples'],
      [['eval', '--models', 'x', '--restarts', '-3'], '--restarts'],
      [['attack', '--model', 'x', '--steps', '2.5'], '--steps'],
    ];
    for (const [args, flag] of cases) {
      const t0 = Date.now();
      // A bound that is missing shows as a run that goes on: stop it well before the suite's timeout.
      const p = spawnSync(
        process.execPath,
        [
          BIN,
          ...args,
          '--data',
          'sample',
          ...(args[0] === 'train' ? ['--out', path.join(tmpDir('bounds'), 'run')] : []),
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      const r = { code: p.status, stderr: p.stderr };
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^robust: ${flag} must be`));
      expect(Date.now() - t0).toBeLessThan(20_000);
    }
  });
});

describe('counts from files and library calls', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
  });

  it('a checkpoint whose metadata records 1e9 noise samples: one line from classifierFor and from `robust attack`', async () => {
    const model = createModel('resnet20', {
      inputShape: [28, 28, 1],
      numClasses: 10,
      mean: [0],
      std: [1],
      width: 4,
    });
    const meta = { defenseConfig: { names: ['noise' as const], noiseStd: 0.1, noiseSamples: 1e9 } };
    expect(rejects(() => classifierFor(model, meta))).toMatch(
      /noise samples must be an integer from 1 to 1000/,
    );
    model.dispose();
    const ckpt = await tinyCheckpoint('bounds-meta');
    const json = JSON.parse(fs.readFileSync(path.join(ckpt, 'model.json'), 'utf8'));
    json.userDefinedMetadata.robust.defenseConfig = meta.defenseConfig;
    fs.writeFileSync(path.join(ckpt, 'model.json'), JSON.stringify(json));
    const r = robust(['attack', '--model', ckpt, '--limit', '4', '--backend', 'wasm', '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/noise ?samples must be an integer from 1 to 1000, got 1000000000/i);
  });

  it('library entry points: EOT samples, defense settings, eval config files, backend threads', async () => {
    const huge = fc.oneof(
      fc.integer({ min: LIMITS.samples + 1, max: 2 ** 31 }),
      fc.constantFrom(1e7, 1e9, 2 ** 53, Infinity, NaN, -1, 0.5),
    );
    fc.assert(
      fc.property(huge, (n) => {
        rejects(() => commonInfo('pgd', { eotSamples: n }));
        rejects(() => defenseConfig(['noise'], { noiseStd: 0.1, noiseSamples: n }));
        rejects(() => parseEvalConfig({ models: 'a', eotSamples: n }, 'grid.json'));
      }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('steps', 'restarts', 'limit', 'batchSize', 'eotSamples', 'seed'),
        fc.constantFrom(1e12, 2 ** 53, 1e300),
        (key, n) => {
          expect(rejects(() => parseEvalConfig({ models: 'a', [key]: n }, 'grid.json'))).toMatch(
            new RegExp(`^${key} must be an integer from \\d+ to \\d+`),
          );
        },
      ),
    );
    rejects(() => defenseConfig(['pgd'], { steps: 1e9 }));
    await expect(initBackend({ backend: 'wasm', threads: 100000 })).rejects.toThrow(
      /threads must be an integer from 1 to 256/,
    );
  });

  it("a run's state.json edited to 1e12 epochs (or a huge batch) is refused on --resume in one line", async () => {
    const data = await loadData('fashion-mnist-sample', { limit: 32, testLimit: 16 });
    const config: TrainConfig = {
      model: 'resnet20',
      width: 4,
      data: data.name,
      epochs: 1,
      batchSize: 16,
      lr: 0.05,
      momentum: 0.9,
      weightDecay: 5e-4,
      schedule: 'constant',
      augment: { cropPad: 0, flip: false },
      seed: 1,
      checkpointEvery: 0,
      backend: 'wasm',
    };
    const fresh = () =>
      createModel('resnet20', {
        inputShape: [28, 28, 1],
        numClasses: 10,
        mean: data.mean,
        std: data.std,
        width: 4,
      });
    const out = tmpDir('bounds-state');
    (await trainModel(fresh, data, config, out, { quiet: true })).model.dispose();
    const file = path.join(out, 'checkpoint', 'state.json');
    const state = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const [key, v] of [
      ['epochs', 1e12],
      ['batchSize', 1e9],
      ['checkpointEvery', -1],
    ] as const) {
      fs.writeFileSync(file, JSON.stringify({ ...state, config: { ...state.config, [key]: v } }));
      const e = await trainModel(fresh, data, config, out, { quiet: true, resume: true }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, key).toBeInstanceOf(RobustError);
      expect((e as Error).message).toMatch(
        new RegExp(`${key} must be an integer from \\d+ to \\d+`),
      );
    }
  });
});
