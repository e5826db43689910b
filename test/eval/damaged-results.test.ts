/** Damaged cell files and results.json: a cell is recomputed with a warning, results.json is one RobustError. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import {
  runGrid,
  worstCases,
  type CellResult,
  type EvalConfig,
  type EvalModel,
  type GridResult,
} from '../../eval/grid.js';
import { writeCell } from '../../eval/cells.js';
import { cellProblem } from '../../eval/result-shape.js';
import { toCsv, toHtml, toMarkdown, writeReports } from '../../eval/report.js';
import { sanityFlags } from '../../eval/sanity-flags.js';
import { readGrid } from '../../cli/eval-command.js';
import { layersClassifier } from '../../models/classifier.js';
import type { ImageSet } from '../../data/dataset.js';
import { RobustError } from '../../util/errors.js';
import { tinyConvNet } from '../attacks/models.js';
import { tmpDir, SUITE_THREADS } from '../helpers.js';

const set: ImageSet = (() => {
  const n = 12;
  const images = new Uint8Array(n * 8 * 8 * 3);
  for (let i = 0; i < images.length; i++) images[i] = (i * 7919) % 251;
  return {
    images,
    labels: Uint8Array.from({ length: n }, (_, i) => i % 5),
    count: n,
    height: 8,
    width: 8,
    channels: 3,
  };
})();
const config: EvalConfig = {
  models: ['a'],
  attacks: ['fgsm', 'pgd:2'],
  eps: [0, 0.02],
  norm: 'linf',
  limit: 12,
  batchSize: 12,
  seed: 0,
};
let models: EvalModel[];
let reference: GridResult;
let done: string;

/** What must not change when a damaged cell is recomputed (the model is deterministic). */
const numbers = (r: GridResult) =>
  r.cells.map((c) => [
    c.model,
    c.attack,
    c.eps,
    c.robust,
    c.stats.clean_acc,
    c.stats.robust_acc,
    c.stats.n,
  ]);

/** Random damage to a file's text: cut short, bytes overwritten, or replaced by other JSON. */
const damage = (text: string) =>
  fc.oneof(
    fc.nat().map((k) => text.slice(0, k % text.length)),
    fc
      .array(
        fc.tuple(
          fc.nat(),
          fc.constantFrom('', '0', '9', '"', '}', ']', ',', 'x', '-1', '1e9', '\u0000', 'null'),
        ),
        { minLength: 1, maxLength: 4 },
      )
      .map((edits) => {
        let t = text;
        for (const [i, s] of edits) {
          const at = i % t.length;
          t = t.slice(0, at) + s + t.slice(at + 1);
        }
        return t;
      }),
    fc.constantFrom('', '{}', '[]', 'null', '{"model":"a"}'),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  );

/** A path to one field of a cell and a value for it: the hand edits a shape check must catch. */
const fieldEdit = fc.tuple(
  fc.constantFrom(
    'model',
    'attack',
    'eps',
    'settings',
    'settings.norm',
    'settings.eotSamples',
    'stats',
    'stats.n',
    'stats.robust_acc',
    'stats.clean_acc',
    'stats.seconds',
    'robust',
    'gallery',
  ),
  fc.oneof(
    fc.jsonValue({ maxDepth: 1 }),
    fc.constantFrom(undefined, 'AAAA', 'not base64!', -1, 2, 1e300, [], {}),
  ),
);

function setField(obj: Record<string, unknown>, at: string, value: unknown): void {
  const keys = at.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  if (value === undefined) delete o[keys[keys.length - 1]];
  else o[keys[keys.length - 1]] = value;
}

function copyOut(): string {
  const out = tmpDir('damaged-copy');
  fs.cpSync(done, out, { recursive: true });
  return out;
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  const a = tinyConvNet(2);
  const preds = tf.tidy(() =>
    (
      a.predict(
        tf.tensor4d(
          Float32Array.from(set.images, (v) => v / 255),
          [12, 8, 8, 3],
        ),
      ) as tf.Tensor
    )
      .argMax(1)
      .dataSync(),
  );
  set.labels.set(Uint8Array.from(preds));
  models = [
    {
      path: 'a',
      name: 'a',
      model: a,
      classifier: layersClassifier(a),
      defense: 'none',
      test: set,
      fingerprint: 'a1',
    },
  ];
  done = tmpDir('damaged-ref');
  reference = (await runGrid(config, models, { out: done, backend: 'wasm', quiet: true })).result;
  await writeReports(done, reference);
});

describe('damaged cell files', () => {
  it.each([
    ['empty', ''],
    ['{}', '{}'],
    ['truncated', null],
  ])('a %s cell file is computed again with a one-line warning', async (_what, text) => {
    const out = copyOut();
    const file = path.join(out, 'cells', fs.readdirSync(path.join(out, 'cells'))[0]);
    const original = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text ?? original.slice(0, original.length >> 1));
    const warnings: string[] = [];
    let reused = 0;
    const r = await runGrid(config, models, {
      out,
      backend: 'wasm',
      quiet: true,
      warn: (m) => warnings.push(m),
      onCell: (_, re) => void (re && reused++),
    });
    expect(r.complete).toBe(true);
    expect(numbers(r.result)).toEqual(numbers(reference));
    expect(reused).toBe(3);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(file);
    expect(warnings[0].split('\n')).toHaveLength(1);
    expect(cellProblem(JSON.parse(fs.readFileSync(file, 'utf8')), set.count)).toBeNull(); // rewritten whole
  });

  it('fuzz: any damage to a cell file gives the same grid (reused when intact, else recomputed), never a crash', async () => {
    const cells = fs.readdirSync(path.join(done, 'cells'));
    await fc.assert(
      fc.asyncProperty(
        fc
          .nat({ max: cells.length - 1 })
          .chain((i) =>
            fc.tuple(
              fc.constant(i),
              damage(fs.readFileSync(path.join(done, 'cells', cells[i]), 'utf8')),
            ),
          ),
        async ([i, text]) => {
          const out = copyOut();
          fs.writeFileSync(path.join(out, 'cells', cells[i]), text);
          const warnings: string[] = [];
          const r = await runGrid(config, models, {
            out,
            backend: 'wasm',
            quiet: true,
            warn: (m) => warnings.push(m),
          });
          expect(r.complete).toBe(true);
          expect(numbers(r.result)).toEqual(numbers(reference));
          expect(warnings.length).toBeLessThanOrEqual(1);
          fs.rmSync(out, { recursive: true, force: true });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('fuzz: a hand-edited cell with a matching digest but a wrong field is recomputed, never trusted or a crash', async () => {
    const cells = fs.readdirSync(path.join(done, 'cells'));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: cells.length - 1 }), fieldEdit, async (i, [at, value]) => {
        const out = copyOut();
        const file = path.join(out, 'cells', cells[i]);
        const { digest: _d, ...cell } = JSON.parse(fs.readFileSync(file, 'utf8'));
        setField(cell, at, value);
        writeCell(file, cell as CellResult);
        const r = await runGrid(config, models, {
          out,
          backend: 'wasm',
          quiet: true,
          warn: () => {},
        });
        expect(r.complete).toBe(true);
        for (const c of r.result.cells) expect(cellProblem(c, set.count)).toBeNull();
        fs.rmSync(out, { recursive: true, force: true });
      }),
      { numRuns: 60 },
    );
  });

  it('export leaves out the gallery of a damaged cell with a warning and keeps the others', () => {
    const out = copyOut();
    const cellDir = path.join(out, 'cells');
    const files = fs.readdirSync(cellDir);
    const withGallery = files.filter(
      (f) => JSON.parse(fs.readFileSync(path.join(cellDir, f), 'utf8')).gallery,
    );
    expect(withGallery.length).toBe(2);
    fs.writeFileSync(path.join(cellDir, withGallery[0]), '{}');
    const warnings: string[] = [];
    const r = readGrid(out, (m) => warnings.push(m));
    expect(warnings).toHaveLength(1);
    expect(r.cells.filter((c) => c.gallery)).toHaveLength(1);
  });
});

describe('damaged results.json', () => {
  it('fuzz: a damaged results.json is one RobustError naming it, or a grid every export renders', async () => {
    const text = fs.readFileSync(path.join(done, 'results.json'), 'utf8');
    const parsed = JSON.parse(text);
    const edited = fc
      .tuple(
        fc.constantFrom(
          'config',
          'config.eps',
          'config.attacks',
          'config.seed',
          'backend',
          'models',
          'models.0',
          'models.0.n',
          'models.0.clean_acc',
          'models.0.checks',
          'cells',
          'cells.0',
          'cells.0.robust',
          'cells.0.stats',
          'cells.0.stats.n',
          'cells.1.eps',
          'cells.2.attack',
        ),
        fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(undefined, [], {}, 'AAAA', -1, 7)),
      )
      .map(([at, value]) => {
        const copy = structuredClone(parsed);
        setField(copy, at, value);
        return JSON.stringify(copy);
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(damage(text), edited), async (t) => {
        const out = tmpDir('damaged-json');
        fs.writeFileSync(path.join(out, 'results.json'), t);
        let r: GridResult;
        try {
          r = readGrid(out);
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(RobustError);
          expect((e as Error).message).toContain(path.join(out, 'results.json'));
          expect((e as Error).message.split('\n')).toHaveLength(1);
          return;
        }
        r.worst = worstCases(r.models, r.cells, r.config.attacks);
        const flags = sanityFlags(r);
        toCsv(r);
        toMarkdown(r, flags);
        await toHtml(r, flags);
        for (const w of r.worst) expect(w.robust_acc).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 150 },
    );
  });
});
