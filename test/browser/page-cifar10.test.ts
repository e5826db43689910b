// The issue's done-when run, on a slice: robust serve offers CIFAR-10's test set prepared by
// `robust data cifar10` (from the shared archive, as on CI), the page evaluates
// zoo:resnet20-fgsm-rs on it in headless Chromium on wasm, and its results.json is robust eval's
// (masks, sizes, fingerprints, gallery classes) for the same settings. The same test batch picked
// as a file gives the same images. npm run bench:browser runs 100 images (scripts/browser-run.ts).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { CHROMIUM } from '../../scripts/check-report.js';
import { robust } from '../cli/fixtures.js';
import { openPage, runInPage, type OpenPage } from './page-fixture.js';
import { HAS_SHARED_CIFAR, missing, SHARED_DATA, tmpDir } from '../helpers.js';

const GRID = { model: 'zoo:resnet20-fgsm-rs', attacks: 'fgsm,pgd:3', eps: '0,8/255', limit: '16' };

/** results.json without what differs between two runs of one grid: times, dates, backends' thread counts. */
function comparable(text: string) {
  const r = JSON.parse(text);
  return {
    config: r.config,
    models: r.models.map(({ checks, ...m }: Record<string, unknown>) => ({ ...m, checks })),
    cells: r.cells.map((c: { stats: Record<string, unknown> }) => {
      const { seconds: _s, img_per_s: _i, ...stats } = c.stats;
      return { ...c, stats, backend: undefined };
    }),
    worst: r.worst,
    flags: r.flags,
  };
}

describe.skipIf(missing(fs.existsSync(CHROMIUM) && HAS_SHARED_CIFAR))(
  'the page on CIFAR-10 (served from the data folder, or picked)',
  () => {
    let opened: OpenPage | undefined;
    let page: Page;
    let dataDir: string;

    beforeAll(async () => {
      dataDir = tmpDir('page-cifar-data');
      const prepared = robust([
        'data',
        'cifar10',
        '--from',
        path.join(SHARED_DATA, 'cifar10', 'cifar-10-binary.tar.gz'),
        '--data-dir',
        dataDir,
      ]);
      expect(prepared.code, prepared.stderr).toBe(0);
      opened = await openPage({ dataDir });
      page = opened.page;
    }, 120_000);

    afterAll(async () => {
      await opened?.close();
    });

    it("evaluates zoo:resnet20-fgsm-rs on CIFAR-10's served test set: robust eval's results.json", async () => {
      await page.waitForSelector('#cifar-served:not([hidden])', { timeout: 10_000 });
      const r = await runInPage(page, { ...GRID, backend: 'wasm', data: 'cifar10-served' });
      expect(r.error).toBeNull();
      expect(opened!.consoleErrors).toEqual([]);
      const out = tmpDir('page-cifar-cli');
      const cli = robust([
        'eval',
        '--models',
        GRID.model,
        '--data',
        'cifar10',
        '--data-dir',
        dataDir,
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
      const node = fs.readFileSync(path.join(out, 'results.json'), 'utf8');
      expect(comparable(r.files!['results.json'])).toEqual(comparable(node));
      const mine = JSON.parse(r.files!['results.json']);
      expect(mine.config.data).toBe('cifar10');
      // the gallery's captions: CIFAR-10's names, the true class of each shown example
      const shown = mine.cells.find((c: { gallery_classes?: unknown }) => c.gallery_classes);
      expect(shown.gallery_classes.true.length).toBeGreaterThan(0);
      for (const name of [...shown.gallery_classes.true, ...shown.gallery_classes.predicted])
        expect([
          'airplane',
          'automobile',
          'bird',
          'cat',
          'deer',
          'dog',
          'frog',
          'horse',
          'ship',
          'truck',
        ]).toContain(name);
      const report = page.frameLocator('#report');
      await report.locator('.classes span').first().waitFor();
      expect(await report.locator('.classes span').count()).toBe(shown.gallery_classes.true.length);
      expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('class="classes"');
    }, 180_000);

    it('takes the test batch picked as a file: the same images (fingerprint) and masks', async () => {
      const served = JSON.parse(
        await page.evaluate(
          () =>
            (window as { robustResult?: { files: Record<string, string> } }).robustResult!.files[
              'results.json'
            ],
        ),
      );
      await page.setInputFiles(
        '#cifar-file',
        path.join(dataDir, 'cifar10', 'cifar-10-batches-bin', 'test_batch.bin'),
      );
      const r = await runInPage(page, { ...GRID, backend: 'wasm', data: 'cifar10-file' });
      expect(r.error).toBeNull();
      const picked = JSON.parse(r.files!['results.json']);
      expect(picked.models[0].data_sha256).toBe(served.models[0].data_sha256);
      expect(picked.cells.map((c: { robust: string }) => c.robust)).toEqual(
        served.cells.map((c: { robust: string }) => c.robust),
      );
      expect(await page.locator('#notes li').allTextContents()).toContainEqual(
        expect.stringMatching(/^test_batch\.bin: a batch file, not the official archive/),
      );
    }, 180_000);

    it('a training batch picked instead: one line in the page, which stays usable', async () => {
      await page.setInputFiles(
        '#cifar-file',
        path.join(dataDir, 'cifar10', 'cifar-10-batches-bin', 'data_batch_1.bin'),
      );
      const r = await runInPage(page, { ...GRID, backend: 'wasm', data: 'cifar10-file' });
      expect(r.error).toBe(
        "data_batch_1.bin: CIFAR-10's test images are test_batch.bin (the other batches are its training images)",
      );
      expect(await page.isEnabled('#run')).toBe(true);
    }, 60_000);

    // last: it cuts the prepared test batch
    it("test_batch.bin cut after the page loaded: the page says robust eval's reason, not the server's 404", async () => {
      await page.reload();
      await page.waitForSelector('#cifar-served:not([hidden])', { timeout: 10_000 });
      const batch = path.join(dataDir, 'cifar10', 'cifar-10-batches-bin', 'test_batch.bin');
      fs.truncateSync(batch, fs.statSync(batch).size - 1000);
      const cli = robust([
        'eval',
        ...['--models', GRID.model, '--data', 'cifar10', '--data-dir', dataDir],
        ...['--attacks', 'fgsm', '--eps', '0', '--limit', '1', '--backend', 'wasm', '--quiet'],
        ...['--out', tmpDir('page-cifar-cut')],
      ]);
      expect(cli.code).not.toBe(0);
      const reason = cli.stderr.trim().replace(/^robust: /, '');
      expect(reason).toMatch(/test_batch\.bin/);
      const r = await runInPage(page, { ...GRID, backend: 'wasm', data: 'cifar10-served' });
      expect(r.error).toBe(
        `CIFAR-10 in robust serve's data folder is no longer offered: robust eval would refuse it (${reason})`,
      );
      expect(await page.isEnabled('#run')).toBe(true);
    }, 60_000);
  },
);
