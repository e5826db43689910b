/**
 * Throughput benchmark against PyTorch, in alternated rounds: each round measures ours (forward,
 * input gradient — each also BN-folded, as attacks run — and an SGD train step, img/s) and then
 * PyTorch's reference (../shared/bench/torch_resnet20_bench.py, Debian's python3-torch) on the same
 * model, batch and thread count, back to back. On a shared, noisy machine a single run cannot tell
 * a 10% gain from noise; the median over rounds of each round's ratio can. Also the attacks users
 * run most (PGD-20, APGD-CE-100, FAB-100, Square-5000, APGD-T and FAB-T 9×100) as img/s, for the models
 * in --attack-models.
 *
 *   npm run bench -- [--cases resnet20:128,resnet18:64] [--rounds 3] [--seconds 3]
 *                    [--backends wasm[,cpu]] [--attack-models resnet20|none]
 *                    [--torch ../shared/bench/torch_resnet20_bench.py|none] [--out bench-results.json]
 *                    [--baseline OTHER_TREE/dist]
 *
 * `--models` and `--batches` (both lists) give their cross product as the cases instead. Every
 * measurement of ours runs in a fresh process (scripts/bench-case.ts), so its peak RSS is that
 * case's own and tfjs's one-backend-per-process rule holds. Prints, per case and metric, the
 * median img/s with its min–max over the rounds, PyTorch's, and the median ratio ours/PyTorch with
 * its min–max; the JSON keeps every round. ROBUST_WASM_KERNELS=0 measures wasm with tfjs's XNNPACK
 * convolutions instead of ours; ROBUST_WINOGRAD=0 with our direct kernels only, =2 with Winograd
 * F(2x2, 3x3) instead of F(4x4, 3x3). `--baseline` (another build's dist/, e.g. of main) is measured
 * in each round too, right before ours, and each metric gets its median ratio ours/baseline: the way
 * to tell a change's gain from the machine's noise.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { BACKENDS } from '../backend/index.js';
import { ZOO } from '../models/zoo.js';
import { writeFileAtomic } from '../util/atomic.js';
import { check, RobustError } from '../util/errors.js';
import { number, optionsOrExit, positiveInt } from '../cli/options.js';
import { formatSummary, summarize, type MetricSummary } from './bench-stats.js';

interface BenchOptions {
  cases: string;
  models?: string;
  batches?: string;
  rounds: number;
  backends: string;
  attackModels: string;
  seconds: number;
  torch?: string;
  baseline?: string;
  out: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const defaultTorch = path.resolve(
  here,
  '..',
  '..',
  '..',
  'shared',
  'bench',
  'torch_resnet20_bench.py',
);
/** The models the PyTorch reference script builds. */
const TORCH_MODELS = ['resnet20', 'resnet18'];
const METRICS = ['forward', 'forward_folded', 'input_grad', 'input_grad_folded', 'train'] as const;
/** PyTorch's name for each metric (folded or not, its model is the same). */
const torchMetric = (m: string) => m.replace('_folded', '');

const opts = optionsOrExit('bench', () => {
  const o = new Command('bench')
    .description(
      'img/s of forward, input gradient, train step and attacks for zoo ResNets, in rounds alternated with the PyTorch reference',
    )
    .option('--cases <list>', 'model:batch pairs, comma-separated', 'resnet20:128,resnet18:64')
    .option('--models <list>', 'zoo models, comma-separated (with --batches: their cross product)')
    .option('--batches <list>', 'batch sizes, comma-separated (with --models)')
    .option(
      '--rounds <n>',
      'alternated rounds (ours, then PyTorch)',
      positiveInt('--rounds', 100),
      3,
    )
    .option('--backends <list>', `backends, comma-separated: ${BACKENDS.join(', ')}`, 'wasm')
    .option(
      '--attack-models <list>',
      "models whose attacks are timed (PGD-20, APGD-CE-100, FAB-100, Square-5000, APGD-T, FAB-T), or 'none'",
      'resnet20',
    )
    .option('--seconds <x>', 'seconds of timed calls per measurement', number('seconds'), 3)
    .option(
      '--torch <script>',
      "the PyTorch reference script, or 'none' (default: ../shared/bench/torch_resnet20_bench.py when present)",
    )
    .option('--out <file>', 'JSON results', 'bench-results.json')
    .option('--baseline <dist>', "another build's dist/ folder, measured alternately with ours")
    .parse()
    .opts<BenchOptions>();
  check(o.seconds > 0 && o.seconds <= 3600, `--seconds must be in (0, 3600], got ${o.seconds}`);
  check(
    o.torch === undefined || o.torch === 'none' || fs.existsSync(o.torch),
    `--torch: ${o.torch} does not exist (give the reference script, or 'none')`,
  );
  const known = (m: string) =>
    check(
      ZOO.some((e) => e.name === m),
      `unknown model '${m}' (one of: ${ZOO.map((e) => e.name).join(', ')})`,
    );
  // a batch of 4096 CIFAR images is 50 MB of input; far larger ones exhaust the wasm heap
  const batchOf = positiveInt('--batches', 4096);
  const list = (s: string) => s.split(',').map((v) => v.trim().toLowerCase());
  let cases: { model: string; batch: number }[];
  if (o.models !== undefined || o.batches !== undefined) {
    check(
      o.models !== undefined && o.batches !== undefined,
      '--models and --batches go together (or give --cases model:batch,…)',
    );
    const batches = list(o.batches!).map(batchOf);
    cases = list(o.models!).flatMap((model) => batches.map((batch) => ({ model, batch })));
  } else {
    cases = list(o.cases).map((c) => {
      const m = /^([\w-]+):(\S+)$/.exec(c);
      if (!m) throw new RobustError(`--cases: '${c}' is not model:batch`);
      return { model: m[1], batch: batchOf(m[2]) };
    });
  }
  cases.forEach((c) => known(c.model));
  const attackModels = o.attackModels === 'none' ? [] : list(o.attackModels);
  attackModels.forEach(known);
  const backends = list(o.backends);
  for (const b of backends)
    check(
      (BACKENDS as readonly string[]).includes(b),
      `unknown backend '${b}' (one of: ${BACKENDS.join(', ')})`,
    );
  check(
    o.baseline === undefined || fs.existsSync(path.join(o.baseline, 'scripts', 'bench-case.js')),
    `--baseline: ${o.baseline}/scripts/bench-case.js does not exist (give a built dist/ folder)`,
  );
  const torch = o.torch ?? (fs.existsSync(defaultTorch) ? defaultTorch : 'none');
  return { ...o, cases, attackModels, backends, torch };
});

type Row = Record<string, unknown>;

/** One measurement of ours (or of the baseline's dist/), in a fresh process. */
function measureOurs(
  model: string,
  batch: number,
  backend: string,
  dist = path.dirname(here),
): Row {
  const part = `${opts.out}.part-${process.pid}.json`;
  const args = [
    path.join(dist, 'scripts', 'bench-case.js'),
    '--model',
    model,
    '--batch',
    String(batch),
    '--backend',
    backend,
    '--seconds',
    String(opts.seconds),
    '--out',
    part,
  ];
  if (opts.attackModels.includes(model)) args.push('--attacks');
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !fs.existsSync(part))
    throw new RobustError(`bench: measuring ${model} b${batch} on ${backend} failed`);
  const row = JSON.parse(fs.readFileSync(part, 'utf8')) as Row;
  fs.rmSync(part);
  return row;
}

/** One run of the PyTorch reference (img/s by metric), or null when it cannot run here. */
function measureTorch(
  model: string,
  batch: number,
  threads: number,
): Record<string, number> | null {
  if (opts.torch === 'none' || !TORCH_MODELS.includes(model)) return null;
  const r = spawnSync(
    fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
    [opts.torch, String(batch), String(threads), model],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    console.log(
      `PyTorch reference not run (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`,
    );
    return null;
  }
  return Object.fromEntries(
    [...r.stdout.matchAll(/^(\w+) ([\d.]+) img\/s$/gm)].map((m) => [m[1], Number(m[2])]),
  );
}

const line = (row: Row) =>
  METRICS.map((m) => `${m} ${row[m]}`).join('  ') +
  (row.attacks
    ? '  ' +
      Object.entries(row.attacks as object)
        .map(([k, v]) => `${k} ${v}`)
        .join('  ')
    : '');

const rounds: { round: number; load: number[]; ours: Row[]; torch: Row[] }[] = [];
for (let r = 1; r <= opts.rounds; r++) {
  const round = {
    round: r,
    load: os.loadavg().map((l) => +l.toFixed(2)),
    ours: [] as Row[],
    torch: [] as Row[],
  };
  rounds.push(round);
  console.log(`round ${r}/${opts.rounds} (load average ${round.load.join(' ')})`);
  for (const { model, batch } of opts.cases) {
    let threads = 1;
    for (const backend of opts.backends) {
      if (opts.baseline) {
        const base = { ...measureOurs(model, batch, backend, opts.baseline), baseline: true };
        round.ours.push(base);
        console.log(`  baseline ${backend} ${model} b${batch}: ${line(base)} img/s`);
      }
      const row = measureOurs(model, batch, backend);
      threads = row.threads as number;
      round.ours.push(row);
      console.log(`  ours    ${backend} ${model} b${batch}: ${line(row)} img/s`);
    }
    const t = measureTorch(model, batch, threads);
    if (t) {
      round.torch.push({ model, batch, threads, ...t });
      console.log(
        `  PyTorch ${model} b${batch} (${threads} threads): ${Object.entries(t)
          .map(([k, v]) => `${k} ${v}`)
          .join('  ')} img/s`,
      );
    }
  }
}

// Per case and backend: each metric's median and range over the rounds, and the ratio to PyTorch.
const summary: Row[] = [];
console.log(`\n${opts.rounds} rounds: median img/s (min–max), PyTorch's, ratio ours/PyTorch`);
for (const { model, batch } of opts.cases)
  for (const backend of opts.backends) {
    const find = (r: (typeof rounds)[number], baseline: boolean) =>
      r.ours.find(
        (o) =>
          o.model === model &&
          o.batch === batch &&
          o.backend === backend &&
          !!o.baseline === baseline,
      )!;
    const ours = rounds.map((r) => find(r, false));
    const base = opts.baseline ? rounds.map((r) => find(r, true)) : null;
    const torch = rounds.map((r) => r.torch.find((t) => t.model === model && t.batch === batch));
    const metrics: Record<string, MetricSummary> = {};
    for (const m of METRICS)
      metrics[m] = summarize(
        ours.map((o) => o[m] as number),
        torch.map((t) => (t ? (t[torchMetric(m)] as number) : null)),
      );
    for (const a of Object.keys((ours[0].attacks as object | undefined) ?? {}))
      metrics[a] = summarize(
        ours.map((o) => (o.attacks as Record<string, number>)[a]),
        ours.map(() => null),
      );
    // ours against the baseline, round by round (its "PyTorch" columns are the baseline's)
    const againstBaseline: Record<string, MetricSummary> = {};
    if (base)
      for (const m of METRICS)
        againstBaseline[m] = summarize(
          ours.map((o) => o[m] as number),
          base.map((o) => o[m] as number),
        );
    const entry = {
      model,
      batch,
      backend,
      metrics,
      ...(base ? { against_baseline: againstBaseline } : {}),
      peak_rss_mib: Math.max(...ours.map((o) => o.peak_rss_mib as number)),
      live_tensors_after: Math.max(...ours.map((o) => o.live_tensors_after as number)),
      conv_kernels: ours[0].conv_kernels,
    };
    summary.push(entry);
    console.log(`${model} b${batch} ${backend} (${entry.conv_kernels}):`);
    for (const [m, s] of Object.entries(metrics))
      console.log(`  ${m.padEnd(18)} ${formatSummary(s)}`);
    for (const [m, s] of Object.entries(againstBaseline))
      console.log(
        `  ${m.padEnd(18)} baseline ${s.torch} (${s.torchRange![0]}–${s.torchRange![1]}), ratio ours/baseline ${s.ratio} (${s.ratioRange![0]}–${s.ratioRange![1]})`,
      );
    console.log(
      `  peak RSS ${entry.peak_rss_mib} MiB, live tensors after the run: ${entry.live_tensors_after}`,
    );
  }

writeFileAtomic(
  opts.out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      cpus: os.cpus().length,
      node: process.version,
      rounds: opts.rounds,
      seconds: opts.seconds,
      torch_script: opts.torch,
      baseline: opts.baseline ?? null,
      summary,
      every_round: rounds,
    },
    null,
    2,
  ),
);
process.exit(0);
