/**
 * Throughput benchmark: forward (inference), input gradient (inference mode) — each also with BN
 * folded into the convs, as attacks run — a whole PGD-10 attack through the library on the folded
 * model (pgd10: images attacked per second; ×10 = attack steps per second), AutoAttack's four attacks
 * (img/s at full settings on images they cannot break, see autoAttackRates) and SGD train step, in
 * images per second, for zoo models at several batch sizes.
 *
 *   npm run bench -- [--backends wasm,cpu] [--models resnet20,resnet18] [--batches 64,128] [--seconds 5]
 *                    [--torch ../shared/bench/torch_resnet20_bench.py] [--out bench-results.json]
 *
 * Prints a table and writes JSON with the backend, threads, peak RSS and live tensors after the run.
 * Several backends run one after another, each in its own process (tfjs keeps one per process).
 * With --torch (default: that script, when it and python3 with torch are present) the PyTorch
 * reference ResNet-20 runs right after, at the same batch sizes and thread count, and the ratios
 * ours/PyTorch are printed and saved. Timings are medians over repeated calls after a warm-up;
 * machines are noisy, so compare ratios measured side by side, not absolute numbers.
 * ROBUST_WASM_KERNELS=0 measures wasm with tfjs's XNNPACK convolutions instead of ours;
 * ROBUST_WINOGRAD=0 with our direct kernels only (no Winograd for 3x3 stride-1 convs).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { Command, Option } from 'commander';
import { BACKENDS, initBackend } from '../backend/index.js';
import { createModel, ZOO } from '../models/zoo.js';
import { Sgd } from '../train/sgd.js';
import { pgd } from '../attacks/pgd.js';
import { makeAttack } from '../attacks/index.js';
import { foldBatchNorm, foldedClassifier } from '../models/fold.js';
import { writeFileAtomic } from '../util/atomic.js';
import { check } from '../util/errors.js';
import { number, optionsOrExit, positiveInt } from '../cli/options.js';
import { wasmKernelStats } from '../backend/wasm-kernels.js';

interface BenchOptions {
  backends: string;
  backend?: string;
  models: string;
  batches: string;
  seconds: number;
  torch?: string;
  out: string;
}

const { models, batches, seconds, backends, outFile, torchScript } = optionsOrExit('bench', () => {
  const o = new Command('bench')
    .description(
      'img/s of forward, input gradient, PGD-10 and train step for zoo ResNets, with the PyTorch reference beside them',
    )
    .option('--backends <list>', `backends, comma-separated: ${BACKENDS.join(', ')}`, 'wasm')
    .addOption(new Option('--backend <name>').hideHelp())
    .option('--models <list>', 'zoo models, comma-separated', 'resnet20,resnet18')
    .option('--batches <list>', 'batch sizes, comma-separated', '64,128')
    .option('--seconds <x>', 'seconds of timed calls per measurement', number('seconds'), 5)
    .option(
      '--torch <script>',
      "the PyTorch reference script, or 'none' (default: ../shared/bench/torch_resnet20_bench.py when present)",
    )
    .option('--out <file>', 'JSON results', 'bench-results.json')
    .parse()
    .opts<BenchOptions>();
  const models = o.models.split(',').map((m) => m.trim().toLowerCase());
  for (const m of models)
    check(
      ZOO.some((e) => e.name === m),
      `unknown model '${m}' (one of: ${ZOO.map((e) => e.name).join(', ')})`,
    );
  check(o.seconds > 0 && o.seconds <= 3600, `--seconds must be in (0, 3600], got ${o.seconds}`);
  check(
    o.torch === undefined || o.torch === 'none' || fs.existsSync(o.torch),
    `--torch: ${o.torch} does not exist (give the reference script, or 'none')`,
  );
  const backends = (o.backend ?? o.backends).split(',').map((b) => b.trim());
  for (const b of backends)
    check(
      (BACKENDS as readonly string[]).includes(b),
      `unknown backend '${b}' (one of: ${BACKENDS.join(', ')})`,
    );
  // a batch of 4096 CIFAR images is 50 MB of input; far larger ones exhaust the wasm heap
  const batches = o.batches.split(',').map(positiveInt('--batches', 4096));
  return { models, batches, seconds: o.seconds, backends, outFile: o.out, torchScript: o.torch };
});

/** Median seconds per call of `fn` over about `seconds` of calls (at least 3), after 2 warm-ups. */
function medianSeconds(fn: () => void, seconds: number): number {
  fn();
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start) / 1000 < seconds) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The same for an async call (an attack). */
async function medianSecondsAsync(fn: () => Promise<void>, seconds: number): Promise<number> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start) / 1000 < seconds) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/**
 * img/s of each of AutoAttack's attacks at its full settings (APGD-CE 100 steps; APGD-T and FAB-T
 * 9 targets × 100 steps; Square 5000 queries) on images it cannot break — its full cost, the one
 * robust points pay. eps 1e-6 breaks nothing, so every target and query runs; each is timed on a
 * shortened run (10 steps, 1 target, 100 queries) and scaled by the iterations it stands for: an
 * attack's iterations cost the same whatever their number, its setup is counted in each share.
 */
async function autoAttackRates(
  classifier: Parameters<typeof makeAttack>[1],
  x: tf.Tensor4D,
  y: tf.Tensor1D,
): Promise<Record<string, number>> {
  const runs = [
    { name: 'apgd-ce', options: { steps: 10 }, full: 100 / 10 },
    { name: 'apgd-t', options: { steps: 10, targetClasses: 1 }, full: (9 * 100) / 10 },
    { name: 'fab-t', options: { steps: 10, targetClasses: 1 }, full: (9 * 100) / 10 },
    { name: 'square', options: { steps: 100 }, full: 5000 / 100 },
  ];
  const out: Record<string, number> = {};
  for (const r of runs) {
    const attack = makeAttack(r.name, classifier, { eps: 1e-6, ...r.options });
    const once = async () => tf.dispose(Object.values(await attack(x, y)));
    out[r.name] = +(x.shape[0] / ((await medianSecondsAsync(once, seconds)) * r.full)).toFixed(3);
  }
  return out;
}

if (backends.length > 1) {
  // One child process per backend, then one merged file.
  const runs = backends.map((b) => {
    const part = `${outFile}.${b}.json`;
    const args = [
      '--models',
      models.join(','),
      '--batches',
      batches.join(','),
      '--seconds',
      String(seconds),
      '--backend',
      b,
      '--out',
      part,
      '--torch',
      'none',
    ];
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...args], {
      stdio: 'inherit',
    });
    if (r.status !== 0) throw new Error(`bench on ${b} failed`);
    const result = JSON.parse(fs.readFileSync(part, 'utf8'));
    fs.rmSync(part);
    return result;
  });
  const torch = torchReference(runs[0].threads);
  for (const run of runs) addRatios(run.rows, torch);
  writeFileAtomic(outFile, JSON.stringify({ runs, torch }, null, 2));
  process.exit(0);
}

/** The PyTorch reference (img/s per batch size), or null when it cannot run here. */
function torchReference(threads: number): Record<number, Record<string, number>> | null {
  const script =
    torchScript ??
    path.resolve(
      path.dirname(fileURLToPath(import.meta.url)),
      '..',
      '..',
      '..',
      'shared',
      'bench',
      'torch_resnet20_bench.py',
    );
  if (script === 'none' || !fs.existsSync(script)) return null;
  const out: Record<number, Record<string, number>> = {};
  for (const b of batches) {
    const r = spawnSync(
      fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
      [script, String(b), String(threads)],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) {
      console.log(
        `PyTorch reference not run (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`,
      );
      return null;
    }
    out[b] = Object.fromEntries(
      [...r.stdout.matchAll(/^(\w+) ([\d.]+) img\/s$/gm)].map((m) => [m[1], Number(m[2])]),
    );
    console.log(
      `PyTorch ResNet-20 b${b} (${threads} threads): ${Object.entries(out[b])
        .map(([k, v]) => `${k} ${v}`)
        .join('  ')} img/s`,
    );
  }
  return out;
}

/** ours / PyTorch for the ResNet-20 rows (ratios measured side by side are what compare across machines). */
function addRatios(
  rows: Record<string, unknown>[],
  torch: Record<number, Record<string, number>> | null,
): void {
  if (!torch) return;
  for (const row of rows) {
    const t = torch[row.batch as number];
    if (row.model !== 'resnet20' || !t) continue;
    row.ratio = Object.fromEntries(
      (['forward', 'forward_folded', 'input_grad', 'input_grad_folded', 'train'] as const).map(
        (k) => [k, +((row[k] as number) / t[k.replace('_folded', '')]).toFixed(2)],
      ),
    );
    console.log(
      `ratio to PyTorch, ${row.model} b${row.batch}: ${Object.entries(row.ratio as object)
        .map(([k, v]) => `${k} ${v}`)
        .join('  ')}`,
    );
  }
}

const info = await initBackend({ backend: backends[0] });
const rows: Record<string, unknown>[] = [];
let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));

for (const name of models) {
  const model = createModel(name, {
    inputShape: [32, 32, 3],
    numClasses: 10,
    mean: [0.49, 0.48, 0.45],
    std: [0.25, 0.24, 0.26],
  });
  model.setUserDefinedMetadata({ robust: { model: name } });
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const sgd = new Sgd(model.trainableWeights, { momentum: 0.9, weightDecay: 5e-4 });
  for (const b of batches) {
    const x = tf.randomUniform([b, 32, 32, 3], 0, 1, 'float32', 1);
    const y = tf.tidy(() => tf.oneHot(tf.randomUniform([b], 0, 10, 'int32', 2), 10));
    // Each call reads its result back (dataSync) so that the work is really done; nothing is
    // returned from tidy, so every tensor of the call is freed. predict runs the whole batch at once
    // (by default it splits it into 32s), as the PyTorch reference does.
    const forward = () =>
      tf.tidy(() => void (model.predict(x, { batchSize: b }) as tf.Tensor).dataSync());
    const inputGrad = () =>
      tf.tidy(
        () =>
          void tf
            .grad((xi: tf.Tensor) =>
              tf.losses.softmaxCrossEntropy(y, model.apply(xi, { training: false }) as tf.Tensor),
            )(x)
            .dataSync(),
      );
    const trainStep = () => {
      const { value, grads } = tf.variableGrads(
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
    const labels = tf.randomUniform([b], 0, 10, 'int32', 2) as tf.Tensor1D;
    const foldedNet = foldBatchNorm(model)!;
    const forwardFolded = () =>
      tf.tidy(() => void (foldedNet.predict(x, { batchSize: b }) as tf.Tensor).dataSync());
    const inputGradFolded = () =>
      tf.tidy(
        () =>
          void tf
            .grad((xi: tf.Tensor) =>
              tf.losses.softmaxCrossEntropy(
                y,
                foldedNet.apply(xi, { training: false }) as tf.Tensor,
              ),
            )(x)
            .dataSync(),
      );
    // What `robust attack` / `robust eval` run: PGD-10 through the library on the BN-folded model.
    const attacked = foldedClassifier(model)!;
    const attack = pgd(attacked, { eps: 8 / 255, steps: 10 });
    const pgd10 = async () => tf.dispose(Object.values(await attack(x as tf.Tensor4D, labels)));
    const row: Record<string, unknown> = { model: name, batch: b };
    for (const [label, fn] of [
      ['forward', forward],
      ['forward_folded', forwardFolded],
      ['input_grad', inputGrad],
      ['input_grad_folded', inputGradFolded],
      ['train', trainStep],
    ] as const) {
      row[label] = +(b / medianSeconds(fn, seconds)).toFixed(1);
      sampleRss();
    }
    row.pgd10 = +(b / (await medianSecondsAsync(pgd10, seconds))).toFixed(2);
    sampleRss();
    // the model's own predictions: every image starts correctly classified, as the attacked ones do
    const predicted = tf.tidy(
      () =>
        attacked
          .logits(x as tf.Tensor4D, 'inference')
          .argMax(1)
          .cast('int32') as tf.Tensor1D,
    );
    row.autoattack = await autoAttackRates(attacked, x as tf.Tensor4D, predicted);
    predicted.dispose();
    sampleRss();
    rows.push(row);
    console.log(
      `${name.padEnd(10)} b${String(b).padEnd(4)} AutoAttack's attacks, img/s at full settings on images they cannot break: ${Object.entries(
        row.autoattack as object,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join('  ')}`,
    );
    console.log(
      `${name.padEnd(10)} b${String(b).padEnd(4)} forward ${row.forward} (folded ${row.forward_folded})  input_grad ${row.input_grad} (folded ${row.input_grad_folded})  pgd10 ${row.pgd10} (${(10 * (row.pgd10 as number)).toFixed(1)} steps)  train ${row.train} img/s`,
    );
    tf.dispose([x, y, labels]);
    foldedNet.dispose();
    attacked.dispose?.();
  }
  sgd.dispose();
  model.dispose();
}
const torch = torchReference(info.threads);
addRatios(rows, torch);
const result = {
  date: new Date().toISOString(),
  backend: info.name,
  threads: info.threads,
  cpus: os.cpus().length,
  node: process.version,
  tfjs: tf.version.tfjs,
  // Whether the convs ran on our SIMD kernels (ROBUST_WASM_KERNELS=0 turns them off), with Winograd
  // (ROBUST_WINOGRAD=0 turns it off), or on tfjs's own.
  conv_kernels:
    wasmKernelStats('conv2d').calls > 0
      ? `robust wasm SIMD${wasmKernelStats('winograd_conv').calls > 0 ? ' + Winograd F(2x2,3x3)' : ''}`
      : info.name === 'wasm'
        ? 'XNNPACK'
        : info.name,
  peak_rss_mib: Math.round(peakRss / 2 ** 20),
  live_tensors_after: tf.memory().numTensors,
  rows,
  torch,
};
console.log(
  `convolutions: ${result.conv_kernels}; peak RSS ${result.peak_rss_mib} MiB, live tensors after the run: ${result.live_tensors_after}`,
);
writeFileAtomic(outFile, JSON.stringify(result, null, 2));
process.exit(0);
