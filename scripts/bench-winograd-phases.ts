/**
 * Where Winograd F(4x4, 3x3)'s time goes, phase by phase, against the machine's peak: for the 3x3
 * stride-1 shapes of CIFAR ResNet-20 (b128) and ResNet-18 (b64), the forward conv (= dx: the same
 * kernel and shapes) and the filter gradient timed whole and one phase at a time — input transform,
 * the 36 batched matrix products, output transform (dW: x's and dy's transforms, then the products)
 * — single-threaded, CPU time per call (median of --reps); the products' GMAC/s against a tight
 * 128-bit multiply-add loop's. Each measurement runs the plain SIMD build (a multiply and an add
 * per lane and MAC) and then the relaxed-SIMD one (one f32x4.relaxed_madd: FMA where the engine
 * fuses it), alternating, as scripts/build-kernels.sh builds them. Apart, the filter transform
 * (winograd4_filter), which forward and dx run on every call before their units.
 * scripts/winograd-phases.c runs winograd4.c's own loops with a phase mask; this script builds it
 * with clang ≥ 16 (CLANG=... names one) into a module on its own memory. `--baseline DIR` also
 * builds another checkout's kernels and times them in the same rounds, call by call, and prints
 * ours / baseline per round (median, min–max): on this loaded machine, runs minutes apart differ
 * by more than most changes.
 *
 *   npm run bench:phases -- [--reps 9] [--shapes 16x16x128,4x4x512] [--baseline ../main]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { check } from '../util/errors.js';
import { optionsOrExit, positiveInt } from '../cli/options.js';
import { relaxedMadd } from '../backend/wasm/relaxed-simd.js';
import { winograd4Rows } from '../backend/wasm/wasm-conv-kernels.js';
import { buildWasm, findClang, type WasmFn } from './wasm-build.js';

const opts = optionsOrExit('bench:phases', () =>
  new Command('bench:phases')
    .description("Winograd F(4x4, 3x3)'s phases, single-threaded, against the multiply-add peak")
    .option('--reps <n>', 'timed calls per measurement (median)', positiveInt('--reps'), 9)
    .option('--shapes <list>', 'only these shapes, SxSxC (e.g. 16x16x128,4x4x512)')
    .option('--baseline <dir>', 'another checkout whose kernels to time in the same rounds')
    .parse()
    .opts<{ reps: number; shapes?: string; baseline?: string }>(),
);
const { reps } = opts;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const baseline = opts.baseline === undefined ? undefined : path.resolve(opts.baseline);
check(
  baseline === undefined || fs.existsSync(path.join(baseline, 'scripts/winograd-phases.c')),
  `bench:phases: --baseline ${opts.baseline} has no scripts/winograd-phases.c`,
);
const clang = optionsOrExit('bench:phases', () => findClang());
const madd = relaxedMadd(); // sets Node 20's flag before the relaxed module compiles
check(madd !== null, 'bench:phases: this engine does not run wasm relaxed SIMD');

type Fn = WasmFn;
const memory = new WebAssembly.Memory({ initial: 16384 }); // 1 GiB: ResNet-18's U is 38 MB
/** `tree`'s winograd-phases.c built plain (a multiply and an add) or relaxed (MADD as one relaxed_madd). */
const build = (relaxed: boolean, tree = root): Record<string, Fn> =>
  buildWasm(
    clang,
    [
      path.join(tree, 'scripts/winograd-phases.c'),
      path.join(tree, 'backend/wasm/kernels/common.c'),
    ],
    {
      relaxed,
      memory,
      include: path.join(tree, 'backend/wasm/kernels'),
      failure: `${clang} could not build ${tree}/scripts/winograd-phases.c (clang ≥ 16 and its wasm-ld needed)`,
    },
  );
// ours plain, ours relaxed, then the baseline's two
// a failed build is one line, not a stack trace
const builds = optionsOrExit('bench:phases', () => [
  build(false),
  build(true),
  ...(baseline ? [build(false, baseline), build(true, baseline)] : []),
]);
const ex = builds[0];
const f32 = new Float32Array(memory.buffer);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** CPU ms of each of `fns` in --reps rounds (one call of each a round, in turn), after one untimed call each. */
function rounds(fns: (() => void)[]): number[][] {
  for (const fn of fns) fn();
  const ts = fns.map((): number[] => []);
  for (let i = 0; i < reps; i++)
    fns.forEach((fn, k) => {
      const t0 = cpuMs();
      fn();
      ts[k].push(cpuMs() - t0);
    });
  return ts;
}
/** Median CPU ms of `fn` over --reps calls, after one untimed. */
const time = (fn: () => void) => median(rounds([fn])[0]);

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
const allShapes: [string, number, number, number][] = [
  ['ResNet-20', 128, 32, 16],
  ['ResNet-20', 128, 16, 32],
  ['ResNet-20', 128, 8, 64],
  ['ResNet-18', 64, 32, 64],
  ['ResNet-18', 64, 16, 128],
  ['ResNet-18', 64, 8, 256],
  ['ResNet-18', 64, 4, 512],
];
const wanted = opts.shapes?.split(',');
const shapes = allShapes.filter(([, , S, C]) => !wanted || wanted.includes(`${S}x${S}x${C}`));
check(
  shapes.length > 0,
  `bench:phases: --shapes ${opts.shapes} names none of ${allShapes.map(([, , S, C]) => `${S}x${S}x${C}`).join(', ')}`,
);
/** Ours / baseline per round: the baseline's time over ours, median (min–max). */
const speedups: string[] = [];
const filterRows: string[] = [];
const ratio = (ours: number[], base: number[]) => {
  const r = ours.map((t, i) => base[i] / t).sort((a, b) => a - b);
  return `${median(r).toFixed(2)}× (${r[0].toFixed(2)}–${r[r.length - 1].toFixed(2)})`;
};
const ms = (t: number) => t.toFixed(1);
for (const [net, N, S, C] of shapes) {
  top = 1 << 20;
  // the work units that run (wasm-conv-kernels.ts; wide layers take longer ones), single-threaded
  const tileRows = winograd4Rows(N, S, C, 1);
  const units = (R: number) => {
    const T = Math.ceil((R * Math.ceil(S / 4)) / 4) * 4;
    const count = Math.ceil((N * Math.ceil(S / 4)) / R);
    return { T, count, geometry: [N, S, S, C, S, S, C, 1, 1, R, 0, count] };
  };
  const [forward, filterGrad] = [units(tileRows.forward), units(tileRows.filterGrad)];
  const plane = Math.max(forward.T, filterGrad.T) * C + 16;
  const [x, y] = [alloc(N * S * S * C), alloc(N * S * S * C)];
  const [U, bias, acc, w] = [alloc(36 * C * C), alloc(C), alloc(36 * C * C), alloc(9 * C * C)];
  const scratch = alloc(36 * (2 * plane + C) + 16 * C);
  fillRandom(x, N * S * S * C);
  fillRandom(y, N * S * S * C);
  fillRandom(U, 36 * C * C);
  fillRandom(w, 9 * C * C);
  // U from the 3x3 filter, which forward and dx compute on every call (plain builds: no MADD in it);
  // all its 8-channel output blocks, [0, C/8) (a baseline's kernel without that range ignores it)
  const plainBuilds = builds.filter((_, k) => k % 2 === 0);
  const filterTimes = [0, 1].map((transposed) =>
    rounds(plainBuilds.map((b) => () => b.winograd4_filter(U, w, C, C, transposed, 0, C / 8))),
  );
  filterRows.push(
    `| ${net} ${S}×${S}×${C} b${N} | ${ms(median(filterTimes[0][0]))} | ${ms(median(filterTimes[1][0]))} |` +
      (baseline
        ? ` ${ms(median(filterTimes[0][1]))} → ${ms(median(filterTimes[0][0]))}: ${ratio(filterTimes[0][0], filterTimes[0][1])} |` +
          ` ${ms(median(filterTimes[1][1]))} → ${ms(median(filterTimes[1][0]))}: ${ratio(filterTimes[1][0], filterTimes[1][1])} |`
        : ''),
  );
  f32.fill(0, bias / 4, bias / 4 + C);
  const conv = (b: Record<string, Fn>, phases: number) => () =>
    b.ph_conv(phases, scratch, y, x, U, bias, ...forward.geometry);
  const dW = (b: Record<string, Fn>, phases: number) => () =>
    b.ph_fgrad(phases, acc, scratch, x, y, ...filterGrad.geometry);
  const share = (t: number, sum: number) => `${ms(t)} (${((100 * t) / sum).toFixed(0)}%)`;
  for (const [op, run] of [
    ['forward / dx', conv],
    ['dW', dW],
  ] as const) {
    // per build (ours plain, relaxed, the baseline's), the CPU ms of each round, builds in turn
    const perRound = new Map<number, number[][]>();
    const measured = (phases: number) => {
      const ts = rounds(builds.map((b) => run(b, phases)));
      perRound.set(phases, ts);
      return ts.map(median);
    };
    const whole = measured(7);
    const [a, b, c] = [measured(1), measured(2), measured(4)];
    // dW: bits 1 and 2 are x's and dy's transforms, 4 the products
    const [input, products, output] =
      op === 'dW' ? [[a[0] + b[0], a[1] + b[1]], c, [0, 0]] : [a, b, c];
    const sum = input[0] + products[0] + output[0];
    const { T, count } = op === 'dW' ? filterGrad : forward;
    const macs = count * 36 * T * C * C;
    const rate = products.map((t) => macs / t / 1e6);
    rows.push(
      (peak) =>
        `| ${net} ${S}×${S}×${C} b${N} | ${op} | ${T} | ${ms(whole[0])} → ${ms(whole[1])} | ` +
        `${share(input[0], sum)} → ${ms(input[1])} | ${share(products[0], sum)} → ${ms(products[1])} | ` +
        `${op === 'dW' ? '–' : `${share(output[0], sum)} → ${ms(output[1])}`} | ` +
        `${rate[0].toFixed(1)} (${((100 * rate[0]) / peak).toFixed(0)}%) → ` +
        `${rate[1].toFixed(1)} (${((100 * rate[1]) / peak).toFixed(0)}%) | ` +
        `${(products[0] / products[1]).toFixed(2)}× |`,
    );
    if (baseline) {
      const [w, p, x] = [perRound.get(7)!, perRound.get(op === 'dW' ? 4 : 2)!, perRound.get(1)!];
      speedups.push(
        `| ${net} ${S}×${S}×${C} b${N} | ${op} | ${ms(median(p[2]))} → ${ms(median(p[0]))}: ` +
          `${ratio(p[0], p[2])} | ${ms(median(p[3]))} → ${ms(median(p[1]))}: ${ratio(p[1], p[3])} | ` +
          `${ratio(w[0], w[2])} | ${ratio(w[1], w[3])} | ${ratio(x[0], x[2])} |`,
      );
    }
  }
}
measurePeaks();
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
  '| shape | op | tiles a unit | whole ms | input transform | products | output transform | products GMAC/s | products speed-up |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row(peak));
if (baseline) {
  console.log(
    `\nOurs against ${baseline}, timed in the same rounds: baseline → ours CPU ms (medians), and the baseline's time over ours per round, median (min–max) of ${reps}.`,
  );
  console.log(
    "| shape | op | products, plain SIMD | products, relaxed SIMD | whole, plain | whole, relaxed | x's transform, plain |",
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const row of speedups) console.log(row);
}
console.log(
  `\nThe filter transform (winograd4_filter: U for forward, and for dx from the flipped, transposed filter), plain SIMD, CPU ms per call${baseline ? '; baseline → ours: the speed-up' : ''}.`,
);
console.log(
  `| shape | forward | dx |${baseline ? ' forward against the baseline | dx against the baseline |' : ''}`,
);
console.log(`|---|---|---|${baseline ? '---|---|' : ''}`);
for (const row of filterRows) console.log(row);
process.exit(0);
