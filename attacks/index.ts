/** The attack registry: every attack by name, for the CLI and the evaluation harness. */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check } from '../util/errors.js';
import type { Attack, CommonOptions } from './attack.js';
import type { LossName } from './losses.js';
import { fgsm } from './fgsm.js';
import { bim } from './bim.js';
import { pgd } from './pgd.js';
import { mifgsm } from './mifgsm.js';
import { apgd } from './apgd.js';
import { apgdTargeted } from './apgd-targeted.js';
import { randomNoise } from './random-noise.js';
import { square } from './square.js';
import { fab } from './fab.js';

/** The union of all attacks' options; each attack reads the ones it knows. */
export interface AttackOptions extends CommonOptions {
  alpha?: number;
  steps?: number;
  restarts?: number;
  randomStart?: boolean;
  loss?: LossName;
  momentum?: number;
  targetClasses?: number;
}

interface Entry {
  description: string;
  build(model: tf.LayersModel | Classifier, o: AttackOptions): Attack;
}

export const ATTACKS: Record<string, Entry> = {
  fgsm: {
    description: 'FGSM: one step of eps along the gradient sign (Goodfellow et al. 2015)',
    build: (m, o) => fgsm(m, { ...o, randomStart: o.randomStart ?? false }),
  },
  'fgsm-rs': {
    description: 'FGSM from a uniform random start, step 1.25·eps (Wong et al. 2020)',
    build: (m, o) => fgsm(m, { ...o, randomStart: true }),
  },
  bim: {
    description: 'BIM / I-FGSM: iterative FGSM without random start (Kurakin et al. 2017)',
    build: (m, o) => bim(m, o),
  },
  pgd: {
    description: 'PGD with uniform random start and restarts (Madry et al. 2018)',
    build: (m, o) => pgd(m, o),
  },
  mifgsm: {
    description: 'MI-FGSM: iterative steps on a momentum-accumulated gradient (Dong et al. 2018)',
    build: (m, o) => mifgsm(m, o),
  },
  'apgd-ce': {
    description: 'APGD with cross-entropy: adaptive step size, momentum (Croce & Hein 2020)',
    build: (m, o) => apgd(m, { ...o, loss: 'ce' }),
  },
  'apgd-dlr': {
    description: 'APGD with the DLR loss, robust to logit rescaling (Croce & Hein 2020)',
    build: (m, o) => apgd(m, { ...o, loss: 'dlr' }),
  },
  'apgd-t': {
    description:
      'APGD on the targeted DLR loss, once per each of the 9 most likely wrong classes (AutoAttack)',
    build: (m, o) => apgdTargeted(m, o),
  },
  fab: {
    description:
      'FAB: minimum-norm attack on the linearized boundary to the nearest class; fooled if the smallest found is within eps (Croce & Hein 2020)',
    build: (m, o) => fab(m, { ...o, targetClasses: undefined }),
  },
  'fab-t': {
    description: 'FAB-T: FAB towards each of the 9 most likely wrong classes in turn (AutoAttack)',
    build: (m, o) => fab(m, { ...o, targetClasses: o.targetClasses ?? 9 }),
  },
  square: {
    description:
      'Square Attack: score-based random search, forward passes only, 5000 queries (steps = queries; Andriushchenko et al. 2020)',
    build: (m, o) => square(m, o),
  },
  'random-noise': {
    description:
      'black-box baseline: random points on the eps-ball boundary (restarts = draws, default 10)',
    build: (m, o) => randomNoise(m, o),
  },
  'eot-pgd': {
    description: 'PGD averaging the gradient over 10 samples per step (EOT), for randomized models',
    build: (m, o) => pgd(m, { ...o, eotSamples: o.eotSamples ?? 10 }, 'eot-pgd'),
  },
};

export const ATTACK_NAMES = Object.keys(ATTACKS);

export function makeAttack(
  name: string,
  model: tf.LayersModel | Classifier,
  o: AttackOptions = {},
): Attack {
  const entry = Object.hasOwn(ATTACKS, name) ? ATTACKS[name] : undefined;
  check(entry, `unknown attack '${name}' (one of: ${ATTACK_NAMES.join(', ')})`);
  return entry.build(model, o);
}

export { fgsm, bim, pgd, mifgsm, apgd, apgdTargeted, fab, square, randomNoise };
export type {
  Attack,
  AttackInfo,
  AttackCall,
  AttackResult,
  CommonOptions,
  RunContext,
} from './attack.js';
// The shared core, for writing a new attack: the base (model mode, input checks, targeting, seeds),
// the descent loop, losses and threat models.
export {
  defineAttack,
  commonInfo,
  checkNumber,
  DEFAULT_EPS,
  type ProgressUnits,
} from './attack.js';
export {
  iterate,
  descend,
  withRestarts,
  attackResult,
  projectToBall,
  startingPoint,
  type DescentConfig,
  type RunResult,
} from './iterative.js';
export { evaluate, evaluateForward, type Evaluation, type GradientSetup } from './gradient.js';
export {
  objective,
  crossEntropy,
  dlr,
  dlrTargeted,
  margin,
  isSuccess,
  predictedClass,
  type Objective,
  type LossName,
} from './losses.js';
export type { PgdOptions } from './pgd.js';
export type { FgsmOptions } from './fgsm.js';
export type { ApgdOptions } from './apgd.js';
export type { ApgdTargetedOptions } from './apgd-targeted.js';
export type { SquareOptions } from './square.js';
export type { RandomNoiseOptions } from './random-noise.js';
export type { FabOptions } from './fab.js';
export {
  linf,
  l2,
  l1,
  lpNorm,
  NORMS,
  projectL1,
  sparseSign,
  type LpNorm,
  type NormName,
} from './norms.js';
export { parseTargetSpec, type TargetSpec } from './targets.js';
export {
  describeProgress,
  RunProgress,
  type AttackProgress,
  type ProgressHook,
} from './progress.js';
