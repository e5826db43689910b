// The backend self-check in the page (eval/backend-check.ts, called by web/worker.js): WebGPU on
// SwiftShader's adapter (Chromium's --enable-unsafe-webgpu; tfjs-backend-webgpu reads GPU tensors
// back as zeros there) is refused with one line before any number. WebGL on SwiftShader passes
// it: test/browser/page-webgl.test.ts checks the check recorded in its results.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM } from '../../scripts/check-report.js';
import { servePage, type PageServer } from '../../util/serve.js';
import { pageRoot, runInPage } from './page-fixture.js';
import { missing } from '../helpers.js';

const SWIFTSHADER = [
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--ignore-gpu-blocklist',
];
const GRID = { model: 'zoo:fmnist-resnet20w8', attacks: 'fgsm', eps: '0.1', limit: '8' };

describe.skipIf(missing(fs.existsSync(CHROMIUM)))('the backend self-check in the page', () => {
  let server: PageServer;
  const browsers: Browser[] = [];

  const open = async (switches: string[]) => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--no-first-run', ...switches],
    });
    browsers.push(browser);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    return { page, errors };
  };

  beforeAll(async () => {
    server = await servePage(await pageRoot(), 0);
  }, 120_000);

  afterAll(async () => {
    for (const b of browsers) await b.close();
    await server?.close();
  });

  it('webgpu on SwiftShader: one line naming the backend and what differed, no results', async () => {
    const { page, errors } = await open(['--enable-unsafe-webgpu', ...SWIFTSHADER]);
    const run = await runInPage(page, { ...GRID, backend: 'webgpu' });
    expect(run.backend).toMatch(
      /^backend webgpu \(1 thread; a CPU emulation \(.+\): expect it slower than wasm\)$/,
    ); // SwiftShader's adapter, asked for by name
    expect(run.error).toMatch(
      /^webgpu gives other predictions than cpu on [1-8] of 8 images \(max logit difference [\d.e+-]+\): this backend computes this model wrongly here; choose wasm$/,
    );
    expect(run.files).toBeUndefined();
    expect(await page.locator('table').count()).toBe(0);
    expect(errors).toEqual([]);
  }, 150_000);
});
