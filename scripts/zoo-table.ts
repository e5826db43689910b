/**
 * Measures the shipped zoo with `robust eval` and writes zoo/README.md from what it printed.
 *
 *   node dist/scripts/zoo-table.js [--data-dir DIR] [--limit 1000] [--keep-grid]
 *
 * Per data set: PGD-20, APGD-CE and APGD-DLR (20 iterations each) at each eps on the first --limit
 * test images, the worst case over the three (AutoAttack-style: DLR is the cross-check for a
 * cross-entropy that saturates), AutoAttack's standard cascade at the data set's main eps, and the
 * sanity flags; results go to zoo/results/<data>-autoattack/ for AutoAttack and
 * zoo/results/<data>/ (finished cells are reused, so a stopped run resumes). Clean accuracy on the
 * full test set comes from each entry's training log (its last — or best — epoch).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import {
  pretrainedDir,
  pretrainedEntries,
  ZOO_PREFIX,
  type PretrainedEntry,
} from '../models/pretrained.js';
import type { GridResult } from '../eval/grid.js';
import { sanityFlags } from '../eval/sanity-flags.js';
import { writeFileAtomic } from '../util/atomic.js';
import { formatEps } from '../util/format.js';
import { describeCompute, legacyCompute } from '../backend/variant.js';

const ATTACKS = ['pgd:20', 'apgd-ce:20', 'apgd-dlr:20'];
/** "pgd:20" → "PGD-20", "apgd-ce:20" → "APGD-CE-20" for column heads. */
const label = (entry: string) => entry.toUpperCase().replace(':', '-');
/** The budgets each data set is reported at (Linf pixels). */
const EPS: Record<string, string> = {
  cifar10: '0,2/255,4/255,8/255',
  'fashion-mnist': '0,0.05,0.1,0.2',
};
/** The budget of each data set's AutoAttack column: the one its robust entries were trained for. */
const AUTOATTACK_EPS: Record<string, string> = { cifar10: '8/255', 'fashion-mnist': '0.1' };

const o = new Command()
  .option('--data-dir <dir>', 'where data sets live')
  .option('--limit <n>', 'test images per cell', '1000')
  .option(
    '--keep-grid',
    'take the attack grid from its saved results.json (as measured then) and run only AutoAttack',
  )
  .parse()
  .opts<{ dataDir?: string; limit: string; keepGrid?: boolean }>();

const robustBin = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'bin',
  'robust.js',
);
const zoo = pretrainedDir();
const pct = (v: number) => (100 * v).toFixed(2);
const hours = (s: number) =>
  s >= 3600
    ? `${(s / 3600).toFixed(1)} h`
    : s >= 60
      ? `${Math.round(s / 60)} min`
      : `${Math.round(s)} s`;

/** `robust eval` of the entries: the attack grid, or (`autoattack`) AutoAttack's standard cascade at one eps. */
function evaluate(data: string, entries: PretrainedEntry[], autoattack = false): GridResult {
  const out = path.join(zoo, 'results', autoattack ? `${data}-autoattack` : data);
  const saved = path.join(out, 'results.json');
  if (o.keepGrid && !autoattack) {
    if (!fs.existsSync(saved))
      throw new Error(`--keep-grid: ${saved} does not exist; run without --keep-grid`);
    return JSON.parse(fs.readFileSync(saved, 'utf8')) as GridResult;
  }
  const what = autoattack
    ? ['--preset', 'autoattack', '--eps', AUTOATTACK_EPS[data] ?? '0.03']
    : ['--attacks', ATTACKS.join(','), '--eps', EPS[data] ?? '0,0.03'];
  const args = [
    robustBin,
    'eval',
    '--models',
    entries.map((e) => ZOO_PREFIX + e.name).join(','),
    ...what,
    '--limit',
    o.limit,
    '--out',
    out,
  ];
  if (o.dataDir) args.push('--data-dir', o.dataDir);
  console.error(`robust ${args.slice(1).join(' ')}`);
  const run = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (run.status !== 0) process.exit(run.status ?? 1);
  return JSON.parse(fs.readFileSync(saved, 'utf8')) as GridResult;
}

/** A cascade's final robust accuracy per model: robust after its last attack. */
function autoAttackAcc(aa: GridResult, model: string): number | undefined {
  const last = aa.config.attacks[aa.config.attacks.length - 1];
  return aa.cells.find((c) => c.model === model && c.attack === last)?.stats.robust_acc;
}

function section(
  data: string,
  entries: PretrainedEntry[],
  r: GridResult,
  aa: GridResult,
): string[] {
  const aaEps = aa.config.eps[0];
  const eps = r.config.eps.filter((e) => e > 0);
  const robust = (model: string, attack: string, e: number) =>
    r.cells.find((c) => c.model === model && c.attack === attack && c.eps === e)?.stats.robust_acc;
  const worst = (model: string, e: number) =>
    r.worst.find((w) => w.model === model && w.eps === e)?.robust_acc;
  const head = ['entry', 'defense', `clean (full test)`, `clean (first ${r.models[0]?.n})`];
  for (const a of [...ATTACKS.map(label), 'worst'])
    for (const e of eps) head.push(`${a} ${formatEps(e)}`);
  head.push(`**AutoAttack ${formatEps(aaEps)}**`);
  const lines = [
    `## ${data}`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
  ];
  for (const e of entries) {
    const model = ZOO_PREFIX + e.name;
    const summary = r.models.find((m) => m.model === model);
    const cells = [
      `\`${model}\``,
      e.defense + (e.eps ? ` (eps ${formatEps(e.eps)})` : ''),
      pct(e.test_acc),
      summary ? pct(summary.clean_acc) : '–',
    ];
    for (const a of ATTACKS) for (const x of eps) cells.push(fmt(robust(model, a, x)));
    for (const x of eps) cells.push(fmt(worst(model, x)));
    cells.push(fmt(autoAttackAcc(aa, model)));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const flags = [...sanityFlags(r), ...sanityFlags(aa)];
  lines.push(
    '',
    flags.length
      ? `Sanity flags: ${flags.map((f) => `${f.model}: ${f.message}`).join('; ')}`
      : 'Sanity checks (eps 0 = clean, monotone in eps, APGD vs PGD, gradients finite, non-zero and pointing uphill, logits not probabilities, Square not stronger than the white-box attacks): no flags.',
  );
  const models = entries.map((e) => ZOO_PREFIX + e.name).join(',');
  lines.push(
    '',
    `Measured by \`robust eval --models ${models} --attacks ${ATTACKS.join(',')} --eps ${EPS[data]} --limit ${r.models[0]?.n}\` on ${computedOnText(r)}, ${r.date.slice(0, 10)}; full results in \`results/${data}/\`.`,
  );
  const seconds = (model: string) =>
    aa.cells
      .filter((c) => c.model === model)
      .map((c) => `${c.attack} ${hours(c.stats.seconds)}`)
      .join(', ');
  lines.push(
    '',
    `AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square, each on the images the ones before left robust) by \`robust eval --models ${models} --preset autoattack --eps ${AUTOATTACK_EPS[data]} --limit ${aa.models[0]?.n}\` on ${computedOnText(aa)}, ${aa.date.slice(0, 10)}; full results in \`results/${data}-autoattack/\`. Time per attack: ${entries.map((e) => `\`${ZOO_PREFIX}${e.name}\` ${seconds(ZOO_PREFIX + e.name)}`).join('; ')}.`,
    '',
  );
  lines.push(
    '| entry | architecture | epochs | training time | backend | command |',
    '|---|---|---|---|---|---|',
  );
  // Entries with a note get numbered footnote marks, in table order.
  const notes = entries.filter((e) => e.note);
  const mark = (e: PretrainedEntry) => '¹²³⁴⁵⁶⁷⁸⁹'[notes.indexOf(e)] ?? `(${notes.indexOf(e) + 1})`;
  for (const e of entries)
    lines.push(
      `| \`${ZOO_PREFIX}${e.name}\` | ${e.architecture}${e.width ? ` (width ${e.width})` : ''} | ${e.epochs} | ${hours(e.train_seconds)}${e.note ? ` ${mark(e)}` : ''} | ${e.backend}${float16Note(e)} | \`${e.command}\` |`,
    );
  if (notes.length > 0)
    lines.push('', ...notes.map((e) => `${mark(e)} \`${ZOO_PREFIX}${e.name}\`: ${e.note}`));
  return [...lines, ''];
}

const fmt = (v: number | undefined) => (v === undefined ? '–' : pct(v));

/**
 * What computed a grid's cells: its backend and variant, or, where reused cells came from another
 * variant (a run resumed under a faster build), each with its number of cells.
 */
const computedOnText = (r: GridResult) =>
  r.computed_on && r.computed_on.length > 1
    ? r.computed_on
        .map((c) => `${describeCompute(c.backend, c.compute)} (${c.cells} cells)`)
        .join(' and ')
    : describeCompute(r.backend, r.compute ?? legacyCompute(r.backend));

/** How float16 weights measured against the run's float32 ones, for the entry's row. */
const float16Note = (e: PretrainedEntry) =>
  e.weights
    ? `; ships float16 weights: ${pct(e.weights.test_acc_float16)}% clean (float32 ${pct(e.weights.test_acc_float32)}%)`
    : '';

const entries = pretrainedEntries();
const byData = new Map<string, PretrainedEntry[]>();
for (const e of entries) byData.set(e.data, [...(byData.get(e.data) ?? []), e]);
const out = [
  '# Trained zoo',
  '',
  'Checkpoints shipped with robust, used as `--model zoo:NAME` (`robust models` lists them). Robust accuracy in %,',
  'Linf, on the first test images; "worst" counts an image as robust only if it survives every attack.',
  'This file is written by `npm run zoo:table` (scripts/zoo-table.ts) from `robust eval` results — do not edit it by hand.',
  '',
];
for (const [data, list] of byData)
  out.push(...section(data, list, evaluate(data, list), evaluate(data, list, true)));
writeFileAtomic(path.join(zoo, 'README.md'), out.join('\n'));
console.error(`wrote ${path.join(zoo, 'README.md')}`);
