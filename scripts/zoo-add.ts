/**
 * Adds a finished training run to the shipped zoo: copies its model (model.json + weights.bin, no
 * optimizer state) to zoo/NAME/, records how it was made and the files' SHA-256 in zoo/index.json.
 *
 *   node dist/scripts/zoo-add.js RUN_DIR NAME --command "robust train …" [--best]
 *
 * --best takes the run's best-robust checkpoint (adversarial training keeps it in RUN_DIR/best).
 * --float16 ships the weights as float16 (half the bytes; models/float16-weights.ts) when the clean
 * accuracy on the data set's full test set moves by at most 0.1 point: both are measured (on the
 * fastest backend here) and recorded in the entry; otherwise it refuses and the zoo is unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import {
  pretrainedDir,
  pretrainedEntries,
  sha256,
  type PretrainedEntry,
} from '../models/pretrained.js';
import { writeDirAtomic, writeFileAtomic } from '../util/atomic.js';
import { optionsOrExit } from '../cli/options.js';
import { check } from '../util/errors.js';
import { readJsonFile } from '../util/json-file.js';
import { initBackend } from '../backend/index.js';
import { loadData } from '../data/index.js';
import { accuracy } from '../eval/accuracy.js';
import { float16Model } from '../models/float16-weights.js';
import { buildLayersModel } from '../models/layers-build.js';
import { modelFilesFrom } from '../models/model-bytes.js';
import { readModelFiles } from '../models/model-files.js';
import { RobustError } from '../util/errors.js';
import { cliMessage } from '../cli/flags.js';

interface EpochLog {
  epoch: number;
  test_acc: number;
  seconds: number;
  robust_acc?: number;
}
interface RunState {
  config: {
    model: string;
    width?: number;
    data: string;
    backend: string;
    defense?: { names?: string[]; eps?: number };
  };
}

const program = new Command()
  .argument('<run>', 'training run folder (with checkpoint/ and log.json)')
  .argument('<name>', 'zoo entry name, used as zoo:NAME')
  .requiredOption('--command <text>', 'the exact command that trained it')
  .option('--best', 'take the best-robust checkpoint (RUN/best) instead of the last one')
  .option('--threads <text>', 'how the backend ran, for the record', '2 threads')
  .option('--note <text>', 'anything a reader of the table should know about how the run went')
  .option(
    '--float16',
    'ship float16 weights if the full test set clean accuracy moves by at most 0.1 point (measured)',
  )
  .parse();

const [run, name] = program.args;
const o = program.opts<{
  command: string;
  best?: boolean;
  threads: string;
  note?: string;
  float16?: boolean;
}>();
const source = path.join(run, o.best ? 'best' : 'checkpoint');

const readJson = <T>(file: string): T =>
  readJsonFile<T>(file, `${file}: not found (is ${run} a finished training run?)`);

const { state, log, meta } = optionsOrExit('zoo-add', () => {
  check(
    /^[a-z0-9][a-z0-9-]*$/.test(name),
    `entry name '${name}' must be lowercase letters, digits and dashes`,
  );
  const state = readJson<RunState>(path.join(run, 'checkpoint', 'state.json'));
  const log = readJson<EpochLog[]>(path.join(run, 'log.json'));
  check(Array.isArray(log) && log.length > 0, `${run}/log.json: no finished epoch`);
  check(fs.existsSync(path.join(source, 'weights.bin')), `${source}/weights.bin: not found`);
  const meta = readJson<{ userDefinedMetadata?: { robust?: { defense?: string } } }>(
    path.join(source, 'model.json'),
  );
  return { state, log, meta: meta.userDefinedMetadata?.robust ?? {} };
});
// The epoch the shipped weights come from: the last, or the best-robust one.
const epoch = o.best
  ? log.reduce((b, e) => ((e.robust_acc ?? -1) > (b.robust_acc ?? -1) ? e : b))
  : log[log.length - 1];

/** The float16 files and both clean accuracies, or a one-line refusal when float16 costs more than 0.1 point. */
async function toFloat16() {
  const original = readModelFiles(source);
  const half = float16Model(original);
  await initBackend();
  const { test } = await loadData(state.config.data);
  const acc = async (files: typeof original) => {
    const model = await buildLayersModel(files);
    const want = [test.height, test.width, test.channels];
    const shape = model.inputs[0].shape.slice(1);
    if (shape.join('x') !== want.join('x'))
      throw new RobustError(
        `${source}: the model takes ${shape.join('×')} images, ${state.config.data}'s are ${want.join('×')}`,
      );
    const a = accuracy(model, test);
    model.dispose();
    return a;
  };
  const float32 = await acc(original);
  const float16 = await acc(
    modelFilesFrom(path.join(source, 'model.json'), half.json, () => half.weights),
  );
  const moved = Math.round(Math.abs(float16 - float32) * test.count); // images: accuracies are counts over test.count
  const pct = (a: number) => `${(100 * a).toFixed(2)}%`;
  console.log(
    `float16 weights: ${pct(float16)} clean on ${test.count} test images, float32 ${pct(float32)}`,
  );
  // at most 0.1 point: a count, so no rounding decides it
  if (moved * 1000 > test.count)
    throw new RobustError(
      `float16 weights move the clean accuracy by ${moved} of ${test.count} test images (${pct(float32)} → ${pct(float16)}), more than 0.1 point: add it without --float16`,
    );
  return { half, float32, float16 };
}

let float16: Awaited<ReturnType<typeof toFloat16>> | null = null;
if (o.float16) {
  try {
    float16 = await toFloat16();
  } catch (e) {
    if (!(e instanceof RobustError)) throw e;
    console.error(`zoo-add: ${cliMessage(e)}`);
    process.exit(2);
  }
}
const files = ['model.json', 'weights.bin'];
const target = path.join(pretrainedDir(), name);
await writeDirAtomic(target, (tmp) => {
  if (!float16)
    return files.forEach((f) => fs.copyFileSync(path.join(source, f), path.join(tmp, f)));
  fs.writeFileSync(path.join(tmp, 'model.json'), JSON.stringify(float16.half.json));
  fs.writeFileSync(path.join(tmp, 'weights.bin'), float16.half.weights);
});
const defense = state.config.defense?.names?.join(',') || meta.defense || 'none';
const entry: PretrainedEntry = {
  name,
  architecture: state.config.model,
  ...(state.config.width ? { width: state.config.width } : {}),
  data: state.config.data,
  defense,
  ...(defense !== 'none' && state.config.defense?.eps ? { eps: state.config.defense.eps } : {}),
  command: o.command,
  epochs: epoch.epoch,
  train_seconds: Math.round(log.slice(0, epoch.epoch).reduce((s, e) => s + e.seconds, 0)),
  backend: `${state.config.backend} (${o.threads})`,
  test_acc: epoch.test_acc,
  ...(float16
    ? {
        weights: {
          dtype: 'float16',
          test_acc_float32: float16.float32,
          test_acc_float16: float16.float16,
        },
      }
    : {}),
  ...(o.note ? { note: o.note } : {}),
  sha256: Object.fromEntries(files.map((f) => [f, sha256(path.join(target, f))])),
};
// A replaced entry keeps its place, so the table's row order does not change under it.
const entries = pretrainedEntries();
const at = entries.findIndex((e) => e.name === name);
if (at >= 0) entries[at] = entry;
else entries.push(entry);
writeFileAtomic(
  path.join(pretrainedDir(), 'index.json'),
  `${JSON.stringify({ entries }, null, 2)}\n`,
);
console.log(
  `zoo:${name} ← ${source} (epoch ${epoch.epoch}, ${(100 * epoch.test_acc).toFixed(2)}% clean)`,
);
