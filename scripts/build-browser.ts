/**
 * The browser bundle: one ESM file, dist/browser/robust.js, from browser.ts, with
 * util/platform-browser in place of util/platform, and tfjs's wasm binaries beside it. A Node
 * built-in imported by robust's own code fails the build naming the importer (esbuild itself
 * refuses one from a dependency that does not map it away for browsers).
 *
 *   npm run build:browser            (tsc first; bundles dist/browser.js)
 */
import fs from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const require = createRequire(import.meta.url);
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Swaps util/platform for util/platform-browser and refuses Node built-ins in robust's own modules. */
export function browserPlatformPlugin(): esbuild.Plugin {
  return {
    name: 'robust-browser-platform',
    setup(build) {
      build.onResolve({ filter: /[\\/]platform\.js$/ }, (args) => {
        if (args.importer.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const own = path.resolve(args.resolveDir, args.path);
        const ts = own.replace(/platform\.js$/, 'platform-browser.ts');
        const js = own.replace(/platform\.js$/, 'platform-browser.js');
        return { path: fs.existsSync(js) ? js : ts };
      });
      // csv-stringify's and csv-parse's Node builds use Buffer; their own browser builds (not in
      // their exports maps) do not
      build.onResolve({ filter: /^csv-(stringify|parse)\/sync$/ }, (args) => ({
        path: path.join(
          path.dirname(require.resolve(args.path)),
          '..',
          '..',
          'dist',
          'esm',
          'sync.js',
        ),
      }));
      build.onResolve({ filter: /.*/ }, (args) => {
        if (
          !NODE_BUILTINS.has(args.path) ||
          args.importer.includes(`${path.sep}node_modules${path.sep}`)
        )
          return undefined;
        return {
          errors: [
            {
              text: `${args.path} imported by ${path.relative(process.cwd(), args.importer)}: the browser build takes no Node built-ins (use util/platform.ts)`,
            },
          ],
        };
      });
    },
  };
}

export interface BrowserBundle {
  /** The bundle's text (write: false) or where it was written. */
  text?: string;
  file?: string;
  /** Every input file, relative to the working folder: what the bundle holds. */
  inputs: string[];
}

/** Bundles `entry` (browser.ts or dist/browser.js) for browsers; `outfile` undefined keeps it in memory. */
export async function bundleBrowser(entry: string, outfile?: string): Promise<BrowserBundle> {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: outfile ?? 'robust.js',
    write: outfile !== undefined,
    metafile: true,
    logLevel: 'silent',
    sourcemap: outfile !== undefined ? 'linked' : false,
    plugins: [browserPlatformPlugin()],
  });
  const inputs = Object.keys(result.metafile.inputs);
  return outfile ? { file: outfile, inputs } : { text: result.outputFiles![0].text, inputs };
}

/** tfjs-backend-wasm's binaries and MozJPEG's decoder, which the bundle fetches from beside itself. */
export function copyWasmBinaries(dir: string): string[] {
  const from = path.dirname(
    require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'),
  );
  const names = fs.readdirSync(from).filter((f) => f.endsWith('.wasm'));
  for (const f of names) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  const jpeg = require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
  fs.copyFileSync(jpeg, path.join(dir, path.basename(jpeg)));
  return [...names, path.basename(jpeg)];
}

/** Bundles `entry` into ROOT/dist/browser/robust.js with the wasm binaries beside it; returns the files written. */
export async function buildBrowser(
  root: string,
  entry = path.join(root, 'dist', 'browser.js'),
): Promise<string[]> {
  const out = path.join(root, 'dist', 'browser');
  fs.mkdirSync(out, { recursive: true });
  await bundleBrowser(entry, path.join(out, 'robust.js'));
  return ['robust.js', ...copyWasmBinaries(out)].map((f) => path.join(out, f));
}

async function main(): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  let files: string[];
  try {
    files = await buildBrowser(root);
  } catch (e) {
    const errors = (e as { errors?: esbuild.Message[] }).errors;
    if (!errors) throw e;
    for (const m of errors)
      console.error(
        `build:browser: ${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`,
      );
    process.exit(1);
  }
  console.log(
    files
      .map((f) => `${path.relative(root, f)} (${(fs.statSync(f).size / 2 ** 20).toFixed(1)} MiB)`)
      .join(', '),
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]))
  await main();
