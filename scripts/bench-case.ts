/**
 * One measurement of `npm run bench` (scripts/bench.ts runs it once per round, model and backend,
 * each in its own process so peak RSS is the case's own): img/s of forward (inference), input
 * gradient (inference mode) — each also with BN folded into the convs, as attacks run — and an
 * SGD train step; with --attacks, the attacks users run most through the library on the folded
 * model. Writes one JSON object to --out.
 *
 *   node dist/scripts/bench-case.js --model resnet20 --batch 128 --backend wasm --seconds 3 [--attacks] --out part.json
 */
import fs from 'node:fs';
import tf from '#tfjs';
import { Command } from 'commander';
import { BACKENDS, initBackend } from '../backend/index.js';
import { createModel, ZOO } from '../models/zoo.js';
import { Sgd } from '../train/sgd.js';
import { inputGrad, variableGrads } from '../backend/ops/gradients.js';
import { makeAttack } from '../attacks/index.js';
import { foldedClassifier } from '../models/fold.js';
import { writeFileAtomic } from '../util/atomic.js';
import { check } from '../util/errors.js';
import { number, optionsOrExit, positiveInt } from '../cli/options.js';
import { kernelsFma, wasmKernelStats, winogradTile } from '../backend/wasm/wasm-kernels.js';

const o = optionsOrExit('bench', () => {
  const o = new Command('bench-case')
    .requiredOption('--model <name>')
    .requiredOption('--batch <n>', '', positiveInt('--batch', 4096))
    .requiredOption('--backend <name>')
    .option('--seconds <x>', '', number('seconds'), 3)
    .option('--attacks')
    .requiredOption('--out <file>')
    .parse()
    .opts<{
      model: string;
      batch: number;
      backend: string;
      seconds: number;
      attacks?: boolean;
      out: string;
    }>();
  check(
    ZOO.some((e) => e.name === o.model),
    `unknown model '${o.model}'`,
  );
  check((BACKENDS as readonly string[]).includes(o.backend), `unknown backend '${o.backend}'`);
  check(
    fs.existsSync(o.out) === false || fs.statSync(o.out).isFile(),
    `--out ${o.out} is not a file`,
  );
  return o;
});
const { model: name, batch: b, seconds } = o;

/** Median seconds per call of `fn` over about `seconds` of calls (at least 3), after warm-ups. */
async function medianSeconds(fn: () => unknown, warmups = 2): Promise<number> {
  for (let i = 0; i < warmups; i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start) / 1000 < seconds) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, c) => a - c);
  return times[Math.floor(times.length / 2)];
}

/**
 * img/s of the attacks users run most, at their full settings, on images they cannot break (eps
 * 1e-6: every step and query runs, as on a robust model): PGD-20, APGD-CE with 100 steps, FAB with
 * 100 iterations, Square with 5000 queries, and AutoAttack's APGD-T and FAB-T (9 targets × 100).
 * Each is timed on a shortened run (5 steps, FAB 2, Square 50 queries; one target for the targeted
 * pair) and scaled by the iterations it stands for: an attack's iterations cost the same whatever
 * their number, its setup is counted in each share.
 */
async function attackRates(
  classifier: Parameters<typeof makeAttack>[1],
  x: tf.Tensor4D,
  y: tf.Tensor1D,
): Promise<Record<string, number>> {
  // short runs keep a round of all four within a minute or two on 2 busy cores
  const runs = [
    { label: 'pgd20', name: 'pgd', options: { steps: 5 }, full: 20 / 5 },
    { label: 'apgd_ce100', name: 'apgd-ce', options: { steps: 5 }, full: 100 / 5 },
    { label: 'fab100', name: 'fab', options: { steps: 2 }, full: 100 / 2 },
    { label: 'square5000', name: 'square', options: { steps: 50 }, full: 5000 / 50 },
    // AutoAttack's targeted pair, 9 targets × 100 steps each: one target's share, times 9
    {
      label: 'apgd_t9x100',
      name: 'apgd-t',
      options: { steps: 5, targetClasses: 1 },
      full: (9 * 100) / 5,
    },
    {
      label: 'fab_t9x100',
      name: 'fab-t',
      options: { steps: 2, targetClasses: 1 },
      full: (9 * 100) / 2,
    },
  ];
  const out: Record<string, number> = {};
  for (const r of runs) {
    const attack = makeAttack(r.name, classifier, { eps: 1e-6, ...r.options });
    const once = async () => tf.dispose(Object.values(await attack(x, y)));
    out[r.label] = +(x.shape[0] / ((await medianSeconds(once, 1)) * r.full)).toPrecision(3);
  }
  return out;
}

const info = await initBackend({ backend: o.backend });
const model = createModel(name, {
  inputShape: [32, 32, 3],
  numClasses: 10,
  mean: [0.49, 0.48, 0.45],
  std: [0.25, 0.24, 0.26],
});
model.setUserDefinedMetadata({ robust: { model: name } });
const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
const sgd = new Sgd(model.trainableWeights, { momentum: 0.9, weightDecay: 5e-4 });
const x = tf.randomUniform([b, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
const y = tf.tidy(() => tf.oneHot(tf.randomUniform([b], 0, 10, 'int32', 2), 10));
// The folded model as attacks run it: the folded classifier's inference logits (its fused
// conv–ReLU ops where our kernels run).
const folded = foldedClassifier(model)!;
const apply = (net: tf.LayersModel) => (xi: tf.Tensor) =>
  net.apply(xi, { training: false }) as tf.Tensor;
const foldedLogits = (xi: tf.Tensor) => folded.logits(xi as tf.Tensor4D, 'inference');

// Each call reads its result back (dataSync) so that the work is really done; nothing is returned
// from tidy, so every tensor of the call is freed. The whole batch runs at once (predict is given
// the batch size: by default it splits it into 32s), as the PyTorch reference does.
const forwardOf = (f: (xi: tf.Tensor) => tf.Tensor) => () => tf.tidy(() => void f(x).dataSync());
const inputGradOf = (f: (xi: tf.Tensor) => tf.Tensor) => () =>
  tf.tidy(
    () => void inputGrad((xi: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, f(xi)))(x).dataSync(),
  );
const trainStep = () => {
  const { value, grads } = variableGrads(
    () =>
      tf.losses.softmaxCrossEntropy(
        y,
        model.apply(x, { training: true }) as tf.Tensor,
      ) as tf.Scalar,
    vars,
  );
  sgd.step(grads, 0.01);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
};

const row: Record<string, unknown> = { model: name, batch: b, backend: info.name };
for (const [label, fn] of [
  ['forward', forwardOf((xi) => model.predict(xi, { batchSize: b }) as tf.Tensor)],
  ['forward_folded', forwardOf(foldedLogits)],
  ['input_grad', inputGradOf(apply(model))],
  ['input_grad_folded', inputGradOf(foldedLogits)],
  ['train', trainStep],
] as const)
  row[label] = +(b / (await medianSeconds(fn))).toFixed(1);
if (o.attacks) {
  // the model's own predictions as labels: every image starts correctly classified, as attacked ones do
  const attacked = foldedClassifier(model)!;
  const predicted = tf.tidy(
    () => attacked.logits(x, 'inference').argMax(1).cast('int32') as tf.Tensor1D,
  );
  row.attacks = await attackRates(attacked, x, predicted);
  predicted.dispose();
  attacked.dispose?.();
}
tf.dispose([x, y]);
folded.dispose?.();
sgd.dispose();
model.dispose();
const result = {
  ...row,
  threads: info.threads,
  // Whether the convs ran on our SIMD kernels (ROBUST_WASM_KERNELS=0 turns them off) — their
  // relaxed-SIMD build with FMA unless ROBUST_RELAXED_SIMD=0 or the engine lacks it — with Winograd
  // (ROBUST_WINOGRAD=0 turns it off), or on tfjs's own.
  conv_kernels:
    wasmKernelStats('conv2d').calls > 0
      ? `robust wasm ${kernelsFma() ? 'relaxed SIMD (FMA)' : 'SIMD'}${wasmKernelStats('winograd_conv').calls + wasmKernelStats('winograd4_conv').calls > 0 ? ` + Winograd F(${winogradTile()}x${winogradTile()},3x3)` : ''}`
      : info.name === 'wasm'
        ? 'XNNPACK'
        : info.name,
  // the process's own peak (a fresh process per case: the wasm heap only grows)
  peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  live_tensors_after: tf.memory().numTensors,
};
writeFileAtomic(o.out, JSON.stringify(result));
process.exit(0);
