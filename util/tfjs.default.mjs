// tfjs for robust's own modules outside Node (bundlers, browsers): the package's ES modules, as
// one default export like util/tfjs.node.cjs gives in Node.
import * as tf from '@tensorflow/tfjs';
export default tf;
