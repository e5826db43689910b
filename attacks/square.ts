/**
 * Square Attack (Andriushchenko et al. 2020), as in AutoAttack: a score-based random search that
 * uses forward passes only, so it works where gradients are useless — the standard check for
 * gradient masking. Each query changes one square window of the current best point (Linf: the
 * window is set to ±eps per channel; L2 and L1: mass is moved between two windows keeping the
 * norm at eps, L1 with the exact projection onto the ball ∩ box) and keeps the change when the margin loss z_y − max_{j≠y} z_j drops. Window sizes follow
 * AutoAttack's p-schedule from p_init = 0.8; as in the reference, window position and signs are
 * drawn once per query for the whole batch (L2: signs per example).
 */
import tf from '#tfjs';
import type { Classifier, ModelMode } from '../models/classifier.js';
import { check } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import {
  checkNumber,
  commonInfo,
  defineAttack,
  type Attack,
  type CommonOptions,
  type RunContext,
} from './attack.js';
import { isSuccess, margin, predictedClass } from './losses.js';
import { attackResult, exampleMask, withRestarts, type RunResult } from './iterative.js';
import { l1, usableBudget, type NormName } from './norms.js';
import { yieldToEventLoop } from '../util/platform.js';

export interface SquareOptions extends CommonOptions {
  /** Queries per restart (default 5000, as AutoAttack). */
  steps?: number;
  /** Share of the image the first windows cover (default 0.8). */
  pInit?: number;
  restarts?: number;
}

/** AutoAttack's schedule of p (the windows' share of the image): halved after queries 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000. */
export function squareP(query: number, pInit: number): number {
  return (
    pInit / 2 ** [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter((b) => query > b).length
  );
}

/** Random integer in [lo, hi) as the reference draws it (hi − lo > 0), or lo when the range is empty. */
const randInt = (rng: Rng, lo: number, hi: number) => (hi > lo ? lo + rng.int(hi - lo) : lo);
const randSign = (rng: Rng) => (rng.next() < 0.5 ? -1 : 1);

/** ‖v‖ of a host array: L2, or L1 (the two norms Square moves mass in). */
const massOfArray = (norm: MassNorm, v: Float64Array) =>
  norm === 'l2' ? Math.hypot(...v) : v.reduce((a, b) => a + Math.abs(b), 0);

/** The window pattern of size x × y: nested rectangles weighted 1/(k+1)² (L2) or 1/(k+1)⁴ (L1), unit norm. */
function etaRectangles(x: number, y: number, norm: MassNorm): Float64Array {
  const d = new Float64Array(x * y);
  const power = norm === 'l2' ? 2 : 4;
  let r = Math.floor(x / 2);
  let c = Math.floor(y / 2);
  for (let k = 0; k < Math.max(Math.floor(x / 2) + 1, Math.floor(y / 2) + 1); k++) {
    for (let i = Math.max(r, 0); i < Math.min(r + 2 * k + 1, x); i++)
      for (let j = Math.max(c, 0); j < Math.min(c + 2 * k + 1, y); j++)
        d[i * y + j] += 1 / (k + 1) ** power;
    r--;
    c--;
  }
  const size = massOfArray(norm, d);
  return d.map((v) => v / size);
}

/** An s × s window: a positive upper half and a negative lower half, unit norm, transposed half the time. */
function eta(s: number, rng: Rng, norm: MassNorm): Float32Array {
  const top = Math.floor(s / 2);
  const d = new Float64Array(s * s);
  d.set(etaRectangles(top, s, norm), 0);
  d.set(
    etaRectangles(s - top, s, norm).map((v) => -v),
    top * s,
  );
  const size = massOfArray(norm, d);
  const out = new Float32Array(s * s);
  const transpose = rng.next() > 0.5;
  for (let i = 0; i < s; i++)
    for (let j = 0; j < s; j++) out[transpose ? j * s + i : i * s + j] = d[i * s + j] / size;
  return out;
}

/** [1,h,w,1] mask of the s × s window at (r, c). */
function windowMask(h: number, w: number, r: number, c: number, s: number): tf.Tensor4D {
  const m = new Float32Array(h * w);
  for (let i = r; i < r + s; i++) m.fill(1, i * w + c, i * w + c + s);
  return tf.tensor4d(m, [1, h, w, 1]);
}

/** The norms in which Square moves mass between windows. */
type MassNorm = 'l2' | 'l1';

/** Per-example norm [N,1,1,1], or per example and channel over the image's rows and columns [N,1,1,C]. */
function massOf(norm: MassNorm, t: tf.Tensor4D, perChannel = false): tf.Tensor4D {
  const axes = perChannel ? [1, 2] : [1, 2, 3];
  return (
    norm === 'l2' ? t.square().sum(axes, true).sqrt() : t.abs().sum(axes, true)
  ) as tf.Tensor4D;
}

/**
 * A perturbation brought onto the budget: L2 scaled to norm eps; L1 projected onto the ball ∩
 * box at eps·(1 − 1e-6), as the reference does (its sparse windows would lose mass to a clip).
 */
function onBudget(norm: MassNorm, x: tf.Tensor4D, delta: tf.Tensor4D, eps: number): tf.Tensor4D {
  if (norm === 'l1')
    return x.add(l1.projectInBox!(x, delta, eps * (1 - 1e-6))).clipByValue(0, 1) as tf.Tensor4D;
  return x.add(delta.div(massOf('l2', delta).add(1e-12)).mul(eps)).clipByValue(0, 1) as tf.Tensor4D;
}

interface SquareContext {
  classifier: Classifier;
  mode: ModelMode;
  norm: NormName;
  eps: number;
  queries: number;
  pInit: number;
}

/** One run on the examples of `ctx`: the best point per example and whether it is misclassified. */
async function squareRun(ctx: RunContext, q: SquareContext): Promise<RunResult> {
  const { x, y } = ctx;
  const [n, h, w, c] = x.shape;
  const rng = new Rng(ctx.seed());
  const { eps } = usableBudget(q.norm, x.shape, q.eps);
  const marginOf = (xs: tf.Tensor4D, ys: tf.Tensor1D) =>
    tf.tidy(() => margin(q.classifier.logits(xs, q.mode), ys).neg() as tf.Tensor1D);
  let xBest = tf.tidy(() => {
    if (q.norm === 'linf') {
      // vertical stripes of ±eps: one sign per example, column and channel
      const signs = Float32Array.from({ length: n * w * c }, () => randSign(rng) * eps);
      return x.add(tf.tensor4d(signs, [n, 1, w, c])).clipByValue(0, 1) as tf.Tensor4D;
    }
    const norm = q.norm;
    const s = Math.max(Math.floor(h / 5), 1);
    const start = Math.floor((h - s * 5) / 2);
    let delta = tf.zerosLike(x) as tf.Tensor4D;
    // a grid of h/s × w/s windows from (start, start); windows past the edge are left out, as in the reference
    const rows = Array.from({ length: Math.floor(h / s) }, (_, a) => start + a * s).filter(
      (r) => r + s <= h,
    );
    const cols = Array.from({ length: Math.floor(w / s) }, (_, a) => start + a * s).filter(
      (v) => v + s <= w,
    );
    for (const r of rows) {
      for (const col of cols) {
        const pattern = tf.tensor4d(eta(s, rng, norm), [1, s, s, 1]);
        const signs = tf.tensor4d(
          Float32Array.from({ length: n * c }, () => randSign(rng)),
          [n, 1, 1, c],
        );
        delta = delta.add(
          pattern.mul(signs).pad([
            [0, 0],
            [r, h - r - s],
            [col, w - col - s],
            [0, 0],
          ]),
        ) as tf.Tensor4D;
      }
    }
    return onBudget(norm, x, delta, eps);
  });
  let marginMin = marginOf(xBest, y);
  const features = h * w * c;
  for (let i = 0; i < q.queries; i++) {
    const m = await marginMin.data();
    const active: number[] = [];
    for (let k = 0; k < n; k++) if (m[k] > 0) active.push(k);
    ctx.progress?.stepDone(i, n - active.length);
    if (active.length === 0) break;
    const p = squareP(i, q.pInit);
    const next = tf.tidy(() => {
      const idx = tf.tensor1d(Int32Array.from(active), 'int32');
      const all = active.length === n;
      const xa = all ? x : (x.gather(idx) as tf.Tensor4D);
      const xb = all ? xBest : (xBest.gather(idx) as tf.Tensor4D);
      const ya = all ? y : (y.gather(idx) as tf.Tensor1D);
      let xNew: tf.Tensor4D;
      if (q.norm === 'linf') {
        const s = Math.min(Math.max(Math.round(Math.sqrt((p * features) / c)), 1), h, w);
        const r = randInt(rng, 0, h - s);
        const col = randInt(rng, 0, w - s);
        const signs = tf.tensor4d(
          Float32Array.from({ length: c }, () => 2 * eps * randSign(rng)),
          [1, 1, 1, c],
        );
        const step = windowMask(h, w, r, col, s).mul(signs);
        xNew = tf
          .minimum(tf.maximum(xb.add(step), xa.sub(eps)), xa.add(eps))
          .clipByValue(0, 1) as tf.Tensor4D;
      } else {
        const norm = q.norm;
        let s = Math.max(Math.round(Math.sqrt((p * features) / c)), 3);
        if (s % 2 === 0) s++;
        s = Math.min(s, h, w);
        const delta = xb.sub(xa) as tf.Tensor4D;
        const r1 = randInt(rng, 0, h - s);
        const c1 = randInt(rng, 0, w - s);
        const r2 = randInt(rng, 0, h - s);
        const c2 = randInt(rng, 0, w - s);
        const mask1 = windowMask(h, w, r1, c1, s);
        const mask2 = windowMask(h, w, r2, c2, s);
        const window1 = delta.slice([0, r1, c1, 0], [-1, s, s, -1]) as tf.Tensor4D;
        const normImage = massOf(norm, delta);
        const normWindows = massOf(norm, delta.mul(tf.maximum(mask1, mask2)) as tf.Tensor4D, true);
        const signs = tf.tensor4d(
          Float32Array.from({ length: active.length * c }, () => randSign(rng)),
          [active.length, 1, 1, c],
        );
        let fresh = tf
          .tensor4d(eta(s, rng, norm), [1, s, s, 1])
          .mul(signs)
          .add(window1.div(massOf(norm, window1, true).add(1e-12))) as tf.Tensor4D;
        // the windows' new mass per channel: what they had plus an equal share of the budget left
        // (L2 adds squares; L1 masses, scaled by c as in the reference, the projection trims it)
        const room =
          norm === 'l2'
            ? tf
                .maximum(
                  normImage
                    .square()
                    .mul(-1)
                    .add(eps * eps),
                  0,
                )
                .div(c)
                .add(normWindows.square())
                .sqrt()
            : tf.maximum(normImage.mul(-1).add(eps), 0).div(c).add(normWindows).mul(c);
        fresh = fresh.div(massOf(norm, fresh, true).add(1e-12)).mul(room) as tf.Tensor4D;
        const moved = delta
          .mul(tf.sub(1, mask2))
          .mul(tf.sub(1, mask1))
          .add(
            fresh.pad([
              [0, 0],
              [r1, h - r1 - s],
              [c1, w - c1 - s],
              [0, 0],
            ]),
          ) as tf.Tensor4D;
        xNew = onBudget(norm, xa, moved, eps);
      }
      const mNew = marginOf(xNew, ya);
      const mOld = all ? marginMin : marginMin.gather(idx);
      const better = mNew.less(mOld);
      const chosenX = tf.where(exampleMask(better, xNew), xNew, xb) as tf.Tensor4D;
      const chosenM = tf.where(better, mNew, mOld) as tf.Tensor1D;
      if (all) return { xBest: chosenX, marginMin: chosenM };
      const at = idx.reshape([-1, 1]);
      return {
        xBest: tf.tensorScatterUpdate(xBest, at, chosenX) as tf.Tensor4D,
        marginMin: tf.tensorScatterUpdate(marginMin, at, chosenM) as tf.Tensor1D,
      };
    });
    tf.dispose([xBest, marginMin]);
    xBest = next.xBest;
    marginMin = next.marginMin;
    if (i % 16 === 15) await yieldToEventLoop();
  }
  const { success, predicted } = tf.tidy(() => {
    const logits = q.classifier.logits(xBest, q.mode);
    return { success: isSuccess(logits, y), predicted: predictedClass(logits) };
  });
  const value = tf.tidy(() => marginMin.neg() as tf.Tensor1D);
  marginMin.dispose();
  return { adv: xBest, value, success, predicted };
}

export function square(model: tf.LayersModel | Classifier, o: SquareOptions = {}): Attack {
  check(o.targeted === undefined, 'square runs untargeted (margin loss), as in AutoAttack');
  const base = commonInfo('square', o, 'margin');
  check(base.eotSamples === 1, 'square uses no gradients: EOT samples do not apply');
  const queries = o.steps ?? 5000;
  checkNumber('queries', queries, { positive: true, integer: true });
  const pInit = o.pInit ?? 0.8;
  check(
    Number.isFinite(pInit) && pInit > 0 && pInit <= 1,
    `p_init must be in (0, 1], got ${pInit}`,
  );
  const restarts = o.restarts ?? 1;
  checkNumber('restarts', restarts, { positive: true, integer: true });
  const info = { ...base, steps: queries, restarts, pInit, randomStart: true };
  return defineAttack(
    model,
    info,
    async (ctx) => {
      if (info.eps === 0) return ctx.x.clone();
      const q: SquareContext = {
        classifier: ctx.classifier,
        mode: info.mode,
        norm: info.norm,
        eps: info.eps,
        queries,
        pInit,
      };
      return attackResult(await withRestarts(ctx, restarts, (c) => squareRun(c, q)));
    },
    { unit: 'query' },
  );
}
