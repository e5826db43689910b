/** `robust serve`: the page (web/) on this machine, for evaluating a model in the browser. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { servePage } from '../util/serve.js';
import { nonNegativeInt } from './options.js';

// dist/cli/serve-command.js → the package folder
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve the in-browser page (web/) on 127.0.0.1 with the headers wasm threads need; Ctrl-C stops',
    )
    .option('--port <n>', 'port (0: any free one)', nonNegativeInt('--port', 65535), 8080)
    .action(async (o: { port: number }) => {
      const server = await servePage(ROOT, o.port);
      console.log(`robust: the page is at ${server.url} (this machine only; Ctrl-C stops)`);
      await new Promise<void>((resolve) =>
        process.once('SIGINT', () => void server.close().then(resolve)),
      );
    });
}
