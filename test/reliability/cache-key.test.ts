/**
 * The eval cache: a finished cell is reused only when nothing that changes its numbers changed.
 * Every input — weights, topology, metadata, image bytes, labels, the slice evaluated, attack
 * settings and batch size — is varied in turn from one base grid; each variation must recompute.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runGrid, type EvalConfig, type EvalModel } from '../../eval/grid.js';
import { loadModel, modelFingerprint } from '../../models/checkpoint.js';
import { layersClassifier } from '../../models/classifier.js';
import { loadData } from '../../data/index.js';
import type { ImageSet } from '../../data/dataset.js';
import { robust, tinyCheckpoint } from '../cli/fixtures.js';
import { tmpDir } from '../helpers.js';

let ckpt: string;
let test: ImageSet;
const base: EvalConfig = {
  models: ['m'],
  attacks: ['fgsm'],
  eps: [0.05],
  norm: 'linf',
  limit: 6,
  batchSize: 4,
  seed: 0,
};

beforeAll(async () => {
  ckpt = await tinyCheckpoint('cache-key');
  test = (await loadData('sample', { limit: 8 })).test;
});

/** A copy of the checkpoint with `edit` applied to its folder. */
function variant(name: string, edit: (dir: string) => void): string {
  const d = path.join(tmpDir(`cache-${name}`), 'ckpt');
  fs.cpSync(ckpt, d, { recursive: true });
  edit(d);
  return d;
}

const editJson = (d: string, f: (j: string) => string) =>
  fs.writeFileSync(
    path.join(d, 'model.json'),
    f(fs.readFileSync(path.join(d, 'model.json'), 'utf8')),
  );

async function evalModel(dir: string, set: ImageSet): Promise<EvalModel> {
  const model = await loadModel(dir);
  // the grid's cells are keyed on the model's path too: every variant sits at the same one
  return {
    path: 'm',
    name: 'm',
    model,
    classifier: layersClassifier(model),
    defense: 'none',
    test: set,
    fingerprint: modelFingerprint(model)!,
  };
}

/** Runs the grid into `out`; true when its one cell was reused from an earlier run. */
async function reused(
  out: string,
  config: EvalConfig,
  dir: string,
  set: ImageSet,
): Promise<boolean> {
  const m = await evalModel(dir, set);
  let was = false;
  await runGrid(config, [m], {
    out,
    backend: 'wasm',
    quiet: true,
    onCell: (_, r) => void (was = r),
  });
  m.model.dispose();
  return was;
}

const changed = (set: ImageSet, f: (s: ImageSet) => void): ImageSet => {
  const s = { ...set, images: set.images.slice(), labels: set.labels.slice() };
  f(s);
  return s;
};

describe('the eval cache key covers every input that changes a number', () => {
  const variations: [
    string,
    () => { config?: Partial<EvalConfig>; dir?: string; set?: ImageSet },
  ][] = [
    [
      'one weight byte',
      () => ({
        dir: variant('weight', (d) => {
          const b = fs.readFileSync(path.join(d, 'weights.bin'));
          b[100] ^= 0x40;
          fs.writeFileSync(path.join(d, 'weights.bin'), b);
        }),
      }),
    ],
    [
      'the topology (a softmax head)',
      () => ({
        dir: variant('softmax', (d) =>
          editJson(d, (j) =>
            j.replace(/("name":"logits"[^}]*"activation":)"linear"/, '$1"softmax"'),
          ),
        ),
      }),
    ],
    [
      'the metadata',
      () => ({
        dir: variant('meta', (d) =>
          editJson(d, (j) => j.replace('"defense":"none"', '"defense":"other"')),
        ),
      }),
    ],
    ['one pixel', () => ({ set: changed(test, (s) => void (s.images[5] ^= 1)) })],
    [
      'one label',
      () => ({ set: changed(test, (s) => void (s.labels[0] = (s.labels[0] + 1) % 10)) }),
    ],
    ['the limit', () => ({ config: { limit: 5 } })],
    ['the seed', () => ({ config: { seed: 1 } })],
    ['the steps', () => ({ config: { attacks: ['pgd:2'] } })],
    ['the norm', () => ({ config: { norm: 'l2' } })],
    ['the batch size', () => ({ config: { batchSize: 3 } })],
  ];
  for (const [what, make] of variations) {
    it(`recomputes when ${what} changes, reuses when nothing does`, async () => {
      const out = tmpDir('cache-out');
      expect(await reused(out, base, ckpt, test)).toBe(false);
      expect(await reused(out, base, ckpt, test)).toBe(true);
      const v = make();
      expect(await reused(out, { ...base, ...v.config }, v.dir ?? ckpt, v.set ?? test)).toBe(false);
    });
  }

  it('through the CLI: a checkpoint given as its model.json is fingerprinted, so a retrained one is not reused', () => {
    const out = tmpDir('cache-cli');
    const dir = variant('cli', () => {});
    const args = [
      'eval',
      '--models',
      path.join(dir, 'model.json'),
      '--attacks',
      'fgsm',
      '--eps',
      '0.1',
      '--limit',
      '8',
      '--out',
      out,
      '--backend',
      'wasm',
    ];
    expect(robust(args).code).toBe(0);
    expect(robust(args).stderr).toMatch(/\(reused\)/);
    const b = fs.readFileSync(path.join(dir, 'weights.bin'));
    for (let i = 0; i < b.length; i += 64) b[i] ^= 0x40; // "retrained"
    fs.writeFileSync(path.join(dir, 'weights.bin'), b);
    const r = robust(args);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/\(reused\)/);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.models[0].fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(json.models[0].data_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('cells reused from another compute variant are noted, and the results list what each cell was computed on', async () => {
    const { toMarkdown } = await import('../../eval/report.js');
    const out = tmpDir('cache-variant');
    const m = await evalModel(ckpt, test);
    await runGrid(base, [m], { out, backend: 'wasm', compute: 'variant A', quiet: true });
    const warnings: string[] = [];
    const { result } = await runGrid(base, [m], {
      out,
      backend: 'wasm',
      compute: 'variant B',
      quiet: true,
      warn: (w) => warnings.push(w),
    });
    m.model.dispose();
    expect(warnings.length).toBe(result.cells.length);
    expect(warnings[0]).toMatch(
      /reused as computed on wasm \(variant A\), not on this run's wasm \(variant B\)/,
    );
    expect(result.computed_on).toEqual([
      { backend: 'wasm', compute: 'variant A', cells: result.cells.length },
    ]);
    // the header names the cells' variant, not this run's (nothing was computed under it)
    expect(toMarkdown(result)).toMatch(/backend wasm \(variant A\)/);
    expect(toMarkdown(result)).not.toMatch(/variant B/);
  });

  it('a reused cell keeps the backend it was computed on in results.csv', async () => {
    const { toCsv } = await import('../../eval/report.js');
    const out = tmpDir('cache-backend');
    const m = await evalModel(ckpt, test);
    await runGrid(base, [m], { out, backend: 'wasm', quiet: true });
    const { result } = await runGrid(base, [m], { out, backend: 'cpu', quiet: true });
    m.model.dispose();
    const row = toCsv(result).split('\n')[1];
    expect(row).toMatch(/,wasm,"robust kernels, [^"]*"$/); // backend, then its compute variant
  });
});
