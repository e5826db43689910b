/** Driving the served page's form (robust serve): the tests' and `npm run bench:browser`'s one way to run a grid in it. */
import type { Page } from 'playwright-core';

/** A grid as the page's form takes it. */
export interface PageGrid {
  model: string;
  attacks: string;
  eps: string;
  limit: string;
  backend: string;
  /** The images radio to pick (e.g. 'cifar10-served'); unset: the form's default. */
  data?: string;
}

export interface PageRun {
  backend: string;
  error: string | null;
  files?: Record<string, string>;
  wasmKernelCalls?: number;
  /** The whole grid's img/s and seconds, as the page measured them. */
  imgPerSec?: number;
  seconds?: number;
}

/** Fills the form, runs, and waits for the results or the page's error line. */
export async function runInPage(
  page: Page,
  g: PageGrid,
  o: { timeout?: number } = {},
): Promise<PageRun> {
  if (g.data) await page.check(`input[name=data][value=${g.data}]`);
  await page.fill('#model-url', g.model);
  await page.fill('#attacks', g.attacks);
  await page.fill('#eps', g.eps);
  await page.fill('#limit', g.limit);
  await page.selectOption('#backend', g.backend);
  await page.evaluate(() => delete (window as { robustResult?: unknown }).robustResult);
  await page.click('#run');
  await page.waitForFunction(
    () =>
      (window as { robustResult?: unknown }).robustResult ||
      !document.getElementById('error')!.hidden,
    null,
    { timeout: o.timeout ?? 120_000 }, // 0: as long as it takes
  );
  return page.evaluate(() => {
    const result = (
      window as {
        robustResult?: {
          files: Record<string, string>;
          wasmKernelCalls: number;
          imgPerSec: number;
          seconds: number;
        };
      }
    ).robustResult;
    return {
      backend: document.getElementById('backend-line')!.textContent!,
      error: document.getElementById('error')!.hidden
        ? null
        : document.getElementById('error')!.textContent,
      files: result?.files,
      wasmKernelCalls: result?.wasmKernelCalls,
      imgPerSec: result?.imgPerSec,
      seconds: result?.seconds,
    };
  });
}
