/**
 * Multi-threaded XNNPACK for tfjs-backend-wasm under Node.
 *
 * Stock tfjs runs wasm single-threaded in Node for three reasons, each handled here:
 *  1. the WASM_HAS_MULTITHREAD_SUPPORT flag is hard-wired to false under Node (tfjs issue #3830);
 *  2. pthread workers are started from blob: URLs, which Node's worker_threads refuses — we write
 *     the worker script to a real file and point the worker at the emscripten factory on disk;
 *  3. the C++ side sizes its thread pool as logical cores ÷ 2 — we report twice the wanted count
 *     while the module starts.
 * And one more: XNNPACK's pool threads run for the life of the module, and emscripten keeps a
 * running pthread's worker referenced, so a script that used the backend never exited. We unref
 * them once the pool is up (idle workers emscripten already unrefs itself).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import tf from '#tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);

// The worker loads the main script from a Blob it cannot read in Node; we load the file instead.
const BLOB_IMPORT =
  'var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)';

/** Writes the pthread worker script for Node once (content-addressed) and returns its path. */
function writeNodeWorkerScript(): string | null {
  const { wasmWorkerContents } =
    require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
      wasmWorkerContents: string;
    };
  const factoryPath =
    require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  if (!wasmWorkerContents.includes(BLOB_IMPORT)) return null; // a tfjs version we do not know
  // The exported string has its newlines unescaped; escape them as tfjs does before making a Blob.
  const script = wasmWorkerContents
    .replace(/\n/g, '\\n')
    .replace(BLOB_IMPORT, `importScripts(${JSON.stringify(factoryPath)})`);
  const hash = crypto.createHash('sha256').update(script).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `robust-wasm-worker-${hash}.cjs`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, script);
    fs.renameSync(tmp, file);
  }
  return file;
}

/** The part of emscripten's pthread registry we touch. */
interface EmscriptenThreads {
  PThread?: { runningWorkers: { unref(): void }[] };
}

/** Lets the process exit while XNNPACK's pool threads wait for work (they hold no pending job). */
function unrefPoolThreads(): void {
  const module = (tf.backend() as unknown as { wasm: EmscriptenThreads }).wasm;
  for (const worker of module.PThread?.runningWorkers ?? []) worker.unref();
}

/**
 * Starts the wasm backend with `threads` XNNPACK threads. Returns the thread count in effect
 * (1 when threads could not be enabled, with the reason in `warning`).
 */
export async function startWasm(threads: number): Promise<{ threads: number; warning?: string }> {
  if (threads <= 1) {
    await tf.setBackend('wasm');
    return { threads: wasm.getThreadsCount() };
  }
  const workerFile = writeNodeWorkerScript();
  if (workerFile === null) {
    await tf.setBackend('wasm');
    return {
      threads: 1,
      warning: 'unknown tfjs-backend-wasm worker layout: running single-threaded',
    };
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  URL.createObjectURL = (obj: Blob) =>
    obj instanceof Blob && obj.type === 'application/javascript'
      ? workerFile
      : createObjectURL(obj);
  os.cpus = () => {
    const list = cpus();
    return Array.from({ length: 2 * threads }, (_, i) => list[i % list.length]);
  };
  try {
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new Error('the wasm backend failed to start');
  } finally {
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
  }
  unrefPoolThreads();
  return { threads: wasm.getThreadsCount() };
}
