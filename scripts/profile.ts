/**
 * Where a train step and an attack step (input gradient of the BN-folded model) spend their time:
 * tf.profile's per-kernel milliseconds, summed by kernel name over several calls, beside the wall
 * time of the same calls. Wall minus the kernels' sum is tfjs's engine and tape, JS glue and
 * dataSync. Run on wasm; the kernels are synchronous there, so their times are real.
 *
 * `--by-shape` keys each kernel by its input and output shapes too: which layers the time is in
 * (a conv's filter and output shapes tell its kind: Winograd takes 3x3 stride-1 convs only).
 *
 *   npm run bench:profile -- [--model resnet20] [--batch 128] [--calls 5] [--top 15] [--by-shape]
 */
import tf from '#tfjs';
import { Command } from 'commander';
import { initBackend } from '../backend/index.js';
import { createModel, ZOO } from '../models/zoo.js';
import { foldedClassifier } from '../models/fold.js';
import { Sgd } from '../train/sgd.js';
import { inputGrad, variableGrads } from '../backend/ops/gradients.js';
import { check } from '../util/errors.js';
import { optionsOrExit, positiveInt } from '../cli/options.js';

const {
  model: name,
  batch,
  calls,
  top,
  threads,
  byShape,
} = optionsOrExit('bench:profile', () => {
  const o = new Command('bench:profile')
    .description('per-kernel time of a train step and an attack step on wasm')
    .option('--model <name>', 'zoo model', 'resnet20')
    .option('--batch <n>', 'batch size', positiveInt('--batch', 4096), 128)
    .option(
      '--calls <n>',
      'profiled calls of each step (after 2 warm-ups)',
      positiveInt('--calls', 100),
      5,
    )
    .option('--top <n>', 'kernels listed per step', positiveInt('--top', 1000), 15)
    .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt('--threads'))
    .option('--by-shape', 'kernels by name and input/output shapes')
    .parse()
    .opts<{
      model: string;
      batch: number;
      calls: number;
      top: number;
      threads?: number;
      byShape?: boolean;
    }>();
  check(
    ZOO.some((e) => e.name === o.model),
    `unknown model '${o.model}' (one of: ${ZOO.map((e) => e.name).join(', ')})`,
  );
  return o;
});
const info = await initBackend({ backend: 'wasm', threads });

const model = createModel(name, {
  inputShape: [32, 32, 3],
  numClasses: 10,
  mean: [0.49, 0.48, 0.45],
  std: [0.25, 0.24, 0.26],
});
model.setUserDefinedMetadata({ robust: { model: name } });
// the folded model as attacks run it (fused conv–ReLU ops where our kernels run)
const folded = foldedClassifier(model)!;
const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
const sgd = new Sgd(model.trainableWeights, { momentum: 0.9, weightDecay: 5e-4 });
const x = tf.randomUniform([batch, 32, 32, 3], 0, 1, 'float32', 1);
const y = tf.tidy(() => tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32', 2), 10));

// The same calls as scripts/bench.ts times; the train step's forward+backward and its SGD update
// are profiled apart, so the update's share shows.
let grads: tf.NamedTensorMap = {};
const steps: [string, () => void][] = [
  [
    'train: forward + backward',
    () => {
      const r = variableGrads(
        () =>
          tf.losses.softmaxCrossEntropy(
            y,
            model.apply(x, { training: true }) as tf.Tensor,
          ) as tf.Scalar,
        vars,
      );
      r.value.dataSync();
      r.value.dispose();
      tf.dispose(Object.values(grads)); // the last call's, when the update did not take them
      grads = r.grads;
    },
  ],
  [
    'train: SGD update',
    () => {
      sgd.step(grads, 0.01);
      tf.dispose(Object.values(grads));
      vars[0].dataSync();
    },
  ],
  [
    'attack step: input gradient, BN folded',
    () =>
      tf.tidy(
        () =>
          void inputGrad((xi: tf.Tensor) =>
            tf.losses.softmaxCrossEntropy(y, folded.logits(xi as tf.Tensor4D, 'inference')),
          )(x).dataSync(),
      ),
  ],
];

console.log(`${name} b${batch}, wasm ${info.threads} threads, ${calls} profiled calls per step`);
for (const [label, fn] of steps) {
  // warm-up (the train pair runs together so grads exist for the update)
  for (let i = 0; i < 2; i++) {
    if (label.startsWith('train: SGD')) steps[0][1]();
    fn();
  }
  const byKernel = new Map<string, { ms: number; n: number }>();
  let wall = 0;
  let kernelSum = 0;
  for (let i = 0; i < calls; i++) {
    if (label.startsWith('train: SGD')) steps[0][1]();
    const t0 = performance.now();
    const p = await tf.profile(fn);
    wall += performance.now() - t0;
    for (const k of p.kernels) {
      const ms = k.kernelTimeMs as number;
      const shapes = (s: (number[] | null)[]) => s.map((d) => d?.join('×') ?? '?').join(', ');
      const key = byShape
        ? `${k.name} ${shapes(k.inputShapes)} → ${shapes(k.outputShapes)}`
        : k.name;
      const e = byKernel.get(key) ?? { ms: 0, n: 0 };
      e.ms += ms;
      e.n += 1;
      byKernel.set(key, e);
      kernelSum += ms;
    }
  }
  // the profiler itself adds per-kernel bookkeeping, so wall is an upper bound of a plain call
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
  console.log(
    `\n${label}: ${(wall / calls).toFixed(1)} ms per call (profiled), kernels ${(kernelSum / calls).toFixed(1)} ms, ${rows.reduce((s, r) => s + r[1].n, 0) / calls} kernel calls`,
  );
  for (const [k, e] of rows.slice(0, top))
    console.log(
      `  ${k.padEnd(28)} ${(e.ms / calls).toFixed(1).padStart(8)} ms ${((100 * e.ms) / kernelSum).toFixed(1).padStart(5)}%  ${String(e.n / calls).padStart(5)} calls`,
    );
}
tf.dispose([x, y, ...Object.values(grads)]);
sgd.dispose();
folded.dispose?.();
model.dispose();
console.log(`live tensors after: ${tf.memory().numTensors}`);
process.exit(0);
