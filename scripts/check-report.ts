/**
 * Opens an evaluation report in headless Chromium (Debian's `chromium` via playwright-core):
 * fails on console errors or page errors, checks the plots (SVG) and the gallery images rendered,
 * and saves a screenshot next to the report.
 *
 *   node dist/scripts/check-report.js results/report.html [--chromium /usr/bin/chromium]
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

interface ReportCheck {
  errors: string[];
  svgs: number;
  images: number;
  brokenImages: number;
  screenshot: string;
}

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function checkReport(file: string, executablePath = CHROMIUM): Promise<ReportCheck> {
  const browser = await chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(path.resolve(file)).href, { waitUntil: 'load' });
    const svgs = await page.locator('.plot svg').count();
    const images = await page.locator('figure img').count();
    const brokenImages = await page.evaluate(
      () =>
        Array.from(document.querySelectorAll('figure img')).filter(
          (i) => !(i as HTMLImageElement).complete || (i as HTMLImageElement).naturalWidth === 0,
        ).length,
    );
    const screenshot = file.replace(/\.html?$/, '') + '.png';
    await page.screenshot({ path: screenshot, fullPage: true });
    return { errors, svgs, images, brokenImages, screenshot };
  } finally {
    await browser.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file || !fs.existsSync(file)) {
    console.error(`usage: check-report <report.html> — ${file ?? 'no file given'} not found`);
    process.exit(2);
  }
  const i = process.argv.indexOf('--chromium');
  const r = await checkReport(file, i > 0 ? process.argv[i + 1] : CHROMIUM);
  console.log(JSON.stringify(r, null, 2));
  process.exit(r.errors.length === 0 && r.svgs > 0 && r.brokenImages === 0 ? 0 : 1);
}
