/**
 * `train(options)` from code is `robust train`: the CLI only turns flags into the same options, so
 * both resolve them to the same config and metadata and train the same weights, bit for bit; a
 * run started by one resumes in the other. The rules (defaults by defense, augmentation by data
 * set) live in the library, whose errors name options, never flags.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { loadData } from '../../data/index.js';
import type { DataSplit } from '../../data/dataset.js';
import { program } from '../../cli/robust.js';
import {
  checkTrainOptions,
  TRAIN_DEFAULTS,
  TRAIN_OPTIONS,
  trainConfig,
  type TrainOptions,
} from '../../train/options.js';
import { train } from '../../train/run.js';
import { RobustError } from '../../util/errors.js';
import { robust } from '../cli/fixtures.js';
import { tmpDir } from '../helpers.js';

let sample: DataSplit;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: 1 }); // one thread, as the CLI runs below: bit-for-bit reproducible
  sample = await loadData('sample', { limit: 8, testLimit: 8 });
});

/** The flags `robust train` takes for these options: --batch-size 16, --no-augment, --quiet. */
function flags(o: TrainOptions): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    const flag = `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    if (v === true) return [flag];
    if (v === false) return [`--no-${flag.slice(2)}`];
    return [flag, Array.isArray(v) ? v.join(',') : String(v)];
  });
}

const read = (out: string, file: string) => fs.readFileSync(path.join(out, file));
const json = (out: string, file: string) => JSON.parse(read(out, file).toString('utf8'));
/** The log without its timings. */
const logOf = (out: string) =>
  (json(out, 'log.json') as Record<string, unknown>[]).map(
    ({ seconds: _s, img_per_s: _i, ...rest }) => rest,
  );

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<string> {
  const e = await (typeof p === 'function' ? Promise.resolve().then(p) : p).then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'accepted').toBeInstanceOf(RobustError);
  const message = (e as Error).message;
  expect(message.split('\n')).toHaveLength(1);
  return message;
}

describe('train() and robust train', () => {
  // FGSM-RS brings the rules that depend on the defense: one-cycle, robust eval, early stop, metadata.
  const options: TrainOptions = {
    model: 'resnet20',
    width: 4,
    data: 'sample',
    limit: 48,
    evalLimit: 24,
    batchSize: 16,
    epochs: 1,
    seed: 3,
    defense: 'fgsm-rs',
    eps: 0.1,
    robustEval: 16,
    robustEvalSteps: 2,
  };
  const invocation = { backend: 'wasm', threads: 1, quiet: true } as const;
  let root: string;

  beforeAll(() => {
    root = tmpDir('trainlib');
  });

  it('the same options give the same config, metadata, log and weights, bit for bit', async () => {
    const cli = path.join(root, 'cli');
    const r = robust(['train', ...flags({ ...options, ...invocation, out: cli })]);
    expect(r.code, r.stderr).toBe(0);
    const lib = path.join(root, 'lib');
    const live = tf.memory().numTensors;
    const run = await train({ ...options, ...invocation, out: lib }, { note: () => {} });
    expect(run.interrupted).toBe(false);
    run.model.dispose();
    expect(tf.memory().numTensors).toBe(live); // the whole run, attacks and robust eval included

    const state = json(lib, 'checkpoint/state.json');
    expect(json(cli, 'checkpoint/state.json').config).toEqual(state.config);
    expect(run.config).toEqual(state.config);
    // the rules the options resolved to
    expect(state.config).toMatchObject({
      data: 'fashion-mnist-sample',
      schedule: 'onecycle',
      augment: { cropPad: 2, flip: false },
      robustEval: { limit: 16, eps: 0.1, steps: 2 },
      earlyStop: true,
      defense: { names: ['fgsm-rs'], eps: 0.1, advRatio: 1 },
    });
    expect(state.config.options).toEqual(options);
    const meta = json(lib, 'checkpoint/model.json').userDefinedMetadata.robust;
    expect(json(cli, 'checkpoint/model.json').userDefinedMetadata.robust).toEqual(meta);
    expect(meta).toMatchObject({ model: 'resnet20', width: 4, defense: 'fgsm-rs' });
    expect(meta.classes).toEqual(sample.classes);
    expect(read(cli, 'checkpoint/model.json').equals(read(lib, 'checkpoint/model.json'))).toBe(
      true,
    );
    expect(read(cli, 'checkpoint/weights.bin').equals(read(lib, 'checkpoint/weights.bin'))).toBe(
      true,
    );
    expect(
      read(cli, 'checkpoint/optimizer.bin').equals(read(lib, 'checkpoint/optimizer.bin')),
    ).toBe(true);
    expect(read(cli, 'best/weights.bin').equals(read(lib, 'best/weights.bin'))).toBe(true);
    expect(logOf(cli)).toEqual(logOf(lib));
    expect(logOf(lib)[0].robust_acc).toBeTypeOf('number');
  }, 120_000);

  it('a run started by either resumes in the other, inheriting its options, and both end the same', async () => {
    const cli = path.join(root, 'cli');
    const lib = path.join(root, 'lib');
    // one epoch more, everything else left out: the run's own options
    const viaLib = await train(
      { out: cli, resume: true, epochs: 2, ...invocation },
      { note: () => {} },
    );
    viaLib.model.dispose();
    const r = robust(['train', '--out', lib, '--resume', '--epochs', '2', ...flags(invocation)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming with epochs 1 → 2 \(extended\)/);
    const [a, b] = [json(cli, 'checkpoint/state.json'), json(lib, 'checkpoint/state.json')];
    expect(a.config).toEqual(b.config);
    // the options given to the resume are recorded over the run's own
    expect(a.config).toMatchObject({
      epochs: 2,
      schedule: 'onecycle',
      options: { ...options, epochs: 2 },
    });
    expect(a.changes).toEqual(b.changes);
    expect(a.changes).toEqual([
      { epoch: 1, batch: 0, changes: ['epochs 1 → 2 (extended)'], override: false },
    ]);
    expect(read(cli, 'checkpoint/weights.bin').equals(read(lib, 'checkpoint/weights.bin'))).toBe(
      true,
    );
    expect(logOf(cli)).toEqual(logOf(lib));
    expect(logOf(cli)).toHaveLength(2);
    // a resume that asks for something else is refused naming the option, from code as from the CLI
    expect(
      await rejection(
        train({ out: lib, resume: true, lr: 0.5, ...invocation }, { note: () => {} }),
      ),
    ).toMatch(/holds a run made with other settings: lr 0\.1 → 0\.5 .*set override/);
  }, 120_000);

  it('a state.json whose recorded options were edited is refused naming the option', async () => {
    const out = path.join(root, 'edited');
    fs.cpSync(path.join(root, 'lib'), out, { recursive: true });
    const file = path.join(out, 'checkpoint', 'state.json');
    const state = JSON.parse(fs.readFileSync(file, 'utf8'));
    state.config.options.lr = 'fast';
    fs.writeFileSync(file, JSON.stringify(state));
    expect(await rejection(train({ out, resume: true, ...invocation }))).toBe(
      `${file}: options: lr must be a number ≥ 0, got "fast"`,
    );
  });
});

describe('the rules, in the library', () => {
  it('every flag of robust train is an option of train() and every option a flag, with the same defaults', () => {
    const cmd = program.commands.find((c) => c.name() === 'train') as Command;
    // one option may have two flags (--early-stop <rule> and --no-early-stop)
    const keys = new Set(cmd.options.map((o) => o.attributeName()));
    expect([...keys].sort()).toEqual([...TRAIN_OPTIONS].sort());
    for (const o of cmd.options) {
      const key = o.attributeName() as keyof typeof TRAIN_DEFAULTS;
      if (o.defaultValue !== undefined && !o.negate && key !== 'backend')
        expect(o.defaultValue, key).toBe(TRAIN_DEFAULTS[key]);
    }
  });

  it('defaults that depend on the defense and augmentation that depends on the data set', () => {
    const cifarLike: DataSplit = { ...sample, train: { ...sample.train, height: 32, width: 32 } };
    const plain = trainConfig({}, sample, 'wasm');
    expect(plain).toMatchObject({
      model: 'resnet20',
      epochs: 30,
      batchSize: 128,
      lr: 0.1,
      schedule: 'cosine',
      augment: { cropPad: 2, flip: false },
      earlyStop: false,
      options: {},
    });
    expect(plain.defense).toBeUndefined();
    expect(plain.robustEval).toBeUndefined();
    expect(trainConfig({}, cifarLike, 'wasm').augment).toEqual({ cropPad: 4, flip: true });
    expect(trainConfig({ augment: false }, cifarLike, 'wasm').augment).toEqual({
      cropPad: 0,
      flip: false,
    });
    const fgsm = trainConfig({ defense: ['fgsm-rs'] }, sample, 'wasm');
    expect(fgsm).toMatchObject({
      schedule: 'onecycle',
      earlyStop: true,
      robustEval: { limit: 200, eps: 8 / 255, steps: 10 },
    });
    expect(trainConfig({ defense: 'fgsm-rs', schedule: 'step' }, sample, 'wasm').schedule).toBe(
      'step',
    );
    expect(trainConfig({ defense: 'fgsm-rs', earlyStop: false }, sample, 'wasm').earlyStop).toBe(
      false,
    );
    // the early-stop rules: robust-eval is the config's true (as runs recorded it before train-batch)
    const rule = (earlyStop: TrainOptions['earlyStop']) =>
      trainConfig({ defense: 'fgsm-rs', earlyStop }, sample, 'wasm').earlyStop;
    expect([rule(true), rule('robust-eval'), rule('train-batch'), rule(false)]).toEqual([
      true,
      true,
      'train-batch',
      false,
    ]);
    // the training attack's mode: inference is recorded as absent (runs from before the setting match)
    const mode = (advMode: TrainOptions['advMode']) =>
      trainConfig({ defense: 'fgsm-rs', advMode }, sample, 'wasm').defense;
    expect(mode('train')?.advMode).toBe('train');
    expect(mode('inference')).toEqual(mode(undefined));
    expect(mode('inference')).not.toHaveProperty('advMode');
    const pgd = trainConfig({ defense: 'adv', robustEval: 0 }, sample, 'wasm');
    expect([pgd.schedule, pgd.earlyStop, pgd.robustEval, pgd.defense?.names]).toEqual([
      'cosine',
      false,
      undefined,
      ['pgd'],
    ]);
    // noise and clip are not adversarial: no robust accuracy unless asked for
    const noisy = trainConfig(
      { defense: 'noise,clip', noiseStd: 0.1, clipNorm: 1 },
      sample,
      'wasm',
    );
    expect(noisy.defense).toMatchObject({ names: ['noise', 'clip'], noiseStd: 0.1, clipNorm: 1 });
    expect(noisy.robustEval).toBeUndefined();
    // the options recorded for a resume are the run's, never this invocation's
    expect(
      trainConfig({ epochs: 2, out: 'x', resume: true, quiet: true }, sample, 'wasm').options,
    ).toEqual({
      epochs: 2,
    });
  });

  const numeric = fc.constantFrom<keyof TrainOptions>(
    'width',
    'epochs',
    'batchSize',
    'lr',
    'momentum',
    'weightDecay',
    'seed',
    'limit',
    'evalLimit',
    'checkpointEvery',
    'eps',
    'alpha',
    'advSteps',
    'advRatio',
    'beta',
    'clipNorm',
    'noiseStd',
    'noiseSamples',
    'dropout',
    'robustEval',
    'robustEvalSteps',
    'threads',
  );
  const hopeless = fc.oneof(
    fc.constantFrom<unknown>(-1, NaN, Infinity, '3', null, true, [2], {}),
    fc.double({ max: -1e-9, noNaN: true }),
  );

  it('a bad value of any option is one line naming the option (never a flag), before anything is made', async () => {
    const root = tmpDir('trainlib-bad');
    await fc.assert(
      fc.asyncProperty(numeric, hopeless, async (key, v) => {
        const out = path.join(root, 'run');
        const message = await rejection(
          train({ [key]: v, out, backend: 'wasm' } as TrainOptions, { note: () => {} }),
        );
        expect(message).toMatch(new RegExp(`^${key} must be `));
        expect(message).not.toMatch(/--/);
        expect(fs.existsSync(out)).toBe(false);
      }),
      { numRuns: 40 },
    );
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it('combinations, names and folders: one line each, naming options', async () => {
    const root = tmpDir('trainlib-combos');
    const out = path.join(root, 'run');
    const cases: [TrainOptions, RegExp][] = [
      [{ epoch: 3 } as TrainOptions, /^unknown option 'epoch' \(known: model, width, data/],
      // names every object inherits are not options either
      [{ constructor: 1 } as unknown as TrainOptions, /^unknown option 'constructor' \(known: /],
      [{ toString: 'x' } as unknown as TrainOptions, /^unknown option 'toString' \(known: /],
      [{ defense: 'clip' }, /^defense clip needs clipNorm and\/or clipValue$/],
      [{ defense: 'noise' }, /^defense noise needs noiseStd > 0$/],
      [{ defense: 'dropout' }, /^defense dropout needs dropout > 0 and\/or blockDropout > 0$/],
      [{ defense: 'clip', clipNorm: 0 }, /^clipNorm must be > 0/],
      [{ defense: 'pgd,trades' }, /choose one adversarial training method, got pgd and trades/],
      [{ defense: 'magic' }, /^unknown defense 'magic'/],
      [{ schedule: 'zigzag' as TrainOptions['schedule'] }, /^unknown schedule 'zigzag'/],
      [{ model: 'resnet7' }, /^unknown model 'resnet7'/],
      [{ override: true }, /^override only applies with resume$/],
      [{ resume: true, force: true }, /^give resume \(continue the run\) or force/],
      [{ out: '' }, /^out must name a folder/],
    ];
    for (const [o, message] of cases) {
      const m = await rejection(train({ out, backend: 'wasm', ...o }, { note: () => {} }));
      expect(m, JSON.stringify(o)).toMatch(message);
      expect(m).not.toMatch(/--/);
    }
    expect(fs.existsSync(out)).toBe(false);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    expect(await rejection(train({ out, backend: 'wasm' }, { note: () => {} }))).toMatch(
      /is not empty \(notes\.txt\) and holds no run to resume: choose another out folder, or set force/,
    );
    expect(() => checkTrainOptions({ ...TRAIN_DEFAULTS, out, resume: false })).not.toThrow();
  });
});
