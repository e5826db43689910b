/** A folder to serve the page from: the repository's web/, zoo/ and sample (linked) and a fresh bundle of the sources under test. */
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import path from 'node:path';
import { buildBrowser } from '../../scripts/build-browser.js';
import { CHROMIUM } from '../../scripts/check-report.js';
import { servePage, type PageServer } from '../../util/serve.js';
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

/** The served page open in headless Chromium, its console errors collected. */
export interface OpenPage {
  server: PageServer;
  browser: Browser;
  page: Page;
  consoleErrors: string[];
  close(): Promise<void>;
}

/** Serves a fresh page root (robust serve's data folder: `dataDir`) and opens it in headless Chromium. */
export async function openPage(o: { dataDir?: string } = {}): Promise<OpenPage> {
  const server = await servePage(await pageRoot(), 0, o.dataDir ? { dataDir: o.dataDir } : {});
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const consoleErrors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(server.url);
  return {
    server,
    browser,
    page,
    consoleErrors,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

export { runInPage, type PageGrid, type PageRun } from '../../scripts/page-form.js';

/**
 * Drops files or folders of this machine on an element as a user's drag from the desktop would:
 * Chromium's own drag and drop, driven over CDP (Input.dispatchDragEvent with paths), so a folder
 * arrives as a real directory entry (webkitGetAsEntry), which a DataTransfer built in the page
 * cannot carry.
 */
export async function dropPaths(page: Page, selector: string, paths: string[]): Promise<void> {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector}: not shown, nothing to drop on`);
  const cdp = await page.context().newCDPSession(page);
  const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  const data = { items: [], files: paths, dragOperationsMask: 1 }; // 1: copy
  try {
    for (const type of ['dragEnter', 'dragOver', 'drop'] as const)
      await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
  } finally {
    await cdp.detach();
  }
}
