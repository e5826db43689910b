/** AutoAttack's protocol: a cascade runs each attack only on what the ones before left robust. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import {
  attackOptions,
  decodeMask,
  parseAttackEntry,
  runGrid,
  type EvalModel,
} from '../../eval/grid.js';
import { parseEvalConfig } from '../../eval/config.js';
import { epsPlotSpec, toMarkdown, toCsv } from '../../eval/report.js';
import { sanityFlags } from '../../eval/sanity-flags.js';
import { layersClassifier } from '../../models/classifier.js';
import { gridModel, syntheticSet } from './fixtures.js';
import { tmpDir, SUITE_THREADS } from '../helpers.js';

const set = syntheticSet(24);
let model: EvalModel;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  model = gridModel(set);
});

describe('presets and attack entries', () => {
  it('autoattack is the standard cascade; a preset cannot be mixed with other attacks', () => {
    const c = parseEvalConfig({ models: 'm', preset: 'autoattack' });
    expect(c.attacks).toEqual(['apgd-ce', 'apgd-t', 'fab-t', 'square']);
    expect(c.cascade).toBe(true);
    expect(parseEvalConfig({ models: 'm', preset: 'autoattack:rand' }).attacks).toEqual([
      'apgd-ce:eot=20',
      'apgd-dlr:eot=20',
    ]);
    expect(() => parseEvalConfig({ models: 'm', preset: 'autoattack', attacks: 'pgd' })).toThrow(
      /leave out attacks and cascade$/,
    );
    expect(() => parseEvalConfig({ models: 'm', preset: 'autoattack', cascade: false })).toThrow(
      /: leave out attacks and cascade$/,
    );
    expect(() => parseEvalConfig({ models: 'm', preset: 'constructor' })).toThrow(/unknown preset/);
    expect(() => parseEvalConfig({ models: 'm', preset: 'autoattack', steps: 1 })).toThrow(
      /reference settings: leave out steps \(or give attacks with cascade\)$/,
    );
    expect(() =>
      parseEvalConfig({ models: 'm', preset: 'autoattack:rand', eotSamples: 2, restarts: 3 }),
    ).toThrow(/leave out restarts, eotSamples /);
    expect(() => parseEvalConfig({ models: 'm', attacks: '' })).toThrow(/at least one attack/);
    expect(() => parseEvalConfig({ models: 'm', attacks: ',' })).toThrow(/at least one attack/);
    expect(() => parseEvalConfig({ models: 'a,a' })).toThrow(/each model may appear once/);
    expect(() => parseEvalConfig({ models: 'a', batchSize: '0x10' })).toThrow(
      /batchSize must be an integer/,
    );
  });

  it('entries carry steps, restarts and EOT samples', () => {
    expect(parseAttackEntry('pgd:50')).toEqual({ name: 'pgd', steps: 50 });
    expect(parseAttackEntry('apgd-ce:restarts=5:eot=20')).toEqual({
      name: 'apgd-ce',
      restarts: 5,
      eotSamples: 20,
    });
    for (const bad of [
      'pgd:0',
      'pgd:x',
      'pgd:restarts=0',
      'pgd:colour=2',
      'pgd:restarts=2:restarts=3',
      'pgd:5:7',
    ])
      expect(() => parseAttackEntry(bad), bad).toThrow();
    expect(parseAttackEntry('apgd-t:targets=5')).toEqual({ name: 'apgd-t', targetClasses: 5 });
    expect(() => parseAttackEntry('pgd:targets=5')).toThrow(/targets=N is for apgd-t and fab-t/);
  });

  it("takes the reference's L1 version of AutoAttack with --norm l1, and refuses the plus version there", () => {
    const l1 = parseEvalConfig({ models: 'm', preset: 'autoattack', norm: 'l1', eps: '12' });
    expect(l1.attacks).toEqual(['apgd-ce:restarts=5', 'apgd-t:targets=5', 'fab-t', 'square']);
    expect(attackOptions(l1, 12, 'apgd-t:targets=5')).toMatchObject({
      norm: 'l1',
      eps: 12,
      targetClasses: 5,
    });
    expect(parseEvalConfig({ models: 'm', preset: 'autoattack' }).attacks).toEqual([
      'apgd-ce',
      'apgd-t',
      'fab-t',
      'square',
    ]);
    expect(() => parseEvalConfig({ models: 'm', preset: 'autoattack:plus', norm: 'l1' })).toThrow(
      /defined for linf and l2 only/,
    );
    expect(() => parseEvalConfig({ models: 'm', norm: 'l3' })).toThrow(
      /^norm must be one of linf, l2, l1, got "l3"$/,
    );
  });
});

describe('a cascade', () => {
  const config = parseEvalConfig({
    models: 'm',
    attacks: 'fgsm,pgd:5,square:30',
    cascade: true,
    eps: '0.02,0.05',
    limit: 24,
    batchSize: 8,
  });

  it('attacks only the survivors, so robust accuracy falls attack by attack; resumes from its cells', async () => {
    const out = tmpDir('cascade');
    const { result } = await runGrid(config, [model], { out, backend: 'wasm', quiet: true });
    for (const eps of config.eps) {
      const cells = config.attacks.map((a) =>
        result.cells.find((c) => c.attack === a && c.eps === eps)!,
      );
      expect(cells.map((c) => c.after)).toEqual([[], ['fgsm'], ['fgsm', 'pgd:5']]);
      for (let i = 1; i < cells.length; i++) {
        const before = decodeMask(cells[i - 1].robust);
        const now = decodeMask(cells[i].robust);
        expect(now.every((v, k) => v <= before[k])).toBe(true); // never robust again once broken
        expect(cells[i].stats.attacked).toBe(before.reduce((s, v) => s + v, 0)); // only the survivors
      }
      const final = result.worst.find((w) => w.eps === eps)!;
      expect(final.robust_acc).toBe(cells.at(-1)!.stats.robust_acc);
    }
    expect(toMarkdown(result)).toMatch(/\| \+ square:30 \|/);
    expect(toMarkdown(result)).toMatch(/\| \*\*cascade\*\* \|/);
    // the plot's dashed line is named as the table's last row
    const plotted = (
      epsPlotSpec(result, 'm') as { data: { values: { attack: string }[] } }
    ).data.values.map((v) => v.attack);
    expect(plotted).toContain('cascade');
    expect(plotted).not.toContain('worst case');
    expect(toCsv(result).split('\n')[0]).toMatch(/attack,after,/);
    let reused = 0;
    await runGrid(config, [model], {
      out,
      backend: 'wasm',
      quiet: true,
      onCell: (_, r) => void (r && reused++),
    });
    expect(reused).toBe(6);
    // a cascade with another first attack is another cascade: nothing after it is reused
    reused = 0;
    await runGrid({ ...config, attacks: ['bim', 'pgd:5', 'square:30'] }, [model], {
      out,
      backend: 'wasm',
      quiet: true,
      onCell: (_, r) => void (r && reused++),
    });
    expect(reused).toBe(0);
    expect(fs.readdirSync(path.join(out, 'cells')).length).toBe(12);
  });

  it("flags Square finding examples the white-box attacks before it missed (AutoAttack's check)", () => {
    const cell = (attack: string, after: string[], robust: number[]) => ({
      model: 'm',
      attack,
      eps: 0.1,
      after,
      robust: Buffer.from(Uint8Array.from(robust)).toString('base64'),
      settings: {
        name: attack,
        norm: 'linf' as const,
        eps: 0.1,
        loss: 'ce' as const,
        mode: 'inference' as const,
        eotSamples: 1,
        seed: 0,
      },
      stats: {
        n: 4,
        clean_acc: 1,
        robust_acc: robust.reduce((a, b) => a + b, 0) / 4,
        success_rate: 0,
        attacked: 4,
        linf_mean: 0.1,
        linf_max: 0.1,
        l2_mean: 0,
        l2_max: 0,
        seconds: 1,
        img_per_s: 1,
      },
    });
    const checks = {
      zero_grad_share: 0,
      nonfinite_grad_share: 0,
      no_ascent_share: 0,
      outputs_look_like_probabilities: false,
      checked: 4,
    };
    const grid = (square: number[]) => ({
      config: { ...config, attacks: ['apgd-ce', 'square'], eps: [0.1] },
      backend: 'wasm',
      date: '',
      models: [
        {
          model: 'm',
          arch: 'x',
          params: 1,
          defense: 'none',
          randomized: false,
          fingerprint: 'f',
          data_sha256: 'd',
          n: 4,
          clean_acc: 1,
          checks,
        },
      ],
      cells: [cell('apgd-ce', [], [1, 1, 1, 0]), cell('square', ['apgd-ce'], square)],
      worst: [],
    });
    expect(sanityFlags(grid([1, 1, 1, 0])).map((f) => f.check)).not.toContain('black-box-stronger');
    expect(sanityFlags(grid([1, 0, 0, 0])).map((f) => f.check)).toContain('black-box-stronger');
  });

  it('measures randomness instead of trusting metadata: an undeclared noisy model is flagged', async () => {
    const { modelChecks } = await import('../../eval/sanity.js');
    const m = model.model;
    const noisy = {
      ...layersClassifier(m),
      logits: (x: tf.Tensor4D) => m.apply(x.add(tf.randomNormal(x.shape, 0, 0.05))) as tf.Tensor2D,
    };
    expect(modelChecks(noisy, set).outputs_vary).toBe(true);
    const plain = modelChecks(layersClassifier(m), set);
    expect(plain.outputs_vary).toBe(false);
    expect(plain.classes).toBe(5);
  });

  it('runCascade: the kept adversarial of every broken example is misclassified (taken from the attack that broke it)', async () => {
    const { runCascade } = await import('../../eval/cascade.js');
    const { makeAttack } = await import('../../attacks/index.js');
    const c = model.classifier;
    const steps = ['fgsm', 'pgd', 'square'].map((name) => ({
      label: name,
      attack: makeAttack(name, c, { eps: 0.03, steps: 5, seed: 1 }),
    }));
    const r = await runCascade(c, steps, set, {
      batchSize: 8,
      quiet: true,
      keepAdversarials: true,
    });
    expect(r.complete).toBe(true);
    expect(r.steps.map((s) => s.label)).toEqual(['fgsm', 'pgd', 'square']);
    const broken = Array.from(r.cleanCorrect, (v, i) => v === 1 && r.robust[i] === 0);
    expect(broken.some(Boolean)).toBe(true);
    const pred = tf.tidy(() =>
      c
        .logits(tf.tensor4d(r.adversarial!, [set.count, 8, 8, 3]), 'inference')
        .argMax(1)
        .dataSync(),
    );
    broken.forEach((b, i) => {
      if (b) expect(pred[i], `example ${i}`).not.toBe(set.labels[i]);
      else if (r.cleanCorrect[i]) expect(pred[i], `example ${i}`).toBe(set.labels[i]);
    });
  });

  it('robust attack --autoattack runs the standard cascade on one model; it cannot be mixed with another attack', async () => {
    const { robust, tinyCheckpoint } = await import('../cli/fixtures.js');
    const ckpt = await tinyCheckpoint('autoattack-cli');
    const r = robust([
      'attack',
      '--model',
      ckpt,
      '--autoattack',
      '--eps',
      '0.05',
      '--limit',
      '8',
      '--backend',
      'wasm',
      '--quiet',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.steps.map((s: { attack: string }) => s.attack)).toEqual([
      'apgd-ce',
      'apgd-t',
      'fab-t',
      'square',
    ]);
    expect(report.robust_acc).toBe(report.steps.at(-1).robust_acc_after);
    const after = report.steps.map((s: { robust_acc_after: number }) => s.robust_acc_after);
    expect(after.every((v: number, i: number) => i === 0 || v <= after[i - 1])).toBe(true);
    const mixed = robust(['attack', '--model', ckpt, '--autoattack', '--pgd', '--backend', 'wasm']);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr.trim()).toMatch(/^robust: --autoattack runs its own attacks/);
    const cheaper = robust([
      'attack',
      '--model',
      ckpt,
      '--autoattack',
      '--steps',
      '3',
      '--backend',
      'wasm',
    ]);
    expect(cheaper.code).toBe(2);
    expect(cheaper.stderr.trim()).toMatch(
      /^robust: --autoattack uses the reference settings.*leave out --steps$/,
    );
    const bad = robust(['attack', '--model', ckpt, '--autoattack', 'turbo', '--backend', 'wasm']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^robust: unknown preset 'autoattack:turbo'/);
  });

  it('report labels tell apart models whose folders end alike', async () => {
    const { modelLabel } = await import('../../eval/report.js');
    const r = {
      models: ['runs/a/checkpoint', 'runs/b/checkpoint', 'zoo:x', 'other/c'].map((model) => ({
        model,
      })),
    } as unknown as Parameters<typeof modelLabel>[0];
    expect(
      ['runs/a/checkpoint', 'runs/b/checkpoint', 'zoo:x', 'other/c'].map((m) => modelLabel(r, m)),
    ).toEqual(['a/checkpoint', 'b/checkpoint', 'zoo:x', 'c']);
  });
});
