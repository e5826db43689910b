/**
 * A static server for the page (web/) on this machine only: the page, the browser bundle, the zoo
 * and the bundled sample, under the URLs they have in the package, with the headers wasm threads
 * need (cross-origin isolation: COOP/COEP). Any other web server can host the same folders. With a
 * data folder, also the one file of it the page can use: CIFAR-10's prepared test batch.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { optionError, RobustError } from './errors.js';
import { BATCH_BYTES, TEST_FILE } from '../data/cifar10-records.js';

/** The package's folders the page reads; nothing else under the root is served. */
const SERVED = ['web', 'dist/browser', 'zoo', 'data/samples'] as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.gz': 'application/gzip',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

export interface PageServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The file a URL path names under `root`, or null (outside the served folders, a link leading out, not a file). */
export function servedFile(root: string, urlPath: string): string | null {
  let p: string;
  try {
    p = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  if (p.includes('\0') || p.split('/').some((s) => s === '..' || s === '.')) return null;
  const rel = p.replace(/^\/+/, '');
  const base = SERVED.find((d) => rel === d || rel.startsWith(`${d}/`));
  if (!base) return null;
  let file = path.join(root, rel);
  try {
    if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    const real = fs.realpathSync(file);
    const realBase = fs.realpathSync(path.join(root, base));
    if (real !== realBase && !real.startsWith(realBase + path.sep)) return null;
    return fs.statSync(real).isFile() ? real : null;
  } catch {
    return null;
  }
}

/** The URL of CIFAR-10's test batch when the data folder holds it (the page asks for it there). */
/** What the server holds beyond the package's files: `{ cifar10: boolean }`. */
export const DATA_INDEX_URL = '/data/index.json';

export const CIFAR10_TEST_URL = `/data/cifar10/${TEST_FILE}`;

/**
 * CIFAR-10's test batch as `robust data cifar10` left it in `dataDir` (cifar10/cifar-10-batches-bin/,
 * or cifar10/ itself, as the loader reads it), or null: absent, in both places (ambiguous, as the
 * loader says), not a regular file, or not a whole number of records up to one batch.
 */
export function cifar10TestFile(dataDir: string): string | null {
  const dir = path.join(dataDir, 'cifar10');
  const candidates = [path.join(dir, 'cifar-10-batches-bin', TEST_FILE), path.join(dir, TEST_FILE)];
  const present = candidates.filter((f) => fs.existsSync(f));
  if (present.length !== 1) return null;
  try {
    const s = fs.statSync(present[0]);
    return s.isFile() && s.size > 0 && s.size <= BATCH_BYTES && s.size % 3073 === 0
      ? fs.realpathSync(present[0])
      : null;
  } catch {
    return null;
  }
}

export interface ServeOptions {
  /** The data folder the CLI uses (ROBUST_DATA_DIR): its prepared CIFAR-10 test batch is served, read-only. */
  dataDir?: string;
}

/** Serves the page from `root` (the package folder) on 127.0.0.1:`port` (0: any free port) until closed. */
export async function servePage(
  root: string,
  port = 8080,
  o: ServeOptions = {},
): Promise<PageServer> {
  if (!fs.existsSync(path.join(root, 'dist', 'browser', 'robust.js')))
    throw new RobustError(
      `${path.join(root, 'dist', 'browser', 'robust.js')}: missing (run npm run build:browser)`,
    );
  const server = http.createServer((req, res) => {
    const send = (status: number, text: string) => {
      res.writeHead(status, { ...HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'GET only\n');
    const url = req.url ?? '/';
    if (url === '/' || url.startsWith('/?')) {
      res.writeHead(302, { ...HEADERS, Location: '/web/' });
      return res.end();
    }
    if (url.split('?')[0] === DATA_INDEX_URL) {
      // Always answered, so the page learns what is served without a 404 in its console.
      res.writeHead(200, { ...HEADERS, 'Content-Type': 'application/json' });
      const cifar10 = o.dataDir !== undefined && cifar10TestFile(o.dataDir) !== null;
      return res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ cifar10 }));
    }
    const file =
      url.split('?')[0] === CIFAR10_TEST_URL
        ? o.dataDir
          ? cifar10TestFile(o.dataDir)
          : null
        : servedFile(root, url);
    if (!file) return send(404, 'not found\n');
    res.writeHead(200, {
      ...HEADERS,
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': fs.statSync(file).size,
    });
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? optionError((n) => `port ${port} is in use: choose another with ${n('port')}`)
          : new RobustError(`cannot serve on port ${port}: ${e.message}`),
      ),
    );
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}/web/`,
    port: actual,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections(); // a browser's keep-alive connections would hold the close
      }),
  };
}
