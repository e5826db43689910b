/** `robust attack`: run one attack on a checkpoint over test images and report robust accuracy. */
import path from 'node:path';
import type { Command } from 'commander';
import {
  ATTACK_NAMES,
  makeAttack,
  NORMS,
  type AttackOptions,
  type NormName,
} from '../attacks/index.js';
import { DEFAULT_EPS } from '../attacks/attack.js';
import { parseTargetSpec } from '../attacks/targets.js';
import { describeBackend, initBackend } from '../backend/index.js';
import { computeVariant } from '../backend/variant.js';
import { take } from '../data/dataset.js';
import { runAttack } from '../eval/attack-run.js';
import { runCascade } from '../eval/cascade.js';
import { parseAttackEntry, withEntry } from '../eval/grid.js';
import { preset } from '../eval/presets.js';
import { accuracy, withPredictedLabels } from '../eval/accuracy.js';
import { quantize, saveAdversarials } from '../eval/save-adversarials.js';
import { attackOutputs, checkOutputs } from '../eval/output-files.js';
import { SAMPLE_DIR, defaultDataDir } from '../data/index.js';
import { check } from '../util/errors.js';
import {
  addModelOptions,
  formatEps,
  loadDataFor,
  loadModelFor,
  type ModelCliOptions,
} from './model-input.js';
import { ZOO_PREFIX } from '../models/pretrained.js';
import { formatRate } from '../util/format.js';
import { logInterval } from '../util/task-progress.js';
import { LIMITS, nonNegativeInt, number, positiveInt } from './options.js';

interface AttackCliOptions extends ModelCliOptions {
  model: string;
  attack?: string;
  data?: string;
  dataDir?: string;
  eps?: number;
  alpha?: number;
  steps?: number;
  restarts?: number;
  norm: string;
  randomStart?: boolean;
  loss?: string;
  momentum?: number;
  targeted?: string;
  eotSamples?: number;
  trainMode?: boolean;
  seed: number;
  limit: number;
  batchSize: number;
  save?: string;
  grid?: string;
  json?: boolean;
  quiet?: boolean;
  backend: string;
  threads?: number;
  autoattack?: string | boolean;
  [flag: string]: unknown;
}

/** The attack named by --attack or by one shorthand flag (--pgd, --fgsm, …). */
function chosenAttack(o: AttackCliOptions): string {
  const flags = ATTACK_NAMES.filter((n) => o[flagKey(n)] === true);
  check(flags.length <= 1, `choose one attack, got --${flags.join(', --')}`);
  check(
    !(flags.length === 1 && o.attack && o.attack !== flags[0]),
    `--attack ${o.attack} contradicts --${flags[0]}`,
  );
  const name = flags[0] ?? o.attack ?? 'pgd';
  check(
    ATTACK_NAMES.includes(name),
    `unknown attack '${name}' (one of: ${ATTACK_NAMES.join(', ')})`,
  );
  return name;
}

/** Commander's camel-case key of the flag --<name>. */
function flagKey(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function registerAttack(program: Command): void {
  const cmd = program
    .command('attack')
    .description(
      'attack a checkpoint on test images: clean and robust accuracy, success rate, perturbation, speed',
    )
    .requiredOption(
      '--model <path>',
      'zoo:NAME (a trained model shipped with robust), a training run folder, or any TF.js LayersModel/GraphModel folder (or its model.json)',
    )
    .option('--attack <name>', `attack: ${ATTACK_NAMES.join(', ')} (default pgd)`);
  for (const name of ATTACK_NAMES) cmd.option(`--${name}`, `same as --attack ${name}`);
  cmd.option(
    '--autoattack [version]',
    "AutoAttack's cascade instead of one attack: standard (default: APGD-CE, APGD-T, FAB-T, Square), plus or rand",
  );
  cmd
    .option('--norm <name>', 'threat model: linf | l2 | l1', 'linf')
    .option(
      '--eps <x>',
      'perturbation budget in [0,1] pixels, e.g. 8/255 (default 8/255 for linf, 0.5 for l2, 12 for l1)',
      number('eps', { min: 0 }),
    )
    .option(
      '--alpha <x>',
      'step size (default: 2.5·eps/steps; FGSM: eps; FGSM-RS: 1.25·eps)',
      number('alpha', { min: 0 }),
    )
    .option(
      '--steps <n>',
      'iterations (default 10; APGD 100)',
      positiveInt('--steps', LIMITS.steps),
    )
    .option(
      '--restarts <n>',
      'random restarts (PGD, APGD)',
      positiveInt('--restarts', LIMITS.restarts),
    )
    .option('--no-random-start', 'PGD without random start')
    .option('--loss <name>', 'PGD/BIM/MI-FGSM objective: ce | dlr')
    .option('--momentum <x>', 'MI-FGSM momentum decay (default 1)', number('momentum', { min: 0 }))
    .option('--targeted <target>', 'targeted attack: random | least-likely | <class index>')
    .option(
      '--eot-samples <n>',
      'gradient samples per step (EOT) for randomized models',
      positiveInt('--eot-samples', LIMITS.samples),
    )
    .option(
      '--train-mode',
      'attack the model in training mode (batch statistics; BN statistics restored afterwards)',
    )
    .option('--data <name>', 'data set (default: the one the model was trained on)')
    .option('--data-dir <dir>', 'where data sets live')
    .option(
      '--limit <n>',
      'attack the first N test images',
      positiveInt('--limit', LIMITS.images),
      1000,
    )
    .option(
      '--batch-size <n>',
      'images per attack batch',
      positiveInt('--batch-size', LIMITS.batchSize),
      128,
    )
    .option(
      '--seed <n>',
      'seed of random starts and targets',
      nonNegativeInt('--seed', LIMITS.seed),
      0,
    )
    .option(
      '--save <file>',
      "write the adversarial images (8-bit) in the data set's binary layout, plus a PNG grid",
    )
    .option(
      '--grid <file.png>',
      'PNG grid of originals / perturbations / adversarials (default: <save>.png)',
    )
    .option('--json', 'print the result as JSON')
    .option('--quiet', 'no progress output')
    .option('--backend <name>', 'auto | node-gpu | node | wasm | cpu', 'auto')
    .option(
      '--threads <n>',
      'wasm threads (default: the cores this process may use)',
      positiveInt('--threads', LIMITS.threads),
    );
  addModelOptions(cmd).action(async (o: AttackCliOptions) => {
    if (!o.quiet) logInterval(); // a bad ROBUST_PROGRESS_SECONDS is refused before any work
    const norm = o.norm as NormName;
    check(NORMS.includes(norm), `--norm must be one of ${NORMS.join(', ')}, got '${o.norm}'`);
    const cascade =
      o.autoattack === undefined
        ? undefined
        : preset(o.autoattack === true ? 'autoattack' : `autoattack:${o.autoattack}`, norm);
    check(
      !cascade || (o.attack === undefined && ATTACK_NAMES.every((n) => o[flagKey(n)] !== true)),
      '--autoattack runs its own attacks: leave out --attack and the attack flags',
    );
    check(
      !cascade || o.targeted === undefined,
      '--autoattack chooses its own targets: leave out --targeted',
    );
    const overrides = ['steps', 'restarts', 'eotSamples', 'alpha'].filter(
      (k) => o[k] !== undefined,
    );
    check(
      !cascade || overrides.length === 0,
      `--autoattack uses the reference settings, which its numbers are named after: leave out ${overrides.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
    );
    const name = cascade ? cascade.attacks[0] : chosenAttack(o);
    check(
      o.loss === undefined || o.loss === 'ce' || o.loss === 'dlr',
      `--loss must be ce or dlr, got '${o.loss}'`,
    );
    const options: AttackOptions = {
      norm,
      eps: o.eps ?? DEFAULT_EPS[norm],
      alpha: o.alpha,
      steps: o.steps,
      restarts: o.restarts,
      randomStart: o.randomStart === false ? false : undefined,
      loss: o.loss as AttackOptions['loss'],
      momentum: o.momentum,
      targeted: o.targeted !== undefined ? parseTargetSpec(o.targeted) : undefined,
      eotSamples: o.eotSamples,
      mode: o.trainMode ? 'train' : 'inference',
      seed: o.seed,
    };
    const info = await initBackend({ backend: o.backend, threads: o.threads });
    const loaded = await loadModelFor(o.model, o, o.seed);
    const { meta, path: ckpt, classifier } = loaded;
    if (o.trainMode && loaded.kind === 'graph') {
      loaded.dispose();
      check(false, '--train-mode: a GraphModel has no training mode (it runs as converted)');
    }
    let data;
    try {
      data = await loadDataFor(loaded, {
        data: o.data,
        dataDir: o.dataDir,
        limit: o.limit,
        labels: o.labels,
      });
    } catch (e) {
      loaded.dispose();
      throw e;
    }
    const outputs = attackOutputs(o.save, o.grid, data.test.channels);
    checkOutputs(outputs.files, [
      {
        what: 'the model',
        dir: path.dirname(
          path.resolve(ckpt.endsWith('.json') ? ckpt : path.join(ckpt, 'model.json')),
        ),
      },
      {
        what: `the data set ${data.name}`,
        dir:
          data.location ??
          (data.name === 'fashion-mnist-sample'
            ? SAMPLE_DIR
            : path.join(o.dataDir ?? defaultDataDir(), data.name)),
      },
    ]);
    const set =
      o.labels === 'predicted'
        ? withPredictedLabels(classifier, take(data.test, o.limit))
        : take(data.test, o.limit);
    /** Writes the adversarials (8-bit, within the budget) and the grid; what the report says of them. */
    const save = (
      adversarial: Float32Array,
      cleanCorrect: Uint8Array,
      norm: NormName,
      eps: number,
    ) => {
      const q = quantize(adversarial, set.images, norm, eps, set.height * set.width * set.channels);
      const attacked: number[] = [];
      for (let i = 0; i < set.count && attacked.length < 10; i++)
        if (cleanCorrect[i]) attacked.push(i);
      saveAdversarials(outputs, set, q, attacked);
      const saved =
        outputs.images !== undefined
          ? {
              saved: [outputs.images, outputs.labels].filter(Boolean),
              saved_robust_acc: accuracy(classifier, { ...set, images: q }),
            }
          : {};
      return { ...saved, grid: outputs.grid };
    };
    if (cascade) {
      const steps = cascade.attacks.map((entry) => {
        const e = parseAttackEntry(entry);
        return { label: entry, attack: makeAttack(e.name, classifier, withEntry(options, e)) };
      });
      if (!o.quiet)
        console.error(
          `${describeBackend(info)}; AutoAttack (${o.autoattack === true ? 'standard' : o.autoattack}: ${cascade.attacks.join(', ')}) ${norm} eps=${formatEps(options.eps!)} on ${set.count} ${data.name} test images (${loaded.arch}, defense ${meta.defense ?? 'none'})`,
        );
      const r = await runCascade(classifier, steps, set, {
        batchSize: o.batchSize,
        keepAdversarials: outputs.files.length > 0,
        quiet: o.quiet,
        seed: o.seed,
      });
      const n = set.count;
      const share = (m: Uint8Array) => m.reduce((a, v) => a + v, 0) / n;
      const report: Record<string, unknown> = {
        model: o.model.startsWith(ZOO_PREFIX) ? o.model : ckpt,
        arch: loaded.arch,
        ...(loaded.kind !== 'robust' ? { input: loaded.input } : {}),
        ...(data.fit ? { images: data.fit } : {}),
        defense: meta.defense ?? 'none',
        data: data.name,
        split: 'test',
        ...(o.labels === 'predicted' ? { labels: 'predicted' } : {}),
        backend: info.name,
        compute: computeVariant(),
        protocol: o.autoattack === true ? 'autoattack' : `autoattack:${o.autoattack}`,
        norm,
        eps: options.eps,
        seed: o.seed,
        n,
        clean_acc: share(r.cleanCorrect),
        robust_acc: share(r.robust),
        // the largest perturbation any step made: every adversarial counted is within the budget
        ...Object.fromEntries(
          (['linf_max', 'l2_max', 'l1_max'] as const).map((k) => [
            k,
            Math.max(0, ...r.steps.map((s) => s.run.stats[k] ?? 0)),
          ]),
        ),
        steps: r.steps.map((s, i) => {
          const { robust_acc, attacked, seconds, linf_max, l2_max, l1_max } = s.run.stats;
          return {
            attack: s.label,
            settings: steps[i].attack.info,
            robust_acc_after: robust_acc,
            attacked,
            seconds,
            linf_max,
            l2_max,
            l1_max,
          };
        }),
      };
      if (r.adversarial)
        Object.assign(report, save(r.adversarial, r.cleanCorrect, norm, options.eps!));
      loaded.dispose();
      if (o.json) return console.log(JSON.stringify(report, null, 2));
      const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
      console.log(
        `clean accuracy    ${pct(share(r.cleanCorrect))} (${n} images${o.labels === 'predicted' ? "; labels: the model's own predictions" : ''})`,
      );
      for (const s of r.steps)
        console.log(
          `after ${s.label.padEnd(20)} ${pct(s.run.stats.robust_acc)} (${s.run.stats.attacked} attacked, ${s.run.stats.seconds.toFixed(1)} s)`,
        );
      console.log(`AutoAttack robust accuracy ${pct(share(r.robust))}`);
      console.log(
        `largest perturbation Linf ${(report.linf_max as number).toFixed(5)} · L2 ${(report.l2_max as number).toFixed(4)} · L1 ${(report.l1_max as number).toFixed(3)}`,
      );
      if (report.saved)
        console.log(
          `saved             ${(report.saved as string[]).join(', ')} (8-bit; robust accuracy on them ${pct(report.saved_robust_acc as number)}), grid ${report.grid}`,
        );
      return;
    }
    const attack = makeAttack(name, classifier, options);
    const a = attack.info;
    const settings = [
      `eps=${formatEps(a.eps)}`,
      a.alpha !== undefined ? `alpha=${formatEps(a.alpha)}` : '',
      a.steps ? `steps=${a.steps}` : '',
      a.restarts ? `restarts=${a.restarts}` : '',
      a.targeted !== undefined ? `targeted=${a.targeted}` : '',
      a.eotSamples > 1 ? `eot=${a.eotSamples}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    if (!o.quiet)
      console.error(
        `${describeBackend(info)}; ${a.name} ${a.norm} ${settings} on ${set.count} ${data.name} test images (${loaded.arch}, defense ${meta.defense ?? 'none'})`,
      );
    if (classifier.randomized && a.eotSamples === 1)
      console.error(
        'warning: the model is randomized (noise injection) and the attack uses no EOT: pass --eot-samples (e.g. 10) or the result overstates robustness',
      );
    const result = await runAttack(classifier, attack, set, {
      batchSize: o.batchSize,
      keepAdversarials: outputs.files.length > 0,
      quiet: o.quiet,
      seed: o.seed,
    });
    const s = result.stats;
    const report: Record<string, unknown> = {
      model: o.model.startsWith(ZOO_PREFIX) ? o.model : ckpt,
      arch: loaded.arch,
      ...(loaded.kind !== 'robust' ? { input: loaded.input } : {}),
      ...(data.fit ? { images: data.fit } : {}),
      defense: meta.defense ?? 'none',
      randomized: classifier.randomized,
      data: data.name,
      split: 'test',
      ...(o.labels === 'predicted' ? { labels: 'predicted' } : {}),
      attack: a,
      backend: info.name,
      compute: computeVariant(),
      ...s,
    };
    if (result.adversarial)
      Object.assign(report, save(result.adversarial, result.cleanCorrect, a.norm, a.eps));
    loaded.dispose();
    if (o.json) return console.log(JSON.stringify(report, null, 2));
    const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
    const px = (v: number) => `${(v * 255).toFixed(2)}/255`;
    console.log(
      `clean accuracy    ${pct(s.clean_acc)} (${s.n} images${o.labels === 'predicted' ? "; labels: the model's own predictions" : ''})`,
    );
    console.log(`robust accuracy   ${pct(s.robust_acc)}`);
    console.log(
      `attack success    ${pct(s.success_rate)} of ${s.attacked} attacked${a.targeted !== undefined ? ' (reached the target)' : ''}`,
    );
    console.log(
      `perturbation      Linf mean ${px(s.linf_mean)} max ${px(s.linf_max)} · L2 mean ${s.l2_mean.toFixed(3)} max ${s.l2_max.toFixed(3)} · L1 mean ${s.l1_mean!.toFixed(2)} max ${s.l1_max!.toFixed(2)}`,
    );
    console.log(`time              ${s.seconds.toFixed(1)} s, ${formatRate(s.img_per_s)} img/s`);
    if (report.saved)
      console.log(
        `saved             ${(report.saved as string[]).join(', ')} (8-bit; robust accuracy on them ${pct(report.saved_robust_acc as number)}), grid ${report.grid}`,
      );
    else if (report.grid) console.log(`grid              ${report.grid}`);
  });
}
