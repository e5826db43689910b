/** The evaluation grid: worst case, resume, sanity flags, CSV schema, HTML report. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { parse } from 'csv-parse/sync';
import { initBackend } from '../../backend/index.js';
import {
  runGrid,
  worstCases,
  type CellResult,
  type EvalConfig,
  type EvalModel,
  type GridResult,
  type ModelSummary,
} from '../../eval/grid.js';
import { CSV_COLUMNS, toCsv, toHtml, writeReports } from '../../eval/report.js';
import { modelChecks } from '../../eval/sanity.js';
import { sanityFlags } from '../../eval/sanity-flags.js';
import { layersClassifier, type Classifier } from '../../models/classifier.js';
import { noisyClassifier } from '../../defenses/noise-injection.js';
import type { ImageSet } from '../../data/dataset.js';
import { checkReport, CHROMIUM } from '../../scripts/check-report.js';
import { tinyConvNet } from '../attacks/models.js';
import { missing, tmpDir, SUITE_THREADS } from '../helpers.js';

const mask = (bits: number[]) => Buffer.from(Uint8Array.from(bits)).toString('base64');
const checksOk = {
  zero_grad_share: 0,
  nonfinite_grad_share: 0,
  no_ascent_share: 0,
  outputs_look_like_probabilities: false,
  checked: 4,
};

function cell(
  model: string,
  attack: string,
  eps: number,
  robust: number[],
  o: { clean?: number; steps?: number; eot?: number } = {},
): CellResult {
  const n = robust.length;
  const acc = robust.reduce((a, b) => a + b, 0) / n;
  return {
    model,
    attack,
    eps,
    robust: mask(robust),
    settings: {
      name: attack.split(':')[0],
      norm: 'linf',
      eps,
      loss: 'ce',
      mode: 'inference',
      eotSamples: o.eot ?? 1,
      seed: 0,
      steps: o.steps,
    },
    stats: {
      n,
      clean_acc: o.clean ?? 1,
      robust_acc: acc,
      success_rate: 1 - acc,
      attacked: n,
      linf_mean: eps,
      linf_max: eps,
      l2_mean: 0,
      l2_max: 0,
      seconds: 1,
      img_per_s: n,
    },
  };
}

function grid(cells: CellResult[], models: Partial<ModelSummary>[] = [{}]): GridResult {
  const ms: ModelSummary[] = models.map((m, i) => ({
    model: `m${i}`,
    arch: 'tiny',
    params: 10,
    defense: 'none',
    randomized: false,
    fingerprint: 'f',
    data_sha256: 'd',
    n: 4,
    clean_acc: 1,
    checks: checksOk,
    ...m,
  }));
  return {
    config: {
      models: ms.map((m) => m.model),
      attacks: [...new Set(cells.map((c) => c.attack))],
      eps: [...new Set(cells.map((c) => c.eps))],
      norm: 'linf',
      limit: 4,
      batchSize: 4,
      seed: 0,
    },
    backend: 'wasm',
    date: 'now',
    models: ms,
    cells,
    worst: worstCases(ms, cells, [...new Set(cells.map((c) => c.attack))]),
  };
}

describe('worst case over attacks', () => {
  it('an example is robust only if it survives every attack at that eps', () => {
    const r = grid([
      cell('m0', 'fgsm', 0.1, [1, 1, 0, 1]),
      cell('m0', 'pgd', 0.1, [1, 0, 1, 1]),
      cell('m0', 'fgsm', 0.2, [1, 0, 0, 0]),
      cell('m0', 'pgd', 0.2, [0, 0, 0, 1]),
    ]);
    expect(r.worst.map((w) => [w.eps, w.robust_acc])).toEqual([
      [0.1, 0.5],
      [0.2, 0],
    ]);
  });
});

describe('sanity flags', () => {
  const clean = () => [
    cell('m0', 'fgsm', 0, [1, 1, 1, 1]),
    cell('m0', 'pgd', 0, [1, 1, 1, 1]),
    cell('m0', 'random-noise', 0, [1, 1, 1, 1]),
    cell('m0', 'fgsm', 0.1, [1, 1, 1, 0]),
    cell('m0', 'pgd', 0.1, [1, 1, 0, 0]),
    cell('m0', 'random-noise', 0.1, [1, 1, 1, 1]),
  ];
  it('are silent on a sound evaluation', () => {
    expect(sanityFlags(grid(clean()))).toEqual([]);
  });
  const cases: [string, () => GridResult][] = [
    [
      'eps0',
      () =>
        grid([
          ...clean().filter((c) => !(c.attack === 'pgd' && c.eps === 0)),
          cell('m0', 'pgd', 0, [1, 1, 1, 0]),
        ]),
    ],
    [
      'monotone-eps',
      () =>
        grid(
          [
            ...clean(),
            cell(
              'm0',
              'pgd',
              0.2,
              [1, 1, 1, 1].map((v, i) => (i < 4 ? v : 0)),
            ),
          ]
            .filter((c) => !(c.attack === 'pgd' && c.eps === 0.1))
            .concat([cell('m0', 'pgd', 0.1, [1, 0, 0, 0])]),
        ),
    ],
    [
      'monotone-steps',
      () =>
        grid(
          [
            ...clean(),
            cell('m0', 'pgd:50', 0.1, [1, 1, 1, 1], { steps: 50 }),
            cell('m0', 'pgd:50', 0, [1, 1, 1, 1], { steps: 50 }),
          ].map((c) => (c.attack === 'pgd' ? { ...c, settings: { ...c.settings, steps: 10 } } : c)),
        ),
    ],
    [
      'weaker-than-fgsm',
      () =>
        grid([
          ...clean().filter((c) => c.eps === 0 || c.attack === 'random-noise'),
          cell('m0', 'fgsm', 0.1, [1, 0, 0, 0]),
          cell('m0', 'pgd', 0.1, [1, 1, 1, 1]),
        ]),
    ],
    [
      'black-box-stronger',
      () =>
        grid([
          ...clean().filter((c) => !(c.attack === 'random-noise' && c.eps === 0.1)),
          cell('m0', 'random-noise', 0.1, [0, 0, 0, 0]),
        ]),
    ],
    ['zero-gradients', () => grid(clean(), [{ checks: { ...checksOk, zero_grad_share: 0.5 } }])],
    [
      'nonfinite-gradients',
      () => grid(clean(), [{ checks: { ...checksOk, nonfinite_grad_share: 0.25 } }]),
    ],
    ['no-ascent', () => grid(clean(), [{ checks: { ...checksOk, no_ascent_share: 0.25 } }])],
    [
      'probabilities',
      () => grid(clean(), [{ checks: { ...checksOk, outputs_look_like_probabilities: true } }]),
    ],
    ['no-eot', () => grid(clean(), [{ randomized: true }])],
    [
      'black-box-stronger',
      () =>
        grid([
          ...clean(),
          cell('m0', 'square', 0, [1, 1, 1, 1]),
          cell('m0', 'square', 0.1, [0, 0, 0, 0]),
        ]),
    ],
    ['randomized', () => grid(clean(), [{ checks: { ...checksOk, outputs_vary: true } }])],
    [
      'too-many-targets',
      () =>
        grid(
          [...clean(), cell('m0', 'apgd-t', 0.1, [1, 1, 0, 0])].map((c) =>
            c.attack === 'apgd-t' ? { ...c, settings: { ...c.settings, targetClasses: 9 } } : c,
          ),
          [{ checks: { ...checksOk, classes: 5 } }],
        ),
    ],
    [
      'no-perturbation',
      () =>
        grid(
          clean().map((c) =>
            c.attack === 'pgd' && c.eps > 0
              ? { ...c, stats: { ...c.stats, linf_max: 0, l2_max: 0, linf_mean: 0, l2_mean: 0 } }
              : c,
          ),
        ),
    ],
  ];
  for (const [check, make] of cases) {
    it(`'${check}' fires on its constructed case`, () => {
      const flags = sanityFlags(make());
      expect(flags.map((f) => f.check)).toContain(check);
    });
  }
  it('EOT silences no-eot', () => {
    const cells = clean().map((c) => ({ ...c, settings: { ...c.settings, eotSamples: 8 } }));
    expect(sanityFlags(grid(cells, [{ randomized: true }]))).toEqual([]);
  });
});

describe('model checks on real models', () => {
  const set: ImageSet = {
    images: new Uint8Array(4 * 8 * 8 * 3).map((_, i) => (i * 37) % 256),
    labels: Uint8Array.from([0, 1, 2, 3]),
    count: 4,
    height: 8,
    width: 8,
    channels: 3,
  };
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  });
  it('a plain model passes; a softmax output, a constant model, a NaN-gradient and a reversed-gradient model are caught', () => {
    const model = tinyConvNet(1);
    expect(modelChecks(layersClassifier(model), set)).toMatchObject({
      zero_grad_share: 0,
      nonfinite_grad_share: 0,
      no_ascent_share: 0,
      outputs_look_like_probabilities: false,
    });
    // Same logits, gradient pointing downhill: neither zero nor NaN, so only the ascent check sees it.
    const reverse = tf.customGrad((x) => ({
      value: (x as tf.Tensor).clone(),
      gradFunc: (dy: tf.Tensor) => dy.neg(),
    }));
    const reversed: Classifier = {
      ...layersClassifier(model),
      logits: (x, m) => layersClassifier(model).logits(reverse(x) as tf.Tensor4D, m),
    };
    expect(modelChecks(reversed, set)).toMatchObject({
      zero_grad_share: 0,
      nonfinite_grad_share: 0,
      no_ascent_share: 1,
    });
    const softmax: Classifier = {
      ...layersClassifier(model),
      logits: (x, m) => tf.softmax(layersClassifier(model).logits(x, m)),
    };
    expect(modelChecks(softmax, set).outputs_look_like_probabilities).toBe(true);
    const constant: Classifier = {
      ...layersClassifier(model),
      logits: (x) => x.mul(0).sum([1, 2]).slice([0, 0], [-1, 1]).tile([1, 5]) as tf.Tensor2D,
    };
    expect(modelChecks(constant, set).zero_grad_share).toBe(1);
    const nan: Classifier = {
      ...layersClassifier(model),
      logits: (x) => x.sub(x).sqrt().sum([1, 2]).slice([0, 0], [-1, 1]).tile([1, 5]) as tf.Tensor2D,
    };
    expect(modelChecks(nan, set).nonfinite_grad_share).toBe(1);
    model.dispose();
  });
});

describe('running a grid', () => {
  const set: ImageSet = (() => {
    const n = 24;
    const images = new Uint8Array(n * 8 * 8 * 3);
    for (let i = 0; i < images.length; i++) images[i] = (i * 7919) % 251;
    return {
      images,
      labels: Uint8Array.from({ length: n }, (_, i) => i % 5),
      count: n,
      height: 8,
      width: 8,
      channels: 3,
    };
  })();
  const config: EvalConfig = {
    models: ['a', 'b'],
    attacks: ['fgsm', 'pgd:5'],
    eps: [0, 0.02],
    norm: 'linf',
    limit: 24,
    batchSize: 8,
    seed: 0,
  };
  let models: EvalModel[];
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
    // label the images with model a's own predictions so both models have examples to attack
    const a = tinyConvNet(2);
    const b = tinyConvNet(3);
    const preds = tf.tidy(() =>
      (
        a.predict(
          tf.tensor4d(
            Float32Array.from(set.images, (v) => v / 255),
            [24, 8, 8, 3],
          ),
        ) as tf.Tensor
      )
        .argMax(1)
        .dataSync(),
    );
    set.labels.set(Uint8Array.from(preds));
    models = [
      {
        path: 'a',
        name: 'a',
        model: a,
        classifier: layersClassifier(a),
        defense: 'none',
        test: set,
        fingerprint: 'a1',
      },
      {
        path: 'b',
        name: 'b',
        model: b,
        classifier: noisyClassifier(b, { std: 0.05, seed: 1 }),
        defense: 'noise',
        test: set,
        fingerprint: 'b1',
      },
    ];
  });

  it('stops between cells and resumes without redoing finished cells, ending with the same results', async () => {
    const full = await runGrid(config, models, {
      out: tmpDir('grid-full'),
      backend: 'wasm',
      quiet: true,
    });
    expect(full.complete).toBe(true);
    expect(full.result.cells).toHaveLength(8);
    const out = tmpDir('grid-resume');
    let computed = 0;
    const first = await runGrid(config, models, {
      out,
      backend: 'wasm',
      quiet: true,
      shouldStop: () => computed >= 3,
      onCell: (_, reused) => void (reused || computed++),
    });
    expect(first.complete).toBe(false);
    expect(fs.readdirSync(path.join(out, 'cells'))).toHaveLength(3);
    let reused = 0;
    const second = await runGrid(config, models, {
      out,
      backend: 'wasm',
      quiet: true,
      onCell: (_, r) => void (r && reused++),
    });
    expect(second.complete).toBe(true);
    expect(reused).toBe(3);
    // the deterministic model's cells are identical; the noisy model's draw fresh noise
    const strip = (r: GridResult) =>
      r.cells.map((c) => [c.model, c.attack, c.eps, c.model === 'a' ? c.robust : '']);
    expect(strip(second.result)).toEqual(strip(full.result));
    expect(second.result.worst.filter((w) => w.model === 'a')).toEqual(
      full.result.worst.filter((w) => w.model === 'a'),
    );
    // a randomized model attacked without EOT is flagged, the plain one is not
    const flags = sanityFlags(full.result);
    expect(flags.filter((f) => f.check === 'no-eot').every((f) => f.model === 'b')).toBe(true);
    expect(flags.some((f) => f.check === 'no-eot')).toBe(true);
  });

  it('leaves no tensors behind: the live tensor count does not grow from grid to grid', async () => {
    await runGrid(config, models, { out: tmpDir('grid-memory'), backend: 'wasm', quiet: true }); // warm-up: one-time constants
    const before = tf.memory().numTensors;
    await runGrid(config, models, { out: tmpDir('grid-memory'), backend: 'wasm', quiet: true });
    const after = tf.memory().numTensors;
    await runGrid({ ...config, eps: [0, 0.02, 0.04] }, models, {
      out: tmpDir('grid-memory'),
      backend: 'wasm',
      quiet: true,
    });
    expect(after).toBe(before);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('writes results.csv with the documented columns, one row per model × attack × eps plus worst cases', async () => {
    const out = tmpDir('grid-csv');
    const { result } = await runGrid(config, models, { out, backend: 'wasm', quiet: true });
    await writeReports(out, result);
    const rows = parse(fs.readFileSync(path.join(out, 'results.csv'), 'utf8'), {
      columns: true,
    }) as Record<string, string>[];
    expect(Object.keys(rows[0])).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(2 * 2 * 2 + 2 * 2);
    const pgd = rows.find(
      (r) => r.model === 'a' && r.attack === 'pgd:5' && Number(r.eps) === 0.02,
    )!;
    expect(pgd).toMatchObject({
      norm: 'linf',
      steps: '5',
      seed: '0',
      n: '24',
      backend: 'wasm',
      defense: 'none',
    });
    expect(Number(pgd.robust_acc)).toBeLessThanOrEqual(Number(pgd.clean_acc));
    expect(toCsv(result)).toBe(fs.readFileSync(path.join(out, 'results.csv'), 'utf8'));
    for (const f of ['results.json', 'results.md', 'report.html'])
      expect(fs.existsSync(path.join(out, f))).toBe(true);
  });

  it.skipIf(missing(fs.existsSync(CHROMIUM)))(
    'the HTML report opens in headless Chromium without errors and shows its plots and gallery',
    async () => {
      const out = tmpDir('grid-html');
      const { result } = await runGrid(config, models, { out, backend: 'wasm', quiet: true });
      fs.writeFileSync(path.join(out, 'report.html'), await toHtml(result));
      const r = await checkReport(path.join(out, 'report.html'));
      expect(r.errors).toEqual([]);
      expect(r.svgs).toBe(3); // two models' eps plots + the trade-off plot
      expect(r.images).toBe(2);
      expect(r.brokenImages).toBe(0);
      expect(fs.statSync(r.screenshot).size).toBeGreaterThan(10_000);
    },
  );
});
