/**
 * Where Winograd F(4x4, 3x3)'s time goes, phase by phase, against the machine's peak: for the 3x3
 * stride-1 shapes of CIFAR ResNet-20 (b128) and ResNet-18 (b64), the forward conv (= dx: the same
 * kernel and shapes) and the filter gradient timed whole and one phase at a time — input transform,
 * the 36 batched matrix products, output transform (dW: x's and dy's transforms, then the products)
 * — single-threaded, CPU time per call (median of --reps); the products' GMAC/s against a tight
 * 128-bit multiply-add loop's. Each measurement runs the plain SIMD build (a multiply and an add
 * per lane and MAC) and then the relaxed-SIMD one (one f32x4.relaxed_madd: FMA where the engine
 * fuses it), alternating, as scripts/build-kernels.sh builds them.
 * scripts/winograd-phases.c runs winograd4.c's own loops with a phase mask; this script builds it
 * with clang ≥ 16 (CLANG=... names one) into a module on its own memory.
 *
 *   npm run bench:phases -- [--reps 9]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { check, RobustError } from '../util/errors.js';
import { optionsOrExit, positiveInt } from '../cli/options.js';
import { relaxedMadd } from '../backend/wasm/relaxed-simd.js';

const { reps } = optionsOrExit('bench:phases', () =>
  new Command('bench:phases')
    .description("Winograd F(4x4, 3x3)'s phases, single-threaded, against the multiply-add peak")
    .option('--reps <n>', 'timed calls per measurement (median)', positiveInt('--reps'), 9)
    .parse()
    .opts<{ reps: number }>(),
);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const compilers = ['clang-20', 'clang-19', 'clang-18', 'clang-17', 'clang-16', 'clang'];
const clang =
  process.env.CLANG ||
  compilers.find((c) => {
    try {
      execFileSync(c, ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
check(
  clang !== undefined,
  'bench:phases needs clang ≥ 16 and its wasm-ld (apt-get install clang-16 lld-16)',
);
const madd = relaxedMadd(); // sets Node 20's flag before the relaxed module compiles
check(madd !== null, 'bench:phases: this engine does not run wasm relaxed SIMD');

type Fn = (...args: number[]) => number;
const memory = new WebAssembly.Memory({ initial: 16384 }); // 1 GiB: ResNet-18's U is 38 MB
/** winograd-phases.c built plain (a multiply and an add) or relaxed (MADD as one relaxed_madd). */
function build(relaxed: boolean): Record<string, Fn> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'robust-phases-'));
  const wasmFile = path.join(dir, 'p.wasm');
  try {
    execFileSync(clang!, [
      '--target=wasm32',
      '-O3',
      '-msimd128',
      ...(relaxed ? ['-mrelaxed-simd', '-DROBUST_RELAXED_SIMD'] : []),
      '-ffreestanding',
      '-fno-builtin',
      '-nostdlib',
      '-I',
      path.join(root, 'backend/wasm/kernels'),
      '-Wl,--no-entry',
      '-Wl,--import-memory',
      '-Wl,--strip-all',
      '-o',
      wasmFile,
      path.join(root, 'scripts/winograd-phases.c'),
      path.join(root, 'backend/wasm/kernels/common.c'),
    ]);
    return new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmFile)), {
      env: { memory },
    }).exports as Record<string, Fn>;
  } catch {
    throw new RobustError(
      `bench:phases: ${clang} could not build scripts/winograd-phases.c (clang ≥ 16 and its wasm-ld needed)`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}
const builds = [build(false), build(true)];
const ex = builds[0];
const f32 = new Float32Array(memory.buffer);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};
/** Median CPU ms of `fn` over --reps calls, after one untimed. */
function time(fn: () => void): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = cpuMs();
    fn();
    ts.push(cpuMs() - t0);
  }
  return ts.sort((a, b) => a - b)[Math.floor(reps / 2)];
}

let top = 1 << 20; // below: the module's C stack
const alloc = (floats: number) => {
  const at = top;
  top += Math.ceil((floats * 4 + 64) / 64) * 64;
  return at;
};
const fillRandom = (at: number, n: number) => {
  for (let i = 0; i < n; i++) f32[at / 4 + i] = Math.random() * 2 - 1;
};

const peakBuf = alloc(512);
fillRandom(peakBuf, 512);
const ITERS = 20_000_000;
const peakRate = (fn: Fn) => (ITERS * 64) / time(() => fn(peakBuf, ITERS)) / 1e6;
// Other processes only slow it down — on a VM whose two cores may be one core's two hardware
// threads, by up to a third (seen here: 13-14 against 20-21 GMAC/s): the best of several runs,
// before and after the shapes, the multiply + add loop and the relaxed_madd one alternating.
const peaks: [number[], number[]] = [[], []];
const measurePeaks = () => {
  for (let k = 0; k < 5; k++) {
    peaks[0].push(peakRate(ex.peak));
    peaks[1].push(peakRate(builds[1].peak_madd));
  }
};
measurePeaks();
// one dependent add chain, 8 adds a trip: 3 cycles each on Zen 3 (an assumption: other CPUs differ)
const nsPerAdd = (time(() => ex.chain(peakBuf, 10_000_000)) * 1e6) / 80_000_000;
const rows: ((peak: number) => string)[] = [];
const shapes: [string, number, number, number][] = [
  ['ResNet-20', 128, 32, 16],
  ['ResNet-20', 128, 16, 32],
  ['ResNet-20', 128, 8, 64],
  ['ResNet-18', 64, 32, 64],
  ['ResNet-18', 64, 16, 128],
  ['ResNet-18', 64, 8, 256],
  ['ResNet-18', 64, 4, 512],
];
const ms = (t: number) => t.toFixed(1);
for (const [net, N, S, C] of shapes) {
  top = 1 << 20;
  // today's work units (wasm-conv-kernels.ts, narrow layers): about 16 tiles
  const tilesW = Math.ceil(S / 4);
  const R = Math.max(1, Math.floor(16 / tilesW));
  const T = Math.ceil((R * tilesW) / 4) * 4;
  const units = Math.ceil((N * Math.ceil(S / 4)) / R);
  const plane = T * C + 16;
  const [x, y] = [alloc(N * S * S * C), alloc(N * S * S * C)];
  const [U, bias, acc] = [alloc(36 * C * C), alloc(C), alloc(36 * C * C)];
  const scratch = alloc(36 * (2 * plane + C) + 16 * C);
  fillRandom(x, N * S * S * C);
  fillRandom(y, N * S * S * C);
  fillRandom(U, 36 * C * C);
  f32.fill(0, bias / 4, bias / 4 + C);
  const geometry = [N, S, S, C, S, S, C, 1, 1, R, 0, units];
  const conv = (b: Record<string, Fn>, phases: number) => () =>
    b.ph_conv(phases, scratch, y, x, U, bias, ...geometry);
  const dW = (b: Record<string, Fn>, phases: number) => () =>
    b.ph_fgrad(phases, acc, scratch, x, y, ...geometry);
  const macs = units * 36 * T * C * C;
  const share = (t: number, sum: number) => `${ms(t)} (${((100 * t) / sum).toFixed(0)}%)`;
  for (const [op, run] of [
    ['forward / dx', conv],
    ['dW', dW],
  ] as const) {
    // [plain, relaxed] per measurement, alternating builds
    const both = (phases: number) => {
      const t: [number, number] = [0, 0];
      t[0] = time(run(builds[0], phases));
      t[1] = time(run(builds[1], phases));
      return t;
    };
    const whole = both(7);
    const [a, b, c] = [both(1), both(2), both(4)];
    // dW: bits 1 and 2 are x's and dy's transforms, 4 the products
    const [input, products, output] =
      op === 'dW' ? [[a[0] + b[0], a[1] + b[1]], c, [0, 0]] : [a, b, c];
    const sum = input[0] + products[0] + output[0];
    const rate = products.map((t) => macs / t / 1e6);
    rows.push(
      (peak) =>
        `| ${net} ${S}×${S}×${C} b${N} | ${op} | ${ms(whole[0])} → ${ms(whole[1])} | ` +
        `${share(input[0], sum)} → ${ms(input[1])} | ${share(products[0], sum)} → ${ms(products[1])} | ` +
        `${op === 'dW' ? '–' : `${share(output[0], sum)} → ${ms(output[1])}`} | ` +
        `${rate[0].toFixed(1)} (${((100 * rate[0]) / peak).toFixed(0)}%) → ` +
        `${rate[1].toFixed(1)} (${((100 * rate[1]) / peak).toFixed(0)}%) | ` +
        `${(products[0] / products[1]).toFixed(2)}× |`,
    );
  }
}
measurePeaks();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const peak = Math.max(...peaks[0]);
const ghz = 3 / nsPerAdd;
console.log(
  `peak f32x4 multiply + add: ${peak.toFixed(1)} GMAC/s (${(2 * peak).toFixed(0)} GFLOP/s) per core, ` +
    `median of 10 runs ${median(peaks[0]).toFixed(1)}; f32x4.relaxed_madd (${madd}): best ` +
    `${Math.max(...peaks[1]).toFixed(1)}, median ${median(peaks[1]).toFixed(1)}; a dependent f32x4.add ` +
    `every ${nsPerAdd.toFixed(3)} ns (= 3 cycles at ${ghz.toFixed(2)} GHz; two multiplies and two ` +
    `adds a cycle would be ${(8 * ghz).toFixed(1)} GMAC/s)`,
);
console.log(
  'Each cell: plain SIMD → relaxed SIMD (FMA) build, CPU ms per call; GMAC/s as % of the multiply + add peak.',
);
console.log(
  '| shape | op | whole ms | input transform | products | output transform | products GMAC/s | products speed-up |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row(peak));
process.exit(0);
