/**
 * Writes random L1 ball ∩ box projection problems and our solutions (`l1.projectInBox`, the
 * projection L1-APGD and Square-L1 use) as JSON, for l1_projection_reference.py to compare with
 * the reference implementation's (fra31/auto-attack's autopgd_base.L1_projection).
 * usage: node dist/scripts/crosscheck/l1-projection.js OUT.json [CASES]
 */
import fs from 'node:fs';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { l1 } from '../../attacks/norms.js';
import { Rng } from '../../util/rng.js';

const [out, count = '60'] = process.argv.slice(2);
if (!out) {
  console.error('usage: l1-projection OUT.json [CASES]');
  process.exit(2);
}
await initBackend({ backend: 'wasm' });
const rng = new Rng(1);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const cases = Array.from({ length: Number(count) }, (_, k) => {
  const d = k % 4 === 0 ? 3072 : 5 + rng.int(200); // every fourth a CIFAR-sized image
  const x = Float32Array.from({ length: d }, () => rng.next());
  const scale = [0.01, 0.1, 1, 5][k % 4];
  const delta = Float32Array.from({ length: d }, () => scale * gauss());
  const eps = [0.5, 4, 12, 100][rng.int(4)];
  const solution = tf.tidy(() =>
    l1.projectInBox!(
      tf.tensor4d(x, [1, 1, d, 1]),
      tf.tensor4d(delta, [1, 1, d, 1]),
      eps,
    ).dataSync(),
  );
  return { x: Array.from(x), delta: Array.from(delta), eps, solution: Array.from(solution) };
});
fs.writeFileSync(out, JSON.stringify(cases));
