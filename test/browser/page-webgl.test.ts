// The page on webgl (SwiftShader: Chromium's CPU WebGL, since CI has no GPU) against robust eval
// on wasm: the same table and masks; perturbation sizes within float32 noise. Measured on this
// grid: l2 sizes differ by ≤ 1.1e-5 (relative ~1e-5), l1 by ≤ 4.4e-4 (relative ~1.5e-5); the
// tolerance below is 1e-4 relative. The page's backend self-check passes on webgl and its results
// record it (webgpu's refusal: page-backend-check.test.ts). SwiftShader is slow (~1-2 img/s here), so the grid is small.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM } from '../../scripts/check-report.js';
import { servePage, type PageServer } from '../../util/serve.js';
import { robust } from '../cli/fixtures.js';
import { pageRoot, runInPage } from './page-fixture.js';
import { missing, tmpDir } from '../helpers.js';

const STATS = [
  'clean_acc',
  'robust_acc',
  'success_rate',
  'attacked',
  'linf_mean',
  'linf_max',
  'l2_mean',
  'l2_max',
  'l1_mean',
  'l1_max',
] as const;
const TOLERANCE = 1e-4;

describe.skipIf(missing(fs.existsSync(CHROMIUM)))('the page on webgl (SwiftShader)', () => {
  let server: PageServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await servePage(await pageRoot(), 0);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--use-angle=swiftshader',
        '--enable-unsafe-swiftshader',
        '--ignore-gpu-blocklist',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("fgsm at eps 0.1 on 10 sample images: robust eval's table on wasm, sizes within 1e-4", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    const run = await runInPage(
      page,
      {
        model: 'zoo:fmnist-resnet20w8',
        attacks: 'fgsm',
        eps: '0.1',
        limit: '10',
        backend: 'webgl',
      },
      { timeout: 180_000 },
    );
    expect(run.error).toBeNull();
    // asked for by name on a machine without a GPU: it runs, and the line says it is emulated
    expect(run.backend).toMatch(
      /^backend webgl \(1 thread; a CPU emulation \(.*SwiftShader.*\): expect it slower than wasm\)$/i,
    );
    expect(errors).toEqual([]);
    const mine = JSON.parse(run.files!['results.json']);

    // the backend self-check (eval/backend-check.ts) ran before any number and passed
    expect(mine.backend_check).toMatchObject({
      backend: 'webgl',
      reference: 'cpu',
      images: 8,
      tolerance: 1e-3,
    });
    console.log(`webgl against cpu: max logit difference ${mine.backend_check.max_logit_diff}`);
    expect(mine.backend_check.max_logit_diff).toBeLessThan(1e-3);

    const out = tmpDir('page-webgl-cli');
    const cli = robust([
      'eval',
      '--models',
      'zoo:fmnist-resnet20w8',
      '--data',
      'fashion-mnist-sample',
      '--attacks',
      'fgsm',
      '--eps',
      '0.1',
      '--limit',
      '10',
      '--backend',
      'wasm',
      '--out',
      out,
      '--quiet',
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    const node = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(mine.models[0].fingerprint).toBe(node.models[0].fingerprint);
    expect(mine.worst).toEqual(node.worst);
    const [a, b] = [mine.cells[0], node.cells[0]];
    expect(a.robust).toEqual(b.robust);
    for (const k of STATS)
      expect(Math.abs(a.stats[k] - b.stats[k]), k).toBeLessThanOrEqual(
        TOLERANCE * Math.max(1, Math.abs(b.stats[k])),
      );
  }, 240_000);
});
