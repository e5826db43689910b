import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tf from '#tfjs';
import { expect } from 'vitest';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The real data sets beside the repository (present on CI and dev machines, not on a fresh clone). */
export const SHARED_DATA = path.resolve(ROOT, '..', 'shared', 'data');
export const HAS_SHARED_CIFAR = fs.existsSync(
  path.join(SHARED_DATA, 'cifar10', 'cifar-10-binary.tar.gz'),
);
export const HAS_SHARED_FASHION = fs.existsSync(
  path.join(SHARED_DATA, 'fashion-mnist', 'train-images-idx3-ubyte.gz'),
);
/** Set by .ci/run: there, a test never skips for something missing — it runs and fails. */
const IN_CI = process.env.ROBUST_CI === '1';
/** For `it.skipIf`: skip only off CI when what the test needs is absent. */
export const missing = (present: boolean) => !present && !IN_CI;

/**
 * XNNPACK threads for a test file whose subject is not threading. The suite runs two files at once
 * on two cores (vitest.config.ts), so a second pool thread mostly spins waiting for a core the other
 * file holds: on tiny tensors it took ~3× the CPU for the same numbers. Splitting work across
 * threads is tested where it is the subject (test/backend/, test/train/threads.test.ts).
 */
export const SUITE_THREADS = 1;

export function tmpDir(name: string): string {
  return fs.mkdtempSync(
    path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), `robust-${name}-`),
  );
}

/** n uniform values in [-1, 1) from `rng`. */
export function randomArray(n: number, rng: { next(): number }): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.next() * 2 - 1;
  return a;
}

/** Largest absolute difference between a and the reference b, relative to b's largest magnitude. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/**
 * Runs `step` once (warm-up: kernels, caches), then `times` more, and expects live tensors, their
 * bytes and the backend's buffers to stay flat: what "tf.tidy/dispose everywhere" promises.
 */
export function expectNoLeak(step: () => void, times = 4): void {
  step();
  const before = tf.memory();
  const buffers = tf.backend().numDataIds();
  for (let i = 0; i < times; i++) step();
  const after = tf.memory();
  expect(after.numTensors).toBe(before.numTensors);
  expect(after.numBytes).toBe(before.numBytes);
  expect(tf.backend().numDataIds()).toBe(buffers);
}
