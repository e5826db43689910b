/** Writing a grid's results into a folder; what they say is eval/report-core.ts. */
import path from 'node:path';
import { writeFilesAtomic } from '../util/atomic.js';
import type { GridResult } from './grid-core.js';
import { reportFiles } from './report-core.js';

export * from './report-core.js';

/** Writes results.csv, results.json, results.md and report.html into `dir`. */
export async function writeReports(dir: string, r: GridResult): Promise<string[]> {
  const files = await reportFiles(r);
  writeFilesAtomic(Object.entries(files).map(([name, text]) => [path.join(dir, name), text])); // all four or none: never a mix of two runs
  return Object.keys(files).map((f) => path.join(dir, f));
}
