/**
 * The done-when run by hand: robust serve with a data folder holding CIFAR-10, the page
 * evaluates a model on the first N test images in headless Chromium (wasm, or webgl on
 * SwiftShader), robust eval runs the same grid in Node, and the two results.json are compared
 * (masks, sizes, fingerprints); prints both img/s and saves a screenshot of the finished page.
 *
 *   node dist/scripts/page-cifar10.js --data-dir DIR [--limit 100] [--attacks pgd] [--eps 8/255]
 *        [--backend wasm|webgl] [--model zoo:resnet20-fgsm-rs] [--shot /work/runs/page-cifar10.png]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM } from './check-report.js';
import { servePage } from '../util/serve.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values: o } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    limit: { type: 'string', default: '100' },
    attacks: { type: 'string', default: 'pgd' },
    eps: { type: 'string', default: '8/255' },
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: 'zoo:resnet20-fgsm-rs' },
    shot: { type: 'string' },
  },
});
if (!o['data-dir']) throw new Error('--data-dir DIR (where robust data cifar10 put CIFAR-10)');
const dataDir = path.resolve(o['data-dir']);

const server = await servePage(ROOT, 0, { dataDir });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--no-first-run',
    ...(o.backend === 'webgl'
      ? ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist']
      : ['--disable-gpu']),
  ],
});
let page;
try {
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(server.url);
  await page.waitForSelector('#cifar-served:not([hidden])', { timeout: 10_000 });
  await page.check('input[name=data][value=cifar10-served]');
  await page.fill('#model-url', o.model);
  await page.fill('#attacks', o.attacks);
  await page.fill('#eps', o.eps);
  await page.fill('#limit', o.limit);
  await page.selectOption('#backend', o.backend);
  await page.click('#run');
  await page.waitForFunction(
    () =>
      (window as { robustResult?: unknown }).robustResult ||
      !document.getElementById('error')!.hidden,
    null,
    { timeout: 0 },
  );
  const error = await page.evaluate(() =>
    document.getElementById('error')!.hidden ? null : document.getElementById('error')!.textContent,
  );
  if (error) throw new Error(`the page: ${error}`);
  const run = await page.evaluate(() => {
    const r = (window as { robustResult?: { files: Record<string, string>; imgPerSec: number } })
      .robustResult!;
    return { json: r.files['results.json'], imgPerSec: r.imgPerSec };
  });
  console.log(`page: ${await page.textContent('#backend-line')}`);
  console.log(`page: ${await page.textContent('#progress')}`);
  if (o.shot) {
    fs.mkdirSync(path.dirname(o.shot), { recursive: true });
    await page.screenshot({ path: o.shot, fullPage: true });
    console.log(`screenshot: ${o.shot}`);
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'robust-page-cifar10-'));
  const t0 = Date.now();
  const cli = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'bin', 'robust.js'),
      'eval',
      '--models',
      o.model,
      '--data',
      'cifar10',
      '--data-dir',
      dataDir,
      '--attacks',
      o.attacks,
      '--eps',
      o.eps,
      '--limit',
      o.limit,
      '--backend',
      'wasm',
      '--out',
      out,
      '--quiet',
    ],
    { encoding: 'utf8' },
  );
  if (cli.status !== 0) throw new Error(`robust eval failed: ${cli.stderr}`);
  const node = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  const mine = JSON.parse(run.json);
  const nodeRate = node.cells.reduce((s: number, c: { stats: { n: number } }) => s + c.stats.n, 0);
  const nodeSeconds = node.cells.reduce(
    (s: number, c: { stats: { seconds: number } }) => s + c.stats.seconds,
    0,
  );
  console.log(
    `node robust eval (wasm): ${(nodeRate / nodeSeconds).toFixed(2)} img/s over the cells (${((Date.now() - t0) / 1000).toFixed(1)} s with loading)`,
  );
  const same = {
    fingerprint: mine.models[0].fingerprint === node.models[0].fingerprint,
    data_sha256: mine.models[0].data_sha256 === node.models[0].data_sha256,
    masks:
      JSON.stringify(mine.cells.map((c: { robust: string }) => c.robust)) ===
      JSON.stringify(node.cells.map((c: { robust: string }) => c.robust)),
    sizes: mine.cells.map((c: { stats: Record<string, number> }, i: number) =>
      ['linf_mean', 'l2_mean', 'l1_mean', 'linf_max', 'l2_max', 'l1_max']
        .map(
          (k) =>
            Math.abs(c.stats[k] - node.cells[i].stats[k]) /
            Math.max(1e-12, Math.abs(node.cells[i].stats[k])),
        )
        .reduce((a, b) => Math.max(a, b), 0),
    ),
    robust_acc: mine.cells.map((c: { stats: { robust_acc: number } }) => c.stats.robust_acc),
    node_robust_acc: node.cells.map((c: { stats: { robust_acc: number } }) => c.stats.robust_acc),
  };
  console.log(
    `page ${o.backend}: ${run.imgPerSec.toFixed(2)} img/s; same as robust eval: ${JSON.stringify(same)}`,
  );
} finally {
  await browser.close();
  await server.close();
}
