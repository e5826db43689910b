/**
 * What the hostile review of the L1 threat model, per-batch resume and sharding found, one case
 * each: numbers over part of a protocol, budgets the saved images broke, state continued on
 * another backend, inputs that meant something else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { parseEvalConfig } from '../../eval/config.js';
import { parseAttackEntry, runGrid, worstCases, type EvalModel } from '../../eval/grid.js';
import { quantize } from '../../eval/save-adversarials.js';
import { shardFromEnv } from '../../eval/shard-plan.js';
import { Rng } from '../../util/rng.js';
import { gridModel, syntheticSet } from '../eval/fixtures.js';
import { tmpDir } from '../helpers.js';

let model: EvalModel;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = gridModel(syntheticSet(24));
});

describe('review: L1, resume, shards', () => {
  it('eval budgets default to the norm: 8/255 for Linf, 0.5 for L2, 12 for L1', () => {
    expect(parseEvalConfig({ models: 'm' }).eps.at(-1)).toBeCloseTo(8 / 255, 12);
    expect(parseEvalConfig({ models: 'm', norm: 'l2' }).eps).toEqual([0, 0.125, 0.25, 0.5]);
    expect(parseEvalConfig({ models: 'm', norm: 'l1', preset: 'autoattack' }).eps).toEqual([
      0, 3, 6, 12,
    ]);
    expect(() => parseEvalConfig({ models: 'm', norm: 'l1', preset: 'autoattack:rand' })).toThrow(
      /defined for linf and l2 only/,
    );
  });

  it('no worst case (or cascade result) over a part of the attacks', async () => {
    const config = parseEvalConfig({
      models: 'm',
      attacks: 'fgsm,pgd:2',
      eps: '0.05',
      limit: 24,
      batchSize: 8,
    });
    const { result } = await runGrid(config, [model], {
      out: tmpDir('review-worst'),
      backend: 'wasm',
      quiet: true,
    });
    expect(result.worst).toHaveLength(1);
    const onlyFgsm = result.cells.filter((c) => c.attack === 'fgsm');
    expect(worstCases(result.models, onlyFgsm, config.attacks)).toEqual([]);
    expect(worstCases(result.models, onlyFgsm, ['fgsm'])).toHaveLength(1);
  });

  it('a partial cell from another backend is not continued: one warning, the same result as a run from scratch', async () => {
    const config = parseEvalConfig({
      models: 'm',
      attacks: 'pgd:3',
      eps: '0.05',
      limit: 24,
      batchSize: 8,
    });
    const whole = (
      await runGrid(config, [model], {
        out: tmpDir('review-backend-whole'),
        backend: 'cpu',
        quiet: true,
      })
    ).result;
    const out = tmpDir('review-backend');
    const cells = path.join(out, 'cells');
    const partialSaved = () =>
      fs.existsSync(cells) && fs.readdirSync(cells).some((f) => f.endsWith('.partial.json'));
    await runGrid(config, [model], { out, backend: 'wasm', quiet: true, shouldStop: partialSaved });
    expect(partialSaved()).toBe(true);
    const warnings: string[] = [];
    const { result } = await runGrid(config, [model], {
      out,
      backend: 'cpu',
      quiet: true,
      warn: (w) => warnings.push(w),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^note: .*\.partial\.json: its batches ran on "wasm", this run is on "cpu"; starting the cell from its first batch/,
    );
    expect(result.cells[0].robust).toBe(whole.cells[0].robust);
    expect(result.cells[0].stats.robust_acc).toBe(whole.cells[0].stats.robust_acc);
  });

  it('--save rounding keeps L1 and L2 adversarials within the budget (Linf too)', () => {
    const rng = new Rng(3);
    const per = 48;
    for (const norm of ['l1', 'l2', 'linf'] as const) {
      for (let t = 0; t < 20; t++) {
        const clean = Uint8Array.from({ length: 3 * per }, () => rng.int(256));
        const eps = norm === 'linf' ? 4 / 255 : norm === 'l2' ? 0.05 : 0.2;
        // adversarials exactly on the sphere, between the 8-bit levels: rounding alone overshoots
        const dir = Float64Array.from({ length: clean.length }, () => rng.next() * 2 - 1);
        const adv = new Float32Array(clean.length);
        for (let img = 0; img < 3; img++) {
          const sl = dir.subarray(img * per, (img + 1) * per);
          const size =
            norm === 'l1'
              ? sl.reduce((s, v) => s + Math.abs(v), 0)
              : norm === 'l2'
                ? Math.hypot(...sl)
                : Math.max(...sl.map(Math.abs));
          for (let i = 0; i < per; i++)
            adv[img * per + i] = Math.min(
              1,
              Math.max(0, clean[img * per + i] / 255 + (eps * sl[i]) / size + 0.4 / 255),
            );
        }
        const q = quantize(adv, clean, norm, eps, per);
        for (let img = 0; img < 3; img++) {
          const d = Array.from(
            { length: per },
            (_, i) => (q[img * per + i] - clean[img * per + i]) / 255,
          );
          const size =
            norm === 'l1'
              ? d.reduce((s, v) => s + Math.abs(v), 0)
              : norm === 'l2'
                ? Math.hypot(...d)
                : Math.max(...d.map(Math.abs));
          expect(size, `${norm} image ${img}`).toBeLessThanOrEqual(eps + 1e-9);
        }
      }
    }
  });

  it('attack entries: the whole value after the first =, and the value typed in the error', () => {
    expect(() => parseAttackEntry('apgd-t:targets=2=9')).toThrow(
      /targets must be a whole number, got '2=9'/,
    );
    expect(() => parseAttackEntry('apgd-t:targets=1.5')).toThrow(/got '1.5'/);
    expect(() => parseAttackEntry('apgd-t:targets=')).toThrow(/got ''/);
  });

  it('--shard auto with both Kubernetes and Slurm variables set refuses to guess', () => {
    expect(() =>
      shardFromEnv({
        JOB_COMPLETION_INDEX: '5',
        JOB_COMPLETIONS: '8',
        SLURM_ARRAY_TASK_ID: '1',
        SLURM_ARRAY_TASK_COUNT: '2',
      }),
    ).toThrow(/both JOB_COMPLETION_INDEX .* and SLURM_ARRAY_TASK_ID .* are set/);
  });
});
