/**
 * The browser side of util/platform.ts (see there): Web APIs and small pure-JS libraries only.
 * The browser bundle (scripts/build-browser.ts) puts this module in place of util/platform.ts.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { encode } from 'fast-png';
import { RobustError } from './errors.js';
// pngjs's own browser build (browserify: its Buffer and zlib polyfills inside): the decoder Node uses
import pngjs from 'pngjs/browser.js';

export const PLATFORM: 'node' | 'browser' = 'browser';

const utf8 = new TextEncoder();

// Node's crypto hashes synchronously, and the core's callers rely on that; SubtleCrypto is async only.
export function sha256Hex(...parts: (string | Uint8Array)[]): string {
  const h = sha256.create();
  for (const p of parts) h.update(typeof p === 'string' ? utf8.encode(p) : p);
  return Array.from(h.digest(), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  // chunks keep String.fromCharCode's argument count far below engines' limits
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// A message round trip, not setTimeout: nested timeouts are clamped to 4 ms, once per attack step.
const channel = typeof MessageChannel === 'undefined' ? null : new MessageChannel();
const waiting: (() => void)[] = [];
if (channel) channel.port1.onmessage = () => waiting.shift()?.();

export const yieldToEventLoop = (): Promise<void> =>
  new Promise<void>((r) => {
    if (!channel) return void setTimeout(r, 0);
    waiting.push(r);
    channel.port2.postMessage(0);
  });

export const envVar = (_name: string): string | undefined => undefined;

export const cpuCount = (): number => Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
export const affinityCores = cpuCount;

/** A page's engine runs wasm relaxed SIMD as shipped (Chrome ≥ 114) or not at all: no flag to set. */
export const enableWasmRelaxedSimd = (): boolean => false;

export function encodePng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  return encode({ width, height, data: rgba, channels: 4, depth: 8 });
}

export interface PngPixels {
  width: number;
  height: number;
  colorType: number;
  data: Uint8Array;
}

// pngjs's parser calls Buffer methods on its input: the Buffer class of its own bundle, taken from a PNG it makes
const PngBuffer = new pngjs.PNG({ width: 1, height: 1 }).data.constructor as unknown as {
  from(bytes: Uint8Array): Uint8Array;
};

export function readPng(bytes: Uint8Array): PngPixels {
  return pngjs.PNG.sync.read(PngBuffer.from(bytes) as never) as unknown as PngPixels;
}

/** The decoder's wasm sits beside the bundle (scripts/build-browser.ts copies it there). */
export async function mozjpegWasm(): Promise<WebAssembly.Module> {
  const url = new URL('mozjpeg_dec.wasm', import.meta.url);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new RobustError(`${url.href}: cannot fetch the JPEG decoder (${(e as Error).message})`);
  }
  if (!res.ok)
    throw new RobustError(`${url.href}: the JPEG decoder is missing (HTTP ${res.status})`);
  return WebAssembly.compile(await res.arrayBuffer());
}

export interface KernelThread {
  terminate(): unknown;
  /** Settles once the worker runs the body: it starts only when its creator's thread yields. */
  ready: Promise<void>;
  /** Whether it said it runs (a job handed to it before then would be waited on for good). */
  started(): boolean;
}

/** Our kernels' threads are Web Workers on tfjs's shared heap (a shared heap needs cross-origin isolation). */
export const KERNEL_THREADS = typeof Worker !== 'undefined';

/**
 * Runs `body` in a Web Worker with `data` (structured-cloned: the wasm module, the shared memory)
 * as `workerData`. The worker says it is ready before it runs the body, which may block for good
 * (Atomics.wait); until then, a caller blocking on it would wait forever, so await `ready` first.
 */
export function startKernelThread(body: string, data: object): KernelThread {
  const source = `self.onmessage = (e) => {
  self.onmessage = null;
  const workerData = e.data;
  self.postMessage('ready');
  ${body}
  self.close(); // the pool was disposed
};`;
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  const worker = new Worker(url);
  let started = false;
  const ready = new Promise<void>((resolve, reject) => {
    worker.onmessage = () => {
      started = true;
      resolve();
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`a kernel thread failed to start (${e.message})`));
    };
  }).finally(() => URL.revokeObjectURL(url));
  worker.postMessage(data);
  return { terminate: () => worker.terminate(), ready, started: () => started };
}

/** Progress in the page comes from run callbacks (onBatch, onProgress, onCell); nothing is printed. */
export class TaskProgress {
  constructor(_label: string, _total: number, _quiet = false, _resumedAt = 0) {}
  readonly shown = false;
  update(_done: number, _info: string): void {}
  inner(_done: number, _where: string): void {}
  stop(): void {}
}
