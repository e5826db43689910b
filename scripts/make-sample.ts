/**
 * Writes the bundled Fashion-MNIST sample (first 2,000 train / 500 test images, IDX .gz) from the
 * full set: `npx tsx scripts/make-sample.ts <folder with the four .gz files>`.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { FASHION_FILES, parseIdx } from '../data/fashion-mnist.js';

const src = process.argv[2];
const out = path.join('data', 'samples', 'fashion-mnist');
fs.mkdirSync(out, { recursive: true });
const counts = { trainImages: 2000, trainLabels: 2000, testImages: 500, testLabels: 500 };
for (const [key, file] of Object.entries(FASHION_FILES) as [keyof typeof FASHION_FILES, string][]) {
  const dims = key.endsWith('Images') ? 3 : 1;
  const { shape, data } = parseIdx(fs.readFileSync(path.join(src, file)), dims, file);
  const n = counts[key];
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const header = Buffer.alloc(4 + 4 * dims);
  header.writeUInt32BE(0x800 + dims, 0);
  [n, ...shape.slice(1)].forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  fs.writeFileSync(
    path.join(out, file),
    zlib.gzipSync(Buffer.concat([header, data.subarray(0, n * per)]), { level: 9 }),
  );
}
console.log(`wrote ${out}`);
