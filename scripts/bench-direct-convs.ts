/**
 * The direct conv kernels (conv2d.c, conv2d_backprop_input.c, conv2d_filter_grad.c: every conv that
 * Winograd does not take — a ResNet's 3x3 stride-2 convs, 1x1 projections and first conv) against
 * another checkout's, layer by layer: single-threaded CPU ms per call of the forward conv (with its
 * filter packing), dx (likewise) and dW (its chunks, as wasm-conv-kernels.ts cuts them), ours and
 * the baseline's alternating call by call in --reps rounds, each in the plain SIMD and the
 * relaxed-SIMD (FMA) build; the baseline's time over ours per round, median (min–max), GMAC/s,
 * and whether ours wrote the baseline's bits. Built with clang ≥ 16 (CLANG=... names one) into
 * modules sharing one memory, as scripts/build-kernels.sh builds them.
 *
 *   npm run bench:direct -- --baseline ../main [--reps 9] [--only resnet18] [--ops dW]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { check } from '../util/errors.js';
import { optionsOrExit, positiveInt } from '../cli/options.js';
import { relaxedMadd } from '../backend/wasm/relaxed-simd.js';
import { buildWasm, findClang, type WasmFn } from './wasm-build.js';
import { convShapeArgs, sumChunks, type ConvShape } from '../backend/wasm/wasm-kernels.js';
import { filterGradBlock } from '../backend/wasm/wasm-conv-kernels.js';

const opts = optionsOrExit('bench:direct', () =>
  new Command('bench:direct')
    .description('the direct conv kernels against a baseline checkout, single-threaded')
    .requiredOption('--baseline <dir>', 'another checkout whose kernels to time in the same rounds')
    .option('--reps <n>', 'timed rounds (median)', positiveInt('--reps'), 9)
    .option('--only <text>', 'only the layers whose name contains this')
    .option('--ops <list>', 'of forward,dx,dW', 'forward,dx,dW')
    .parse()
    .opts<{ baseline: string; reps: number; only?: string; ops: string }>(),
);
const { reps } = opts;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const baseline = path.resolve(opts.baseline);
const SOURCES = ['conv2d.c', 'conv2d_backprop_input.c', 'conv2d_filter_grad.c', 'common.c'];
check(
  fs.existsSync(path.join(baseline, 'backend/wasm/kernels/conv2d_filter_grad.c')),
  `bench:direct: --baseline ${opts.baseline} has no backend/wasm/kernels/conv2d_filter_grad.c`,
);
const ops = opts.ops.split(',');
check(
  ops.every((o) => ['forward', 'dx', 'dW'].includes(o)),
  `bench:direct: --ops takes forward, dx, dW, got ${opts.ops}`,
);
const clang = optionsOrExit('bench:direct', () => findClang());
check(relaxedMadd() !== null, 'bench:direct: this engine does not run wasm relaxed SIMD');

type Fn = WasmFn & { length: number };
const memory = new WebAssembly.Memory({ initial: 16384 }); // 1 GiB
const build = (tree: string, relaxed: boolean): Record<string, Fn> =>
  buildWasm(
    clang,
    SOURCES.map((f) => path.join(tree, 'backend/wasm/kernels', f)),
    { relaxed, memory, failure: `${clang} could not build the kernels of ${tree}` },
  ) as Record<string, Fn>;
// ours plain, ours relaxed, the baseline's plain, relaxed
// a failed build is one line, not a stack trace
const builds = optionsOrExit('bench:direct', () => [
  build(root, false),
  build(root, true),
  build(baseline, false),
  build(baseline, true),
]);
const names = ['plain', 'FMA'];

const f32 = new Float32Array(memory.buffer);
const u8 = new Uint8Array(memory.buffer);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let top = 1 << 20; // below: the modules' C stacks
const alloc = (floats: number) => {
  const at = top;
  top += Math.ceil((floats * 4 + 64) / 64) * 64;
  check(top <= memory.buffer.byteLength, 'bench:direct: shapes too large for 1 GiB');
  return at;
};
const fillRandom = (at: number, n: number) => {
  for (let i = 0; i < n; i++) f32[at / 4 + i] = Math.random() * 2 - 1;
};

/** A 'same' conv of an S x S x Ci input as TensorFlow pads it (the extra row and column after). */
function sameConv(
  batch: number,
  S: number,
  inC: number,
  outC: number,
  k: number,
  s: number,
): ConvShape {
  const out = Math.ceil(S / s);
  const pad = Math.max((out - 1) * s + k - S, 0);
  const top = Math.floor(pad / 2);
  return {
    batch,
    inH: S,
    inW: S,
    inC,
    outH: out,
    outW: out,
    outC,
    kh: k,
    kw: k,
    sh: s,
    sw: s,
    top,
    left: top,
  };
}
const allLayers: [string, ConvShape][] = [
  ['resnet18 b64 conv1 3x3 3→64', sameConv(64, 32, 3, 64, 3, 1)],
  ['resnet18 b64 layer2 3x3/2 64→128', sameConv(64, 32, 64, 128, 3, 2)],
  ['resnet18 b64 layer3 3x3/2 128→256', sameConv(64, 16, 128, 256, 3, 2)],
  ['resnet18 b64 layer4 3x3/2 256→512', sameConv(64, 8, 256, 512, 3, 2)],
  ['resnet18 b64 layer2 1x1/2 64→128', sameConv(64, 32, 64, 128, 1, 2)],
  ['resnet18 b64 layer3 1x1/2 128→256', sameConv(64, 16, 128, 256, 1, 2)],
  ['resnet18 b64 layer4 1x1/2 256→512', sameConv(64, 8, 256, 512, 1, 2)],
  ['resnet20 b128 conv1 3x3 3→16', sameConv(128, 32, 3, 16, 3, 1)],
  ['resnet20 b128 stage2 3x3/2 16→32', sameConv(128, 32, 16, 32, 3, 2)],
  ['resnet20 b128 stage3 3x3/2 32→64', sameConv(128, 16, 32, 64, 3, 2)],
];
const layers = allLayers.filter(([name]) => !opts.only || name.includes(opts.only));
check(layers.length > 0, `bench:direct: --only ${opts.only} names no layer`);

const macs = (s: ConvShape) => s.batch * s.outH * s.outW * s.kh * s.kw * s.inC * s.outC;
const equal = (a: number, b: number, floats: number) =>
  Buffer.compare(u8.subarray(a, a + 4 * floats), u8.subarray(b, b + 4 * floats)) === 0;

console.log(
  `Direct conv kernels, one thread, CPU ms per call (median of ${reps} rounds, the four builds alternating call by call): baseline → ours, the baseline's time over ours per round (median, min–max), ours in GMAC/s; bits: ours = the baseline's.`,
);
console.log('| layer | op | plain SIMD | FMA | bits |');
console.log('|---|---|---|---|---|');
for (const [name, s] of layers) {
  top = 1 << 20;
  const xFloats = s.batch * s.inH * s.inW * s.inC;
  const yFloats = s.batch * s.outH * s.outW * s.outC;
  const wFloats = s.kh * s.kw * s.inC * s.outC;
  const [x, dy, w] = [alloc(xFloats), alloc(yFloats), alloc(wFloats)];
  fillRandom(x, xFloats);
  fillRandom(dy, yFloats);
  fillRandom(w, wFloats);
  const zeros = alloc(Math.max(s.inC, s.outC) + 8);
  f32.fill(0, zeros / 4, zeros / 4 + Math.max(s.inC, s.outC) + 8);
  const packed = alloc(wFloats + 8 * s.kh * s.kw * s.outC);
  const rows = s.batch * s.outH;
  const chunks = sumChunks(rows, macs(s), wFloats);
  const block = filterGradBlock(s, chunks.rows);
  const scratch = alloc(block.scratch);
  // one output per build, to compare ours with the baseline's
  const outs = builds.map(() => alloc(Math.max(xFloats, yFloats, chunks.count * wFloats)));
  const calls: Record<string, (b: Record<string, Fn>, out: number) => void> = {
    forward: (b, out) => {
      b.pack_filter(packed, w, s.kh * s.kw * s.inC, s.outC);
      b.conv2d(out, x, w, packed, zeros, zeros, 0, 0, ...convShapeArgs(s), 0, rows);
    },
    dx: (b, out) => {
      b.pack_filter_t(packed, w, s.kh, s.kw, s.inC, s.outC);
      b.conv2d_backprop_input(out, dy, packed, zeros, ...convShapeArgs(s), 0, s.batch * s.inH);
    },
    dW: (b, out) => {
      const packedBlocks = b.conv2d_filter_grad.length === 19;
      for (let k = 0; k < chunks.count; k++) {
        const r0 = k * chunks.rows;
        const r1 = Math.min(rows, r0 + chunks.rows);
        const slot = out + 4 * k * wFloats;
        if (packedBlocks)
          b.conv2d_filter_grad(slot, scratch, x, dy, ...convShapeArgs(s), block.rows, r0, r1);
        else b.conv2d_filter_grad(slot, x, dy, ...convShapeArgs(s), r0, r1);
      }
    },
  };
  const floats = { forward: yFloats, dx: xFloats, dW: chunks.count * wFloats };
  for (const op of ops) {
    const fns = builds.map((b, i) => () => calls[op](b, outs[i]));
    for (const fn of fns) fn();
    const bits = [0, 1].map((k) =>
      equal(outs[k], outs[k + 2], floats[op as keyof typeof floats]) ? 'same' : 'DIFFER',
    );
    const ts = fns.map((): number[] => []);
    for (let r = 0; r < reps; r++)
      fns.forEach((fn, i) => {
        const t0 = cpuMs();
        fn();
        ts[i].push(cpuMs() - t0);
      });
    const cell = (k: number) => {
      const ratios = ts[k].map((t, r) => ts[k + 2][r] / t).sort((a, b) => a - b);
      return (
        `${median(ts[k + 2]).toFixed(1)} → ${median(ts[k]).toFixed(1)}: ${median(ratios).toFixed(2)}× ` +
        `(${ratios[0].toFixed(2)}–${ratios[ratios.length - 1].toFixed(2)}), ` +
        `${(macs(s) / median(ts[k]) / 1e6).toFixed(1)} GMAC/s`
      );
    };
    console.log(
      `| ${name} | ${op} | ${cell(0)} | ${cell(1)} | ${names.map((n, k) => `${n} ${bits[k]}`).join(', ')} |`,
    );
  }
}
process.exit(0);
