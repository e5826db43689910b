/**
 * The flags a grid's results raise: evaluations that are probably wrong — mostly gradient masking,
 * where an attack looks strong only because the model's gradients are useless (Athalye et al. 2018;
 * Carlini et al. 2019). The per-model measurements they read are eval/sanity.ts's.
 */
import { formatEps } from '../util/format.js';
import type { CellResult, GridResult } from './grid-core.js';
import { ASCENT_STEP } from './sanity.js';

export interface Flag {
  model: string;
  check: string;
  message: string;
  attack?: string;
  eps?: number;
}

const WHITE_BOX_ITERATIVE = new Set([
  'pgd',
  'bim',
  'mifgsm',
  'apgd-ce',
  'apgd-dlr',
  'apgd-t',
  'fab',
  'fab-t',
  'eot-pgd',
]);
const BLACK_BOX = new Set(['random-noise', 'square']);
/** Attacks that return the image unchanged when the smallest adversarial they find lies outside eps. */
const MINIMUM_NORM = new Set(['fab', 'fab-t']);
const baseName = (attack: string) => attack.split(':')[0];

/** Every flag raised by a grid's results. An empty list means no check fired. */
export function sanityFlags(r: GridResult): Flag[] {
  const flags: Flag[] = [];
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  for (const m of r.models) {
    const cells = r.cells.filter((c) => c.model === m.model);
    const one = 1 / Math.max(1, m.n);
    const add = (check: string, message: string, extra: Partial<Flag> = {}) =>
      flags.push({ model: m.model, check, message, ...extra });
    // eps = 0 must give clean accuracy
    for (const c of cells.filter((c) => c.eps === 0)) {
      if (Math.abs(c.stats.robust_acc - c.stats.clean_acc) > 1e-9)
        add(
          'eps0',
          `${c.attack} at eps 0: robust ${pct(c.stats.robust_acc)} ≠ clean ${pct(c.stats.clean_acc)}`,
          { attack: c.attack, eps: 0 },
        );
    }
    // robust accuracy never rises with eps
    for (const attack of new Set(cells.map((c) => c.attack))) {
      const series = cells.filter((c) => c.attack === attack).sort((a, b) => a.eps - b.eps);
      for (let i = 1; i < series.length; i++) {
        if (series[i].stats.robust_acc > series[i - 1].stats.robust_acc + one) {
          add(
            'monotone-eps',
            `${attack}: robust accuracy rises from ${pct(series[i - 1].stats.robust_acc)} to ${pct(series[i].stats.robust_acc)} as eps grows`,
            { attack, eps: series[i].eps },
          );
        }
      }
    }
    for (const eps of new Set(cells.map((c) => c.eps))) {
      if (eps === 0) continue;
      const at = cells.filter((c) => c.eps === eps);
      const byAttack = (name: string) => at.filter((c) => baseName(c.attack) === name);
      // more steps never help the model (same attack, different step counts)
      for (const name of new Set(at.map((c) => baseName(c.attack)))) {
        const bySteps = byAttack(name).sort(
          (a, b) => (a.settings.steps ?? 0) - (b.settings.steps ?? 0),
        );
        for (let i = 1; i < bySteps.length; i++) {
          if (bySteps[i].stats.robust_acc > bySteps[i - 1].stats.robust_acc + one) {
            add(
              'monotone-steps',
              `${name}: ${bySteps[i].settings.steps} steps leave more robust accuracy (${pct(bySteps[i].stats.robust_acc)}) than ${bySteps[i - 1].settings.steps} (${pct(bySteps[i - 1].stats.robust_acc)})`,
              { attack: bySteps[i].attack, eps },
            );
          }
        }
      }
      // an attack with a budget must move the images it attacks (a float32 overflow once made the L2 projection return zero)
      for (const c of at.filter(
        (c) =>
          c.stats.attacked > 0 && c.stats.linf_max === 0 && !MINIMUM_NORM.has(baseName(c.attack)),
      )) {
        add(
          'no-perturbation',
          `${c.attack} at eps ${formatEps(eps)} left all ${c.stats.attacked} attacked images unchanged`,
          { attack: c.attack, eps },
        );
      }
      // iterative attacks are not weaker than FGSM
      const fgsm = byAttack('fgsm')[0];
      for (const c of at.filter((c) => WHITE_BOX_ITERATIVE.has(baseName(c.attack)))) {
        if (fgsm && c.stats.robust_acc > fgsm.stats.robust_acc + one)
          add(
            'weaker-than-fgsm',
            `${c.attack} (${pct(c.stats.robust_acc)}) is weaker than FGSM (${pct(fgsm.stats.robust_acc)})`,
            { attack: c.attack, eps },
          );
      }
      // black-box attacks (forward passes only) must not beat the white-box ones (AutoAttack's Square check);
      // in a cascade: must not find examples that every white-box attack before them missed
      const white = at.filter((c) => !BLACK_BOX.has(baseName(c.attack)));
      for (const black of at.filter((c) => BLACK_BOX.has(baseName(c.attack)))) {
        const earlier = black.after?.length
          ? at.filter((c) => c.attack === black.after!.at(-1))
          : white;
        if (earlier.length === 0) continue;
        const best = earlier.reduce((a, b) => (a.stats.robust_acc <= b.stats.robust_acc ? a : b));
        if (black.stats.robust_acc < best.stats.robust_acc - one) {
          add(
            'black-box-stronger',
            `${black.attack} (${pct(black.stats.robust_acc)}), which uses no gradients, beats the best white-box attack ${best.attack} (${pct(best.stats.robust_acc)}): gradient masking likely`,
            { attack: black.attack, eps },
          );
        }
      }
    }
    const k = m.checks;
    if (k.zero_grad_share > 0.05)
      add(
        'zero-gradients',
        `${pct(k.zero_grad_share)} of examples have an all-zero input gradient: gradient masking likely`,
      );
    // Healthy models measure 0 of 256 (every zoo entry); tfjs's stock wasm Sign gave 5% on ResNet-20.
    // A randomized model's loss moves by chance between two passes, so the check does not apply.
    if (!m.randomized && !k.outputs_vary && (k.no_ascent_share ?? 0) > 0.02)
      add(
        'no-ascent',
        `on ${pct(k.no_ascent_share)} of examples one gradient-sign step of ${formatEps(ASCENT_STEP)} does not raise the loss: the gradient does not point uphill (gradient masking, or a broken gradient)`,
      );
    if (k.nonfinite_grad_share > 0)
      add(
        'nonfinite-gradients',
        `${pct(k.nonfinite_grad_share)} of examples have NaN/infinite input gradients`,
      );
    if (k.outputs_look_like_probabilities)
      add(
        'probabilities',
        'the model outputs probabilities, not logits: losses on them saturate and attacks weaken (remove the softmax)',
      );
    if (k.outputs_vary && !m.randomized)
      add(
        'randomized',
        'two forward passes on the same images give different outputs: the model is randomized (attack it with EOT, e.g. --preset autoattack:rand)',
      );
    const tooMany = cells.filter(
      (c) => k.classes !== undefined && (c.settings.targetClasses ?? 0) > k.classes - 1,
    );
    for (const c of tooMany)
      add(
        'too-many-targets',
        `${c.attack} asks for ${c.settings.targetClasses} target classes, the model has only ${k.classes! - 1} wrong classes: each is targeted once`,
        { attack: c.attack, eps: c.eps },
      );
    if (m.randomized || k.outputs_vary) {
      for (const c of cells.filter(
        (c: CellResult) => c.settings.eotSamples <= 1 && !BLACK_BOX.has(baseName(c.attack)),
      )) {
        add(
          'no-eot',
          `${c.attack} attacks a randomized model without EOT (eot samples 1): robustness is overstated`,
          { attack: c.attack, eps: c.eps },
        );
      }
    }
  }
  return flags;
}
