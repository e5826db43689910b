/** The `robust` command line. */
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { DEFENSES, describeDefense } from '../defenses/defense.js';
import { check, RobustError } from '../util/errors.js';
import { cliMessage } from './flags.js';
import { describeBackend, initBackend } from '../backend/index.js';
import { DATASETS, loadData, parseDataSpec, prepareData } from '../data/index.js';
import { ZOO, countMacs, countParams, createModel, zooEntry } from '../models/zoo.js';
import { pretrainedEntries, pretrainedInputShape, ZOO_PREFIX } from '../models/pretrained.js';
import { SCHEDULES } from '../train/schedule.js';
import { TRAIN_DEFAULTS, type TrainOptions } from '../train/options.js';
import { train, type TrainRun, type TrainStart } from '../train/run.js';
import { LIMITS, nonNegativeInt, number, positiveInt } from './options.js';
import { registerAttack } from './attack-command.js';
import { registerEval } from './eval-command.js';
import { registerMerge } from './merge-command.js';
import { registerServe } from './serve-command.js';
import { Interrupt } from './interrupt.js';
import { stdoutOutcome, watchStdout } from './stdout.js';
import { outputFolder } from '../util/dirs.js';
import { escapeControls } from '../util/format.js';

/** The command tree (exported for tests that check every command's options). */
export const program = new Command();
program
  .name('robust')
  .description('Adversarial robustness for TensorFlow.js: model zoo, training, attacks, evaluation')
  .version('0.1.0');
program.exitOverride();

program
  .command('models')
  .description(
    'list the model zoo: name, parameters, MFLOPs per image (32×32×3 unless the row says), and the trained checkpoints shipped for it (zoo:NAME)',
  )
  .option('--json', 'print JSON')
  .option('--backend <name>', 'auto | node-gpu | node | wasm | cpu', 'auto')
  .action(async (o: { json?: boolean; backend: string }) => {
    await initBackend({ backend: o.backend });
    const trained = pretrainedEntries();
    // A row per architecture at its own width on CIFAR-sized images, and one per other width or
    // image shape a checkpoint was trained at: a row counts only the checkpoints whose parameters
    // and MFLOPs it states.
    const CIFAR: [number, number, number] = [32, 32, 3];
    // CIFAR's shape is this one array wherever it occurs, so rows compare shapes with ===
    const shapeOf = new Map(
      trained.map((t) => {
        const shape = pretrainedInputShape(t);
        return [t.name, shape.join() === CIFAR.join() ? CIFAR : shape];
      }),
    );
    const variants = ZOO.flatMap((e) => {
      const own = { e, width: e.spec.width, input: CIFAR };
      const others = new Map<string, typeof own>();
      for (const t of trained.filter((t) => t.architecture === e.name)) {
        const v = { e, width: t.width ?? e.spec.width, input: shapeOf.get(t.name)! };
        if (v.width !== own.width || v.input !== CIFAR)
          others.set(`${v.width}/${v.input.join()}`, v);
      }
      return [own, ...[...others.values()].sort((a, b) => a.width - b.width)];
    });
    const rows = variants.map(({ e, width, input }) => {
      const m = createModel(e.name, {
        inputShape: input,
        numClasses: 10,
        mean: Array(input[2]).fill(0),
        std: Array(input[2]).fill(1),
        zeroWeights: true,
        width,
      });
      const macs = countMacs(m);
      const weights = trained
        .filter(
          (t) =>
            t.architecture === e.name &&
            (t.width ?? e.spec.width) === width &&
            shapeOf.get(t.name)!.join() === input.join(),
        )
        .map((t) => ({
          name: `${ZOO_PREFIX}${t.name}`,
          data: t.data,
          defense: t.defense,
          test_acc: t.test_acc,
        }));
      const row = {
        name: e.name,
        width,
        input,
        family: e.family,
        params: countParams(m),
        mflops: +((2 * macs) / 1e6).toFixed(1),
        mmacs: +(macs / 1e6).toFixed(1),
        description:
          width === e.spec.width && input === CIFAR
            ? e.description
            : `${e.description.split(':')[0]}${width === e.spec.width ? '' : ` at width ${width} (channels of the first stage)`}${input === CIFAR ? '' : `, on ${input.join('×')} images`}`,
        trained: weights,
      };
      m.dispose();
      return row;
    });
    if (o.json) console.log(JSON.stringify(rows, null, 2));
    else {
      console.log(
        `${'model'.padEnd(18)} ${'params'.padStart(11)} ${'MFLOPs'.padStart(9)}  ${'trained'.padEnd(8)} description`,
      );
      for (const r of rows)
        console.log(
          `${(r.name + (r.width === zooEntry(r.name).spec.width ? '' : ` w${r.width}`) + (r.input === CIFAR ? '' : ` ${r.input[0]}×${r.input[1]}`)).padEnd(18)} ${r.params.toLocaleString('en-US').padStart(11)} ${r.mflops.toFixed(1).padStart(9)}  ${(r.trained.length ? `${r.trained.length} ✓` : '–').padEnd(8)} ${r.description}`,
        );
      if (trained.length) {
        console.log('\ntrained checkpoints (use as --model zoo:NAME):');
        for (const t of trained)
          console.log(
            `  ${(ZOO_PREFIX + t.name).padEnd(34)} ${t.architecture}${t.width ? ` width ${t.width}` : ''} on ${t.data}, defense ${t.defense}${t.eps ? ` eps ${+t.eps.toFixed(4)}` : ''}, ${(100 * t.test_acc).toFixed(2)}% clean`,
          );
      }
    }
  });

program
  .command('data <name>')
  .description(
    `download (or copy with --from), verify and unpack a data set: ${DATASETS.join(', ')}; or check your own (folder:PATH, npz:FILE, npy:X.npy[,Y.npy]) and print what it holds`,
  )
  .option(
    '--from <path>',
    'a local copy: the CIFAR-10/100 .tar.gz (or its folder), or the folder of the (Fashion-)MNIST .gz files',
  )
  .option(
    '--data-dir <dir>',
    'where data sets live (default $ROBUST_DATA_DIR or ~/.cache/robust/data)',
  )
  .action(async (name: string, o: { from?: string; dataDir?: string }) => {
    const spec = parseDataSpec(name);
    if (spec.kind !== 'builtin') {
      check(
        o.from === undefined,
        `--from is for the built-in data sets; ${name} is read where it is`,
      );
      const split = await loadData(name, { allowUnlabeled: true });
      const t = split.test;
      const labels = split.unlabeled
        ? 'no test labels'
        : `${split.classes.length} classes${split.classesFrom === 'labels' ? ' (label indices, no names)' : `: ${split.classes.slice(0, 10).join(', ')}${split.classes.length > 10 ? ', …' : ''}`}`;
      console.log(
        `${split.name}: ${split.train.count} train / ${t.count} test images of ${t.height}×${t.width}×${t.channels}, ${labels}`,
      );
      return;
    }
    const dir = await prepareData(name, { from: o.from, dataDir: o.dataDir });
    const split = await loadData(spec.name, { dataDir: o.dataDir });
    console.log(
      `${split.name}: ${split.train.count} train / ${split.test.count} test images of ${split.train.height}×${split.train.width}×${split.train.channels} in ${dir}`,
    );
  });

program
  .command('train')
  .description(
    'train a zoo model with SGD (momentum 0.9, weight decay 5e-4), saving checkpoints and a per-epoch log',
  )
  .option('--model <name>', 'zoo model (see `robust models`)', TRAIN_DEFAULTS.model)
  .option(
    '--width <n>',
    "channels of the first stage (default: the architecture's)",
    positiveInt('--width', LIMITS.width),
  )
  .option(
    '--data <name>',
    `data set: ${DATASETS.join(', ')}, or folder:PATH / npz:FILE with a training split`,
    TRAIN_DEFAULTS.data,
  )
  .option('--data-dir <dir>', 'where data sets live')
  .option('--epochs <n>', 'epochs', positiveInt('--epochs', LIMITS.epochs), TRAIN_DEFAULTS.epochs)
  .option(
    '--batch-size <n>',
    'batch size',
    positiveInt('--batch-size', LIMITS.batchSize),
    TRAIN_DEFAULTS.batchSize,
  )
  .option('--lr <x>', 'peak learning rate', number('lr', { min: 0 }), TRAIN_DEFAULTS.lr)
  .option(
    '--momentum <x>',
    'SGD momentum',
    number('momentum', { min: 0, max: 1 }),
    TRAIN_DEFAULTS.momentum,
  )
  .option(
    '--weight-decay <x>',
    'L2 weight decay (on kernels unless --decay all)',
    number('weightDecay', { min: 0 }),
    TRAIN_DEFAULTS.weightDecay,
  )
  .option(
    '--decay <which>',
    "the weights weight decay applies to: kernels (default) or all (BN and biases too, as PyTorch's SGD over model.parameters())",
  )
  .option(
    '--schedule <name>',
    `${SCHEDULES.join(' | ')} (default: ${TRAIN_DEFAULTS.schedule}; onecycle with fgsm-rs)`,
  )
  .option('--no-augment', 'no random crop / flip')
  .option('--seed <n>', 'random seed', nonNegativeInt('--seed', LIMITS.seed), TRAIN_DEFAULTS.seed)
  .option(
    '--limit <n>',
    'use only the first N training images (and test images unless --eval-limit)',
    positiveInt('--limit', LIMITS.images),
  )
  .option(
    '--eval-limit <n>',
    'test accuracy on the first N test images',
    positiveInt('--eval-limit', LIMITS.images),
  )
  .option('--out <dir>', 'run folder (default runs/<model>-<data>)')
  .option(
    '--resume',
    "continue the run in --out from its last checkpoint. Options left out are the run's own; options given must match it " +
      '(else refused, naming them) except --backend, --threads, --quiet, --checkpoint-every, and a larger --epochs, which extends the run ' +
      '(the lr schedule is stretched to the new total from where the run is; recorded in its state.json)',
  )
  .option(
    '--override',
    "with --resume: continue with the new values of options that differ from the run's (recorded in its state.json); the model, width, data set and dropout cannot change",
  )
  .option(
    '--force',
    "start a new run in --out even if it holds a run or other files (the old run's checkpoint, best/ and logs are removed)",
  )
  .option(
    '--checkpoint-every <n>',
    'also checkpoint every N batches (0 = epoch ends only)',
    nonNegativeInt('--checkpoint-every', LIMITS.checkpointEvery),
    TRAIN_DEFAULTS.checkpointEvery,
  )
  .option('--backend <name>', 'auto | node-gpu | node | wasm | cpu', 'auto')
  .option(
    '--threads <n>',
    'wasm threads (default: the cores this process may use)',
    positiveInt('--threads', LIMITS.threads),
  )
  .option('--quiet', 'no progress output')
  .option(
    '--defense <list>',
    `defenses, comma-separated: ${DEFENSES.join(', ')} (adv = pgd)`,
    TRAIN_DEFAULTS.defense,
  )
  .option(
    '--eps <x>',
    'adversarial training budget (Linf pixels)',
    number('eps', { min: 0 }),
    TRAIN_DEFAULTS.eps,
  )
  .option(
    '--alpha <x>',
    'adversarial step size (default 2/255; fgsm-rs 1.25·eps)',
    number('alpha', { min: 0 }),
  )
  .option(
    '--adv-steps <n>',
    'attack steps for pgd (default 7) and trades (default 10)',
    positiveInt('--adv-steps', LIMITS.steps),
  )
  .option(
    '--adv-ratio <x>',
    'share of each batch replaced by adversarial examples',
    number('advRatio', { min: 0, max: 1 }),
    TRAIN_DEFAULTS.advRatio,
  )
  .option(
    '--adv-mode <mode>',
    'the model mode fgsm-rs and pgd attack it in while it trains: inference (default; running BN statistics) or train (batch statistics, as Wong et al.)',
  )
  .option(
    '--beta <x>',
    'TRADES weight of the KL term',
    number('beta', { min: 0 }),
    TRAIN_DEFAULTS.beta,
  )
  .option(
    '--clip-norm <x>',
    'clip gradients to this global L2 norm',
    number('clipNorm', { min: 0 }),
  )
  .option('--clip-value <x>', 'clip each gradient value to ±x', number('clipValue', { min: 0 }))
  .option(
    '--noise-std <x>',
    'Gaussian input noise (pixels) for the noise defense',
    number('noiseStd', { min: 0 }),
  )
  .option(
    '--noise-samples <n>',
    'noise draws averaged per prediction at inference',
    positiveInt('--noise-samples', LIMITS.samples),
    TRAIN_DEFAULTS.noiseSamples,
  )
  .option(
    '--dropout <p>',
    'dropout before the classifier',
    number('dropout', { min: 0, max: 0.99 }),
  )
  .option(
    '--block-dropout <p>',
    'dropout inside residual blocks',
    number('blockDropout', { min: 0, max: 0.99 }),
  )
  .option(
    '--robust-eval <n>',
    'PGD robust accuracy each epoch on the first N test images (default 200 with adversarial defenses, else 0)',
    nonNegativeInt('--robust-eval', LIMITS.images),
  )
  .option(
    '--robust-eval-steps <n>',
    'PGD steps of that evaluation',
    positiveInt('--robust-eval-steps', LIMITS.steps),
    TRAIN_DEFAULTS.robustEvalSteps,
  )
  .option(
    '--early-stop <rule>',
    "how fgsm-rs watches for catastrophic overfitting: robust-eval (default: the robust evaluation falls below half its best; best/ keeps the best epoch) or train-batch (Wong et al.'s check: PGD-5 on the epoch's first training batch falls by over 20 points; best/ keeps the epoch before)",
  )
  .option(
    '--no-early-stop',
    'keep training when robust accuracy collapses (fgsm-rs stops by default)',
  )
  .action(async (values: Record<string, unknown>, cmd: Command) => {
    check(!values.override || values.resume, '--override only applies with --resume');
    // two flags set one option: given both, the last would win unseen
    let root: Command = cmd;
    while (root.parent) root = root.parent;
    const raw = (root as Command & { rawArgs: string[] }).rawArgs;
    check(
      !(
        raw.includes('--no-early-stop') &&
        raw.some((a) => a === '--early-stop' || a.startsWith('--early-stop='))
      ),
      '--early-stop and --no-early-stop contradict each other: give one',
    );
    // Only the flags given: the library fills in the rest (its defaults, or a resumed run's own).
    const options: Record<string, unknown> = {};
    for (const opt of cmd.options) {
      const key = opt.attributeName();
      if (cmd.getOptionValueSource(key) === 'cli') options[key] = values[key];
    }
    if (typeof options.out === 'string') options.out = outputFolder('out', options.out);
    let interrupt: Interrupt | undefined;
    const onStart = ({ out, config, data, backend }: TrainStart) => {
      console.error(
        `${describeBackend(backend)}; ${config.model}${config.defense ? ` with ${describeDefense(config.defense)}` : ''} on ${data.name} (${data.train.count} train / ${data.test.count} test), out ${out}`,
      );
      interrupt = new Interrupt(
        'stopping after this batch (checkpoint will be saved; continue with --resume)…',
      );
    };
    let run: TrainRun;
    try {
      run = await train(options as TrainOptions, { onStart, shouldStop: () => !!interrupt?.stop });
    } finally {
      interrupt?.release();
    }
    const { out, log, interrupted } = run;
    if (interrupted) {
      console.error(`stopped; checkpoint saved in ${path.join(out, 'checkpoint')}`);
      process.exitCode = 130;
      return;
    }
    const last = log[log.length - 1];
    console.log(
      JSON.stringify({
        out,
        checkpoint: path.join(out, 'checkpoint'),
        epochs: log.length,
        test_acc: last?.test_acc,
        img_per_s: last?.img_per_s,
      }),
    );
  });

registerAttack(program);
registerEval(program);
registerMerge(program);
registerServe(program);
robustErrors(program, 'robust');

/**
 * Commander's own errors (an unknown option or command, a missing argument) worded as every other
 * error: one `robust: ` line, pointing at the help of the command that refused.
 */
function robustErrors(cmd: Command, name: string): void {
  cmd.configureOutput({
    outputError: (text, write) => {
      // commander puts its suggestion on a line of its own: "\n(Did you mean --json?)"
      const [, message, guess] = /^(?:error: )?([^]*?)(?:\n\(Did you mean (.+)\?\))?\s*$/.exec(
        text,
      )!;
      const help = `${guess ? `did you mean ${guess}? ` : ''}see ${name} --help`;
      write(`robust: ${escapeControls(message.replace(/\s*\n\s*/g, ' '))} (${help})\n`);
    },
  });
  for (const sub of cmd.commands) robustErrors(sub, `${name} ${sub.name()}`);
}

export async function main(argv: string[]): Promise<number> {
  watchStdout();
  const code = await run(argv);
  if (code !== 0) return code; // the command's own failure says more than its output's
  const out = await stdoutOutcome();
  if (out?.message) console.error(`robust: ${out.message}`);
  return out?.code ?? 0;
}

async function run(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof RobustError) {
      // a file or model name the user gave may hold control characters: shown, never acted on
      console.error(`robust: ${escapeControls(cliMessage(e))}`);
      return 2;
    }
    console.error(`robust: internal error: ${(e as Error).stack ?? e}`);
    return 1;
  }
}
