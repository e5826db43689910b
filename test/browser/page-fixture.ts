/** A folder to serve the page from: the repository's web/, zoo/ and sample (linked) and a fresh bundle of the sources under test. */
import fs from 'node:fs';
import path from 'node:path';
import { buildBrowser } from '../../scripts/build-browser.js';
import { ROOT, tmpDir } from '../helpers.js';

export async function pageRoot(): Promise<string> {
  const root = tmpDir('page-root');
  fs.symlinkSync(path.join(ROOT, 'web'), path.join(root, 'web'));
  fs.symlinkSync(path.join(ROOT, 'zoo'), path.join(root, 'zoo'));
  fs.mkdirSync(path.join(root, 'data'));
  fs.symlinkSync(path.join(ROOT, 'data', 'samples'), path.join(root, 'data', 'samples'));
  await buildBrowser(root, path.join(ROOT, 'browser.ts')); // a test file of its own each: no two write one bundle
  return root;
}
