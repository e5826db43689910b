/**
 * The small base every attack shares (as in torchattacks): it owns the model mode, the input
 * range check, targeting and the random stream, so each attack is only its `run`.
 */
import tf from '#tfjs';
import { asClassifier, inMode, type Classifier, type ModelMode } from '../models/classifier.js';
import { check, checkOption } from '../util/errors.js';
import { checkCount, LIMITS } from '../util/limits.js';
import { Rng } from '../util/rng.js';
import { NORMS, type NormName } from './norms.js';
import { isSuccess, predictedClass, type LossName } from './losses.js';
import { chooseTargets, type TargetSpec } from './targets.js';
import { RunProgress, type ProgressHook, type ProgressLayout } from './progress.js';

/** Options every attack takes. Pixel values live in [0,1]; eps and alpha are in the same units. */
export interface CommonOptions {
  /** Radius of the threat model's ball (default 8/255 for Linf, 0.5 for L2). */
  eps?: number;
  norm?: NormName;
  /** Targeted attack with targets chosen this way, unless the call passes its own targets. */
  targeted?: TargetSpec;
  /** 'inference' (default): BatchNorm running statistics, dropout off. 'train': batch statistics (restored afterwards). */
  mode?: ModelMode;
  /** Gradient samples averaged per step (EOT) — for randomized models. Default 1. */
  eotSamples?: number;
  /** Seed of the attack's random starts and random targets. */
  seed?: number;
}

/** Everything that defines an attack run, as recorded with results. */
export interface AttackInfo {
  name: string;
  norm: NormName;
  eps: number;
  alpha?: number;
  steps?: number;
  restarts?: number;
  /** APGD-T: how many of the most likely wrong classes are targeted in turn. */
  targetClasses?: number;
  /** Square: the share of the image its first windows cover. */
  pInit?: number;
  /** L1-APGD: AutoAttack's decreasing-eps schedule (3·eps, 2·eps, eps). */
  largeEps?: boolean;
  randomStart?: boolean;
  momentum?: number;
  loss: LossName;
  targeted?: TargetSpec;
  mode: ModelMode;
  eotSamples: number;
  seed: number;
}

export interface AttackCall {
  /** Target class per example (int32 [N]); makes the attack targeted. */
  targets?: tf.Tensor1D;
  /** Told where the call stands after each step (round, step, examples still robust); the results are the same with or without it. */
  onProgress?: ProgressHook;
}

/**
 * What an attack resolves to: its adversarial examples and its verdict on each, from the forward
 * passes it ran on them (in its mode; with EOT, the mean logits). The caller disposes the tensors.
 */
export interface AttackResult {
  /** Adversarial images, [N,H,W,C] in [0,1]. */
  adv: tf.Tensor4D;
  /** Per example (bool [N]): misclassified, or classified as its target when targeted. APGD-T and FAB-T count any misclassification; FAB counts only a point within eps (it returns the others unchanged). */
  success: tf.Tensor1D;
  /** The class the attack's forward pass gave each adversarial image (int32 [N]). */
  predicted: tf.Tensor1D;
}

/** Adversarial examples for images `x` ([N,H,W,C] in [0,1]) with labels `y` (int32 [N]). */
export interface Attack {
  (x: tf.Tensor4D, y: tf.Tensor1D, call?: AttackCall): Promise<AttackResult>;
  /**
   * The adversarial images alone (adversarial training): an attack that never evaluates its final
   * point (FGSM, PGD with select 'last') skips the forward pass its verdict would cost.
   */
  images(x: tf.Tensor4D, y: tf.Tensor1D, call?: AttackCall): Promise<tf.Tensor4D>;
  readonly info: AttackInfo;
  /** The model attacked, whose forward passes gave the verdicts. */
  readonly classifier: Classifier;
  /** The state of the attack's random stream between calls (random starts, chosen targets): saved and set again, an interrupted run continues it exactly. */
  randomState: number;
}

/** What an attack's `run` gets: checked inputs, targets (when targeted), and a seeded stream. */
export interface RunContext {
  classifier: Classifier;
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  targets?: tf.Tensor1D;
  /** A fresh seed for a tf random op. */
  seed(): number;
  /** Present when the caller asked for progress: `withRestarts` starts its rounds, a run's loop reports its steps. */
  progress?: RunProgress;
}

/** The budgets of the usual CIFAR-10 benchmarks: RobustBench's Linf and L2, Croce & Hein 2021's L1. */
export const DEFAULT_EPS: Record<NormName, number> = { linf: 8 / 255, l2: 0.5, l1: 12 };

export function checkNumber(
  name: string,
  v: number,
  opts: { min?: number; positive?: boolean; integer?: boolean } = {},
): void {
  check(Number.isFinite(v), `${name} must be a finite number, got ${v}`);
  if (opts.integer) check(Number.isInteger(v), `${name} must be an integer, got ${v}`);
  if (opts.positive) check(v > 0, `${name} must be > 0, got ${v}`);
  if (opts.min !== undefined) check(v >= opts.min, `${name} must be ≥ ${opts.min}, got ${v}`);
}

/** Fills in and checks the options shared by all attacks. */
export function commonInfo(name: string, o: CommonOptions, loss: LossName = 'ce'): AttackInfo {
  const norm = o.norm ?? 'linf';
  check(NORMS.includes(norm), `unknown norm '${norm}' (${NORMS.join(', ')})`);
  const info: AttackInfo = {
    name,
    norm,
    eps: o.eps ?? DEFAULT_EPS[norm],
    loss,
    mode: o.mode ?? 'inference',
    eotSamples: o.eotSamples ?? 1,
    seed: o.seed ?? 0,
  };
  if (o.targeted !== undefined) info.targeted = o.targeted;
  checkNumber('eps', info.eps, { min: 0 });
  // Linf eps is a change of each [0,1] pixel: beyond 1 it bounds nothing (another bound would be blamed)
  checkOption(
    norm !== 'linf' || info.eps <= 1,
    (n) =>
      `${n('eps')} must be in [0,1] for the Linf norm (pixels are in [0,1]; 8/255 is 8 grey levels), got ${info.eps}`,
  );
  checkNumber('EOT samples', info.eotSamples, { positive: true, integer: true });
  checkCount('EOT samples', info.eotSamples, LIMITS.samples);
  checkNumber('seed', info.seed, { min: 0, integer: true });
  check(info.mode === 'inference' || info.mode === 'train', `unknown model mode '${info.mode}'`);
  return info;
}

/** Checks that x is a finite image batch in [0,1] matching y. */
function checkInputs(x: tf.Tensor4D, y: tf.Tensor1D): void {
  check(x.rank === 4, `images must be a 4-D NHWC batch, got shape [${x.shape}]`);
  check(
    y.rank === 1 && y.shape[0] === x.shape[0],
    `labels must be [${x.shape[0]}], got [${y.shape}]`,
  );
  check(y.dtype === 'int32', `labels must be int32, got ${y.dtype}`);
  const range = tf.tidy(() => tf.stack([x.min(), x.max()]));
  const [lo, hi] = range.dataSync();
  range.dispose();
  check(Number.isFinite(lo) && Number.isFinite(hi), 'images contain NaN or infinite pixels');
  check(
    lo >= 0 && hi <= 1,
    `pixels must lie in [0,1] (got ${lo.toFixed(3)}…${hi.toFixed(3)}): attacks work in pixel space`,
  );
}

/** How many examples a verdict leaves unbroken (one read per call, for a progress hook's last report). */
function unbroken(success: tf.Tensor1D): number {
  let n = 0;
  for (const s of success.dataSync()) if (!s) n++;
  return n;
}

/**
 * The verdict on `adv` from one forward pass in the attack's mode (the EOT mean of `eotSamples`),
 * for a run that returned only images.
 */
function verdict(
  classifier: Classifier,
  info: AttackInfo,
  adv: tf.Tensor4D,
  y: tf.Tensor1D,
  targets?: tf.Tensor1D,
): AttackResult {
  const v = tf.tidy(() => {
    let logits = classifier.logits(adv, info.mode);
    for (let k = 1; k < info.eotSamples; k++)
      logits = logits.add(classifier.logits(adv, info.mode));
    if (info.eotSamples > 1) logits = logits.mul(1 / info.eotSamples);
    return { success: isSuccess(logits, y, targets), predicted: predictedClass(logits) };
  });
  return { adv, ...v };
}

/** How an attack's progress counts (defineAttack's last argument). */
export interface ProgressUnits {
  /** What `info.steps` counts: gradient steps (default) or queries (Square). */
  unit?: 'step' | 'query';
}

/** An attack's rounds and steps from its settings: restarts, and APGD-T's and FAB-T's target classes (as many as the model has wrong classes at most). */
function progressLayout(info: AttackInfo, numClasses: number, u: ProgressUnits): ProgressLayout {
  const restarts = info.restarts ?? 1;
  const targets =
    info.targetClasses !== undefined ? Math.min(info.targetClasses, numClasses - 1) : undefined;
  return {
    rounds: (targets ?? 1) * restarts,
    restarts,
    ...(targets !== undefined ? { targets } : {}),
    steps: info.steps ?? 1,
    unit: u.unit ?? 'step',
  };
}

/**
 * Wraps an attack's `run` with the shared checks, targeting, model mode and progress. `run`
 * returns its images with the verdict it already has (e.g. `descend`'s), or the images alone (e.g.
 * `iterate`'s final point), which then get one forward pass unless the caller asked for `images`
 * only. At eps 0 on a deterministic model `run` is not called: an attack's points lie in the
 * eps-ball, which is x alone, so the result is x with its verdict from one forward pass — what
 * every attack here computed the long way (a randomized model's verdicts are draws, left as they were).
 */
export function defineAttack(
  model: tf.LayersModel | Classifier,
  info: AttackInfo,
  run: (ctx: RunContext) => Promise<tf.Tensor4D | AttackResult>,
  units: ProgressUnits = {},
): Attack {
  const classifier = asClassifier(model);
  if (info.loss === 'dlr')
    check(
      classifier.numClasses >= (info.targeted !== undefined ? 4 : 3),
      `${info.name} (DLR loss) needs at least ${info.targeted !== undefined ? 4 : 3} classes`,
    );
  if (typeof info.targeted === 'number') {
    check(
      Number.isInteger(info.targeted) &&
        info.targeted >= 0 &&
        info.targeted < classifier.numClasses,
      `target class ${info.targeted} does not exist: the model has ${classifier.numClasses} classes`,
    );
  }
  let rng = new Rng(info.seed ^ 0x2545f491);
  const attack = async (
    x: tf.Tensor4D,
    y: tf.Tensor1D,
    call: AttackCall,
    imagesOnly: boolean,
  ): Promise<tf.Tensor4D | AttackResult> => {
    checkInputs(x, y);
    if (call.targets)
      check(
        call.targets.shape[0] === x.shape[0] && call.targets.dtype === 'int32',
        'targets must be int32 with one entry per image',
      );
    return inMode(classifier, info.mode, async () => {
      const chosen =
        !call.targets && info.targeted !== undefined
          ? chooseTargets(
              info.targeted,
              y,
              () => classifier.logits(x, info.mode),
              classifier.numClasses,
              rng,
            )
          : undefined;
      const targets = call.targets ?? chosen;
      const progress = call.onProgress
        ? new RunProgress(
            call.onProgress,
            info.name,
            progressLayout(info, classifier.numClasses, units),
            x.shape[0],
          )
        : undefined;
      try {
        const out =
          info.eps === 0 && !classifier.randomized
            ? x.clone()
            : await run({ classifier, x, y, targets, seed: () => rng.seed(), progress });
        if (out instanceof tf.Tensor && imagesOnly) {
          progress?.finish();
          return out;
        }
        const result = out instanceof tf.Tensor ? verdict(classifier, info, out, y, targets) : out;
        progress?.finish(unbroken(result.success));
        if (!imagesOnly) return result;
        tf.dispose([result.success, result.predicted]);
        return result.adv;
      } finally {
        chosen?.dispose();
      }
    });
  };
  const full = (x: tf.Tensor4D, y: tf.Tensor1D, call: AttackCall = {}) =>
    attack(x, y, call, false) as Promise<AttackResult>;
  const images = (x: tf.Tensor4D, y: tf.Tensor1D, call: AttackCall = {}) =>
    attack(x, y, call, true) as Promise<tf.Tensor4D>;
  return Object.defineProperties(
    Object.assign(full, { info: Object.freeze({ ...info }), images, classifier }),
    {
      randomState: {
        enumerable: true,
        get: () => rng.state,
        set: (state: number) => void (rng = Rng.fromState(state)),
      },
    },
  ) as Attack;
}
