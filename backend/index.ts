/**
 * Picks and starts the TensorFlow.js backend: tfjs-node-gpu → tfjs-node → wasm → cpu, or the one
 * the user names. The native packages are optional dependencies (their install downloads
 * libtensorflow), so each is tried and skipped when it is not installed.
 */
import { createRequire } from 'node:module';
import tf from '#tfjs';
import { RobustError } from '../util/errors.js';
import { affinityCores, cpuCount } from '../util/platform.js';
import { checkCount, LIMITS } from '../util/limits.js';
import { startWasm } from './wasm/wasm-threads.js';
import { registerGradients, registerWasmKernels } from './register.js';
import { kernelEnvProblem } from './wasm/wasm-kernels.js';
import { computeVariant } from './variant.js';

const require = createRequire(import.meta.url);

export const BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
type BackendChoice = BackendName | 'auto';

export interface BackendInfo {
  /** The toolkit's name for it: node-gpu, node, wasm or cpu. */
  name: BackendName;
  /** The name tfjs gives the backend ('tensorflow', 'wasm', 'cpu'). */
  tfName: string;
  threads: number;
  warning?: string;
}

export interface BackendOptions {
  backend?: BackendChoice | string;
  /** XNNPACK threads on wasm; default: all cores. */
  threads?: number;
}

let current: BackendInfo | null = null;

function tryNative(pkg: string): boolean {
  try {
    require(pkg);
    return true;
  } catch {
    return false;
  }
}

async function start(name: BackendName, threads: number): Promise<BackendInfo | null> {
  switch (name) {
    case 'node-gpu':
    case 'node': {
      if (!tryNative(name === 'node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node'))
        return null;
      if (!(await tf.setBackend('tensorflow'))) return null;
      return { name, tfName: 'tensorflow', threads: affinityCores() };
    }
    case 'wasm': {
      registerWasmKernels();
      const r = await startWasm(threads);
      return { name, tfName: 'wasm', threads: r.threads, warning: r.warning };
    }
    case 'cpu': {
      await tf.setBackend('cpu');
      return { name, tfName: 'cpu', threads: 1 };
    }
  }
}

/** Starts the chosen backend (default: the fastest one installed) and returns what runs. */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const choice = options.backend ?? 'auto';
  const envProblem = kernelEnvProblem();
  if (envProblem) throw new RobustError(envProblem);
  if (options.threads !== undefined) checkCount('threads', options.threads, LIMITS.threads);
  if (choice !== 'auto' && !(BACKENDS as readonly string[]).includes(choice)) {
    throw new RobustError(
      `unknown backend '${choice}': choose one of auto, ${BACKENDS.join(', ')}`,
    );
  }
  if (current) {
    if (choice === 'auto' || choice === current.name) return current;
    throw new RobustError(
      `backend ${current.name} is already running; cannot switch to ${choice} in one process`,
    );
  }
  tf.enableProdMode(); // no per-op debug checks, no console nags
  registerGradients();
  const threads = Math.max(1, Math.floor(options.threads ?? cpuCount()));
  const order: BackendName[] = choice === 'auto' ? [...BACKENDS] : [choice as BackendName];
  for (const name of order) {
    const info = await start(name, threads);
    if (info) {
      current = info;
      return info;
    }
  }
  const pkg = choice === 'node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  throw new RobustError(
    `backend ${choice} is not available: install ${pkg} (it needs internet access at install time)`,
  );
}

/**
 * One line for logs: "backend wasm (robust kernels, Winograd F(4x4,3x3)) on 2 threads". The threads
 * are shown but are no part of the compute variant: they change no number (variant.ts).
 */
export function describeBackend(info: BackendInfo): string {
  const threads =
    info.tfName === 'wasm' ? ` on ${info.threads} thread${info.threads === 1 ? '' : 's'}` : '';
  return `backend ${info.name} (${computeVariant()})${threads}${info.warning ? ` — ${info.warning}` : ''}`;
}
