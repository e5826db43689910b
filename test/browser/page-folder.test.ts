// A folder of images in the page: picked with <input webkitdirectory>, read by folder:PATH's rules
// (data/folder.ts through the browser's File objects), fitted to the model and evaluated in
// headless Chromium on wasm — robust eval's results.json for `--data folder:PATH`, bit for bit;
// a folder the CLI refuses is refused in the page with the CLI's line (the folder's name where the
// CLI names its absolute path).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { CHROMIUM } from '../../scripts/check-report.js';
import { loadData } from '../../data/index.js';
import { FASHION_CLASSES } from '../../data/idx.js';
import { robust } from '../cli/fixtures.js';
import { jpegFile, png, pattern } from '../data/fixtures.js';
import { dropPaths, openPage, runInPage, type OpenPage } from './page-fixture.js';
import { missing, tmpDir } from '../helpers.js';

const MODEL = 'zoo:fmnist-resnet20w8';
const GRID = { model: MODEL, attacks: 'fgsm,pgd:3', eps: '0,0.1', limit: '12' };

/** results.json without what differs between a page's run and the CLI's: times, backend threads, the data's name (a path in the CLI). */
function comparable(text: string) {
  const r = JSON.parse(text);
  return {
    config: { ...r.config, data: undefined },
    models: r.models,
    cells: r.cells.map((c: { stats: Record<string, unknown> }) => {
      const { seconds: _s, img_per_s: _i, ...stats } = c.stats;
      return { ...c, stats, backend: undefined };
    }),
    worst: r.worst,
    flags: r.flags,
  };
}

/** Sample images of three classes as 30×30 RGB files (the model takes 28×28 gray: fitted), one class as JPEG, classes.txt naming all ten. */
async function sampleFolder(): Promise<string> {
  const root = tmpDir('page-folder');
  const sample = (await loadData('fashion-mnist-sample')).test;
  const rgb30 = (i: number) => {
    const out = new Uint8Array(30 * 30 * 3);
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++)
        for (let k = 0; k < 3; k++)
          out[((y + 1) * 30 + x + 1) * 3 + k] = sample.images[i * 784 + y * 28 + x];
    return out;
  };
  for (const [label, jpeg] of [
    [1, false],
    [7, false],
    [9, true],
  ] as const) {
    const dir = path.join(root, FASHION_CLASSES[label]);
    fs.mkdirSync(dir);
    const picked = [...sample.labels.keys()].filter((i) => sample.labels[i] === label).slice(0, 4);
    for (const i of picked)
      fs.writeFileSync(
        path.join(dir, `${i}.${jpeg ? 'jpg' : 'png'}`),
        jpeg ? jpegFile(30, 30, rgb30(i), 95) : png(30, 30, 3, rgb30(i)),
      );
  }
  fs.writeFileSync(path.join(root, 'classes.txt'), `${FASHION_CLASSES.join('\n')}\n`);
  fs.writeFileSync(path.join(root, 'README.txt'), 'ignored, as ImageFolder ignores it');
  return root;
}

function cliEval(data: string, out: string) {
  return robust([
    'eval',
    '--models',
    MODEL,
    '--data',
    `folder:${data}`,
    ...['--attacks', GRID.attacks, '--eps', GRID.eps, '--limit', GRID.limit],
    ...['--backend', 'wasm', '--out', out, '--quiet'],
  ]);
}

describe.skipIf(missing(fs.existsSync(CHROMIUM)))('a folder of images in the page', () => {
  let opened: OpenPage | undefined;
  let page: Page;

  let dataDir: string;

  beforeAll(async () => {
    // a data folder whose cifar10/ robust eval would refuse: the page is told why it is not offered
    dataDir = tmpDir('page-folder-data');
    fs.mkdirSync(path.join(dataDir, 'cifar10'));
    opened = await openPage({ dataDir });
    page = opened.page;
  }, 120_000);

  afterAll(async () => {
    await opened?.close();
  });

  it("says why robust serve's CIFAR-10 is not offered: robust eval's refusal", async () => {
    await page.waitForSelector('#cifar-refused:not([hidden])', { timeout: 10_000 });
    const evalSays = await loadData('cifar10', { dataDir }).then(
      () => 'loaded',
      (e: Error) => e.message,
    );
    expect(evalSays).toMatch(/not a CIFAR-10 binary set \(missing data_batch_1\.bin/);
    expect(await page.textContent('#cifar-refused')).toBe(
      `CIFAR-10 in robust serve's data folder is not offered: robust eval would refuse it (${evalSays})`,
    );
    expect(await page.isHidden('#cifar-served')).toBe(true);
  });

  /** The folder the picked-folder test ran, and the page's results.json for it. */
  let picked: { dir: string; json: string } | undefined;

  it('a picked folder (PNG and JPEG, fitted, classes.txt) gives robust eval --data folder:PATH’s results.json', async () => {
    const dir = await sampleFolder();
    await page.setInputFiles('#folder', dir);
    expect(await page.textContent('#folder-line')).toBe(`picked ${path.basename(dir)}/: 14 files`);
    const r = await runInPage(page, { ...GRID, backend: 'wasm', data: 'folder' });
    expect(r.error).toBeNull();
    expect(opened!.consoleErrors).toEqual([]);
    picked = { dir, json: r.files!['results.json'] };
    const out = tmpDir('page-folder-cli');
    const cli = cliEval(dir, out);
    expect(cli.code, cli.stderr).toBe(0);
    const node = fs.readFileSync(path.join(out, 'results.json'), 'utf8');
    const mine = JSON.parse(r.files!['results.json']);
    expect(mine.config.data).toBe(`folder:${path.basename(dir)}`);
    expect(JSON.parse(node).config.data).toBe(`folder:${dir}`);
    expect(comparable(r.files!['results.json'])).toEqual(comparable(node));
    expect(mine.models[0].n).toBe(12);
    expect(mine.models[0].clean_acc).toBeGreaterThan(0.5); // real images of real classes
    expect(await page.locator('#notes li').allTextContents()).toContainEqual(
      expect.stringMatching(/test images fitted to the model's input: .*30×30.*28×28/),
    );
  }, 180_000);

  it("a folder dropped on the page (Chromium's own drop of a directory) gives the picked folder's results.json", async () => {
    expect(picked, 'the picked-folder test ran').toBeDefined();
    const { dir, json } = picked!;
    await page.reload(); // nothing of the pick left behind
    await dropPaths(page, '#drop', [dir]);
    await page.waitForSelector('#folder-line:not([hidden])', { timeout: 10_000 });
    expect(await page.textContent('#folder-line')).toBe(`dropped ${path.basename(dir)}/: 14 files`);
    expect(await page.isChecked('input[name=data][value=folder]')).toBe(true);
    const dropped = await runInPage(page, { ...GRID, backend: 'wasm' });
    expect(dropped.error).toBeNull();
    const timeless = (text: string) => ({ ...comparable(text), config: JSON.parse(text).config });
    expect(timeless(dropped.files!['results.json'])).toEqual(timeless(json));
    // a file instead of a folder, or two things at once: one line each, the page still usable
    for (const [paths, line] of [
      [
        [path.join(dir, 'classes.txt')],
        'classes.txt: not a folder (drop a folder of class folders)',
      ],
      [[dir, path.join(dir, 'classes.txt')], 'drop one folder (2 items were dropped)'],
    ] as const) {
      await page.evaluate(() => (document.getElementById('error')!.hidden = true));
      await dropPaths(page, '#drop', [...paths]);
      await page.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
      expect(await page.textContent('#error')).toBe(line);
    }
    expect(await page.isEnabled('#run')).toBe(true);
    expect(opened!.consoleErrors).toEqual([]);
  }, 120_000);

  it('folders the CLI refuses are refused in the page with its line', async () => {
    const gray = (seed: number, w = 28, h = 28) => png(w, h, 1, pattern(w * h, seed));
    // the refusal as robust eval gives it: the CLI itself where the model decides, else its loader in-process (a CLI start costs seconds)
    const cases: [string, Record<string, Uint8Array | string>, 'cli' | 'loader'][] = [
      ['one class for a ten-class model', { 'a/1.png': gray(1), 'a/2.png': gray(2) }, 'cli'],
      ['no images', { 'notes.txt': 'no images here' }, 'loader'],
      ['a text file named .png', { 'a/1.png': gray(1), 'b/1.png': 'not an image' }, 'loader'],
      ['two sizes', { 'a/1.png': gray(1), 'b/1.png': gray(2, 30, 28) }, 'loader'],
      ['a flat folder without labels', { '1.png': gray(1), '2.png': gray(2) }, 'loader'],
    ];
    for (const [what, files, by] of cases) {
      const dir = tmpDir('page-folder-bad');
      for (const [rel, data] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), data);
      }
      let refusal: string;
      if (by === 'cli') {
        const cli = cliEval(dir, tmpDir('page-folder-bad-out'));
        expect(cli.code, what).toBe(2);
        const line = cli.stderr.trim().split('\n').pop()!;
        expect(line, what).toMatch(/^robust: /);
        refusal = line.replace(/^robust: /, '');
      } else {
        refusal = await loadData(`folder:${dir}`, { limit: Number(GRID.limit) }).then(
          () => 'loaded',
          (e: Error) => e.message,
        );
      }
      expect(refusal, what).toContain(dir); // a refusal naming the folder, not 'loaded'
      await page.setInputFiles('#folder', dir);
      const r = await runInPage(page, { ...GRID, backend: 'wasm', data: 'folder' });
      // the page names the model as it was given (zoo:NAME), the CLI by the folder it resolved
      const cliModel = new RegExp(`^/\\S+/zoo/${MODEL.slice('zoo:'.length)}: `);
      expect(r.error, what).toBe(
        refusal.replaceAll(dir, path.basename(dir)).replace(cliModel, `${MODEL}: `),
      );
      expect(await page.isEnabled('#run')).toBe(true);
    }
    expect(opened!.consoleErrors).toEqual([]);
  }, 120_000);
});
