// robust serve's server: only the page's folders, never a path out of them, with the isolation headers wasm threads need.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CIFAR10_TEST_URL,
  DATA_INDEX_URL,
  cifar10Offer,
  servedFile,
  servePage,
  type PageServer,
} from '../../util/serve.js';
import { tmpDir } from '../helpers.js';
import { loadData } from '../../data/index.js';
import { TEST_FILE, TRAIN_FILES } from '../../data/cifar10.js';

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

  it("serves CIFAR-10's prepared test batch from the data folder, only that file, only when robust eval would take the set", async () => {
    const data = tmpDir('serve-data');
    const batches = path.join(data, 'cifar10', 'cifar-10-batches-bin');
    fs.mkdirSync(batches, { recursive: true });
    // whole batches (10,000 records of 3073 bytes), labels 0..9
    const records = new Uint8Array(10_000 * 3073).map((_, i) => (i % 3073 === 0 ? i % 10 : i % 7));
    for (const f of [...TRAIN_FILES, TEST_FILE]) fs.writeFileSync(path.join(batches, f), records);
    const withData = await servePage(root, 0, { dataDir: data });
    /** What the page is told, and whether robust eval loads the set from that data folder. */
    const verdicts = async () => {
      const index = await (await at(DATA_INDEX_URL)).json();
      const evalSays = await loadData('cifar10', { dataDir: data, limit: 1 }).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      return { index, evalSays };
    };
    const at = (p: string) => fetch(`http://127.0.0.1:${withData.port}${p}`);
    try {
      expect(await verdicts()).toEqual({ index: { cifar10: true }, evalSays: 'ok' });
      const r = await at(CIFAR10_TEST_URL);
      expect(r.status).toBe(200);
      expect(Buffer.compare(Buffer.from(await r.arrayBuffer()), records)).toBe(0); // (toEqual walks 30 M elements)
      for (const p of [
        '/data/cifar10/data_batch_1.bin',
        '/data/cifar10/cifar-10-batches-bin/test_batch.bin',
        '/data/cifar10/',
      ])
        expect((await at(p)).status, p).toBe(404);
      // what eval refuses is not served, and the page is told eval's reason (in the index and for the batch)
      const refusals: [string, () => void][] = [
        [
          'the test batch cut at a record boundary',
          () => fs.writeFileSync(path.join(batches, TEST_FILE), records.subarray(0, 2 * 3073)),
        ],
        [
          'a training batch cut at a record boundary',
          () => fs.writeFileSync(path.join(batches, 'data_batch_4.bin'), records.subarray(3073)),
        ],
        ['a training batch missing', () => fs.rmSync(path.join(batches, 'data_batch_2.bin'))],
        [
          'a label over 9',
          () =>
            fs.writeFileSync(
              path.join(batches, TEST_FILE),
              records.map((v, i) => (i === 3073 ? 12 : v)),
            ),
        ],
        [
          'batches in both places the loader looks',
          () => fs.writeFileSync(path.join(data, 'cifar10', TEST_FILE), records),
        ],
      ];
      for (const [what, spoil] of refusals) {
        for (const f of [...TRAIN_FILES, TEST_FILE])
          fs.writeFileSync(path.join(batches, f), records);
        fs.rmSync(path.join(data, 'cifar10', TEST_FILE), { force: true });
        spoil();
        const { index, evalSays } = await verdicts();
        expect(evalSays, what).not.toBe('ok');
        expect(index, what).toEqual({ cifar10: false, cifar10Refused: evalSays });
        // the batch asked for anyway (the page loaded before the change): 409 with eval's reason
        const refused = await at(CIFAR10_TEST_URL);
        expect(refused.status, what).toBe(409);
        expect(await refused.text(), what).toBe(`${evalSays}\n`);
      }
      expect((await verdicts()).evalSays).toMatch(/both directly and in cifar-10-batches-bin/);
      // the six batches directly in cifar10/: eval reads them there, and so does the server
      fs.rmSync(batches, { recursive: true });
      for (const f of TRAIN_FILES) fs.writeFileSync(path.join(data, 'cifar10', f), records);
      expect(await verdicts()).toEqual({ index: { cifar10: true }, evalSays: 'ok' });
      expect(cifar10Offer(data)).toEqual({
        file: fs.realpathSync(path.join(data, 'cifar10', TEST_FILE)),
      });
    } finally {
      await withData.close();
    }
    expect((await get(CIFAR10_TEST_URL)).status).toBe(404); // no data folder given: nothing
    expect(await (await get(DATA_INDEX_URL)).json()).toEqual({ cifar10: false });
    expect(cifar10Offer(tmpDir('serve-nodata'))).toBeNull(); // no cifar10/ at all: nothing to say
  }, 60_000);
});
