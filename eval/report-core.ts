/** A grid's results as text (eval/report.ts writes them): CSV (one row per model × attack × eps), JSON, Markdown and an HTML report with plots. */
import type { NormName } from '../attacks/norms.js';
import { stringify } from 'csv-stringify/sync';
import type { TopLevelSpec } from 'vega-lite';
import { formatEps } from '../util/format.js';
import type { CellResult, GridResult } from './grid-core.js';
import { fromBase64 } from '../util/platform.js';
import { sanityFlags, type Flag } from './sanity-flags.js';
import { html, md, trustedHtml, type Markup, type Value } from './markup.js';
import { describeCompute, legacyCompute } from '../backend/variant.js';

const NORM_LABEL: Record<NormName, string> = { linf: 'Linf', l2: 'L2', l1: 'L1' };

export const CSV_COLUMNS = [
  'model',
  'arch',
  'params',
  'defense',
  'attack',
  'after',
  'norm',
  'eps',
  'alpha',
  'steps',
  'restarts',
  'eot_samples',
  'seed',
  'n',
  'clean_acc',
  'robust_acc',
  'success_rate',
  'linf_mean',
  'linf_max',
  'l2_mean',
  'l2_max',
  'l1_mean',
  'l1_max',
  'seconds',
  'backend',
  'compute',
] as const;

type CsvRow = Record<(typeof CSV_COLUMNS)[number], string | number>;

/** One row per model × attack × eps, then the worst case over attacks per model × eps. */
/** The run's compute variant; results written before it was recorded read as their backend's of then. */
const runCompute = (r: GridResult) => r.compute ?? legacyCompute(r.backend);
/** The backend line: the run's, or every backend and variant its cells were computed on when they differ (reused cells). */
function backendLine(r: GridResult): string {
  const on = r.computed_on ?? [];
  if (on.length === 1) return `backend ${describeCompute(on[0].backend, on[0].compute)}`;
  if (on.length > 1)
    return `cells computed on ${on.map((e) => `${describeCompute(e.backend, e.compute)} (${e.cells} cells)`).join(', ')}`;
  return `backend ${describeCompute(r.backend, runCompute(r))}`;
}

/** Where a cell was computed: its own record, else (results from before cells kept it) the run's. */
const cellBackend = (r: GridResult, c: CellResult) => c.backend ?? r.backend;
const cellCompute = (r: GridResult, c: CellResult) =>
  c.compute ?? (c.backend ? legacyCompute(c.backend) : runCompute(r));
/** The distinct values, joined: a worst case over cells computed on different variants names them all. */
const distinct = (values: string[]) => [...new Set(values)].join(' + ');

function csvRows(r: GridResult): CsvRow[] {
  const rows: CsvRow[] = [];
  for (const m of r.models) {
    const base = {
      model: m.model,
      arch: m.arch,
      params: m.params,
      defense: m.defense,
      backend: r.backend,
      compute: runCompute(r),
      seed: r.config.seed,
    };
    for (const c of r.cells.filter((c) => c.model === m.model)) {
      const s = c.settings;
      rows.push({
        ...base,
        backend: cellBackend(r, c),
        compute: cellCompute(r, c),
        attack: c.attack,
        after: (c.after ?? []).join('+'),
        norm: s.norm,
        eps: c.eps,
        alpha: s.alpha ?? '',
        steps: s.steps ?? '',
        restarts: s.restarts ?? '',
        eot_samples: s.eotSamples,
        n: c.stats.n,
        clean_acc: c.stats.clean_acc,
        robust_acc: c.stats.robust_acc,
        success_rate: c.stats.success_rate,
        linf_mean: c.stats.linf_mean,
        linf_max: c.stats.linf_max,
        l2_mean: c.stats.l2_mean,
        l2_max: c.stats.l2_max,
        l1_mean: c.stats.l1_mean ?? '',
        l1_max: c.stats.l1_max ?? '',
        seconds: c.stats.seconds,
      });
    }
    for (const w of r.worst.filter((w) => w.model === m.model)) {
      const cells = r.cells.filter((c) => c.model === m.model && c.eps === w.eps);
      rows.push({
        ...base,
        // the worst case is made of these cells: their backends and variants, not the run's
        ...(cells.length
          ? {
              backend: distinct(cells.map((c) => cellBackend(r, c))),
              compute: distinct(cells.map((c) => cellCompute(r, c))),
            }
          : {}),
        attack: r.config.cascade ? finalLabel(r) : 'worst-case',
        after: '',
        norm: r.config.norm,
        eps: w.eps,
        alpha: '',
        steps: '',
        restarts: '',
        eot_samples: '',
        n: w.n,
        clean_acc: w.clean_acc,
        robust_acc: w.robust_acc,
        success_rate: w.clean_acc > 0 ? 1 - w.robust_acc / w.clean_acc : 0,
        linf_mean: '',
        linf_max: '',
        l2_mean: '',
        l2_max: '',
        l1_mean: '',
        l1_max: '',
        seconds: cells.reduce((t, c) => t + c.stats.seconds, 0),
      });
    }
  }
  return rows;
}

/**
 * A text field that a spreadsheet would run as a formula (starting with = + - @, tab or CR) gets
 * a leading apostrophe, the usual defence against CSV injection; numbers are written as numbers.
 */
const inert = (v: string | number) =>
  typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;

export function toCsv(r: GridResult): string {
  const rows = csvRows(r).map((row) =>
    Object.fromEntries(Object.entries(row).map(([k, v]) => [k, inert(v)])),
  );
  return stringify(rows, { header: true, columns: [...CSV_COLUMNS] });
}

const pct = (v: number) => (100 * v).toFixed(2);
const epsLabel = formatEps;

/** How many test images the grid evaluated (the limit, or fewer when the data set is smaller). */
const imagesOf = (r: GridResult) =>
  r.models.length ? Math.max(...r.models.map((m) => m.n)) : r.config.limit;

function protocolNote(r: GridResult): string {
  const predicted = r.models
    .filter((m) => m.labels === 'predicted')
    .map((m) => modelLabel(r, m.model));
  const labels = predicted.length
    ? ` Labels of ${predicted.join(', ')}: the model's own clean predictions (--labels predicted): robust accuracy is the share of its decisions no attack changed (clean accuracy is 100% unless the model is randomized, when another draw may decide otherwise).`
    : '';
  if (!r.config.cascade)
    return `Worst case: an example counts as robust only if it survives every attack.${labels}`;
  const name = r.config.preset ? `${finalLabel(r)} (preset ${r.config.preset})` : 'Cascade';
  return `${name}: each attack runs only on the examples the attacks above it left robust; a "+ attack" row is the robust accuracy after it, the last row the final one.${labels}`;
}

/** The last row's name: a cascade's final accuracy (AutoAttack's, for its presets), else the worst case over attacks. */
function finalLabel(r: GridResult): string {
  if (!r.config.cascade) return 'worst case';
  return r.config.preset?.startsWith('autoattack')
    ? r.config.preset.replace(/^autoattack/, 'AutoAttack')
    : 'cascade';
}

/**
 * The table: per model, one row per attack and the worst case; columns clean and robust per eps.
 * In a cascade each attack's row is the robust accuracy after it and all before it ("+ name").
 */
function tableRows(r: GridResult): {
  header: string[];
  rows: { model: string; cells: string[]; worst: boolean }[];
} {
  const eps = r.config.eps;
  const header = ['model', 'defense', 'attack', 'clean', ...eps.map((e) => `eps ${epsLabel(e)}`)];
  const rows: { model: string; cells: string[]; worst: boolean }[] = [];
  for (const m of r.models) {
    const label = modelLabel(r, m.model);
    r.config.attacks.forEach((attack, i) => {
      const byEps = eps.map((e) =>
        r.cells.find((c) => c.model === m.model && c.attack === attack && c.eps === e),
      );
      const name = r.config.cascade && i > 0 ? `+ ${attack}` : attack;
      rows.push({
        model: m.model,
        worst: false,
        cells: [
          label,
          m.defense,
          name,
          pct(m.clean_acc),
          ...byEps.map((c) => (c ? pct(c.stats.robust_acc) : '–')),
        ],
      });
    });
    const worst = eps.map((e) => r.worst.find((w) => w.model === m.model && w.eps === e));
    rows.push({
      model: m.model,
      worst: true,
      cells: [
        label,
        m.defense,
        finalLabel(r),
        pct(m.clean_acc),
        ...worst.map((w) => (w ? pct(w.robust_acc) : '–')),
      ],
    });
  }
  return { header, rows };
}

/**
 * A short name per model: its folder name, with as many parent folders as it takes to tell it
 * from the others (two runs' `…/a/checkpoint` and `…/b/checkpoint` become `a/checkpoint`, `b/checkpoint`).
 */
export function modelLabel(r: GridResult, model: string): string {
  const parts = (m: string) => m.split(/[\\/]+/).filter(Boolean);
  const mine = parts(model);
  const others = r.models
    .map((m) => m.model)
    .filter((m) => m !== model)
    .map(parts);
  for (let k = 1; k < mine.length; k++) {
    const tail = mine.slice(-k).join('/');
    if (others.every((o) => o.slice(-k).join('/') !== tail)) return tail;
  }
  return model;
}

function flagText(r: GridResult, f: Flag): string {
  return `${modelLabel(r, f.model)}: [${f.check}] ${f.message}`;
}

/** One table line; every cell is escaped by `md`, so no value can add a column, a line or markup. */
const mdRow = (cells: Value[]) =>
  md`| ${cells.map((c, i) => (i === 0 ? md`${c}` : md` | ${c}`))} |`;

export function toMarkdown(r: GridResult, flags: Flag[] = sanityFlags(r)): string {
  const { header, rows } = tableRows(r);
  const lines: Markup[] = [
    md`# Robustness evaluation`,
    md``,
    md`${NORM_LABEL[r.config.norm]} robust accuracy (%) on the first ${imagesOf(r)} test images; ${backendLine(r)}; seed ${r.config.seed}; ${r.date}.`,
    md`${protocolNote(r)}`,
    ...(r.incomplete ? [md`**Incomplete:** ${r.incomplete}.`] : []),
    md``,
    mdRow(header),
    md`|${header.map(() => md`---|`)}`,
    ...rows.map((row) => mdRow(row.cells.map((c, i) => (row.worst && i >= 2 ? md`**${c}**` : c)))),
    md``,
    flags.length ? md`## Sanity flags` : md`Sanity checks: no flags.`,
    ...flags.map((f) => md`- ${flagText(r, f)}`),
    md``,
  ];
  return lines.join('\n');
}

/** vega and vega-lite load on the first plot: ~1 s of every robust start otherwise, and most never plot. */
async function svg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Robust accuracy against eps, one line per attack plus the worst case. */
export function epsPlotSpec(r: GridResult, model: string): TopLevelSpec {
  // the dashed line: the worst case over attacks, or a cascade's final accuracy (AutoAttack's), as the table names it
  const last = finalLabel(r);
  const values = [
    ...r.cells
      .filter((c) => c.model === model)
      .map((c) => ({ eps: c.eps, acc: 100 * c.stats.robust_acc, attack: c.attack })),
    ...r.worst
      .filter((w) => w.model === model)
      .map((w) => ({ eps: w.eps, acc: 100 * w.robust_acc, attack: last })),
  ];
  // ticks at the grid's budgets, labelled as the table labels them (8/255, 0.1), not vega's 8.000000
  const labelExpr = r.config.eps.reduceRight(
    (rest, e) => `datum.value === ${JSON.stringify(e)} ? ${JSON.stringify(formatEps(e))} : ${rest}`,
    'datum.label',
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${modelLabel(r, model)}: robust accuracy vs eps`,
    width: 360,
    height: 220,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'eps',
        type: 'quantitative',
        title: `eps (${NORM_LABEL[r.config.norm]})`,
        axis: { values: r.config.eps, labelExpr },
      },
      y: {
        field: 'acc',
        type: 'quantitative',
        title: 'robust accuracy (%)',
        scale: { domain: [0, 100] },
      },
      color: { field: 'attack', type: 'nominal' },
      strokeDash: {
        condition: { test: `datum.attack === ${JSON.stringify(last)}`, value: [4, 2] },
        value: [1, 0],
      },
    },
  } as TopLevelSpec;
}

/** Clean accuracy against worst-case robust accuracy at the largest eps, one point per model. */
function tradeoffSpec(r: GridResult): TopLevelSpec {
  const maxEps = Math.max(...r.config.eps);
  const values = r.models.map((m) => ({
    model: modelLabel(r, m.model),
    defense: m.defense,
    clean: 100 * m.clean_acc,
    robust: 100 * (r.worst.find((w) => w.model === m.model && w.eps === maxEps)?.robust_acc ?? NaN),
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `accuracy vs robustness (worst case at eps ${epsLabel(maxEps)})`,
    width: 360,
    height: 220,
    data: { values },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 80 },
        encoding: {
          x: {
            field: 'clean',
            type: 'quantitative',
            title: 'clean accuracy (%)',
            scale: { domain: [0, 100] },
          },
          y: {
            field: 'robust',
            type: 'quantitative',
            title: 'robust accuracy (%)',
            scale: { domain: [0, 100] },
          },
          color: { field: 'defense', type: 'nominal' },
        },
      },
      {
        mark: { type: 'text', dx: 8, align: 'left' },
        encoding: {
          x: { field: 'clean', type: 'quantitative' },
          y: { field: 'robust', type: 'quantitative' },
          text: { field: 'model' },
        },
      },
    ],
  } as TopLevelSpec;
}

/** The gallery picture's columns are (width − GAP) / examples wide (eval/gallery.ts: a GAP-pixel margin left). */
const GAP = 2;
/** The gallery is shown at this many screen pixels per image pixel, so its captions fit under each column. */
const ZOOM = 2;

/**
 * The gallery of a cell: its picture and, under each column, the example's true class and the
 * model's class for the adversarial (green when they agree: robust; red when the attack won).
 */
function galleryFigure(cell: CellResult, name: string, caption: Markup): Markup {
  const png = fromBase64(cell.gallery!.slice(0, 32)); // signature + IHDR: the width is bytes 16–19
  const width = png.length >= 20 ? new DataView(png.buffer, png.byteOffset).getUint32(16) : 0;
  const c = cell.gallery_classes;
  const n = c && width > 0 && c.true.length === c.predicted.length ? c.true.length : 0;
  const column = n ? ((width - GAP) / n) * ZOOM : 0;
  return html`<figure>
    <img
      alt="adversarial examples for ${name}"
      ${width > 0 ? html`width="${width * ZOOM}"` : ''}
      src="data:image/png;base64,${cell.gallery!}"
    />
    ${
      n
        ? html`<div
            class="classes"
            style="grid-template-columns: repeat(${n}, ${column}px); padding-left: ${GAP * ZOOM}px"
          >
            ${c!.true.map(
              (t, i) =>
                html`<span class="${t === c!.predicted[i] ? 'kept' : 'fooled'}"
                  >${t}<br />→ ${c!.predicted[i]}</span
                > `,
            )}
          </div>`
        : ''
    }
    <figcaption>${caption}</figcaption>
  </figure> `;
}

export async function toHtml(r: GridResult, flags: Flag[] = sanityFlags(r)): Promise<string> {
  const { header, rows } = tableRows(r);
  const maxEps = Math.max(...r.config.eps);
  // vega's SVG serializer escapes every text and attribute it writes (vega-scenegraph markup.js).
  const plots = (await Promise.all(r.models.map((m) => svg(epsPlotSpec(r, m.model))))).map(
    trustedHtml,
  );
  const tradeoff = trustedHtml(await svg(tradeoffSpec(r)));
  const gallery = r.models.flatMap((m) => {
    const cells = r.cells.filter((c) => c.model === m.model && c.eps === maxEps && c.gallery);
    if (cells.length === 0) return [];
    const strongest = cells.reduce((a, b) => (a.stats.robust_acc <= b.stats.robust_acc ? a : b));
    const name = modelLabel(r, m.model);
    return [
      galleryFigure(
        strongest,
        name,
        html`${name}: ${strongest.attack} at eps ${epsLabel(maxEps)} — originals, perturbations (gray = 0, scaled), adversarials${strongest.gallery_classes ? '; under each: true class → the model’s class for the adversarial' : ''}`,
      ),
    ];
  });
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>robust: evaluation report</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}tr.worst{font-weight:bold;background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:1em}.flag{color:#a00}figure{margin:1em 0}img{image-rendering:pixelated}.classes{display:grid;font-size:11px;text-align:center}.kept{color:#060}.fooled{color:#a00}</style>
</head><body>
<h1>Robustness evaluation</h1>
<p>${html`L<sub>${{ linf: '∞', l2: '2', l1: '1' }[r.config.norm]}</sub>`} robust accuracy (%) on the first ${imagesOf(r)} test images · ${backendLine(r)} · seed ${r.config.seed} · ${r.date}.
${protocolNote(r)}</p>
${r.incomplete ? html`<p class="flag"><strong>Incomplete:</strong> ${r.incomplete}.</p>\n` : ''}<table><thead><tr>${header.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>
${rows.map((row) => html`<tr${row.worst ? html` class="worst"` : ''}>${row.cells.map((c) => html`<td>${c}</td>`)}</tr>\n`)}</tbody></table>
<h2>Sanity checks</h2>
${flags.length ? html`<ul>${flags.map((f) => html`<li class="flag">${flagText(r, f)}</li>`)}</ul>` : html`<p>No flags.</p>`}
<h2>Plots</h2>
<div class="plots">${plots.map((p) => html`<div class="plot">${p}</div>\n`)}<div class="plot">${tradeoff}</div></div>
<h2>Adversarial examples</h2>
${gallery.length ? gallery : html`<p>None kept.</p>`}
</body></html>
`.text;
}

/** The four report files of a grid (name → text): results.csv, results.json, results.md, report.html. */
export async function reportFiles(r: GridResult): Promise<Record<string, string>> {
  const flags = sanityFlags(r);
  return {
    'results.csv': toCsv(r),
    'results.json': JSON.stringify(
      { ...r, cells: r.cells.map(({ gallery: _g, ...c }) => c), flags },
      null,
      2,
    ),
    'results.md': toMarkdown(r, flags),
    'report.html': await toHtml(r, flags),
  };
}
