// The types of #tfjs (util/tfjs.node.cjs, util/tfjs.default.mjs): tfjs's namespace as a default
// export. (Not named `tf` here: tfjs declares a global `tf` namespace, and the alias would be circular.)
import * as tfjs from '@tensorflow/tfjs';
export default tfjs;
