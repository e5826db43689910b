/**
 * The backend self-check in Node: a fake GPU backend (tfjs's cpu kernels under another name) passes
 * when it computes as cpu does, and is refused when it reads tensors back as zeros (what
 * tfjs-backend-webgpu does on SwiftShader) or when the model on one side is tampered with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  checkBackend,
  compareLogits,
  needsBackendCheck,
  CHECK_TOLERANCE,
} from '../../eval/backend-check.js';
import { layersClassifier } from '../../models/classifier.js';
import type { ImageSet } from '../../data/dataset.js';
import { RobustError } from '../../util/errors.js';

/** cpu's kernels under the name `name`; `zeros`: its synchronous reads of computed tensors give zeros. */
function registerFake(name: string, zeros: boolean) {
  class Fake extends MathBackendCPU {
    override readSync(dataId: object) {
      const v = super.readSync(dataId);
      return zeros ? new Float32Array((v as Float32Array).length) : v;
    }
  }
  tf.registerBackend(name, () => new Fake());
  for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: name });
}

// weights fixed once, so every build is the same model (on whichever backend is running)
const WEIGHTS: { shape: number[]; values: Float32Array }[] = [];
function build(tamper = 0) {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 4, kernelSize: 3, activation: 'relu' }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 5 }),
    ],
  });
  if (WEIGHTS.length === 0)
    for (const w of model.getWeights())
      WEIGHTS.push({ shape: w.shape, values: Float32Array.from(w.dataSync()) });
  const weights = WEIGHTS.map((w, i) => {
    const v = w.values.slice();
    if (i === 3) v[0] += tamper; // the first class's bias: every image's first logit moves
    return tf.tensor(v, w.shape);
  });
  model.setWeights(weights);
  tf.dispose(weights);
  return { classifier: layersClassifier(model), dispose: () => model.dispose() };
}

const IMAGES: ImageSet = {
  images: Uint8Array.from({ length: 10 * 36 }, (_, i) => (i * 37) % 256),
  labels: new Uint8Array(10),
  count: 10,
  height: 6,
  width: 6,
  channels: 1,
};

describe('backend self-check', () => {
  beforeAll(async () => {
    registerFake('fakegpu', false);
    registerFake('zerogpu', true);
    await tf.setBackend('cpu');
    build().dispose(); // fix the weights on cpu
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  const on = async (backend: string, tamper = 0, referenceTamper = 0) => {
    await tf.setBackend(backend);
    const m = build(tamper);
    try {
      return await checkBackend(m.classifier, IMAGES, {
        reference: async () => build(referenceTamper),
      });
    } finally {
      m.dispose();
    }
  };

  it('only non-reference backends need it', () => {
    expect(needsBackendCheck('wasm')).toBe(false);
    expect(needsBackendCheck('cpu')).toBe(false);
    expect(needsBackendCheck('webgpu')).toBe(true);
    expect(needsBackendCheck('tensorflow')).toBe(true);
  });

  it('a backend computing as cpu does passes, recorded; no tensors left; the backend still running', async () => {
    await tf.setBackend('fakegpu');
    await on('fakegpu'); // warm-up: tfjs's own one-off tensors
    const before = tf.memory().numTensors;
    const check = await on('fakegpu');
    expect(tf.getBackend()).toBe('fakegpu');
    expect(tf.memory().numTensors).toBe(before);
    expect(check).toEqual({
      backend: 'fakegpu',
      reference: 'cpu',
      images: 8,
      max_logit_diff: 0,
      tolerance: CHECK_TOLERANCE,
    });
  });

  it('a backend reading tensors back as zeros is refused in one line, naming it', async () => {
    const e = await on('zerogpu').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RobustError);
    expect((e as Error).message).toMatch(
      /^zerogpu gives other (predictions than cpu on [1-8] of 8 images|logits than cpu on the first 8 images) \(max (logit )?difference [\d.e+-]+.*\): this backend computes this model wrongly here; choose wasm$/,
    );
    expect(tf.getBackend()).toBe('zerogpu'); // left running, as found
  });

  it('a tampered model on either side is refused', async () => {
    await expect(on('fakegpu', 5)).rejects.toThrow(/^fakegpu gives other /);
    await expect(on('fakegpu', 0, 5)).rejects.toThrow(/^fakegpu gives other /);
    // a change far below the tolerance passes
    expect((await on('fakegpu', 1e-7)).max_logit_diff).toBeLessThan(CHECK_TOLERANCE);
  });

  it('compareLogits: equal logits agree; a row whose top class moves counts once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 2, max: 7 }),
        fc.infiniteStream(fc.float({ min: -20, max: 20, noNaN: true })),
        (images, classes, stream) => {
          const want = Float32Array.from(stream.take(images * classes));
          expect(compareLogits(want, want, classes)).toMatchObject({
            images,
            disagree: 0,
            maxDiff: 0,
          });
          const got = want.slice();
          got[1] = Math.max(...want.subarray(0, classes)) + 3; // image 0's top class is now class 1
          const c = compareLogits(got, want, classes);
          expect(c.maxDiff).toBeGreaterThanOrEqual(2.99); // float32 rounding
          let top = 0;
          for (let j = 1; j < classes; j++) if (want[j] > want[top]) top = j;
          expect(c.disagree).toBe(top === 1 ? 0 : 1);
        },
      ),
    );
    expect(compareLogits([NaN, 0], [1, 0], 2).maxDiff).toBe(Infinity);
    expect(() => compareLogits([1, 2, 3], [1, 2], 2)).toThrow(RobustError);
  });
});
