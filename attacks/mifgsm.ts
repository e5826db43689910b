/**
 * MI-FGSM (Dong et al. 2018): iterative steps along an accumulated gradient,
 * g ← μ·g + ∇/‖∇‖₁, with decay μ = 1 and no random start by default.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import type { Attack } from './attack.js';
import { pgd, type PgdOptions } from './pgd.js';

export function mifgsm(model: tf.LayersModel | Classifier, o: PgdOptions = {}): Attack {
  return pgd(model, { randomStart: false, ...o, momentum: o.momentum ?? 1 }, 'mifgsm');
}
