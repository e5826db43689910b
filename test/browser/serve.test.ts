// robust serve's server: only the page's folders, never a path out of them, with the isolation headers wasm threads need.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CIFAR10_TEST_URL,
  DATA_INDEX_URL,
  cifar10TestFile,
  servedFile,
  servePage,
  type PageServer,
} from '../../util/serve.js';
import { tmpDir } from '../helpers.js';

describe('robust serve', () => {
  let root: string;
  let server: PageServer;
  const get = (p: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${server.port}${p}`, { redirect: 'manual', ...init });

  beforeAll(async () => {
    root = tmpDir('serve');
    for (const [f, text] of [
      ['web/index.html', '<p>page</p>'],
      ['dist/browser/robust.js', 'export {};'],
      ['zoo/m/model.json', '{}'],
      ['secret.txt', 'no'],
      ['dist/index.js', 'no'],
    ]) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), text);
    }
    fs.symlinkSync(path.join(root, 'secret.txt'), path.join(root, 'web', 'leak.txt'));
    server = await servePage(root, 0);
  });
  afterAll(() => server.close());

  it('serves the page folders with COOP/COEP and the right types', async () => {
    const r = await get('/web/');
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('<p>page</p>');
    expect(r.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(r.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect((await get('/dist/browser/robust.js')).headers.get('content-type')).toMatch(
      /^text\/javascript/,
    );
    expect((await get('/zoo/m/model.json')).status).toBe(200);
    const home = await get('/');
    expect([home.status, home.headers.get('location')]).toEqual([302, '/web/']);
  });

  it('refuses everything else: other files, .., encoded .., links out, other methods', async () => {
    for (const p of [
      '/secret.txt',
      '/dist/index.js',
      '/web/../secret.txt',
      '/web/%2e%2e/secret.txt',
      '/zoo/..%2fsecret.txt',
      '/web/leak.txt',
      '/web/nope.html',
      '/%E0%A4%A',
    ]) {
      expect((await get(p)).status, p).toBe(404);
    }
    expect((await get('/web/', { method: 'POST' })).status).toBe(405);
    expect(servedFile(root, '/web/index.html')).toBe(
      fs.realpathSync(path.join(root, 'web', 'index.html')),
    );
    expect(servedFile(root, '/web/a\0b')).toBeNull();
  });

  it('listens on loopback only, and says so when the port is taken', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/web\/$/);
    await expect(servePage(root, server.port)).rejects.toThrow(`port ${server.port} is in use`);
    await expect(servePage(tmpDir('serve-empty'), 0)).rejects.toThrow(
      /robust\.js: missing \(run npm run build:browser\)/,
    );
  });

  it("serves CIFAR-10's prepared test batch from the data folder, only that file, only when it is one", async () => {
    const data = tmpDir('serve-data');
    const batches = path.join(data, 'cifar10', 'cifar-10-batches-bin');
    fs.mkdirSync(batches, { recursive: true });
    const records = new Uint8Array(2 * 3073).map((_, i) => i % 7);
    fs.writeFileSync(path.join(batches, 'test_batch.bin'), records);
    fs.writeFileSync(path.join(batches, 'data_batch_1.bin'), records);
    const withData = await servePage(root, 0, { dataDir: data });
    try {
      const at = (p: string) => fetch(`http://127.0.0.1:${withData.port}${p}`);
      expect(await (await at(DATA_INDEX_URL)).json()).toEqual({ cifar10: true });
      const r = await at(CIFAR10_TEST_URL);
      expect(r.status).toBe(200);
      expect(new Uint8Array(await r.arrayBuffer())).toEqual(records);
      for (const p of [
        '/data/cifar10/data_batch_1.bin',
        '/data/cifar10/cifar-10-batches-bin/test_batch.bin',
        '/data/cifar10/',
      ])
        expect((await at(p)).status, p).toBe(404);
      // not a whole number of records, or in both places the loader looks: not served
      fs.writeFileSync(path.join(batches, 'test_batch.bin'), records.subarray(1));
      expect((await at(CIFAR10_TEST_URL)).status).toBe(404);
      expect(await (await at(DATA_INDEX_URL)).json()).toEqual({ cifar10: false });
      fs.writeFileSync(path.join(batches, 'test_batch.bin'), records);
      fs.writeFileSync(path.join(data, 'cifar10', 'test_batch.bin'), records);
      expect(cifar10TestFile(data)).toBeNull();
      fs.rmSync(path.join(batches, 'test_batch.bin'));
      expect(cifar10TestFile(data)).toBe(
        fs.realpathSync(path.join(data, 'cifar10', 'test_batch.bin')),
      );
    } finally {
      await withData.close();
    }
    expect((await get(CIFAR10_TEST_URL)).status).toBe(404); // no data folder given: nothing
    expect(await (await get(DATA_INDEX_URL)).json()).toEqual({ cifar10: false });
  });
});
