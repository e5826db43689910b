/** Output safety: no string from a grid or an edited results.json adds markup to report.html or breaks results.md. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  worstCases,
  type CellResult,
  type GridResult,
  type ModelSummary,
} from '../../eval/grid.js';
import { toCsv, toHtml, toMarkdown, writeReports } from '../../eval/report.js';
import { parse } from 'csv-parse/sync';
import { sanityFlags } from '../../eval/sanity-flags.js';
import { robust } from '../cli/fixtures.js';
import { tmpDir } from '../helpers.js';

const PAYLOADS = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "'><x-inj onclick=alert(1)>",
  '</td></tr></table><x-inj>',
  'a | b || c',
  'line one\nline two\r\n| x | y |',
  '`code` ```fence```',
  '**bold** _em_ [link](javascript:alert(1)) ![img](x.png)',
  '&lt;script&gt; &amp; \\| \\',
  '$x$ ~~strike~~ <!-- comment',
];

const mask = (bits: number[]) => Buffer.from(Uint8Array.from(bits)).toString('base64');
const PNG_1x1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** Strings for every free-text field of a grid (model paths, names, attack names, settings, backend, date). */
interface Texts {
  models: [string, string];
  arch: string;
  defense: string;
  attacks: [string, string];
  settingsName: string;
  loss: string;
  backend: string;
  date: string;
  data: string;
  gallery: string;
}

function hostileGrid(t: Texts): GridResult {
  const cells: CellResult[] = [];
  for (const model of t.models) {
    for (const attack of t.attacks) {
      for (const [eps, bits] of [
        [0, [1, 1, 1, 1]],
        [0.03, [1, 0, 1, 0]],
      ] as const) {
        const acc = bits.reduce((a: number, b) => a + b, 0) / 4;
        cells.push({
          model,
          attack,
          eps,
          robust: mask([...bits]),
          gallery: t.gallery,
          gallery_classes: { true: [t.arch, t.defense], predicted: [t.defense, t.data] },
          settings: {
            name: t.settingsName,
            norm: 'linf',
            eps,
            loss: t.loss as 'ce',
            mode: 'inference',
            eotSamples: 1,
            seed: 0,
            steps: 3,
          },
          stats: {
            n: 4,
            clean_acc: 1,
            robust_acc: acc,
            success_rate: 1 - acc,
            attacked: 4,
            linf_mean: eps,
            linf_max: eps,
            l2_mean: 0,
            l2_max: 0,
            seconds: 1,
            img_per_s: 4,
          },
        });
      }
    }
  }
  const checks = {
    zero_grad_share: 0.5,
    nonfinite_grad_share: 0,
    no_ascent_share: 0,
    outputs_look_like_probabilities: true,
    checked: 4,
  };
  const models: ModelSummary[] = t.models.map((model) => ({
    model,
    arch: t.arch,
    params: 10,
    defense: t.defense,
    randomized: true,
    n: 4,
    clean_acc: 1,
    checks,
  }));
  return {
    config: {
      models: [...t.models],
      attacks: [...t.attacks],
      eps: [0, 0.03],
      norm: 'linf',
      limit: 4,
      batchSize: 4,
      seed: 0,
      data: t.data,
    },
    backend: t.backend,
    date: t.date,
    models,
    cells,
    worst: worstCases(models, cells, [...t.attacks]),
  };
}

/** Every way a string can add markup to the HTML: tags other than the report's, event attributes, stray images. */
function htmlProblems(text: string): string[] {
  const problems: string[] = [];
  if (/<\s*(script|iframe|x-inj|!--)/i.test(text)) problems.push('an injected tag or comment');
  for (const [tag] of text.matchAll(/<[a-zA-Z][^>]*>/g)) {
    const bare = tag.replace(/"[^"]*"|'[^']*'/g, '""');
    if (/\son\w*\s*=/i.test(bare)) problems.push(`an event attribute in ${tag.slice(0, 80)}`);
    if (
      /^<img\b/i.test(tag) &&
      !/^<img\s+alt="[^"<>]*"(?:\s+width="\d+")?\s+src="data:image\/png;base64,[^"<>]*"\s*\/?>$/.test(
        tag,
      )
    )
      problems.push(`a foreign image tag ${tag.slice(0, 80)}`);
  }
  return problems;
}

/** Characters of `line` that are not backslash-escaped. */
function unescaped(line: string): string {
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\') i++;
    else out += line[i];
  }
  return out;
}

/** Every way a string can break results.md: extra lines, extra columns, markup characters from the data. */
function markdownProblems(text: string, r: GridResult): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  const rows = r.models.length * (r.config.attacks.length + 1);
  if (lines.length !== 10 + rows + sanityFlags(r).length)
    problems.push(`${lines.length} lines, expected ${10 + rows + sanityFlags(r).length}`);
  const table = lines.filter((l) => l.startsWith('|'));
  if (table.length !== rows + 2) problems.push(`${table.length} table lines, expected ${rows + 2}`);
  const columns = 4 + r.config.eps.length;
  for (const l of table)
    if ((unescaped(l).match(/\|/g) ?? []).length !== columns + 1)
      problems.push(`a table line with other than ${columns} columns: ${l.slice(0, 80)}`);
  for (const l of lines) {
    const plain = unescaped(l).replace(/(?<=\| )\*\*|\*\*(?= \|)/g, ''); // the worst-case row's own bold
    const bad = plain.match(/[<>`_*[\]~$&]/);
    if (bad) problems.push(`an unescaped '${bad[0]}' in: ${l.slice(0, 80)}`);
  }
  return problems;
}

const text = fc.oneof(
  fc.constantFrom(...PAYLOADS),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const texts: fc.Arbitrary<Texts> = fc.record({
  models: fc.tuple(text, text).filter(([a, b]) => a !== b),
  arch: text,
  defense: text,
  attacks: fc.tuple(text, text).filter(([a, b]) => a !== b),
  settingsName: text,
  loss: text,
  backend: text,
  date: text,
  data: text,
  gallery: fc.oneof(fc.constant(PNG_1x1), text),
});

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

describe('report output safety', () => {
  it('fuzz: any string in any field of the grid stays text in report.html and inside its cell in results.md', async () => {
    await fc.assert(
      fc.asyncProperty(texts, async (t) => {
        const r = hostileGrid(t);
        const flags = sanityFlags(r);
        expect(flags.length).toBeGreaterThan(0); // flag texts carry attack names too
        const h = await toHtml(r, flags);
        const m = toMarkdown(r, flags);
        expect(htmlProblems(h)).toEqual([]);
        expect(markdownProblems(m, r)).toEqual([]);
        // no control character of the data reaches either (a terminal would act on an ESC)
        for (const out of [h, m]) expect(out).not.toMatch(CONTROLS);
      }),
      { numRuns: 30 },
    );
  });

  it('the payloads reach the report as visible, escaped text', async () => {
    const r = hostileGrid({
      models: ['runs/<x-inj>a', 'b|c'],
      arch: 'x',
      defense: '"><img src=x onerror=alert(1)>',
      attacks: ['<script>alert(1)</script>', 'p\nq\u001b[2J\u0085'],
      settingsName: 'x',
      loss: 'ce',
      backend: 'a`b`',
      date: 'd',
      data: 'x',
      gallery: PNG_1x1,
    });
    const h = await toHtml(r);
    expect(h).toContain('&lt;x-inj&gt;a');
    expect(h).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(h).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const m = toMarkdown(r);
    expect(m).toContain('b\\|c');
    expect(m).toContain('p q');
    expect(m).toContain('a\\`b\\`');
    expect(m).toContain('\\<script\\>');
    // control characters as visible escapes: \u001b in the HTML, its backslash escaped in Markdown
    expect(h).toContain('p\nq\\u001b[2J\\u0085');
    expect(m).toContain('p q\\\\u001b\\[2J\\\\u0085');
    for (const out of [h, m]) expect(out).not.toMatch(CONTROLS);
  });

  it('robust export html/md of a results.json with markup in every free string field keeps it text', async () => {
    const dir = tmpDir('export-hostile');
    const base = hostileGrid({
      models: ['m1', 'm2'],
      arch: 'resnet20',
      defense: 'none',
      attacks: ['fgsm', 'pgd:3'],
      settingsName: 'fgsm',
      loss: 'ce',
      backend: 'wasm',
      date: 'today',
      data: 'sample',
      gallery: PNG_1x1,
    });
    await writeReports(dir, base);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
    // Every string a user could change without making the file invalid becomes a payload
    // (attack names, norms, modes and masks are checked against their few valid values).
    const fixed =
      /^(config\.attacks\.\d+|config\.norm|cells\.\d+\.(attack|robust|gallery)|cells\.\d+\.settings\.(norm|mode)|worst\..*|flags\..*)$/;
    const payloadFor = new Map<string, string>();
    let replaced = 0;
    const walk = (v: unknown, at: string): unknown => {
      if (typeof v === 'string') {
        if (fixed.test(at)) return v;
        if (!payloadFor.has(v))
          payloadFor.set(v, `${PAYLOADS[payloadFor.size % PAYLOADS.length]} #${payloadFor.size}`);
        replaced++;
        return payloadFor.get(v);
      }
      if (Array.isArray(v)) return v.map((x, i) => walk(x, `${at}.${i}`));
      if (v && typeof v === 'object')
        return Object.fromEntries(
          Object.entries(v).map(([k, x]) => [k, walk(x, at ? `${at}.${k}` : k)]),
        );
      return v;
    };
    const hostile = walk(json, '') as GridResult;
    expect(replaced).toBeGreaterThan(20);
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(hostile));
    const h = robust(['export', 'html', dir, '--out', '-']);
    expect(h.stderr).toBe('');
    expect(h.code).toBe(0);
    expect(htmlProblems(h.stdout)).toEqual([]);
    expect(h.stdout).toContain('&lt;x-inj&gt;');
    const m = robust(['export', 'md', dir, '--out', '-']);
    expect(m.code).toBe(0);
    const shown = { ...hostile, config: { ...hostile.config, eps: [0, 0.03] } } as GridResult;
    expect(
      markdownProblems(m.stdout, {
        ...shown,
        worst: worstCases(shown.models, shown.cells, shown.config.attacks),
      }),
    ).toEqual([]);
  });

  it('results.csv: no text field starts like a spreadsheet formula (CSV injection); numbers stay numbers', () => {
    const formulas = ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\t=1', '\r=1'];
    fc.assert(
      fc.property(fc.constantFrom(...formulas), fc.constantFrom(...formulas), (a, b) => {
        const t: Texts = {
          models: [a, `${b}2`],
          arch: a,
          defense: b,
          attacks: [a, `${b}x`],
          settingsName: a,
          loss: b,
          backend: a,
          date: b,
          data: a,
          gallery: PNG_1x1,
        };
        const rows = parse(toCsv(hostileGrid(t)), { columns: true }) as Record<string, string>[];
        for (const row of rows) {
          for (const [k, v] of Object.entries(row)) {
            if (['model', 'arch', 'defense', 'attack', 'backend'].includes(k))
              expect(v, k).not.toMatch(/^[=+\-@\t\r]/);
          }
          expect(Number(row.robust_acc)).not.toBeNaN();
        }
      }),
      { numRuns: 20 },
    );
  });
});
