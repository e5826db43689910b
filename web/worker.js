// The page's worker: loads the model and images, runs the grid with robust's own code (the browser
// bundle) and reports progress; the page stays responsive and can stop it between batches.
import * as robust from '../dist/browser/robust.js';

const BUNDLE = new URL('../dist/browser/', import.meta.url).href;
const ZOO = new URL('../zoo/', import.meta.url).href;
const SAMPLE = new URL('../data/samples/fashion-mnist/', import.meta.url).href;
const DATA = new URL('../data/', import.meta.url).href;
const MAX_GUNZIP_BYTES = 64 * 2 ** 20; // the largest Fashion-MNIST file unpacked is 47 MB

let stopping = false;
const post = (m) => self.postMessage(m);

self.onmessage = async ({ data }) => {
  if (data.type === 'stop') {
    stopping = true;
    return;
  }
  if (data.type !== 'run') return;
  stopping = false;
  try {
    await run(data);
  } catch (e) {
    post({
      type: 'error',
      message:
        e instanceof robust.RobustError
          ? e.message
          : `internal error: ${String(e?.message ?? e).split('\n')[0]}`,
    });
  }
};

/** The bytes at `url`; an HTTP error is one line (`refusal` may say what the server meant by it). */
async function fetchBytes(url, what, refusal = async () => null) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new robust.RobustError(`${url}: cannot fetch ${what} (${e.message})`);
  }
  if (!res.ok)
    throw new robust.RobustError(
      (await refusal(res)) ?? `${url}: ${what} not found (HTTP ${res.status})`,
    );
  return new Uint8Array(await res.arrayBuffer());
}

/** gunzip with a cap, so a decompression bomb stops early. */
async function gunzip(bytes, source) {
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const reader = new Blob([bytes])
    .stream()
    .pipeThrough(new DecompressionStream('gzip'))
    .getReader();
  const parts = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > MAX_GUNZIP_BYTES)
        throw new robust.RobustError(
          `${source}: unpacks to more than ${MAX_GUNZIP_BYTES >> 20} MiB, larger than any Fashion-MNIST file`,
        );
      parts.push(value);
    }
  } catch (e) {
    if (e instanceof robust.RobustError) throw e;
    throw new robust.RobustError(`${source}: corrupt gzip data (${e.message})`);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The model's files: a zoo entry (its hashes checked against zoo/index.json), a URL, or files the user picked. */
async function modelFiles(spec) {
  if (spec.files) {
    const json = spec.files.find((f) => f.name.endsWith('.json'));
    if (!json) throw new robust.RobustError('the files picked hold no model.json');
    const shards = new Map(
      spec.files.filter((f) => f !== json).map((f) => [f.name, new Uint8Array(f.bytes)]),
    );
    return {
      name: json.name,
      files: robust.modelFilesFromBytes(json.name, new Uint8Array(json.bytes), shards),
    };
  }
  const zoo = /^zoo:([\w.-]+)$/.exec(spec.url);
  const url = zoo
    ? new URL(`${zoo[1]}/model.json`, ZOO).href
    : new URL(spec.url, self.location.href).href;
  const jsonBytes = await fetchBytes(url, 'model.json');
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(jsonBytes)).weightsManifest;
  } catch {
    manifest = undefined; // modelFilesFromBytes says what is wrong
  }
  const shards = new Map();
  for (const group of Array.isArray(manifest) ? manifest : []) {
    for (const p of Array.isArray(group?.paths) ? group.paths : []) {
      if (typeof p === 'string' && /^[^/\\]+$/.test(p) && p !== '..' && !shards.has(p))
        shards.set(p, await fetchBytes(new URL(p, url).href, 'weight shard'));
    }
  }
  if (zoo) {
    const index = JSON.parse(
      new TextDecoder().decode(await fetchBytes(new URL('index.json', ZOO).href, 'zoo index')),
    );
    const entry = index.entries.find((e) => e.name === zoo[1]);
    if (!entry) throw new robust.RobustError(`${spec.url}: no such zoo entry (zoo/index.json)`);
    for (const [file, sha] of Object.entries(entry.sha256)) {
      const bytes = file === 'model.json' ? jsonBytes : shards.get(file);
      if (!bytes || robust.sha256Hex(bytes) !== sha)
        throw new robust.RobustError(
          `${spec.url}: ${file} does not match its SHA-256 in zoo/index.json (damaged)`,
        );
    }
  }
  return { name: spec.url, files: robust.modelFilesFromBytes(url, jsonBytes, shards) };
}

async function sampleTestSet() {
  const [images, labels] = await Promise.all(
    ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(async (f) => {
      const url = new URL(f, SAMPLE).href;
      return robust.parseIdxBytes(
        await gunzip(await fetchBytes(url, 'sample file'), url),
        f.includes('images') ? 3 : 1,
        url,
      );
    }),
  );
  return robust.idxImageSet(
    images,
    labels,
    't10k-images-idx3-ubyte.gz',
    't10k-labels-idx1-ubyte.gz',
  );
}

/**
 * The test images the form chose, the data set's name as robust eval records it, and its classes:
 * the bundled sample, CIFAR-10 (served by robust serve from its data folder, or a picked archive
 * or test_batch.bin), or a picked or dropped folder of images read by folder:PATH's rules.
 */
async function testData(spec, limit, note) {
  switch (spec.kind) {
    case 'sample':
      return {
        name: 'fashion-mnist-sample',
        classes: robust.FASHION_CLASSES,
        test: await sampleTestSet(),
      };
    case 'cifar10-served': {
      const url = new URL(`cifar10/${robust.CIFAR10_TEST_FILE}`, DATA).href;
      const bytes = await fetchBytes(url, "CIFAR-10's test batch", async (res) =>
        // 409: robust serve's check now refuses what it offered when the page loaded; its reason
        res.status === 409
          ? `CIFAR-10 in robust serve's data folder is no longer offered: robust eval would refuse it (${(await res.text()).trim()})`
          : null,
      );
      return {
        name: 'cifar10',
        classes: robust.CIFAR10_CLASSES,
        test: robust.parseCifarBatches([bytes], url),
      };
    }
    case 'cifar10-file':
      return {
        name: 'cifar10',
        classes: robust.CIFAR10_CLASSES,
        test: await robust.cifar10TestFromFile(spec.file, note),
      };
    case 'folder': {
      // as robust eval --data folder:PATH --limit N: the first N images of each split decoded
      const split = await robust.loadFolderFiles(spec.files, { limit, note });
      robust.requireLabels(split, robust.FOLDER_HINT.labels);
      return split;
    }
    default:
      throw new robust.RobustError(`unknown image source '${spec.kind}'`);
  }
}

async function run(o) {
  const info = await robust.initBrowserBackend({ backend: o.backend, wasmPath: BUNDLE });
  post({ type: 'backend', name: info.name, text: robust.describeBrowserBackend(info) });
  const { name, files } = await modelFiles(o.model);
  const config = robust.parseEvalConfig({
    models: [name],
    attacks: o.attacks,
    eps: o.eps,
    limit: o.limit,
    batchSize: o.batchSize,
    seed: o.seed,
  });
  const notes = [];
  const loaded = await robust.modelFromFiles(name, files, {
    seed: config.seed,
    note: (line) => notes.push(line),
  });
  try {
    // labels without class names ('0'..'k-1') stand for as many classes as the model has, as in the CLI
    const whole = robust.withClassCount(
      await testData(o.data, config.limit, (line) => notes.push(line)),
      loaded.numClasses,
    );
    config.data = whole.name;
    // fitted and checked by the library, as robust eval does
    const data = robust.fitDataToModel(
      loaded,
      { ...whole, test: robust.take(whole.test, config.limit) },
      (line) => notes.push(line),
      { outputs: false },
    );
    const { test, classes, fit } = data;
    // a GPU backend proves itself on this model first: its logits on the first images against cpu's
    let backendCheck;
    if (robust.needsBackendCheck(info.name)) {
      backendCheck = await robust.checkBackend(loaded.classifier, test, {
        reference: async () => {
          const m = await robust.modelFromFiles(name, files, { seed: config.seed, note: () => {} });
          return { classifier: m.classifier, dispose: () => m.dispose() };
        },
      });
      notes.push(
        `note: backend check passed: ${info.name}'s logits on the first ${backendCheck.images} images equal cpu's within ${backendCheck.max_logit_diff.toPrecision(2)}`,
      );
    }
    robust.checkModelOutputs(loaded, test);
    for (const n of notes) post({ type: 'note', text: n });
    const row = robust.evalModel(loaded, test, { name, limit: config.limit, fit, classes });
    const cells = config.attacks.length * config.eps.length;
    const total = cells * test.count;
    // eps 0 on a deterministic model is answered without running the attack: those cells take no
    // time, so the speed and ETA count only the points of the others ("work")
    const free = (eps) => eps === 0 && !loaded.classifier.randomized;
    const work = config.attacks.length * config.eps.filter((e) => !free(e)).length * test.count;
    const start = performance.now();
    let finished = 0;
    let workFinished = 0;
    let lastInner = 0;
    // `estimate`: points of the cell in progress done, counting the share of the batch in progress
    // (for the speed and ETA); `where`: where that batch stands
    const progress = (done, cell, estimate = done - finished * test.count, where = '') => {
      const seconds = (performance.now() - start) / 1000;
      const worked = workFinished + (free(cell.eps) ? 0 : estimate);
      const rate = seconds > 0 ? worked / seconds : 0;
      post({
        type: 'progress',
        done,
        total,
        left: total - done,
        imgPerSec: rate,
        eta: rate > 0 ? (work - worked) / rate : null,
        label: `${cell.attack} eps ${cell.eps}`,
        where,
      });
    };
    const { result, complete } = await robust.runGridIn(robust.memoryCellStore(), config, [row], {
      backend: info.name,
      quiet: true,
      shouldStop: () => stopping,
      onBatch: (cell, seen) => progress(finished * test.count + seen, cell),
      // where a batch stands inside, a few times a second at most (a step of a small model takes milliseconds)
      onProgress: (cell, p) => {
        const now = performance.now();
        const estimate = robust.positionDone(p);
        // none yet: no speed to show (an eps-0 cell's points do not count)
        if (now - lastInner < 250 || workFinished + (free(cell.eps) ? 0 : estimate) === 0) return;
        lastInner = now;
        progress(finished * test.count + p.seen, cell, estimate, robust.describePosition(p));
      },
      onCell: (cell) => {
        if (!free(cell.eps)) workFinished += test.count;
        progress(++finished * test.count, cell, 0);
      },
      warn: (line) => post({ type: 'note', text: line }),
      backendCheck,
    });
    const seconds = (performance.now() - start) / 1000;
    const report = await robust.reportFiles(result);
    post({
      type: 'done',
      complete,
      files: report,
      seconds,
      wasmKernelCalls: robust.wasmKernelCalls(),
      imgPerSec: (finished * test.count) / seconds,
      cells: result.cells.map(({ gallery: _gallery, ...c }) => c),
    });
  } finally {
    loaded.dispose();
  }
}
