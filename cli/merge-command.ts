/** `robust merge`: the results of a grid run as shards (`robust eval --shard i/n`), put together. */
import type { Command } from 'commander';
import { mergeShards, writeMerged } from '../eval/merge.js';
import { toMarkdown } from '../eval/report.js';
import { ensureWritableDir, outputFolder } from '../util/dirs.js';

export function registerMerge(program: Command): void {
  program
    .command('merge <dirs...>')
    .description(
      'merge a grid run as shards (robust eval --shard i/n --out DIR): checks that the shards ran one grid and cover every cell once, writes results.csv/json/md, report.html and the cells as one process would',
    )
    .option('--out <dir>', 'write the results here (default: the first folder)')
    .option(
      '--partial',
      'with shards missing, merge the cells that are complete and mark the table incomplete',
    )
    .option('--quiet', 'no summary on standard error')
    .action(async (dirs: string[], o: { out?: string; partial?: boolean; quiet?: boolean }) => {
      const out = outputFolder('out', o.out ?? dirs[0]);
      const merged = mergeShards(dirs, { partial: o.partial }); // before any write: a refused merge leaves the folders as they were
      ensureWritableDir(out);
      const files = await writeMerged(out, merged);
      console.log(toMarkdown(merged.result));
      if (merged.missing) console.error(`warning: the results are incomplete: ${merged.missing}`);
      if (!o.quiet)
        console.error(
          `merged ${merged.cells.length} cells; wrote ${files.join(', ')} and ${out}/cells/`,
        );
    });
}
