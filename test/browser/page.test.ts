// The page (web/) in headless Chromium, served by robust serve's server: it loads a zoo model from
// the served files, runs a small grid on wasm in its worker, and its table is robust eval's.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { CHROMIUM } from '../../scripts/check-report.js';
import { comparableResults as numbers } from '../../scripts/page-compare.js';
import { servePage, type PageServer } from '../../util/serve.js';
import { robust } from '../cli/fixtures.js';
import { pageRoot, runInPage } from './page-fixture.js';
import { missing, ROOT, tmpDir } from '../helpers.js';
import { relaxedMadd } from '../../backend/wasm/relaxed-simd.js';

const GRID = { attacks: 'fgsm,pgd:3', eps: '0,0.1', limit: '20' };

const tableRows = (md: string) => md.split('\n').filter((l) => l.startsWith('|'));

describe.skipIf(missing(fs.existsSync(CHROMIUM)))('the page in headless Chromium', () => {
  let server: PageServer;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    server = await servePage(await pageRoot(), 0);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(server.url);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('runs fgsm and pgd:3 at eps 0 and 0.1 on 20 sample images on wasm: the table of robust eval, plots and gallery shown', async () => {
    const r = await runInPage(page, { ...GRID, model: 'zoo:fmnist-resnet20w8', backend: 'wasm' });
    expect(r.error).toBeNull();
    expect(consoleErrors).toEqual([]);
    // cross-origin isolated (serve's COOP/COEP): our kernels on Web Workers, as many as XNNPACK's threads
    expect(r.backend).toMatch(/^backend wasm \((\d+) threads?, our kernels on \1\)/);
    expect(r.wasmKernelCalls).toBeGreaterThan(0); // our SIMD kernels ran, as in Node
    expect(await page.textContent('#progress')).toMatch(
      /^done: 4 cells in [\d.]+ s \([\d.]+ img\/s\)$/,
    );

    const out = tmpDir('page-cli');
    const cli = robust([
      'eval',
      '--models',
      'zoo:fmnist-resnet20w8',
      '--data',
      'fashion-mnist-sample',
      '--attacks',
      GRID.attacks,
      '--eps',
      GRID.eps,
      '--limit',
      GRID.limit,
      '--backend',
      'wasm',
      '--out',
      out,
      '--quiet',
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    const files = r.files!;
    expect(numbers(files['results.json'])).toEqual(
      numbers(fs.readFileSync(path.join(out, 'results.json'), 'utf8')),
    );
    // the same build of our kernels as in Node (the cells' compute, compared above, says which):
    // relaxed SIMD's FMA where this CPU fuses (Chromium ≥ 114 runs relaxed SIMD without a flag)
    const fma = relaxedMadd() === 'fused';
    for (const cell of JSON.parse(files['results.json']).cells as { compute: string }[])
      expect(cell.compute.endsWith(', FMA')).toBe(fma);
    expect(tableRows(files['results.md'])).toEqual(
      tableRows(fs.readFileSync(path.join(out, 'results.md'), 'utf8')),
    );
    expect(files['results.csv'].split('\n')[0]).toBe(
      fs.readFileSync(path.join(out, 'results.csv'), 'utf8').split('\n')[0],
    );
    expect(tableRows(files['results.md']).length).toBe(5); // header, rule, two attacks, worst case

    // the report in the page: both plots drawn, the gallery decoded, downloads offered
    const report = page.frameLocator('#report');
    await report.locator('figure img').first().waitFor();
    expect(await report.locator('.plot svg').count()).toBe(2);
    const decoded = await report
      .locator('figure img')
      .evaluateAll((imgs) =>
        imgs.map(
          (i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0,
        ),
      );
    expect(decoded).toEqual([true]);
    expect(
      await page
        .locator('#downloads a')
        .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).download)),
    ).toEqual(['results.csv', 'results.json', 'results.md', 'report.html']);
    const shot = path.join(tmpDir('page-shot'), 'page.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = PNG.sync.read(fs.readFileSync(shot));
    expect(png.width).toBe(1200);
    expect(png.height).toBeGreaterThan(1500); // form, results and the report frame
    console.log(`page screenshot: ${shot}`);
  }, 240_000);

  it('takes model.json and its shards as picked files, with the fingerprint and numbers of the zoo entry', async () => {
    const zoo = JSON.parse(
      await page.evaluate(
        () =>
          (window as { robustResult?: { files: Record<string, string> } }).robustResult!.files[
            'results.json'
          ],
      ),
    );
    await page.check('input[name=source][value=files]');
    await page.setInputFiles(
      '#model-files',
      ['model.json', 'weights.bin'].map((f) => path.join(ROOT, 'zoo', 'fmnist-resnet20w8', f)),
    );
    const r = await runInPage(page, { ...GRID, model: '', backend: 'wasm' });
    await page.check('input[name=source][value=url]');
    expect(r.error).toBeNull();
    const picked = JSON.parse(r.files!['results.json']);
    expect(picked.models[0].model).toBe('model.json');
    expect(picked.models[0].fingerprint).toBe(zoo.models[0].fingerprint);
    expect(picked.cells.map((c: { robust: string }) => c.robust)).toEqual(
      zoo.cells.map((c: { robust: string }) => c.robust),
    );
  }, 120_000);

  it('shows where the batch in progress stands, stops after it when asked, and shows what is done', async () => {
    await page.fill('#model-url', 'zoo:fmnist-resnet20w8');
    await page.fill('#attacks', 'pgd:20');
    await page.fill('#eps', '0,0.05,0.1'); // eps 0 takes no time: the speed and ETA leave it out
    await page.fill('#limit', '200');
    await page.fill('#batch', '16');
    await page.evaluate(() => delete (window as { robustResult?: unknown }).robustResult);
    const clicked = performance.now();
    await page.click('#run');
    await page.waitForFunction(
      () => /points/.test(document.getElementById('progress')!.textContent!),
      null,
      { timeout: 60_000 },
    );
    expect(await page.textContent('#progress')).toMatch(
      /\d+\/600 points, \d+ left · [\d.]+ img\/s · ETA (\d|–)/, // – while only eps 0 is done
    );
    // where the batch in progress stands (a batch of PGD-20 takes a few seconds here)
    await page.waitForFunction(
      () => /eps 0\.\d+: .*still robust$/.test(document.getElementById('progress')!.textContent!),
      null,
      { timeout: 60_000 },
    );
    const shown = (await page.textContent('#progress'))!;
    // the speed leaves the instant eps-0 cell's 200 points out: at this speed, the time since the
    // click would have done fewer than those 200 (counting them, it would say more)
    const speed = Number(/ ([\d.]+) img\/s/.exec(shown)![1]);
    expect(speed * ((performance.now() - clicked) / 1000)).toBeLessThan(200);
    expect(shown).toMatch(
      /^pgd:20 eps 0\.(?:05|1): \d+\/600 points, \d+ left · [\d.]+ img\/s · ETA \d.* · batch \d+\/13: step \d+\/20 · \d+\/\d+ still robust$/,
    );
    await page.click('#stop');
    await page.waitForFunction(() => (window as { robustResult?: unknown }).robustResult, null, {
      timeout: 60_000,
    });
    expect(await page.textContent('#progress')).toMatch(/^stopped: 1 cells/); // the eps-0 cell;
    expect(await page.isEnabled('#run')).toBe(true);
    await page.fill('#batch', '128');
  }, 120_000);

  it('picking the backend itself, says why each faster one was passed over (no GPU here: wasm, not emulated WebGL)', async () => {
    const r = await runInPage(page, { ...GRID, model: 'zoo:fmnist-resnet20w8', backend: 'auto' });
    expect(r.error).toBeNull();
    expect(r.backend).toMatch(
      /^backend wasm \((\d+) threads?, our kernels on \1\); webgpu not used: [^;]+; webgl not used: .+/,
    );
  }, 120_000);

  it('a bad model gives one line in the page, and the page still runs', async () => {
    const before = consoleErrors.length;
    const r = await runInPage(page, { ...GRID, model: 'zoo:no-such-model', backend: 'wasm' });
    expect(r.error).toMatch(/^\S+model\.json: model\.json not found \(HTTP 404\)$/);
    expect(r.error!.split('\n')).toHaveLength(1);
    expect(consoleErrors.slice(before).every((e) => /404/.test(e))).toBe(true); // only the browser's own note of the 404
    expect(await page.isEnabled('#run')).toBe(true);
    expect(await page.textContent('#progress')).toBe(''); // not "starting…" under the error
  }, 120_000);
});
