/**
 * Convolution kernels on wasm, ours against tfjs's XNNPACK path, layer by layer: forward, input
 * gradient (dx) and filter gradient (dW) for the 3×3 convs of CIFAR ResNet-20 and ResNet-18, with
 * median milliseconds, effective GMAC/s (a direct conv's multiply-adds over the time) and the
 * largest relative difference from XNNPACK's result. Four paths: Winograd F(4x4, 3x3) and F(2x2,
 * 3x3) where they apply (stride 1), our direct kernels, XNNPACK.
 *
 *   npm run bench:convs -- [--batch 128] [--seconds 2] [--threads N]
 */
import tf from '#tfjs';
import { Command } from 'commander';
import { initBackend } from '../backend/index.js';
import { useWasmKernels, useWinograd } from '../backend/wasm/wasm-kernels.js';
import { check } from '../util/errors.js';
import { number, optionsOrExit, positiveInt } from '../cli/options.js';

const { batch, seconds, threads } = optionsOrExit('bench:convs', () => {
  const o = new Command('bench:convs')
    .description('per-layer conv timings on wasm: Winograd, our direct kernels, XNNPACK')
    .option('--batch <n>', 'batch size', positiveInt('--batch'), 128)
    .option('--seconds <x>', 'seconds of timed calls per measurement', number('seconds'), 2)
    .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt('--threads'))
    .parse()
    .opts<{ batch: number; seconds: number; threads?: number }>();
  check(o.seconds > 0, `--seconds must be positive, got ${o.seconds}`);
  return o;
});
const info = await initBackend({ backend: 'wasm', threads });

/** [output size, in channels, out channels, stride] of each distinct 3×3 conv. */
const layers: [string, number, number, number, number][] = [
  ['resnet20 stage 1', 32, 16, 16, 1],
  ['resnet20 stage 2 down', 16, 16, 32, 2],
  ['resnet20 stage 2', 16, 32, 32, 1],
  ['resnet20 stage 3 down', 8, 32, 64, 2],
  ['resnet20 stage 3', 8, 64, 64, 1],
  ['resnet18 layer 1', 32, 64, 64, 1],
  ['resnet18 layer 2', 16, 128, 128, 1],
  ['resnet18 layer 3', 8, 256, 256, 1],
  ['resnet18 layer 4', 4, 512, 512, 1],
];

function median(fn: () => tf.Tensor): number {
  for (let i = 0; i < 2; i++) fn().dispose();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    const out = fn();
    out.dataSync();
    times.push(performance.now() - t0);
    out.dispose();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

console.log(
  `backend wasm, ${info.threads} threads, batch ${batch}; ms (effective GMAC/s): Winograd F(4x4) / F(2x2) / direct / XNNPACK`,
);
console.log('| layer | out | channels | forward | dx | dW | max rel. diff |');
console.log('|---|---|---|---|---|---|---|');
for (const [name, size, cin, cout, stride] of layers) {
  const x = tf.randomNormal([batch, size * stride, size * stride, cin]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, cin, cout]) as tf.Tensor4D;
  const dy = tf.randomNormal([batch, size, size, cout]) as tf.Tensor4D;
  const attrs = { strides: [stride, stride], pad: 'same', dataFormat: 'NHWC' };
  const ops: Record<string, () => tf.Tensor> = {
    forward: () => tf.conv2d(x, w, stride, 'same'),
    dx: () =>
      tf
        .engine()
        .runKernel(
          'Conv2DBackpropInput',
          { dy, filter: w },
          { ...attrs, inputShape: x.shape },
        ) as tf.Tensor,
    dW: () =>
      tf
        .engine()
        .runKernel(
          'Conv2DBackpropFilter',
          { x, dy },
          { ...attrs, filterShape: w.shape },
        ) as tf.Tensor,
  };
  const macs = batch * size * size * 9 * cin * cout;
  const cells: string[] = [];
  let worst = 0;
  for (const op of Object.values(ops)) {
    const winograd = stride === 1;
    const paths = [
      ...(winograd
        ? [
            { kernels: true, winograd: true, m: 4 as const },
            { kernels: true, winograd: true, m: 2 as const },
          ]
        : []),
      { kernels: true, winograd: false, m: 4 as const },
      { kernels: false, winograd: false, m: 4 as const },
    ];
    const ms: string[] = winograd ? [] : ['–', '–'];
    const results: tf.Tensor[] = [];
    for (const p of paths) {
      useWasmKernels(p.kernels);
      useWinograd(p.winograd, p.m);
      const t = median(op);
      ms.push(`${t.toFixed(1)} (${(macs / t / 1e6).toFixed(0)})`);
      results.push(op());
    }
    useWasmKernels(true);
    useWinograd(true, 4);
    const reference = results[results.length - 1];
    for (const r of results.slice(0, -1))
      worst = Math.max(
        worst,
        tf.tidy(
          () =>
            tf.max(tf.abs(tf.sub(r, reference))).dataSync()[0] /
            tf.max(tf.abs(reference)).dataSync()[0],
        ),
      );
    tf.dispose(results);
    cells.push(ms.join(' / '));
  }
  console.log(
    `| ${name} | ${size}×${size}${stride > 1 ? ' /2' : ''} | ${cin}→${cout} | ${cells.join(' | ')} | ${worst.toExponential(1)} |`,
  );
  tf.dispose([x, w, dy]);
}
process.exit(0);
