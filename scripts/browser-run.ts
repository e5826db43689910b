/**
 * The done-when run of the in-browser page (issue #21), rerunnable: `robust serve --data-dir DIR`
 * (DIR holding CIFAR-10 as `robust data cifar10` prepares it), then headless Chromium (Debian's)
 * opens the page, which evaluates a model on the first N CIFAR-10 test images on each backend
 * asked for; `robust eval` runs the same grid in Node on wasm, and each page's results.json is
 * compared with it (wasm: equal but for times; webgl: masks and the largest relative drift of the
 * perturbation sizes). Prints the backends the page tried on auto (and why it passed each over),
 * img/s of both, and saves a screenshot of each finished page. Exits 1 when wasm differs or webgl
 * drifts beyond --tolerance.
 *
 *   npm run bench:browser -- --data-dir DIR [--limit 100] [--attacks pgd] [--eps 8/255]
 *     [--model zoo:resnet20-fgsm-rs] [--backends wasm,webgl[,webgpu]] [--tolerance 5e-3] [--shots DIR]
 *
 * webgl in headless Chromium is SwiftShader (ANGLE's CPU emulation of a GPU) on a machine without
 * one: its img/s is that of the emulation, not of a GPU.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM } from './check-report.js';
import { backendDrift, comparableResults, SIZE_STATS } from './page-compare.js';
import { runInPage } from './page-form.js';
import { defaultDataDir } from '../data/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values: o } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    limit: { type: 'string', default: '100' },
    attacks: { type: 'string', default: 'pgd' },
    eps: { type: 'string', default: '8/255' },
    model: { type: 'string', default: 'zoo:resnet20-fgsm-rs' },
    backends: { type: 'string', default: 'wasm,webgl' },
    // measured on 100 images, pgd at 8/255 (webgl, SwiftShader): l1_max 1.4e-3, the other sizes ≤ 3.6e-4
    tolerance: { type: 'string', default: '5e-3' },
    shots: { type: 'string' },
  },
});
const dataDir = path.resolve(o['data-dir'] ?? defaultDataDir());
const shots = path.resolve(
  o.shots ?? fs.mkdtempSync(path.join(os.tmpdir(), 'robust-browser-run-')),
);
const tolerance = Number(o.tolerance);
const backends = o.backends.split(',');
for (const b of backends)
  if (!['wasm', 'webgl', 'webgpu'].includes(b)) throw new Error(`--backends: unknown '${b}'`);

const SWIFTSHADER = [
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--ignore-gpu-blocklist',
];
/**
 * Chromium's switches per backend: no GPU process for wasm; SwiftShader's WebGL for webgl; WebGPU
 * (off in Chromium on Linux by default; here its fallback adapter, SwiftShader's Vulkan) for webgpu.
 * The page picking itself is asked twice: in Chromium as it starts, and with every GPU path open.
 */
const SWITCHES: Record<string, string[]> = {
  wasm: ['--disable-gpu'],
  webgl: SWIFTSHADER,
  webgpu: ['--enable-unsafe-webgpu', ...SWIFTSHADER],
  'auto (chromium as it starts)': [],
  'auto (webgpu and swiftshader switched on)': ['--enable-unsafe-webgpu', ...SWIFTSHADER],
};

/** `robust serve` as a user runs it, on any free port; resolves with the page's URL once it listens. */
function serve(): Promise<{ url: string; stop(): void; lines: string[] }> {
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'robust.js'), 'serve', '--port', '0', '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`robust serve exited (${code})`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const m = /the page is at (\S+)/.exec(line);
      if (m) resolve({ url: m[1], stop: () => child.kill('SIGINT'), lines });
      if (lines.length === 2) console.log(lines.join('\n'));
    });
  });
}

interface BackendRun {
  backendLine: string;
  progress: string;
  json: string;
  gridImgPerSec: number;
  seconds: number;
}

async function runPage(
  browser: Browser,
  url: string,
  backend: string,
  grid: { attacks: string; eps: string; limit: string },
  shot?: string,
): Promise<BackendRun> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('#cifar-served:not([hidden])', { timeout: 30_000 }).catch(() => {
    throw new Error(`the page does not offer CIFAR-10 from ${dataDir} (robust serve said why)`);
  });
  const r = await runInPage(
    page,
    { model: o.model, ...grid, backend, data: 'cifar10-served' },
    { timeout: 0 },
  );
  if (r.error) throw new Error(`the page on ${backend}: ${r.error}`);
  if (errors.length) throw new Error(`the page on ${backend} logged errors: ${errors.join(' | ')}`);
  if (shot) {
    await page.frameLocator('#report').locator('figure img').first().waitFor();
    await page.screenshot({ path: shot, fullPage: true });
  }
  const run = {
    backendLine: r.backend,
    progress: (await page.textContent('#progress')) ?? '',
    json: r.files!['results.json'],
    gridImgPerSec: r.imgPerSec!,
    seconds: r.seconds!,
  };
  await page.close();
  return run;
}

/** img/s over the attacked cells, as results.json records them (the same measure for page and Node). */
function cellRate(json: string): string {
  const cells = (JSON.parse(json) as { cells: { stats: { n: number; seconds: number } }[] }).cells;
  const n = cells.reduce((s, c) => s + c.stats.n, 0);
  const seconds = cells.reduce((s, c) => s + c.stats.seconds, 0);
  return `${(n / seconds).toFixed(2)} img/s (${n} images in ${seconds.toFixed(1)} s)`;
}

const launch = (backend: string) =>
  chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--no-first-run', ...SWITCHES[backend]],
  });

const grid = { attacks: o.attacks, eps: o.eps, limit: o.limit };
console.log(
  `grid: ${o.model} on the first ${o.limit} CIFAR-10 test images, attacks ${o.attacks}, eps ${o.eps}; ${os.cpus().length} cores, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
fs.mkdirSync(shots, { recursive: true });
const server = await serve();
let failed = false;
try {
  // The page picking for itself: which backends it tried and why it passed each over.
  for (const how of Object.keys(SWITCHES).filter((k) => k.startsWith('auto'))) {
    const probe = await launch(how);
    try {
      const auto = await runPage(probe, server.url, 'auto', { ...grid, limit: '1', eps: '0' });
      console.log(`chromium ${probe.version()}, ${how}: ${auto.backendLine}`);
    } finally {
      await probe.close();
    }
  }

  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'robust-browser-run-cli-'));
  const t0 = Date.now();
  const cli = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'bin', 'robust.js'),
      'eval',
      ...['--models', o.model, '--data', 'cifar10', '--data-dir', dataDir],
      ...['--attacks', o.attacks, '--eps', o.eps, '--limit', o.limit],
      ...['--backend', 'wasm', '--out', out, '--quiet'],
    ],
    { encoding: 'utf8' },
  );
  if (cli.status !== 0) throw new Error(`robust eval failed: ${cli.stderr.trim()}`);
  const node = fs.readFileSync(path.join(out, 'results.json'), 'utf8');
  console.log(
    `node robust eval --backend wasm: ${cellRate(node)} over the attacked cells; ${((Date.now() - t0) / 1000).toFixed(1)} s in all; results in ${out}`,
  );

  for (const backend of backends) {
    const browser = await launch(backend);
    try {
      const shot = path.join(shots, `browser-run-${backend}.png`);
      let run;
      try {
        run = await runPage(browser, server.url, backend, grid, shot);
      } catch (e) {
        // the backend self-check refusing a backend that computes the model wrongly is its job
        const refused = / gives other (predictions|logits) than /.test((e as Error).message);
        if (!refused) throw e;
        console.log(
          `page ${backend}: refused by the backend self-check: ${(e as Error).message.replace(/^the page on \w+: /, '')}`,
        );
        continue;
      }
      console.log(`page ${backend}: ${run.backendLine}`);
      const check = (JSON.parse(run.json) as { backend_check?: { max_logit_diff: number } })
        .backend_check;
      if (check)
        console.log(
          `page ${backend}: backend self-check passed, max logit difference against cpu ${check.max_logit_diff.toExponential(2)}`,
        );
      console.log(
        `page ${backend}: ${cellRate(run.json)} over the attacked cells; the page's grid: ${run.progress}; screenshot ${shot}`,
      );
      fs.writeFileSync(path.join(shots, `browser-run-${backend}.json`), run.json);
      if (backend === 'wasm') {
        const same =
          JSON.stringify(comparableResults(run.json)) === JSON.stringify(comparableResults(node));
        console.log(
          `page wasm against robust eval: ${same ? 'equal (every field but times and backend)' : 'DIFFERENT'}`,
        );
        failed ||= !same;
      } else {
        const d = backendDrift(run.json, node);
        const [mine, theirs] = [run.json, node].map(
          (j) => (JSON.parse(j) as { cells: { stats: Record<string, number> }[] }).cells,
        );
        console.log(
          `page ${backend}, each size's largest relative drift: ${SIZE_STATS.map(
            (k) =>
              `${k} ${Math.max(...mine.map((c, i) => Math.abs(c.stats[k] - theirs[i].stats[k]) / Math.max(1e-12, Math.abs(theirs[i].stats[k])))).toExponential(1)}`,
          ).join(', ')}`,
        );
        const ok = d.maskCells === 0 && d.restEqual && d.sizeRelative <= tolerance;
        console.log(
          `page ${backend} against robust eval (wasm): masks ${d.maskCells === 0 ? 'equal' : `differ in ${d.maskCells} cells, ${d.maskImages} images`}; perturbation sizes within ${d.sizeRelative.toExponential(2)} relative (largest at ${d.sizeWorst}; tolerance ${tolerance}); the rest ${d.restEqual ? 'equal' : 'DIFFERENT'}${ok ? '' : ' — OUT OF TOLERANCE'}`,
        );
        failed ||= !ok;
      }
    } finally {
      await browser.close();
    }
  }
} finally {
  server.stop();
}
process.exitCode = failed ? 1 : 0;
