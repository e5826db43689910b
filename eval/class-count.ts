/** The one check that a data set's named classes are a model's outputs (CLI and page alike; Node-free). */
import { optionError, RobustError } from '../util/errors.js';

/**
 * Named classes must be the model's classes one for one: more outputs would be scored as wrong
 * guesses of unknown classes, fewer leave classes without a score. (Index labels already stand for
 * the model's classes: withClassCount.) The page runs the same check on what it loaded.
 */
export function checkClassCount(
  m: { path: string; numClasses: number; logits?: unknown },
  data: { name: string; classes: readonly string[] },
): void {
  const k = data.classes.length;
  if (m.numClasses !== k)
    throw m.logits === 'named'
      ? optionError(
          (n) =>
            `${m.path}: the ${n('output')} named gives ${m.numClasses} values per image but ${data.name} has ${k} classes: name the layer of the class scores`,
        )
      : new RobustError(
          `${m.path}: the model has ${m.numClasses} outputs but ${data.name} has ${k} classes`,
        );
}
