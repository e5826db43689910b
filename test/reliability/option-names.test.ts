/**
 * Library errors name options as the library's callers spell them (`clipNorm`), never CLI flags;
 * the CLI words the same errors with its flags (`--clip-norm`). And the refusals of the last
 * hostile review: settings of a defense that is not enabled, an output whose width is not the
 * data's classes, derived settings in a resume's differences, NaN shown as null, a huge eps.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { cliMessage } from '../../cli/flags.js';
import { parseDataSpec, loadData } from '../../data/index.js';
import { defenseConfig, parseDefenses } from '../../defenses/defense.js';
import { parseTargetSpec } from '../../attacks/targets.js';
import { pgd } from '../../attacks/pgd.js';
import { parseEvalConfig } from '../../eval/config.js';
import { parseShard } from '../../eval/shard-plan.js';
import { loadDataForModel } from '../../eval/model-data.js';
import { withPredictedLabels } from '../../eval/accuracy.js';
import { attackOutputs, checkOutputs } from '../../eval/output-files.js';
import { mergeShards } from '../../eval/merge.js';
import { loadAnyModel } from '../../models/any-model.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import type { Classifier } from '../../models/classifier.js';
import { checkPreprocess, parseInputRange, parseStd } from '../../models/preprocess.js';
import { reconcileResume } from '../../train/run-config.js';
import { checkRunFolder } from '../../train/run-folder.js';
import { train } from '../../train/run.js';
import type { TrainOptions } from '../../train/options.js';
import type { TrainConfig } from '../../train/trainer.js';
import { outputFolder } from '../../util/dirs.js';
import { RobustError } from '../../util/errors.js';
import { number } from '../../util/numbers.js';
import { ROOT, tmpDir } from '../helpers.js';

/** The RobustError `f` throws (sync or async). */
async function thrown(f: () => unknown): Promise<RobustError> {
  let e: unknown;
  try {
    await f();
  } catch (err) {
    e = err;
  }
  expect(e, 'no error').toBeInstanceOf(RobustError);
  return e as RobustError;
}

const NO_FLAG = /(^|[\s('`"])--[a-z]/;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('library errors name options; the CLI says flags', () => {
  const dir = tmpDir('option-names');
  const folder = path.join(dir, 'a-folder');
  fs.mkdirSync(folder);
  // [library call, its message, the CLI's wording of it]
  const cases: [string, () => unknown, RegExp, RegExp][] = [
    ['data spec', () => parseDataSpec('npz:'), /^data npz:: give a path/, /^--data npz:/],
    ['shard', () => parseShard('3/x'), /^shard must be i\/n/, /^--shard must be i\/n/],
    ['shard index', () => parseShard('3/2'), /^shard 3\/2: the shard index/, /^--shard 3\/2:/],
    [
      'shard auto',
      () => parseShard('auto', {}),
      /: pass shard i\/n$/,
      /^--shard auto: .*: pass --shard i\/n$/,
    ],
    ['targeted', () => parseTargetSpec('0x1'), /^targeted must be/, /^--targeted must be/],
    ['inputRange', () => parseInputRange('1,0'), /^inputRange must/, /^--input-range must/],
    ['std', () => parseStd('0'), /^std values must/, /^--std values must/],
    ['number', () => number('weightDecay')('x'), /^weightDecay must/, /^--weight-decay must/],
    [
      'eval models',
      () => parseEvalConfig({}),
      /: models ckpt\/a,ckpt\/b/,
      /: --models ckpt\/a,ckpt\/b/,
    ],
    [
      'eval preset',
      () => parseEvalConfig({ models: 'm', preset: 'autoattack', eotSamples: 2 }),
      /leave out eotSamples \(or give attacks with cascade\)$/,
      /leave out --eot-samples \(or give --attacks with --cascade\)$/,
    ],
    [
      'eval norm',
      () => parseEvalConfig({ models: 'm', norm: 'l3' }),
      /^norm must be one of/,
      /^--norm must/,
    ],
    [
      'eval eps',
      () => parseEvalConfig({ models: 'm', eps: '0,300' }),
      /^eps must be in \[0,1\] for the Linf norm .*got 300$/,
      /^--eps must be in \[0,1\]/,
    ],
    [
      'defense',
      () => defenseConfig(['clip']),
      /^defense clip needs clipNorm and\/or clipValue$/,
      /^--defense clip needs --clip-norm and\/or --clip-value$/,
    ],
    [
      'unused defense setting',
      () => defenseConfig(['pgd'], { noiseStd: 0.1 }),
      /^noiseStd is set but applies only with defense noise \(defense is pgd\)/,
      /^--noise-std is set but applies only with --defense noise \(--defense is pgd\)/,
    ],
    [
      'empty defense entry',
      () => parseDefenses('pgd,'),
      /^defense 'pgd,' has an empty entry/,
      /^--defense 'pgd,' has/,
    ],
    ['out', () => outputFolder('out', ''), /^out must name a folder/, /^--out must name/],
    [
      'run folder',
      () => checkRunFolder(dir, { resume: true, force: true }),
      /^give resume \(continue the run\) or force/,
      /^give --resume .* or --force/,
    ],
    [
      'output file',
      () => checkOutputs(attackOutputs(folder, undefined, 3).files, []),
      /^save .*a-folder is a folder/,
      /^--save .*a-folder is a folder/,
    ],
    [
      'predicted labels',
      () => withPredictedLabels({ numClasses: 300 } as Classifier, {} as never),
      /^labels predicted: the model has 300 classes/,
      /^--labels predicted:/,
    ],
    [
      'merge',
      () => mergeShards([dir]),
      /run the grid with shard i\/n and out <out>\)$/,
      /run the grid with --shard i\/n and --out <out>\)$/,
    ],
    [
      'built-in data not fetched',
      () => loadData('cifar10', { dataDir: dir }),
      /fetch it first with prepareData\('cifar10'\) \(from: a local copy\)$/,
      /fetch it first with `robust data cifar10` \(--from FILE: from a local copy\)$/,
    ],
  ];
  for (const [what, call, library, cli] of cases)
    it(`${what}: the library names the option, the CLI its flag`, async () => {
      const e = await thrown(call);
      expect(e.message).toMatch(library);
      expect(e.message).not.toMatch(NO_FLAG);
      expect(e.message.split('\n')).toHaveLength(1);
      expect(cliMessage(e)).toMatch(cli);
    });

  it('no eval config or defense settings, however wrong, give a flag from the library', async () => {
    const value = fc.oneof(
      fc.constantFrom<unknown>(NaN, -1, 300, '', ',', '0x10', 'l3', 'autoattack', [1, 'a'], {}),
      fc.string({ maxLength: 6 }),
      fc.double(),
    );
    const keys = ['models', 'attacks', 'preset', 'cascade', 'eps', 'norm', 'steps', 'limit'];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), value), (o) => {
        try {
          parseEvalConfig(o);
        } catch (e) {
          expect(e).toBeInstanceOf(RobustError);
          expect((e as Error).message).not.toMatch(NO_FLAG);
        }
      }),
      { numRuns: 300 },
    );
    const names = fc.subarray(['fgsm-rs', 'noise', 'clip', 'dropout'] as const);
    const settings = fc.record(
      {
        eps: fc.double(),
        alpha: fc.double(),
        steps: fc.integer({ min: -2, max: 5 }),
        beta: fc.double(),
        clipNorm: fc.double(),
        noiseStd: fc.double(),
        dropout: fc.double(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(names, settings, (n, o) => {
        try {
          defenseConfig([...n], o);
        } catch (e) {
          expect(e).toBeInstanceOf(RobustError);
          expect((e as Error).message).not.toMatch(NO_FLAG);
          expect(cliMessage(e as RobustError)).not.toMatch(/(^|\s)(clipNorm|noiseStd)\b/);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('hostile review: settings that would be ignored, widths, resume differences, NaN, huge eps', () => {
  const root = tmpDir('hostile2');
  const out = path.join(root, 'run');
  const refusal = async (o: TrainOptions) =>
    (await thrown(() => train({ out, backend: 'wasm', ...o }, { note: () => {} }))).message;

  it('train() refuses a setting of a defense that is not enabled, naming it, before anything is made', async () => {
    const cases: [TrainOptions, RegExp][] = [
      [{ clipNorm: 1 }, /^clipNorm is set but applies only with defense clip \(defense is none\)/],
      [{ defense: 'pgd', noiseStd: 0.1 }, /^noiseStd is set but applies only with defense noise/],
      [
        { defense: 'noise', noiseStd: 0.1, alpha: 0.01 },
        /^alpha is set but applies only with defense fgsm-rs or pgd or trades \(defense is noise\)/,
      ],
      [{ beta: 3 }, /^beta is set but applies only with defense trades/],
      [
        { defense: 'fgsm-rs', advSteps: 3 },
        /^advSteps is set but applies only with defense pgd or trades \(defense is fgsm-rs\)/,
      ],
      [
        { defense: 'trades', advRatio: 0.5 },
        /^advRatio is set but applies only with defense fgsm-rs or pgd/,
      ],
      [
        { defense: 'clip', clipNorm: 1, dropout: 0.2 },
        /^dropout is set but applies only with defense dropout/,
      ],
      [{ eps: 0.1 }, /^eps is set but applies only with defense fgsm-rs or pgd or trades/],
      [{ defense: ['pgd', ''] }, /^defense 'pgd,' has an empty entry: name each defense/],
      [{ defense: 'pgd,,clip' }, /^defense 'pgd,,clip' has an empty entry/],
      [
        { defense: 'fgsm-rs', eps: 0 },
        /^eps must be > 0 with defense fgsm-rs \(eps 0 trains on clean images\), got 0$/,
      ],
      [
        { defense: 'pgd', eps: 300 },
        /^eps must be in \[0,1\] \(pixels are in \[0,1\]; 8\/255 is 8 grey levels\), got 300$/,
      ],
      [{ robustEvalSteps: 3 }, /^robustEvalSteps is set but no robust evaluation runs/],
      [{ defense: 'pgd', robustEval: 0, robustEvalSteps: 3 }, /^robustEvalSteps is set but/],
      [{ defense: 'pgd', earlyStop: false }, /^earlyStop applies only with defense fgsm-rs$/],
      [
        { defense: 'trades', advMode: 'train' },
        /^advMode is set but applies only with defense fgsm-rs or pgd \(defense is trades\)/,
      ],
      [{ decay: 'bn' as 'all' }, /^decay must be kernels or all, got "bn"$/],
      [
        { defense: 'pgd', advMode: 'eval' as 'train' },
        /^advMode must be inference or train, got "eval"$/,
      ],
      [
        { defense: 'fgsm-rs', earlyStop: 'wong' as 'train-batch' },
        /^earlyStop must be robust-eval or train-batch \(true: robust-eval; false: off\), got "wong"$/,
      ],
      [
        { defense: 'fgsm-rs', earlyStop: 'robust-eval', robustEval: 0 },
        /^earlyStop robust-eval watches the robust evaluation, but robustEval is 0/,
      ],
      [{ eps: NaN }, /^eps must be a number ≥ 0, got NaN$/],
    ];
    for (const [o, message] of cases) expect(await refusal(o), JSON.stringify(o)).toMatch(message);
    expect(fs.existsSync(out)).toBe(false);
    // what each of those needs is fine: the defense it belongs to, or a robust evaluation for eps
    expect(() => defenseConfig(['clip'], { clipNorm: 1 })).not.toThrow();
    expect(() => defenseConfig([], { eps: 0.1 }, ['eps'])).not.toThrow();
    expect(defenseConfig(parseDefenses('adv'), { eps: 0.1, steps: 3 }).steps).toBe(3);
  });

  it('robust train says the same with flags', () => {
    const cases: [string[], RegExp][] = [
      [
        ['--clip-norm', '1'],
        /^robust: --clip-norm is set but applies only with --defense clip \(--defense is none\)/,
      ],
      [['--defense', 'pgd,'], /^robust: --defense 'pgd,' has an empty entry/],
      [['--defense', 'fgsm-rs', '--eps', '0'], /^robust: --eps must be > 0 with --defense fgsm-rs/],
      [['--defense', 'fgsm-rs', '--eps', '300'], /^robust: --eps must be in \[0,1\]/],
      [
        ['--adv-steps', '3'],
        /^robust: --adv-steps is set but applies only with --defense pgd or trades/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(
        process.execPath,
        [path.join(ROOT, 'bin', 'robust.js'), 'train', ...args, '--out', out],
        { encoding: 'utf8' },
      );
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(fs.existsSync(out)).toBe(false);
  });

  it('an attack refuses a Linf eps beyond 1, blaming eps', () => {
    const m = tf.sequential({
      layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 3 })],
    });
    expect(() => pgd(m, { eps: 300 })).toThrow(/^eps must be in \[0,1\] for the Linf norm/);
    expect(() => pgd(m, { eps: 3, norm: 'l2' })).not.toThrow();
    m.dispose();
  });

  it('a resume lists what the user set differently, not the settings that follow it', () => {
    const base = {
      model: 'resnet20',
      width: 4,
      data: 'fashion-mnist-sample',
      epochs: 1,
      batchSize: 32,
      lr: 0.05,
      momentum: 0.9,
      weightDecay: 5e-4,
      schedule: 'cosine',
      augment: { cropPad: 2, flip: false },
      seed: 0,
      limit: 64,
      checkpointEvery: 50,
      backend: 'wasm',
      earlyStop: false,
      dataHash: 'a'.repeat(64),
      options: { limit: 64, lr: 0.05 },
    } as TrainConfig;
    const at = { epoch: 1, batch: 0 };
    const moreImages = {
      ...base,
      limit: 128,
      dataHash: 'b'.repeat(64),
      options: { limit: 128, lr: 0.01 },
      lr: 0.01,
    };
    const message = (c: TrainConfig) => {
      try {
        reconcileResume(base, c, at, { out: 'run' });
      } catch (e) {
        return (e as Error).message;
      }
      return 'resumed';
    };
    expect(message(moreImages)).toMatch(
      /^run holds a run made with other settings: limit 64 → 128, lr 0\.05 → 0\.01 \(/,
    );
    // evalLimit set too: then it is listed
    expect(
      message({ ...moreImages, evalLimit: 32, options: { ...moreImages.options, evalLimit: 32 } }),
    ).toMatch(/: limit 64 → 128, evalLimit 64 → 32, lr/);
    // the same images under another data folder: the change is the user's, and named
    expect(message({ ...base, dataHash: 'c'.repeat(64) })).toMatch(
      /: dataDir \(the images\) a+ → c+ \(/,
    );
    // a defense added brings its settings along: only the defense is news
    const pgdRun = {
      ...base,
      defense: defenseConfig(['pgd']),
      robustEval: { limit: 200, eps: 8 / 255, steps: 10 },
      options: { ...base.options, defense: 'pgd' },
    };
    expect(message(pgdRun as TrainConfig)).toMatch(/other settings: defense none → pgd \(/);
  });

  it('NaN is shown as NaN, not null', () => {
    expect(() => checkPreprocess({ range: [NaN, 1] }, 3, 'm')).toThrow(/got \[NaN,1\]$/);
    expect(() => checkPreprocess({ range: [0, 1], std: [NaN] }, 3, 'm')).toThrow(/got \[NaN\]$/);
    expect(() => parseEvalConfig({ models: 'm', steps: NaN })).toThrow(/got NaN$/);
  });
});

describe("a model whose outputs are not the data set's classes", () => {
  /** Dense layers d0, d1, … on 28×28 gray images; the last one `last` (its logits are named). */
  async function savedNet(
    units: number[],
    last: 'softmax' | 'linear' = 'softmax',
  ): Promise<string> {
    const input = tf.input({ shape: [28, 28, 1] });
    let h: tf.SymbolicTensor = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
    units.forEach((u, i) => {
      h = tf.layers
        .dense({ units: u, name: `d${i}`, activation: i === units.length - 1 ? last : 'relu' })
        .apply(h) as tf.SymbolicTensor;
    });
    const net = tf.model({ inputs: input, outputs: h });
    const dir = path.join(tmpDir('width'), 'model');
    await saveCheckpoint(dir, net);
    net.dispose();
    return dir;
  }

  it('an output named with output whose width is not the classes is refused, naming both numbers', async () => {
    const dir = await savedNet([16, 10], 'linear');
    const hidden = await loadAnyModel(dir, { output: 'd0', note: () => {} });
    const e = await thrown(() =>
      loadDataForModel(hidden, { data: 'sample', limit: 8, note: () => {} }),
    );
    expect(e.message).toMatch(
      /: the output named gives 16 values per image but fashion-mnist-sample has 10 classes: name the layer of the class scores$/,
    );
    expect(cliMessage(e)).toMatch(/the --output named gives 16 values/);
    hidden.dispose();
    // the right layer is accepted
    const logits = await loadAnyModel(dir, { output: 'd1', note: () => {} });
    expect(
      (await loadDataForModel(logits, { data: 'sample', limit: 8, note: () => {} })).classes,
    ).toHaveLength(10);
    logits.dispose();
  });

  it('a model with more outputs than the named classes (1000 on a 10-class set) is refused the same way', async () => {
    const m = await loadAnyModel(await savedNet([1000]), { note: () => {} });
    const e = await thrown(() => loadDataForModel(m, { data: 'sample', limit: 8, note: () => {} }));
    expect(e.message).toMatch(
      /: the model has 1000 outputs but fashion-mnist-sample has 10 classes$/,
    );
    m.dispose();
  });
});
