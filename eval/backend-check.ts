/**
 * The backend self-check: before a backend other than the reference ones (wasm, cpu) computes any
 * number — webgpu or webgl in a page, tfjs-node-gpu's in Node — the model's logits on a few of the
 * chosen images there are compared with the same model's on a reference backend. A backend that
 * computes (or reads back) this model wrongly then stops the run with one line, instead of giving
 * a table of wrong numbers that no sanity check flags (found: tfjs-backend-webgpu on SwiftShader's
 * adapter reads every GPU tensor back as zeros synchronously, so clean accuracy came out 0).
 */
import tf from '#tfjs';
import type { ImageSet } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { RobustError } from '../util/errors.js';

/** Backends whose numbers are the reference: no check before they run. */
export const REFERENCE_BACKENDS = ['wasm', 'cpu'] as const;
export type ReferenceBackend = (typeof REFERENCE_BACKENDS)[number];

/** Images compared (the first ones of the test set). */
export const CHECK_IMAGES = 8;
/**
 * Largest logit difference accepted, relative to the largest reference logit (at least 1).
 * Measured on zoo:resnet20-fgsm-rs and zoo:fmnist-resnet20w8, 8 images: webgl (SwiftShader)
 * against cpu ≤ 2e-6 relative; float32 noise on a real GPU stays far below 1e-3, while the
 * faults this is for are of the logits' own size.
 */
export const CHECK_TOLERANCE = 1e-3;

/** What results record of a check that ran and passed. */
export interface BackendCheck {
  backend: string;
  reference: ReferenceBackend;
  images: number;
  /** The largest absolute difference of a logit between the two backends. */
  max_logit_diff: number;
  /** Accepted: max_logit_diff ≤ tolerance · max(1, largest |reference logit|). */
  tolerance: number;
}

export interface LogitsComparison {
  images: number;
  /** Images whose predicted class differs. */
  disagree: number;
  /** Largest absolute logit difference (Infinity when `got` holds NaN or ±Infinity). */
  maxDiff: number;
  /** Largest |logit| of the reference. */
  scale: number;
}

/** Compares two [images × classes] logit arrays, row-major. */
export function compareLogits(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  classes: number,
): LogitsComparison {
  if (got.length !== want.length || classes < 1 || want.length % classes !== 0)
    throw new RobustError(
      `backend check: ${got.length} logits against ${want.length} (${classes} classes each)`,
    );
  const images = want.length / classes;
  let disagree = 0;
  let maxDiff = 0;
  let scale = 0;
  const argmax = (a: ArrayLike<number>, at: number) => {
    let best = at;
    for (let j = at + 1; j < at + classes; j++) if (a[j] > a[best]) best = j;
    return best - at;
  };
  for (let i = 0; i < images; i++) {
    const at = i * classes;
    if (argmax(got, at) !== argmax(want, at)) disagree++;
    for (let j = at; j < at + classes; j++) {
      const d = Math.abs(got[j] - want[j]);
      maxDiff = Math.max(maxDiff, Number.isNaN(d) ? Infinity : d);
      scale = Math.max(scale, Math.abs(want[j]));
    }
  }
  return { images, disagree, maxDiff, scale };
}

/** Whether `c` is within `tolerance` (relative to the reference's largest logit, at least 1). */
export const withinTolerance = (c: LogitsComparison, tolerance = CHECK_TOLERANCE) =>
  c.maxDiff <= tolerance * Math.max(1, c.scale);

/** Whether numbers computed on `backend` need the check first. */
export const needsBackendCheck = (backend: string) =>
  !(REFERENCE_BACKENDS as readonly string[]).includes(backend);

/** The first `n` images in [0,1] as the grid's batches hold them. */
function pixels(test: ImageSet, n: number): Float32Array {
  const per = test.height * test.width * test.channels;
  const out = new Float32Array(n * per);
  for (let i = 0; i < out.length; i++) out[i] = test.images[i] / 255;
  return out;
}

/**
 * Logits read back synchronously, as the grid reads its numbers: a backend's asynchronous read can
 * be right where its synchronous one is not (webgpu on SwiftShader).
 */
function logitsOn(c: Classifier, x: Float32Array, shape: [number, number, number, number]) {
  return tf.tidy(() => Float32Array.from(c.logits(tf.tensor4d(x, shape), 'inference').dataSync()));
}

export interface BackendCheckOptions {
  /**
   * Builds the same model anew; called with the reference backend running, so its weights live
   * there (moving the checked model's weights would read them back through the backend checked).
   */
  reference: () => Promise<{ classifier: Classifier; dispose(): void }>;
  /** Default: cpu (always there; wasm needs its .wasm files and threads set up). */
  referenceBackend?: ReferenceBackend;
  images?: number;
  tolerance?: number;
}

/**
 * Runs `classifier` (on the current backend) and the reference's model on the first images of
 * `test`, and throws a one-line RobustError when their logits differ beyond the tolerance; else
 * returns what results record. The current backend is running again when it returns or throws.
 */
export async function checkBackend(
  classifier: Classifier,
  test: ImageSet,
  o: BackendCheckOptions,
): Promise<BackendCheck> {
  const backend = tf.getBackend();
  const reference = o.referenceBackend ?? 'cpu';
  const tolerance = o.tolerance ?? CHECK_TOLERANCE;
  if (backend === reference)
    throw new RobustError(`backend check: ${backend} is the reference backend itself`);
  const n = Math.min(o.images ?? CHECK_IMAGES, test.count);
  if (n < 1) throw new RobustError('backend check: no images to run the model on');
  const x = pixels(test, n);
  const shape: [number, number, number, number] = [n, test.height, test.width, test.channels];
  // the reference first, before anything of the model has run on the backend checked
  let want: Float32Array;
  if (!(await tf.setBackend(reference)))
    throw new RobustError(`backend check: the reference backend ${reference} cannot start here`);
  try {
    const ref = await o.reference();
    try {
      want = logitsOn(ref.classifier, x, shape);
    } finally {
      ref.dispose();
    }
  } finally {
    await tf.setBackend(backend);
  }
  const got = logitsOn(classifier, x, shape);
  const c = compareLogits(got, want, want.length / n);
  if (!withinTolerance(c, tolerance)) {
    const diff = Number.isFinite(c.maxDiff) ? c.maxDiff.toPrecision(3) : 'not a number';
    throw new RobustError(
      c.disagree > 0
        ? `${backend} gives other predictions than ${reference} on ${c.disagree} of ${n} images (max logit difference ${diff}): this backend computes this model wrongly here; choose wasm`
        : `${backend} gives other logits than ${reference} on the first ${n} images (max difference ${diff}, over ${tolerance} of the largest logit ${c.scale.toPrecision(3)}): this backend computes this model wrongly here; choose wasm`,
    );
  }
  return { backend, reference, images: n, max_logit_diff: c.maxDiff, tolerance };
}
