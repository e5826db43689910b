/**
 * What the core needs from its host, Node side: hashing, base64, yielding to the event loop,
 * environment switches, core count, PNG encoding and decoding, the JPEG decoder's wasm, progress
 * lines and kernel threads. The browser
 * bundle swaps this module for util/platform-browser.ts (same exports, checked by
 * test/browser/platform.test.ts), so nothing the core imports pulls in a `node:` module there.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { PNG } from 'pngjs';
import { cgroupCpuLimit, usableCpus } from './cpu-quota.js';
export { TaskProgress } from './task-progress.js';

export const PLATFORM: 'node' | 'browser' = 'node';

/** Hex SHA-256 over `parts` in order (strings as UTF-8). */
export function sha256Hex(...parts: (string | Uint8Array)[]): string {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export const toBase64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
export const fromBase64 = (s: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(Buffer.from(s, 'base64'));

/** Lets pending events run (a Ctrl-C handler, progress) between steps of a long computation. */
export const yieldToEventLoop = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/** An environment switch such as ROBUST_WINOGRAD (none in a browser). */
export const envVar = (name: string): string | undefined => process.env[name];

/** Cores the CPU affinity allows, quota or not: what libtensorflow sizes its thread pool by. */
export const affinityCores = (): number => os.availableParallelism();

let cpus: number | undefined;

/**
 * Cores this process may use: those its CPU affinity allows (os.availableParallelism), capped by a
 * cgroup CPU quota (util/cpu-quota.ts), which Node does not see. Read once.
 */
export function cpuCount(): number {
  cpus ??= usableCpus(
    affinityCores(),
    cgroupCpuLimit((path) => {
      try {
        return fs.readFileSync(path, 'utf8');
      } catch {
        return null;
      }
    }),
  );
  return cpus;
}

/**
 * Lets V8 compile wasm relaxed SIMD where it is still behind a flag (Node 20, V8 11.3); true once
 * set. Takes effect for modules compiled after it (backend/wasm/relaxed-simd.ts).
 */
export function enableWasmRelaxedSimd(): boolean {
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    return true;
  } catch {
    return false;
  }
}

/** PNG file bytes of an RGBA image. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  const png = new PNG({ width, height });
  png.data.set(rgba);
  return PNG.sync.write(png);
}

/** A PNG file as pngjs reads it: RGBA, 8 bits per sample (palette, 1–16-bit expanded); its colour type. */
export interface PngPixels {
  width: number;
  height: number;
  colorType: number;
  data: Uint8Array;
}

/** Decodes a PNG with pngjs (throws pngjs's own errors on damaged files). */
export function readPng(bytes: Uint8Array): PngPixels {
  return PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** The wasm of MozJPEG's decoder (@jsquash/jpeg), compiled: from the package's file in Node. */
export async function mozjpegWasm(): Promise<WebAssembly.Module> {
  const file = createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
  return WebAssembly.compile(fs.readFileSync(file));
}

/** A thread running a script body that reads `workerData`; it does not keep the process alive. */
export interface KernelThread {
  terminate(): unknown;
  /** Settles once the thread runs the body (a worker_thread starts on its own: at once). */
  ready: Promise<void>;
  /** Whether a job handed to it now is taken without the caller yielding first. */
  started(): boolean;
}

/** Whether our wasm kernels can run on threads of their own here (startKernelThread). */
export const KERNEL_THREADS = true;

/** Runs `body` (CommonJS, evaluated) on a worker thread with `data` as `workerData`. */
export function startKernelThread(body: string, data: object): KernelThread {
  const worker = new Worker(`const { workerData } = require('node:worker_threads');\n${body}`, {
    eval: true,
    workerData: data,
  });
  worker.unref(); // an idle pool must not keep the process alive
  return { terminate: () => worker.terminate(), ready: Promise.resolve(), started: () => true };
}
