/**
 * A static server for the page (web/) on this machine only: the page, the browser bundle, the zoo
 * and the bundled sample, under the URLs they have in the package, with the headers wasm threads
 * need (cross-origin isolation: COOP/COEP). Any other web server can host the same folders. With a
 * data folder, also the one file of it the page can use: CIFAR-10's prepared test batch, when
 * robust eval would accept the CIFAR-10 there.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { optionError, RobustError } from './errors.js';
import { TEST_FILE, TRAIN_FILES } from '../data/cifar10-records.js';
import { checkCifar10Files, readCifar10Dir } from '../data/cifar10.js';

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

/** What the server holds beyond the package's files: `{ cifar10: boolean, cifar10Refused?: string }`. */
export const DATA_INDEX_URL = '/data/index.json';

export const CIFAR10_TEST_URL = `/data/cifar10/${TEST_FILE}`;

/** CIFAR-10 in a data folder as the page may use it: the test batch to serve, why eval would refuse it, or nothing there. */
export type Cifar10Offer = { file: string } | { refused: string } | null;

const offers = new Map<string, { key: string; offer: Cifar10Offer }>();

/** The files the check reads, in both places the loader looks: their identity and size, to redo it when one changes. */
function batchesKey(dir: string): string {
  const stat = (p: string) => {
    try {
      const s = fs.statSync(p);
      return [s.ino, s.size, s.mtimeMs, s.ctimeMs, s.isDirectory()];
    } catch {
      return null;
    }
  };
  const names = ['', ...[...TRAIN_FILES, TEST_FILE]];
  return JSON.stringify(
    [dir, path.join(dir, 'cifar-10-batches-bin')].flatMap((d) =>
      names.map((n) => stat(path.join(d, n))),
    ),
  );
}

/**
 * CIFAR-10 as robust eval finds it in `dataDir` (`robust data cifar10` put it there): null when
 * there is no cifar10/ folder; else the check eval's loader runs (every batch present once, at
 * its official size, labels 0–9), so what the page is offered is what eval accepts: the test
 * batch's path, or eval's refusal. Redone only when a batch file changes (it reads 184 MB).
 */
export function cifar10Offer(dataDir: string): Cifar10Offer {
  const dir = path.join(dataDir, 'cifar10');
  if (!fs.existsSync(dir)) return null;
  const key = batchesKey(dir);
  const known = offers.get(dir);
  if (known?.key === key) return known.offer;
  let offer: Cifar10Offer;
  try {
    const { root, files } = readCifar10Dir(dir);
    checkCifar10Files(files, dir);
    offer = { file: fs.realpathSync(path.join(root, TEST_FILE)) };
  } catch (e) {
    if (!(e instanceof RobustError)) throw e;
    offer = { refused: e.message };
  }
  offers.set(dir, { key, offer });
  return offer;
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
      const offer = o.dataDir !== undefined ? cifar10Offer(o.dataDir) : null;
      const index = {
        cifar10: offer !== null && 'file' in offer,
        ...(offer && 'refused' in offer ? { cifar10Refused: offer.refused } : {}),
      };
      return res.end(req.method === 'HEAD' ? undefined : JSON.stringify(index));
    }
    const cifar =
      url.split('?')[0] === CIFAR10_TEST_URL && o.dataDir ? cifar10Offer(o.dataDir) : null;
    // offered when the page loaded, refused since (a batch changed): eval's reason, not a bare 404
    if (cifar && 'refused' in cifar) return send(409, `${cifar.refused}\n`);
    const file =
      url.split('?')[0] === CIFAR10_TEST_URL
        ? cifar && 'file' in cifar
          ? cifar.file
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
