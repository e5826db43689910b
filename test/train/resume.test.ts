/** --resume continues the run it finds, not another one: every setting that shapes the run must match, or be overridden on record. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { initBackend } from '../../backend/index.js';
import { computeVariant } from '../../backend/variant.js';
import { useRelaxedSimd, useWinograd } from '../../backend/wasm/wasm-kernels.js';
import { loadData } from '../../data/index.js';
import type { DataSplit } from '../../data/dataset.js';
import { createModel } from '../../models/zoo.js';
import { defenseConfig } from '../../defenses/defense.js';
import { trainModel, type TrainConfig } from '../../train/trainer.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

let data: DataSplit;
let run: string;

/** A config with every setting given, so that each one can be changed. */
const base = (): TrainConfig => ({
  model: 'resnet20',
  width: 4,
  data: 'fashion-mnist-sample',
  epochs: 1,
  batchSize: 32,
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 5e-4,
  decay: undefined, // kernels
  schedule: 'cosine',
  augment: { cropPad: 2, flip: false },
  seed: 1,
  limit: 64,
  evalLimit: 32,
  checkpointEvery: 1,
  backend: 'wasm',
  compute: computeVariant(), // what runs now (the backend is started before any config is made)
  defense: defenseConfig(['pgd', 'clip', 'noise'], {
    eps: 2 / 255,
    alpha: 1 / 255,
    steps: 1,
    advRatio: 0.5,
    clipNorm: 5,
    clipValue: 1,
    noiseStd: 0.01,
    noiseSamples: 1,
  }),
  robustEval: { limit: 16, eps: 2 / 255, steps: 1 },
  earlyStop: false,
});
const fresh = () => {
  const m = createModel('resnet20', {
    inputShape: [28, 28, 1],
    numClasses: 10,
    mean: data.mean,
    std: data.std,
    width: 4,
    seed: 1,
  });
  m.setUserDefinedMetadata({
    robust: JSON.parse(
      JSON.stringify({
        model: 'resnet20',
        width: 4,
        data: data.name,
        defense: 'pgd+clip+noise',
        defenseConfig: base().defense,
      }),
    ),
  });
  return m;
};

/** What each setting is on resume; a new TrainConfig key without an entry here is a test to write. */
const KIND: Record<keyof TrainConfig, 'matters' | 'free' | 'recorded'> = {
  model: 'matters',
  width: 'matters',
  data: 'matters',
  epochs: 'free',
  batchSize: 'matters',
  lr: 'matters',
  momentum: 'matters',
  weightDecay: 'matters',
  decay: 'matters',
  schedule: 'matters',
  augment: 'matters',
  seed: 'matters',
  limit: 'matters',
  evalLimit: 'matters',
  checkpointEvery: 'free',
  backend: 'free',
  compute: 'free',
  defense: 'matters',
  robustEval: 'matters',
  earlyStop: 'matters',
  dataHash: 'recorded',
  options: 'recorded',
};

/** The option a nested setting is given by, where its name differs. */
const OPTION_OF: Record<string, string> = {
  'defense.names': 'defense',
  'defense.steps': 'advSteps',
  'robustEval.limit': 'robustEval',
  'robustEval.steps': 'robustEvalSteps',
  'robustEval.eps': 'eps (robust eval)',
};

/** One changed value for each setting that matters (nested ones by path). */
const change = fc
  .oneof(
    fc.constantFrom<[string, unknown]>(
      ['model', 'resnet32'],
      ['width', 8],
      ['data', 'cifar10'],
      ['schedule', 'step'],
      ['schedule', 'onecycle'],
      ['decay', 'all'],
      ['augment', { cropPad: 0, flip: false }],
      ['augment', { cropPad: 2, flip: true }],
    ),
    fc.constantFrom('batchSize', 'seed', 'limit', 'evalLimit').chain((k) =>
      fc
        .integer({ min: 1, max: 500 })
        .filter((v) => v !== (base() as unknown as Record<string, number>)[k])
        .map((v): [string, unknown] => [k, v]),
    ),
    fc
      .constantFrom('lr', 'momentum', 'weightDecay')
      .chain((k) =>
        fc.double({ min: 1e-4, max: 0.99, noNaN: true }).map((v): [string, unknown] => [k, v]),
      ),
    fc
      .constantFrom(
        'eps',
        'alpha',
        'advRatio',
        'beta',
        'clipNorm',
        'clipValue',
        'noiseStd',
        'dropout',
        'blockDropout',
      )
      .chain((k) =>
        fc
          .double({ min: 0.001, max: 0.9, noNaN: true })
          .map((v): [string, unknown] => [`defense.${k}`, v]),
      ),
    fc
      .constantFrom('steps', 'noiseSamples')
      .chain((k) =>
        fc.integer({ min: 2, max: 20 }).map((v): [string, unknown] => [`defense.${k}`, v]),
      ),
    fc.constantFrom<[string, unknown]>(
      ['defense.names', ['pgd']],
      ['defense.names', ['trades', 'clip', 'noise']],
      ['defense', undefined],
    ),
    fc
      .constantFrom('limit', 'eps', 'steps')
      .chain((k) =>
        fc
          .integer({ min: 2, max: 50 })
          .map((v): [string, unknown] => [`robustEval.${k}`, k === 'eps' ? v / 255 : v]),
      ),
    fc.constantFrom<[string, unknown]>(
      ['robustEval', undefined],
      ['earlyStop', true],
      ['earlyStop', 'train-batch'],
      ['defense.advMode', 'train'],
    ),
  )
  .filter(
    ([key, value]) =>
      JSON.stringify(
        key
          .split('.')
          .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], base()),
      ) !== JSON.stringify(value),
  );

function changed([key, value]: [string, unknown]): TrainConfig {
  const c = base() as unknown as Record<string, Record<string, unknown>>;
  const [a, b] = key.split('.');
  if (b === undefined) (c as Record<string, unknown>)[a] = value;
  else c[a] = { ...c[a], [b]: value };
  return c as unknown as TrainConfig;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'the resume was not refused').toBeInstanceOf(RobustError);
  const message = (e as Error).message;
  expect(message.split('\n')).toHaveLength(1);
  return message;
}

describe('train --resume with other settings', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
    // the plain SIMD build (ROBUST_RELAXED_SIMD=0): the variants named below are its own
    useRelaxedSimd(false);
    data = await loadData('fashion-mnist-sample', { limit: 64, testLimit: 32 });
    run = tmpDir('resume-base');
    await trainModel(fresh, data, base(), run, { quiet: true });
  });

  it('every setting that matters is listed in the property below', () => {
    expect(Object.keys(KIND).sort()).toEqual(
      Object.keys({ ...base(), dataHash: '', options: {} }).sort(),
    );
  });

  it('any change of a setting that matters is refused in one line naming it, old → new, and the run is untouched', async () => {
    const before = fs.readFileSync(path.join(run, 'checkpoint', 'state.json'), 'utf8');
    await fc.assert(
      fc.asyncProperty(change, async (c) => {
        const message = await refusal(
          trainModel(fresh, data, changed(c), run, { quiet: true, resume: true }),
        );
        // named by its option (TrainOptions), never by a CLI flag
        const option = OPTION_OF[c[0]] ?? c[0].split('.').pop()!;
        const named = new RegExp(`(: |, )${option.replace(/[()]/g, '\\$&')} .+? → `);
        expect(message, c[0]).toMatch(named);
        expect(message).not.toMatch(/--[a-z]/);
      }),
      { numRuns: 60 },
    );
    expect(fs.readFileSync(path.join(run, 'checkpoint', 'state.json'), 'utf8')).toBe(before);
  });

  it('other data under the same name (another copy, another subset) is refused', async () => {
    const images = Uint8Array.from(data.train.images);
    images[5] ^= 1;
    const other: DataSplit = { ...data, train: { ...data.train, images } };
    expect(
      await refusal(trainModel(fresh, other, base(), run, { quiet: true, resume: true })),
    ).toMatch(/dataDir \(the images\)/);
  });

  it('a shorter --epochs is refused, one below the epochs done even with --override', async () => {
    const out = tmpDir('resume-epochs');
    const c = { ...base(), robustEval: undefined };
    // A 3-epoch run stopped after its second epoch.
    const stop = (e: { epoch: number }) => {
      if (e.epoch === 2) throw new Error('killed');
    };
    await expect(
      trainModel(fresh, data, { ...c, epochs: 3 }, out, { quiet: true, onEpoch: stop }),
    ).rejects.toThrow('killed');
    expect(
      await refusal(
        trainModel(fresh, data, { ...c, epochs: 2 }, out, { quiet: true, resume: true }),
      ),
    ).toMatch(/: epochs 3 → 2 /);
    expect(
      await refusal(
        trainModel(fresh, data, { ...c, epochs: 1 }, out, {
          quiet: true,
          resume: true,
          override: true,
        }),
      ),
    ).toMatch(/, so epochs must be ≥ 2/);
  });

  it('harmless settings may differ, a larger --epochs extends the run, and both are recorded', async () => {
    const out = tmpDir('resume-free');
    fs.cpSync(run, out, { recursive: true });
    const { log } = await trainModel(
      fresh,
      data,
      { ...base(), epochs: 2, backend: 'cpu', checkpointEvery: 0 },
      out,
      { quiet: true, resume: true },
    );
    expect(log).toHaveLength(2);
    const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.config.epochs).toBe(2);
    expect(state.changes).toEqual([
      {
        epoch: 1,
        batch: 0,
        changes: ['backend wasm → cpu', 'epochs 1 → 2 (extended)'],
        override: false,
      },
    ]);
  });

  it('the compute variant is in the run state; a resume under another one is recorded, not silent', async () => {
    const saved = JSON.parse(fs.readFileSync(path.join(run, 'checkpoint', 'state.json'), 'utf8'));
    expect(saved.config.compute).toBe('robust kernels, Winograd F(4x4,3x3)');
    const out = tmpDir('resume-variant');
    fs.cpSync(run, out, { recursive: true });
    useWinograd(true, 2); // as ROBUST_WINOGRAD=2 does
    try {
      await trainModel(fresh, data, { ...base(), epochs: 2 }, out, { quiet: true, resume: true });
    } finally {
      useWinograd(true, 4);
    }
    const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.config.compute).toBe('robust kernels, Winograd F(2x2,3x3)');
    expect(state.changes[0].changes).toEqual([
      'compute robust kernels, Winograd F(4x4,3x3) → robust kernels, Winograd F(2x2,3x3)',
      'epochs 1 → 2 (extended)',
    ]);
    expect(state.changes[0].override).toBe(false);
  });

  it('a run from before the variant was recorded reads as F(2x2) on wasm with our kernels', async () => {
    const out = tmpDir('resume-legacy');
    fs.cpSync(run, out, { recursive: true });
    const file = path.join(out, 'checkpoint', 'state.json');
    const old = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete old.config.compute;
    fs.writeFileSync(file, JSON.stringify(old));
    await trainModel(fresh, data, { ...base(), epochs: 2 }, out, { quiet: true, resume: true });
    const state = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(state.changes[0].changes[0]).toBe(
      'compute robust kernels, Winograd F(2x2,3x3) → robust kernels, Winograd F(4x4,3x3)',
    );
  });

  it('--override continues with the new values and records them in the state and the checkpoint metadata', async () => {
    const out = tmpDir('resume-override');
    fs.cpSync(run, out, { recursive: true });
    const c = changed(['defense.noiseStd', 0.02]);
    const { model } = await trainModel(fresh, data, { ...c, epochs: 2, lr: 0.01 }, out, {
      quiet: true,
      resume: true,
      override: true,
    });
    const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.config.lr).toBe(0.01);
    expect(state.config.defense.noiseStd).toBe(0.02);
    expect(state.changes[0].override).toBe(true);
    expect(state.changes[0].changes).toEqual([
      'lr 0.05 → 0.01',
      'noiseStd 0.01 → 0.02',
      'epochs 1 → 2 (extended)',
    ]);
    expect(
      (model.getUserDefinedMetadata() as { robust: { defenseConfig: { noiseStd: number } } }).robust
        .defenseConfig.noiseStd,
    ).toBe(0.02);
  });
});

describe('the run folder', () => {
  it('a new run refuses a folder holding a run or other files; force starts over and removes the old run', async () => {
    const other = tmpDir('folder-other');
    fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
    expect(await refusal(trainModel(fresh, data, base(), other, { quiet: true }))).toMatch(
      /is not empty \(notes.txt\)/,
    );
    expect(
      await refusal(trainModel(fresh, data, base(), other, { quiet: true, resume: true })),
    ).toMatch(/holds no run to resume/);
    const out = tmpDir('folder-run');
    fs.cpSync(run, out, { recursive: true });
    const before = fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin'));
    expect(
      await refusal(trainModel(fresh, data, { ...base(), seed: 5 }, out, { quiet: true })),
    ).toMatch(/holds a training run/);
    expect(fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin')).equals(before)).toBe(true);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const c = { ...base(), seed: 5, robustEval: undefined };
    await trainModel(fresh, data, c, out, { quiet: true, force: true });
    expect(
      JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8')).config.seed,
    ).toBe(5);
    expect(fs.existsSync(path.join(out, 'best'))).toBe(false); // the old run's best epoch is gone with it
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('mine'); // files that are not the run's stay
  });
});
