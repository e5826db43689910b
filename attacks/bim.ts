/** BIM / I-FGSM (Kurakin et al. 2017): PGD without the random start. */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import type { Attack } from './attack.js';
import { pgd, type PgdOptions } from './pgd.js';

export function bim(
  model: tf.LayersModel | Classifier,
  o: Omit<PgdOptions, 'randomStart' | 'momentum'> = {},
): Attack {
  return pgd(model, { ...o, randomStart: false }, 'bim');
}
