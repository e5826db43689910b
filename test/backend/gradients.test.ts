/**
 * backend/ops/gradients.ts: the same gradients as tfjs's, bit for bit, with a backward pass that
 * frees each gradient and saved tensor once it is past them — and no tensor left on any path out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import {
  gradients,
  inputGrad,
  lowMemoryGradientsAvailable,
  variableGrads,
} from '../../backend/ops/gradients.js';
import { createModel } from '../../models/zoo.js';
import { foldedClassifier } from '../../models/fold.js';
import { SUITE_THREADS } from '../helpers.js';

const bits = (t: tf.Tensor) => new Uint32Array(new Float32Array(t.dataSync()).buffer);

/**
 * tf.memory()'s bytes (every live tensor's size, shared data counted per tensor) when `f` returns,
 * and at the backward pass's kernel calls that follow: the most, and at the last one.
 */
function backwardBytes(
  run: (f: () => tf.Tensor) => void,
  f: () => tf.Tensor,
): { forwardEnd: number; backwardPeak: number; backwardEnd: number } {
  const engine = tf.engine() as unknown as { runKernel: (...a: unknown[]) => unknown };
  let forwardEnd = -1;
  let backwardPeak = 0;
  let backwardEnd = 0;
  const original = engine.runKernel;
  engine.runKernel = (...a: unknown[]) => {
    const out = original.apply(engine, a);
    if (forwardEnd >= 0) {
      backwardEnd = tf.memory().numBytes;
      backwardPeak = Math.max(backwardPeak, backwardEnd);
    }
    return out;
  };
  try {
    run(() => {
      const y = f();
      forwardEnd = tf.memory().numBytes;
      return y;
    });
  } finally {
    engine.runKernel = original;
  }
  return { forwardEnd, backwardPeak, backwardEnd };
}

{
  describe('low-memory gradients on wasm', () => {
    let model: tf.LayersModel;
    let x: tf.Tensor4D;
    let y: tf.Tensor2D;
    beforeAll(async () => {
      await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
      model = createModel('resnet20', {
        inputShape: [8, 8, 3],
        numClasses: 5,
        width: 4,
        mean: [0.5, 0.4, 0.3],
        std: [0.2, 0.25, 0.3],
      });
      model.setUserDefinedMetadata({ robust: { model: 'resnet20', width: 4 } });
      x = tf.randomUniform([6, 8, 8, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
      y = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0], 'int32'), 5)) as tf.Tensor2D;
    });
    afterAll(() => {
      tf.dispose([x, y]);
      model.dispose();
    });

    it('reads the tape here (else it falls back to tfjs and frees nothing early)', () => {
      expect(lowMemoryGradientsAvailable()).toBe(true);
    });

    it('a train step: the loss and every weight gradient are tfjs’s bit for bit', () => {
      const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
      const loss = () =>
        tf.losses.softmaxCrossEntropy(
          y,
          model.apply(x, { training: true }) as tf.Tensor,
        ) as tf.Scalar;
      const before = tf.memory().numTensors;
      const ours = variableGrads(loss, vars);
      const theirs = tf.variableGrads(loss, vars);
      expect(Object.keys(ours.grads).sort()).toEqual(Object.keys(theirs.grads).sort());
      expect(Object.keys(ours.grads)).toHaveLength(vars.length);
      expect(bits(ours.value)).toEqual(bits(theirs.value));
      for (const name of Object.keys(theirs.grads))
        expect(bits(ours.grads[name]), name).toEqual(bits(theirs.grads[name]));
      tf.dispose([
        ours.value,
        theirs.value,
        ...Object.values(ours.grads),
        ...Object.values(theirs.grads),
      ]);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('an attack step (input gradient of the folded model) is tfjs’s bit for bit', () => {
      const folded = foldedClassifier(model)!;
      const labels = tf.tensor1d([4, 3, 2, 1, 0, 1], 'int32');
      const objective = (xi: tf.Tensor) =>
        tf.losses.softmaxCrossEntropy(
          tf.oneHot(labels, 5),
          folded.logits(xi as tf.Tensor4D, 'inference'),
        );
      const before = tf.memory().numTensors;
      const ours = inputGrad(objective)(x);
      const theirs = tf.grad(objective)(x);
      expect(bits(ours)).toEqual(bits(theirs));
      tf.dispose([ours, theirs]);
      expect(tf.memory().numTensors).toBe(before);
      labels.dispose();
      folded.dispose?.();
    });

    it('tensors used twice, gradients passed through as they came, inputs without a gradient', () => {
      const a = tf.tensor2d([
        [0.5, -1.5],
        [2, 0.25],
      ]);
      const c = tf.tensor2d([
        [3, -2],
        [1, 4],
      ]);
      // add passes dy through unchanged to both inputs; `a` reaches y on four paths; c is a constant
      const f = () => {
        const s = tf.add(a, a);
        return tf.add(tf.mul(s, c), tf.relu(s)).add(tf.square(a)).sum();
      };
      const ours = gradients(f, [a, c]);
      const theirs = tf.engine().gradients(f, [a, c]);
      for (let i = 0; i < 2; i++) expect(bits(ours.grads[i]!)).toEqual(bits(theirs.grads[i]));
      // d/da = 2c + 2·[2a > 0] + 2a; d/dc = 2a
      expect(Array.from(ours.grads[0]!.dataSync())).toEqual([9, -7, 8, 10.5]);
      tf.dispose([a, c, ours.value, theirs.value, ...ours.grads, ...theirs.grads]);
    });

    it('a long chain: the backward pass holds a few gradients, not one per activation', () => {
      const input = tf.randomNormal([64, 1024], 0, 1, 'float32', 5);
      const f = () => {
        let h = input;
        for (let i = 0; i < 12; i++) h = tf.sin(h);
        return h.sum();
      };
      const activation = input.size * 4;
      const ours = backwardBytes((g) => tf.dispose(Object.values(gradients(g, [input]))), f);
      const theirs = backwardBytes(
        (g) => tf.dispose(Object.values(tf.engine().gradients(g, [input]))),
        f,
      );
      // (sizes below count shared data once per tensor, as tf.memory() does)
      // tfjs's backward adds a gradient per activation (12) to the forward's tensors and frees
      // none until it ends; ours frees each op's saved input and its output's gradient after it
      expect(theirs.backwardPeak - theirs.forwardEnd).toBeGreaterThan(3 * activation);
      expect(theirs.backwardEnd).toBeGreaterThan(24 * activation);
      expect(ours.backwardPeak).toBeLessThan(ours.forwardEnd);
      expect(ours.backwardEnd).toBeLessThan(10 * activation);
      input.dispose();
    });

    it('errors as tfjs does, leave no tensor and no tape behind', () => {
      const x1 = tf.scalar(2);
      const unrelated = tf.scalar(3);
      const before = tf.memory().numTensors;
      expect(() => inputGrad(() => unrelated.square())(x1)).toThrow(
        /Cannot compute gradient of y=f\(x\)/,
      );
      expect(() =>
        inputGrad((t) => {
          t.square();
          throw new Error('forward failed');
        })(x1),
      ).toThrow('forward failed');
      expect(tf.memory().numTensors).toBe(before);
      // the tape is reset: a later gradient works
      const g = inputGrad((t) => t.square())(x1);
      expect(g.dataSync()[0]).toBe(4);
      tf.dispose([g, x1, unrelated]);
    });

    it('a failed gradient leaves the caller’s tensors alone; variableGrads checks what tfjs checks', () => {
      const x1 = tf.scalar(2);
      // f returns the caller's own tensor (x itself, another): no path from x to y (tfjs's error), and it survives
      expect(() => inputGrad((t) => t)(x1)).toThrow(/Cannot compute gradient of y=f\(x\)/);
      expect(x1.isDisposed).toBe(false);
      const outside = tf.scalar(5);
      expect(() => inputGrad(() => outside)(x1)).toThrow(/Cannot compute gradient of y=f\(x\)/);
      expect(outside.isDisposed).toBe(false);
      const w = tf.variable(tf.scalar(3), true, 'w_trainable');
      const frozen = tf.variable(tf.scalar(4), false, 'w_frozen');
      const before = tf.memory().numTensors;
      const r = variableGrads(() => w.mul(frozen).square() as tf.Scalar, [w, frozen]);
      expect(Object.keys(r.grads)).toEqual(['w_trainable']);
      expect(r.grads.w_trainable.dataSync()[0]).toBe(2 * 12 * 4);
      tf.dispose([r.value, ...Object.values(r.grads)]);
      expect(() => variableGrads(() => x1.square() as tf.Scalar, [w])).toThrow(
        /Cannot find a connection between any variable/,
      );
      expect(() => variableGrads(() => frozen.square() as tf.Scalar, [frozen])).toThrow(
        /none of the 1 variables given is trainable/,
      );
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x1, outside, w, frozen]);
    });

    it('a gradient of a gradient falls back to tfjs inside and is right', () => {
      const x1 = tf.scalar(1.5);
      // d²/dx² x³ = 6x
      const g2 = inputGrad((t) => inputGrad((u) => u.pow(3))(t))(x1);
      expect(g2.dataSync()[0]).toBeCloseTo(9, 5);
      tf.dispose([g2, x1]);
    });
  });
}
