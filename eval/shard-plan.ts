/**
 * Splitting an evaluation grid over n workers (`robust eval --shard i/n`): which images of which
 * cell worker i attacks. The split is by the grid's batches, so each worker's share runs exactly
 * as those batches run in one process (each batch's randomness comes from its index alone).
 */
import { checkOption, optionError, type OptionWords } from '../util/errors.js';

export interface Shard {
  /** 0 … count − 1. */
  index: number;
  count: number;
}

/** Far above any cluster; far below a count whose shard folders would fill a file system. */
export const MAX_SHARDS = 100_000;

export const shardName = (s: Shard) => `${s.index}-of-${s.count}`;
export const shardLabel = (s: Shard) => `${s.index}/${s.count}`;

function shardOf(index: number, count: number, what: OptionWords): Shard {
  checkOption(
    Number.isSafeInteger(count) && count >= 1 && count <= MAX_SHARDS,
    (n) =>
      `${what(n)}: the number of shards must be an integer from 1 to ${MAX_SHARDS}, got ${count}`,
  );
  checkOption(
    Number.isSafeInteger(index) && index >= 0 && index < count,
    (n) => `${what(n)}: the shard index must be an integer from 0 to ${count - 1}, got ${index}`,
  );
  return { index, count };
}

/** Decimal digits only: '0x1', '1e0' or '' is not an index. */
const digits = (v: string | undefined) =>
  v !== undefined && /^\s*\d{1,15}\s*$/.test(v) ? Number(v) : NaN;

/**
 * The shard of `--shard`: `i/n` (worker i of n, from 0), or `auto` to read it from the scheduler:
 * a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, and JOB_COMPLETIONS which its manifest sets) or a
 * Slurm job array (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT).
 */
export function parseShard(value: string, env: NodeJS.ProcessEnv = process.env): Shard {
  if (value === 'auto') return shardFromEnv(env);
  const m = /^(\d{1,15})\/(\d{1,15})$/.exec(value.trim());
  if (!m)
    throw optionError(
      (n) => `${n('shard')} must be i/n (worker i of n, counting from 0) or auto, got '${value}'`,
    );
  return shardOf(Number(m[1]), Number(m[2]), (n) => `${n('shard')} ${value}`);
}

export function shardFromEnv(env: NodeJS.ProcessEnv): Shard {
  const has = (k: string) => env[k] !== undefined && env[k] !== '';
  const num = (k: string) => {
    const n = digits(env[k]);
    checkOption(
      !Number.isNaN(n),
      (w) => `${w('shard')} auto: ${k} must be a non-negative integer, got '${env[k]}'`,
    );
    return n;
  };
  // both set (a Slurm job launched from a pod, or the reverse): which one splits the grid is a guess
  checkOption(
    !(has('JOB_COMPLETION_INDEX') && has('SLURM_ARRAY_TASK_ID')),
    (n) =>
      `${n('shard')} auto: both JOB_COMPLETION_INDEX (${env.JOB_COMPLETION_INDEX}) and SLURM_ARRAY_TASK_ID (${env.SLURM_ARRAY_TASK_ID}) are set: pass ${n('shard')} i/n`,
  );
  if (has('JOB_COMPLETION_INDEX')) {
    checkOption(
      has('JOB_COMPLETIONS'),
      (n) =>
        `${n('shard')} auto: JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job's completions in its manifest (see examples/kubernetes-job.yaml)`,
    );
    return shardOf(
      num('JOB_COMPLETION_INDEX'),
      num('JOB_COMPLETIONS'),
      (n) => `${n('shard')} auto (JOB_COMPLETION_INDEX/JOB_COMPLETIONS)`,
    );
  }
  if (has('SLURM_ARRAY_TASK_ID')) {
    checkOption(
      has('SLURM_ARRAY_TASK_COUNT'),
      (n) => `${n('shard')} auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not`,
    );
    const count = num('SLURM_ARRAY_TASK_COUNT');
    const min = has('SLURM_ARRAY_TASK_MIN') ? num('SLURM_ARRAY_TASK_MIN') : 0;
    // --array=1-8 numbers tasks from 1; steps or gaps (0-15:4, 1,3,7) leave no i/n reading of the ids
    if (has('SLURM_ARRAY_TASK_MAX')) {
      const max = num('SLURM_ARRAY_TASK_MAX');
      checkOption(
        max - min + 1 === count,
        (n) =>
          `${n('shard')} auto: the Slurm array ${min}-${max} has ${count} tasks, not one per id: use a contiguous job array (e.g. 0-${count - 1}) or pass ${n('shard')} i/n`,
      );
    }
    return shardOf(
      num('SLURM_ARRAY_TASK_ID') - min,
      count,
      (n) => `${n('shard')} auto (SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT)`,
    );
  }
  throw optionError(
    (n) =>
      `${n('shard')} auto: found neither JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (a Slurm job array): pass ${n('shard')} i/n`,
  );
}

/**
 * The examples [from, to) of a chain of cells (one cell, or a cascade's attacks at one model and
 * eps) that worker `s` attacks: the chain's batches cut into `count` contiguous runs as even as
 * can be (sizes differ by at most one batch), worker i taking run (i + chain) mod count. The
 * rotation spreads the idle workers over the chains when a chain has fewer batches than workers.
 */
export function shardRange(
  examples: number,
  batchSize: number,
  s: Shard,
  chain: number,
): { from: number; to: number } {
  const batches = Math.ceil(examples / batchSize);
  const r = (s.index + chain) % s.count;
  const first = Math.floor((batches * r) / s.count);
  const last = Math.floor((batches * (r + 1)) / s.count);
  return { from: Math.min(examples, first * batchSize), to: Math.min(examples, last * batchSize) };
}
