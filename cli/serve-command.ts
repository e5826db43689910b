/** `robust serve`: the page (web/) on this machine, for evaluating a model in the browser. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { cifar10Offer, servePage } from '../util/serve.js';
import { nonNegativeInt } from './options.js';
import { defaultDataDir } from '../data/index.js';

// dist/cli/serve-command.js → the package folder
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve the in-browser page (web/) on 127.0.0.1 with the headers wasm threads need; Ctrl-C stops',
    )
    .option('--port <n>', 'port (0: any free one)', nonNegativeInt('--port', 65535), 8080)
    .option(
      '--data-dir <dir>',
      "where data sets live: the page may use CIFAR-10's test set prepared there, when robust eval would accept it (only that file is served)",
    )
    .action(async (o: { port: number; dataDir?: string }) => {
      const dataDir = path.resolve(o.dataDir ?? defaultDataDir());
      const server = await servePage(ROOT, o.port, { dataDir });
      const cifar = cifar10Offer(dataDir);
      console.log(`robust: the page is at ${server.url} (this machine only; Ctrl-C stops)`);
      console.log(
        cifar && 'file' in cifar
          ? `robust: CIFAR-10's test set is offered from ${cifar.file}`
          : cifar
            ? `robust: CIFAR-10 in ${dataDir} is not offered: robust eval would refuse it (${cifar.refused})`
            : `robust: CIFAR-10 is not in ${dataDir} (robust data cifar10 prepares it); the page can take the archive as a file`,
      );
      await new Promise<void>((resolve) =>
        process.once('SIGINT', () => void server.close().then(resolve)),
      );
    });
}
