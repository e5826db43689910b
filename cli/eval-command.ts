/** `robust eval` (the models × attacks × eps grid) and `robust export` (re-export a finished run). */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describeBackend, initBackend } from '../backend/index.js';
import {
  runGrid,
  worstCases,
  type CellResult,
  type EvalConfig,
  type EvalModel,
  type GridResult,
} from '../eval/grid.js';
import { toCsv, toHtml, toMarkdown, writeReports } from '../eval/report.js';
import { sanityFlags } from '../eval/sanity-flags.js';
import { CONFIG_KEYS, parseEvalConfig } from '../eval/config.js';
import { PRESETS } from '../eval/presets.js';
import { NO_DIGEST, readCell } from '../eval/cells.js';
import { isPartialFile } from '../eval/partial-cells.js';
import { checkGridResult } from '../eval/result-shape.js';
import { check, optionError, RobustError } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readJsonFile } from '../util/json-file.js';
import { escapeControls, formatEps } from '../util/format.js';
import { logInterval } from '../util/task-progress.js';
import { ensureWritableDir, outputFolder } from '../util/dirs.js';
import {
  addModelOptions,
  MODEL_OPTION_PARSERS,
  modelOptionsFrom,
  type ModelCliOptions,
} from './model-input.js';
import { loadGridModels } from '../eval/model-data.js';
import { LIMITS, nonNegativeInt, positiveInt } from './options.js';
import { Interrupt } from './interrupt.js';
import { runGridShard } from '../eval/shards.js';
import { shardDir } from '../eval/shard-files.js';
import { parseShard, shardLabel, type Shard } from '../eval/shard-plan.js';

interface EvalCliOptions extends ModelCliOptions {
  models?: string;
  model?: string;
  attacks?: string;
  preset?: string;
  cascade?: boolean;
  eps?: string;
  norm?: string;
  steps?: number;
  restarts?: number;
  eotSamples?: number;
  limit?: number;
  batchSize?: number;
  seed?: number;
  data?: string;
  dataDir?: string;
  out: string;
  config?: string;
  backend: string;
  threads?: number;
  quiet?: boolean;
  shard?: Shard;
}

/** The grid from --config (a JSON file) with command-line options taking precedence. */
function evalConfig(o: EvalCliOptions, cmd: Command): EvalConfig {
  let file: Record<string, unknown> = {};
  if (o.config) {
    file = readJsonFile(o.config, `${o.config}: no such file`);
    check(
      typeof file === 'object' && file !== null && !Array.isArray(file),
      `${o.config}: expected a JSON object`,
    );
  }
  const values: Record<string, unknown> = { ...file };
  // how to feed the models (--input-range, --mean, --std, --output, --labels) may be in the file too; the flags win
  for (const [key, parse] of Object.entries(MODEL_OPTION_PARSERS)) {
    if (!(key in values)) continue;
    const v = values[key];
    delete values[key];
    if (cmd.getOptionValueSource(key) === 'cli') continue;
    check(
      typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'number')),
      `${o.config}: ${key} must be a string such as "0,255" or a list of numbers`,
    );
    (o as unknown as Record<string, unknown>)[key] = parse(Array.isArray(v) ? v.join(',') : v);
  }
  for (const key of CONFIG_KEYS)
    if (cmd.getOptionValueSource(key) === 'cli') values[key] = o[key as keyof EvalCliOptions];
  if (o.model !== undefined) {
    check(o.models === undefined, 'give --models or --model, not both');
    values.models = o.model;
  }
  try {
    return parseEvalConfig(
      values,
      o.config ?? 'the command line',
      Object.keys(MODEL_OPTION_PARSERS),
    );
  } catch (e) {
    const fromFile = (key: string) => key in file && cmd.getOptionValueSource(key) !== 'cli';
    throw o.config ? blameConfigFile(e, o.config, fromFile) : e;
  }
}

/**
 * An option error names values from the config file as the file spells them, not as flags the
 * user never typed: after the file's name when all came from it ("grid.json: eps must be …"),
 * else each with the file ("leave out steps in grid.json (or give --attacks …)").
 */
function blameConfigFile(e: unknown, file: string, fromFile: (key: string) => boolean): unknown {
  const words = e instanceof RobustError ? e.words : undefined;
  if (!words) return e;
  const named: string[] = [];
  words((key) => (named.push(key), key));
  if (!named.some(fromFile)) return e;
  if (named.every(fromFile)) return new RobustError(`${file}: ${words((key) => key)}`);
  return optionError((n) => words((key) => (fromFile(key) ? `${key} in ${file}` : n(key))));
}

/**
 * The saved grid with each cell's gallery image put back from the cell files. A damaged
 * results.json is one RobustError; a damaged cell file only loses its gallery (with a warning).
 */
export function readGrid(dir: string, warn: (message: string) => void = console.error): GridResult {
  const file = path.join(dir, 'results.json');
  const r = checkGridResult(
    readJsonFile(file, `${file}: no such file (run \`robust eval --out ${dir}\` first)`),
    file,
  );
  const cellDir = path.join(dir, 'cells');
  if (fs.existsSync(cellDir)) {
    const saved: CellResult[] = [];
    let undigested = 0;
    for (const f of fs
      .readdirSync(cellDir)
      .filter((f) => f.endsWith('.json') && !isPartialFile(f))) {
      const { cell, damaged } = readCell(path.join(cellDir, f));
      if (damaged === NO_DIGEST) undigested++;
      else if (damaged)
        warn(
          `warning: ${path.join(cellDir, f)}: damaged cell (${damaged}); its gallery is left out`,
        );
      if (cell) saved.push(cell);
    }
    // results written before cells carried digests (the zoo's older tables): one line, not one per file
    if (undigested)
      warn(
        `note: ${undigested} cell file(s) in ${cellDir} have no digest (written by a robust older than digests): their galleries, if any, are left out; the numbers come from results.json`,
      );
    for (const c of r.cells)
      c.gallery = saved.find(
        (s) =>
          s.model === c.model && s.attack === c.attack && s.eps === c.eps && s.robust === c.robust,
      )?.gallery;
  }
  return r;
}

/** `robust eval --shard i/n`: this worker's share of the grid, as parts for `robust merge`. */
async function runShard(
  config: EvalConfig,
  models: EvalModel[],
  dispose: () => void,
  o: EvalCliOptions & { shard: Shard },
  banner: string,
  backend: string,
): Promise<void> {
  const label = shardLabel(o.shard);
  if (!o.quiet)
    console.error(
      `${banner}; shard ${label} of a grid of ${config.models.length * config.attacks.length * config.eps.length} cells → ${shardDir(o.out, o.shard)}`,
    );
  const interrupt = new Interrupt(
    `stopping after this batch; this shard's finished parts and batches are kept (run the same command to resume)…`,
  );
  const started = performance.now();
  const run = await runGridShard(config, models, {
    out: o.out,
    backend,
    quiet: o.quiet,
    shard: o.shard,
    shouldStop: () => interrupt.stop,
    onPart: (p) => {
      if (!o.quiet)
        console.error(
          `[shard ${label}] ${path.basename(p.model)} ${p.attack} eps ${formatEps(p.eps)} images ${p.from}–${p.to}: robust ${(100 * p.robust).toFixed(2)}%${p.reused ? ' (reused)' : ` (${p.seconds.toFixed(1)} s)`}`,
        );
    },
  });
  interrupt.release();
  dispose();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (!run.complete) {
    console.error(
      `shard ${label} stopped after ${run.parts} new part(s); run the same command to resume (a part in progress continues at its next batch)`,
    );
    process.exitCode = 130;
    return;
  }
  console.log(
    `shard ${label} done in ${seconds} s: ${run.parts} part(s) computed, ${run.reused} found done, in ${run.dir}; when every shard is done: robust merge ${o.out}`,
  );
}

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description(
      'robustness grid: models × attacks × eps → table, results.csv/json/md, report.html, sanity flags',
    )
    .option(
      '--models <list>',
      'models, comma-separated: zoo:NAME (trained, shipped), run folders, or any TF.js LayersModel/GraphModel folder or model.json',
    )
    .option('--model <name>', 'one model (same as --models)')
    .option(
      '--attacks <list>',
      'attacks, comma-separated, optionally name:steps and :restarts=N, :eot=N (default fgsm,pgd,apgd-ce)',
    )
    .option(
      '--preset <name>',
      `a named protocol instead of --attacks: ${Object.keys(PRESETS).join(', ')} (autoattack = AutoAttack's standard cascade)`,
    )
    .option(
      '--cascade',
      "AutoAttack's protocol: each attack runs only on the examples the attacks before it left robust",
    )
    .option(
      '--eps <list>',
      'budgets, comma-separated (default 0,2/255,4/255,8/255; L2 0,0.125,0.25,0.5; L1 0,3,6,12)',
    )
    .option('--norm <name>', 'linf | l2 | l1 (default linf)')
    .option(
      '--steps <n>',
      "steps for every iterative attack (default: each attack's own)",
      positiveInt('--steps', LIMITS.steps),
    )
    .option(
      '--restarts <n>',
      'restarts for PGD/APGD, draws for random-noise',
      positiveInt('--restarts', LIMITS.restarts),
    )
    .option(
      '--eot-samples <n>',
      'EOT gradient samples (randomized models)',
      positiveInt('--eot-samples', LIMITS.samples),
    )
    .option(
      '--limit <n>',
      'first N test images (default 1000)',
      positiveInt('--limit', LIMITS.images),
    )
    .option(
      '--batch-size <n>',
      'images per attack batch (default 128)',
      positiveInt('--batch-size', LIMITS.batchSize),
    )
    .option('--seed <n>', 'seed (default 0)', nonNegativeInt('--seed', LIMITS.seed))
    .option('--data <name>', "data set (default: the models')")
    .option('--data-dir <dir>', 'where data sets live')
    .option('--out <dir>', 'results folder; finished cells there are reused (resume)', 'results')
    .option(
      '--config <file>',
      'read the grid from a JSON file (keys as the options: models, attacks, eps, norm, steps, limit, …)',
    )
    .option('--quiet', 'no progress output')
    .option('--backend <name>', 'auto | node-gpu | node | wasm | cpu', 'auto')
    .option(
      '--threads <n>',
      'wasm threads (default: the cores this process may use)',
      positiveInt('--threads', LIMITS.threads),
    );
  addModelOptions(cmd);
  cmd
    .option(
      '--shard <i/n|auto>',
      "run worker i's share of the grid (of n, from 0) into --out/shards/ for `robust merge`; auto: from a Kubernetes Indexed Job or a Slurm array",
      (v: string) => parseShard(v),
    )
    .action(async (o: EvalCliOptions, command: Command) => {
      if (!o.quiet) logInterval(); // a bad ROBUST_PROGRESS_SECONDS is refused before any work
      const config = evalConfig(o, command);
      o.out = outputFolder('out', o.out);
      // a worker writes only into its own folder: n workers probing one shared folder would race
      ensureWritableDir(o.shard ? shardDir(o.out, o.shard) : o.out);
      const info = await initBackend({ backend: o.backend, threads: o.threads });
      const grid = await loadGridModels(config, {
        ...modelOptionsFrom(o),
        labels: o.labels,
        dataDir: o.dataDir,
      });
      const { models, data: dataName } = grid;
      const cellsTotal = config.models.length * config.attacks.length * config.eps.length;
      if (o.shard)
        return runShard(
          config,
          models,
          grid.dispose,
          o as EvalCliOptions & { shard: Shard },
          describeBackend(info),
          info.name,
        );
      if (!o.quiet)
        console.error(
          `${describeBackend(info)}; ${cellsTotal} cells (${config.models.length} model(s) × ${config.attacks.length} attack(s) × ${config.eps.length} eps) on ${Math.min(config.limit, models[0]?.test.count ?? config.limit)} ${dataName} test images → ${o.out}`,
        );
      const interrupt = new Interrupt(
        'stopping after this batch; finished cells and batches are kept (run the same command to resume)…',
      );
      let done = 0;
      const { result, complete } = await runGrid(config, models, {
        out: o.out,
        backend: info.name,
        quiet: o.quiet,
        shouldStop: () => interrupt.stop,
        onCell: (c, reused) => {
          done++;
          if (!o.quiet)
            console.error(
              `[${done}/${cellsTotal}] ${escapeControls(path.basename(c.model))} ${c.attack} eps ${formatEps(c.eps)}: robust ${(100 * c.stats.robust_acc).toFixed(2)}%${c.after?.length ? ` after ${[...c.after, c.attack].join(' → ')}` : ''}${reused ? ' (reused)' : ` (${c.stats.seconds.toFixed(0)} s)`}`,
            );
        },
      });
      interrupt.release();
      grid.dispose();
      if (!complete) {
        console.error(
          `stopped with ${done} of ${cellsTotal} cells done; run the same command to resume (a cell in progress continues at its next batch)`,
        );
        process.exitCode = 130;
        return;
      }
      const files = await writeReports(o.out, result);
      console.log(toMarkdown(result));
      if (!o.quiet) console.error(`wrote ${files.join(', ')}`);
    });

  program
    .command('export <format> <dir>')
    .description('re-export a finished `robust eval` folder: csv | json | md | html')
    .option('--out <file>', 'write here instead of <dir>/results.<ext> ("-" = standard output)')
    .action(async (format: string, dir: string, o: { out?: string }) => {
      const ext: Record<string, string> = {
        csv: 'results.csv',
        json: 'results.json',
        md: 'results.md',
        markdown: 'results.md',
        html: 'report.html',
      };
      check(ext[format], `unknown export format '${format}' (csv, json, md, html)`);
      const r = readGrid(dir);
      r.worst = worstCases(r.models, r.cells, r.config.attacks);
      const flags = sanityFlags(r);
      const text =
        format === 'csv'
          ? toCsv(r)
          : format === 'json'
            ? JSON.stringify(
                { ...r, cells: r.cells.map(({ gallery: _g, ...c }) => c), flags },
                null,
                2,
              )
            : format === 'html'
              ? await toHtml(r, flags)
              : toMarkdown(r, flags);
      if (o.out === '-') return void process.stdout.write(text);
      const target = o.out ?? path.join(dir, ext[format]);
      // the export must not replace what it reads: results.json (unless it is the JSON export itself) and the cells
      const inputs = path.resolve(dir);
      const at = path.resolve(target);
      check(
        target.trim() !== '' &&
          !(at === path.join(inputs, 'results.json') && ext[format] !== 'results.json') &&
          !at.startsWith(path.join(inputs, 'cells') + path.sep),
        `--out ${target} would replace the results it exports from: choose another file`,
      );
      writeFileAtomic(target, text);
      console.log(target);
    });
}
