// The page: reads the form, runs the grid in a Web Worker (worker.js), shows progress, the backend
// and why, any error as one line, and the report (the same table, plots and gallery as report.html).
const $ = (id) => document.getElementById(id);
let worker = null;
const urls = [];

// robust serve offers CIFAR-10's test set when its data folder holds one robust eval accepts, and
// says why not when it holds one eval would refuse; a static host offers nothing
fetch(new URL('../data/index.json', import.meta.url))
  .then((r) => (r.ok ? r.json() : {}))
  .then((served) => {
    $('cifar-served').hidden = served.cifar10 !== true;
    if (typeof served.cifar10Refused === 'string') {
      $('cifar-refused').textContent =
        `CIFAR-10 in robust serve's data folder is not offered: robust eval would refuse it (${served.cifar10Refused})`;
      $('cifar-refused').hidden = false;
    }
  })
  .catch(() => undefined);

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
}

function finish() {
  $('run').disabled = false;
  $('stop').disabled = true;
  worker?.terminate();
  worker = null;
}

const seconds = (s) =>
  s === null
    ? '–'
    : s < 90
      ? `${Math.round(s)}s`
      : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;

function onMessage({ data: m }) {
  switch (m.type) {
    case 'backend':
      $('backend-line').textContent = m.text;
      break;
    case 'note': {
      const li = document.createElement('li');
      li.textContent = m.text;
      $('notes').append(li);
      break;
    }
    case 'progress':
      $('bar').hidden = false;
      $('bar').value = m.done / m.total;
      $('progress').textContent =
        `${m.label}: ${m.done}/${m.total} points, ${m.left} left · ${m.imgPerSec.toFixed(1)} img/s · ETA ${seconds(m.eta)}${m.where ? ` · ${m.where}` : ''}`;
      break;
    case 'done': {
      $('progress').textContent =
        `${m.complete ? 'done' : 'stopped'}: ${m.cells.length} cells in ${m.seconds.toFixed(1)} s (${m.imgPerSec.toFixed(1)} img/s)`;
      $('progress').dataset.imgPerSec = String(m.imgPerSec);
      urls.splice(0).forEach((u) => URL.revokeObjectURL(u));
      const types = {
        'results.csv': 'text/csv',
        'results.json': 'application/json',
        'results.md': 'text/markdown',
        'report.html': 'text/html',
      };
      $('downloads').replaceChildren(
        ...Object.entries(m.files).map(([name, text]) => {
          const a = document.createElement('a');
          a.href = URL.createObjectURL(new Blob([text], { type: types[name] }));
          urls.push(a.href);
          a.download = name;
          a.textContent = name;
          return a;
        }),
      );
      $('report').srcdoc = m.files['report.html'];
      $('results').hidden = false;
      window.robustResult = m; // for tests and the console
      finish();
      break;
    }
    case 'error':
      showError(m.message);
      // an error before the first batch: nothing is starting any more
      if ($('progress').textContent === 'starting…') $('progress').textContent = '';
      finish();
      break;
  }
}

async function modelSpec() {
  if (document.querySelector('input[name=source]:checked').value === 'url')
    return { url: $('model-url').value.trim() };
  const files = [...$('model-files').files];
  if (!files.some((f) => f.name.endsWith('.json')))
    throw new Error('pick model.json and its weight shards (several files at once)');
  return {
    files: await Promise.all(
      files.map(async (f) => ({ name: f.name, bytes: await f.arrayBuffer() })),
    ),
  };
}

$('cifar-file').addEventListener('change', () => {
  document.querySelector('input[name=data][value=cifar10-file]').checked = true;
});

// A folder of images: picked (webkitdirectory: every file with its path from the folder's name) or
// dropped (walked by the bundle's folderFilesFromEntry); the worker reads it with folder:PATH's rules.
let folderFiles = null;
function folderChosen(files, how) {
  folderFiles = files;
  document.querySelector('input[name=data][value=folder]').checked = true;
  const root = files[0]?.path.split('/')[0];
  $('folder-line').textContent = root
    ? `${how} ${root}/: ${files.length} files`
    : `${how} a folder with no files`;
  $('folder-line').hidden = false;
}
$('folder').addEventListener('change', () =>
  folderChosen(
    [...$('folder').files].map((f) => ({ path: f.webkitRelativePath, file: f })),
    'picked',
  ),
);
$('drop').addEventListener('dragover', (e) => {
  e.preventDefault();
  $('drop').classList.add('over');
});
$('drop').addEventListener('dragleave', () => $('drop').classList.remove('over'));
$('drop').addEventListener('drop', async (e) => {
  e.preventDefault();
  $('drop').classList.remove('over');
  $('error').hidden = true;
  const { items } = e.dataTransfer;
  const entry = items[0]?.webkitGetAsEntry?.();
  try {
    if (items.length > 1) throw new Error(`drop one folder (${items.length} items were dropped)`);
    if (!entry) throw new Error('drop a folder of images (this browser gave no folder entry)');
    const { folderFilesFromEntry } = await import('../dist/browser/robust.js');
    folderChosen(await folderFilesFromEntry(entry), 'dropped');
  } catch (err) {
    showError(err.message);
  }
});

function dataSpec() {
  const kind = document.querySelector('input[name=data]:checked').value;
  if (kind === 'cifar10-file') {
    const file = $('cifar-file').files[0];
    if (!file) throw new Error('pick cifar-10-binary.tar.gz or its test_batch.bin');
    return { kind, file };
  }
  if (kind === 'folder') {
    if (!folderFiles) throw new Error('pick or drop a folder of images');
    return { kind, files: folderFiles };
  }
  return { kind };
}

$('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('error').hidden = true;
  $('notes').replaceChildren();
  $('results').hidden = true;
  $('progress').textContent = '';
  let model;
  let data;
  try {
    model = await modelSpec();
    data = dataSpec();
  } catch (err) {
    showError(err.message);
    return;
  }
  $('progress').textContent = 'starting…';
  $('run').disabled = true;
  $('stop').disabled = false;
  worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = onMessage;
  worker.onerror = (ev) => {
    ev.preventDefault();
    showError(
      `the worker failed: ${ev.message ?? 'could not start (is the page served with dist/browser/robust.js beside it?)'}`,
    );
    finish();
  };
  const transfer = model.files ? model.files.map((f) => f.bytes) : [];
  worker.postMessage(
    {
      type: 'run',
      model,
      data,
      backend: $('backend').value,
      attacks: $('attacks').value,
      eps: $('eps').value,
      limit: $('limit').value,
      batchSize: $('batch').value,
      seed: $('seed').value,
    },
    transfer,
  );
});

$('stop').addEventListener('click', () => {
  worker?.postMessage({ type: 'stop' });
  $('stop').disabled = true;
  $('progress').textContent += ' · stopping after this batch…';
});
