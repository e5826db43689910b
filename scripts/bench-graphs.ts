/**
 * Graph models on wasm: img/s of one input gradient (an attack step: the cross-entropy of the
 * logits node, differentiated through model.execute as attacks do) and of the forward pass, for the
 * three graph-model test fixtures (MobileNet-V2, ResNet and EfficientNet styles, 32×32 inputs),
 * with the kernels that take the time; then (--kernels) the kernels robust supplies for them, ms on
 * wasm (ours and, where there is one, tfjs's) and on the cpu backend.
 *
 *   npm run bench:graphs -- [--batch 32] [--runs 15] [--kernels] [--backend wasm|cpu]
 *
 * --mobilenet-v1 instead times whole PGD attacks on MobileNet v1 1.0 at 224×224×3 (4.2 M weights,
 * 1000 classes): the GraphModel loaded by loadAnyModel, attacked by `pgd` as `robust attack` does.
 *
 *   npm run bench:graphs -- --mobilenet-v1 [--batch 8] [--steps 10] [--runs 1] [--backend wasm|cpu]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tf from '#tfjs';
import { Command } from 'commander';
import { initBackend } from '../backend/index.js';
import { inputGrad } from '../backend/ops/gradients.js';
import { useWasmKernels } from '../backend/wasm/wasm-kernels.js';
import { optionsOrExit, positiveInt } from '../cli/options.js';
import { check } from '../util/errors.js';
import { loadAnyModel } from '../models/any-model.js';
import { pgd } from '../attacks/pgd.js';
import {
  GRAPH_FIXTURES,
  loadGraphFolder,
  mobilenetV1Graph,
} from '../test/fixtures/graph-models.js';

const opts = optionsOrExit('bench:graphs', () => {
  const o = new Command('bench:graphs')
    .description('graph-model input gradients on wasm, and the kernels robust supplies for them')
    .option('--batch <n>', 'batch size', positiveInt('--batch'), 32)
    .option(
      '--runs <n>',
      'timed passes per measurement (the median is shown)',
      positiveInt('--runs'),
      15,
    )
    .option('--backend <name>', 'wasm or cpu', 'wasm')
    .option('--kernels', 'also time the individual kernels against the cpu backend')
    .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt('--threads'))
    .option('--size <n>', 'image height and width', positiveInt('--size', 512), 32)
    .option('--mobilenet-v1', 'time PGD on MobileNet v1 1.0 at 224×224 instead (only that)')
    .option('--steps <n>', 'PGD steps with --mobilenet-v1', positiveInt('--steps', 1000), 10)
    .parse()
    .opts<{
      batch: number;
      runs: number;
      backend: string;
      kernels?: boolean;
      threads?: number;
      size: number;
      mobilenetV1?: boolean;
      steps: number;
    }>();
  check(
    o.backend === 'wasm' || o.backend === 'cpu',
    `--backend must be wasm or cpu, got '${o.backend}'`,
  );
  return o;
});
const info = await initBackend({ backend: opts.backend, threads: opts.threads });
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];

/** Median ms of `runs` calls of `fn` after two warm-up calls. */
function time(fn: () => void, runs = opts.runs): number {
  for (let i = 0; i < 2; i++) tf.tidy(fn);
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    tf.tidy(fn);
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** img/s of `runs` PGD attacks on MobileNet v1 224 through loadAnyModel (after one warm-up step). */
async function benchMobilenetV1(dir: string): Promise<void> {
  const fx = mobilenetV1Graph(path.join(dir, 'mobilenet-v1'));
  const m = await loadAnyModel(fx.dir, { note: () => {} });
  const x = tf.randomUniform([opts.batch, ...fx.imageShape], 0, 1, 'float32', 5) as tf.Tensor4D;
  const y = tf.randomUniform([opts.batch], 0, fx.classes, 'int32', 6) as tf.Tensor1D;
  try {
    const attack = (steps: number) => pgd(m.classifier, { eps: 8 / 255, steps });
    tf.dispose(Object.values(await attack(1)(x, y))); // warm-up: kernels, XNNPACK operators
    const ts: number[] = [];
    for (let i = 0; i < opts.runs; i++) {
      const t0 = performance.now();
      tf.dispose(Object.values(await attack(opts.steps)(x, y)));
      ts.push(performance.now() - t0);
    }
    const s = median(ts) / 1000;
    console.log(
      '| model | backend | batch | PGD steps | s per attack | attack img/s | gradient steps/s·img |',
    );
    console.log('|---|---|---|---|---|---|---|');
    console.log(
      `| MobileNet v1 1.0 224 (${fx.classes} classes) | ${info.name} (${info.threads} threads) | ${opts.batch} | ${opts.steps} | ${s.toFixed(1)} | ${(opts.batch / s).toPrecision(3)} | ${((opts.batch * opts.steps) / s).toPrecision(3)} |`,
    );
  } finally {
    tf.dispose([x, y]);
    m.dispose();
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'robust-bench-graphs-'));
if (opts.mobilenetV1) {
  try {
    await benchMobilenetV1(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
try {
  console.log(
    `backend ${info.name}, ${info.threads} threads, batch ${opts.batch}, ${opts.size}×${opts.size}×3`,
  );
  console.log(
    '| graph | input gradient img/s | forward img/s | largest kernels of a gradient pass (ms) |',
  );
  console.log('|---|---|---|---|');
  for (const [name, make] of Object.entries(GRAPH_FIXTURES)) {
    const fx = make(path.join(dir, name), { size: opts.size });
    const model = await loadGraphFolder(fx.dir);
    const x = tf.randomUniform([opts.batch, ...fx.imageShape], 0, 1, 'float32', 5);
    const y = tf.oneHot(tf.randomUniform([opts.batch], 0, fx.classes, 'int32', 6), fx.classes);
    const grad = inputGrad((t: tf.Tensor) =>
      tf.losses.softmaxCrossEntropy(y, model.execute(t, fx.logitsNode) as tf.Tensor),
    );
    try {
      const g = time(() => void grad(x).dataSync());
      const f = time(() => void (model.execute(x, fx.logitsNode) as tf.Tensor).dataSync());
      const profile = await tf.profile(() => tf.tidy(() => void grad(x).dataSync()));
      const byKernel = new Map<string, number>();
      for (const k of profile.kernels)
        if (!k.name.endsWith('__op'))
          byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      const top = [...byKernel]
        .sort((p, q) => q[1] - p[1])
        .slice(0, 6)
        .map(([k, ms]) => `${k} ${ms.toFixed(1)}`);
      console.log(
        `| ${name} | ${((opts.batch / g) * 1000).toFixed(0)} | ${((opts.batch / f) * 1000).toFixed(0)} | ${top.join(', ')} |`,
      );
    } catch (e) {
      console.log(`| ${name} | fails: ${(e as Error).message.split('\n')[0]} | | |`);
    }
    tf.dispose([x, y]);
    model.dispose();
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

if (opts.kernels && info.name === 'wasm') {
  const b = opts.batch;
  const run =
    (k: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}) =>
    () =>
      void tf.engine().runKernel(k, inputs, attrs as tf.NamedAttrMap);
  const dw = {
    x: tf.randomNormal([b, 16, 16, 64]),
    w: tf.randomNormal([3, 3, 64, 1]),
    w5: tf.randomNormal([5, 5, 64, 1]),
  };
  const dwAttrs = (s: number) => ({ strides: [s, s], pad: 'same', dilations: [1, 1] });
  const dy1 = tf.randomNormal([b, 16, 16, 64]);
  const dy2 = tf.randomNormal([b, 8, 8, 64]);
  const pool = { x: tf.randomNormal([b, 32, 32, 16]), dy: tf.randomNormal([b, 16, 16, 16]) };
  const poolAttrs = { filterSize: [3, 3], strides: [2, 2], pad: 'same' };
  const act = { x: tf.randomNormal([b, 16, 16, 64]), dy: tf.randomNormal([b, 16, 16, 64]) };
  const img = {
    x: tf.randomUniform([b, 32, 32, 3]),
    c: tf.tensor1d([58.4, 57.1, 57.4]),
    se: tf.randomUniform([b, 1, 1, 64]),
  };
  const kernels: [string, () => void, boolean][] = [
    [
      `depthwise 3x3 forward [${b},16,16,64]`,
      run('DepthwiseConv2dNative', { x: dw.x, filter: dw.w }, dwAttrs(1)),
      true,
    ],
    [
      `depthwise 5x5 forward [${b},16,16,64]`,
      run('DepthwiseConv2dNative', { x: dw.x, filter: dw.w5 }, dwAttrs(1)),
      true,
    ],
    [
      'depthwise 3x3 dx, stride 1',
      run(
        'DepthwiseConv2dNativeBackpropInput',
        { dy: dy1, filter: dw.w },
        { ...dwAttrs(1), inputShape: dw.x.shape },
      ),
      false,
    ],
    [
      'depthwise 3x3 dx, stride 2',
      run(
        'DepthwiseConv2dNativeBackpropInput',
        { dy: dy2, filter: dw.w },
        { ...dwAttrs(2), inputShape: dw.x.shape },
      ),
      false,
    ],
    [
      'depthwise 3x3 dW, stride 1',
      run(
        'DepthwiseConv2dNativeBackpropFilter',
        { x: dw.x, dy: dy1 },
        { ...dwAttrs(1), filterShape: dw.w.shape },
      ),
      false,
    ],
    [
      `MaxPoolGrad 3x3/2 [${b},32,32,16]`,
      run('MaxPoolGrad', { dy: pool.dy, input: pool.x, output: pool.dy }, poolAttrs),
      true,
    ],
    [
      `AvgPoolGrad 3x3/2 [${b},32,32,16]`,
      run('AvgPoolGrad', { dy: pool.dy, input: pool.x }, poolAttrs),
      true,
    ],
    [`Relu6 [${b},16,16,64]`, () => void tf.relu6(act.x), true],
    ['Relu6 gradient', () => void tf.grad((t: tf.Tensor) => tf.relu6(t))(act.x, act.dy), true],
    ['Sigmoid gradient', () => void tf.grad((t: tf.Tensor) => tf.sigmoid(t))(act.x, act.dy), true],
    [`RealDiv [${b},32,32,3] / [3]`, () => void tf.div(img.x, img.c), true],
    [`Multiply [${b},16,16,64] · [${b},1,1,64]`, () => void tf.mul(act.x, img.se), true],
  ];
  console.log(
    `\nkernels, median ms of ${opts.runs} calls | ours (wasm) | tfjs wasm | cpu backend |`,
  );
  console.log('|---|---|---|---|');
  const rows: string[][] = kernels.map(([name]) => [name]);
  for (const [i, [, fn, stockExists]] of kernels.entries()) {
    rows[i].push(time(fn).toFixed(2));
    useWasmKernels(false);
    try {
      // Without our kernels the gradients are compositions of tfjs's ops, not a tfjs kernel.
      rows[i].push(stockExists ? time(fn).toFixed(2) : `(${time(fn).toFixed(2)} composed)`);
    } finally {
      useWasmKernels(true);
    }
  }
  await tf.setBackend('cpu');
  for (const [i, [, fn]] of kernels.entries())
    rows[i].push(time(fn, Math.min(opts.runs, 3)).toFixed(2));
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}
