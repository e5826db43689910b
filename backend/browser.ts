/**
 * Picks and starts the TensorFlow.js backend in a browser: webgpu → webgl → wasm → cpu, or the one
 * asked for, with the reason each one before it was passed over (the page shows them).
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { cpuCount } from '../util/platform.js';
import { RobustError } from '../util/errors.js';
import { registerGradients, registerWasmKernels } from './register.js';
import { startWasmKernelPool, type WasmHeapBackend } from './wasm/wasm-kernels.js';

export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackendName = (typeof BROWSER_BACKENDS)[number];

export interface BrowserBackendInfo {
  name: BrowserBackendName;
  /** tfjs's threads (XNNPACK's on wasm). */
  threads: number;
  /** On wasm, the threads our SIMD kernels run on (0: they do not run: no SIMD, or turned off). */
  kernelThreads?: number;
  /** The backends tried before it, each with why it was not used. */
  passed: { name: BrowserBackendName; reason: string }[];
  /** A GPU backend asked for by name that runs on a CPU emulation: the renderer or adapter. */
  emulated?: string;
}

export interface BrowserBackendOptions {
  backend?: BrowserBackendName | 'auto';
  /** Where tfjs-backend-wasm's .wasm files are served (a folder URL ending in '/'). */
  wasmPath?: string;
  /** XNNPACK threads on wasm when the page is cross-origin isolated (default: all cores; tfjs would take half). */
  threads?: number;
}

let current: BrowserBackendInfo | null = null;

/** The WebGL renderer's name when it is a CPU emulation (SwiftShader, llvmpipe), else null. */
function softwareWebgl(): string | null {
  try {
    const canvas =
      typeof OffscreenCanvas !== 'undefined'
        ? new OffscreenCanvas(1, 1)
        : globalThis.document?.createElement('canvas');
    const gl = (canvas?.getContext('webgl2') ?? canvas?.getContext('webgl')) as
      WebGLRenderingContext | null | undefined;
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    return /swiftshader|llvmpipe|softpipe|software/i.test(renderer) ? renderer : null;
  } catch {
    return null;
  }
}

/** The parts of WebGPU's adapter we read (the DOM typings here have no WebGPU). */
interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; isFallbackAdapter?: boolean };
}

type WebgpuHere = { missing: string } | { emulated: string | null };
let webgpuHere: Promise<WebgpuHere> | undefined;

/** WebGPU here: why there is no adapter, or the CPU emulation the adapter is (null: a GPU); asked once a page. */
const webgpuAdapter = (): Promise<WebgpuHere> => (webgpuHere ??= requestWebgpuAdapter());

async function requestWebgpuAdapter(): Promise<WebgpuHere> {
  const gpu = (
    globalThis.navigator as
      { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } } | undefined
  )?.gpu;
  if (!gpu) return { missing: 'this browser has no WebGPU (navigator.gpu)' };
  const adapter = await gpu.requestAdapter().catch(() => null);
  // headless Chromium on Linux without a GPU it supports (or the WebGPU switch) offers none
  if (!adapter)
    return { missing: 'no WebGPU adapter here (navigator.gpu.requestAdapter() gave none)' };
  const i = adapter.info ?? {};
  const name = [i.vendor, i.architecture, i.device].filter(Boolean).join(' ');
  const emulated =
    adapter.isFallbackAdapter ||
    i.isFallbackAdapter ||
    /swiftshader|llvmpipe|lavapipe|software/i.test(name);
  return { emulated: emulated ? name || 'a fallback adapter' : null };
}

/** Why WebGPU cannot run here (or, picking one itself, should not: an adapter emulated on the CPU), or null. */
async function webgpuUnfit(auto: boolean): Promise<string | null> {
  const a = await webgpuAdapter();
  if ('missing' in a) return a.missing;
  if (auto && a.emulated) return `WebGPU here is a CPU emulation (${a.emulated}), slower than wasm`;
  return null;
}

/** The CPU emulation a GPU backend runs on here (SwiftShader, llvmpipe, a fallback adapter), or null. */
async function emulation(name: BrowserBackendName): Promise<string | null> {
  if (name === 'webgl') return softwareWebgl();
  if (name !== 'webgpu') return null;
  const a = await webgpuAdapter();
  return 'emulated' in a ? a.emulated : null;
}

/** Why `name` cannot run here (or, picking one itself, should not), or null once it runs. */
async function start(
  name: BrowserBackendName,
  o: BrowserBackendOptions,
  auto: boolean,
): Promise<string | null> {
  if (name === 'webgpu') {
    const unfit = await webgpuUnfit(auto);
    if (unfit) return unfit;
  }
  // a GPU emulated on the CPU runs attacks far slower than wasm (0.6 against ~25 img/s measured here)
  const software = auto && name === 'webgl' ? softwareWebgl() : null;
  if (software) return `WebGL here is a CPU emulation (${software}), slower than wasm`;
  if (name === 'wasm') {
    registerWasmKernels();
    if (o.wasmPath) setWasmPaths(o.wasmPath);
    setThreadsCount(Math.max(1, Math.floor(o.threads ?? cpuCount())));
  }
  // tfjs's threaded wasm sizes its pthread pool (and XNNPACK's threads) as half the reported cores,
  // one thread on a 2-core machine: report twice the threads wanted while it starts, as in Node.
  const nav = globalThis.navigator as { hardwareConcurrency?: number } | undefined;
  const doubled = name === 'wasm' && nav !== undefined;
  if (doubled)
    Object.defineProperty(nav, 'hardwareConcurrency', {
      value: 2 * Math.max(1, Math.floor(o.threads ?? cpuCount())),
      configurable: true,
    });
  try {
    if (await tf.setBackend(name)) {
      await tf.ready();
      return null;
    }
    return 'it failed to start (no adapter or context)';
  } catch (e) {
    return `it failed to start (${String((e as Error).message ?? e).split('\n')[0]})`;
  } finally {
    if (doubled) delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency; // the prototype's getter again
  }
}

/** Starts the chosen backend (default: the fastest that starts) and returns what runs and why. */
export async function initBrowserBackend(
  o: BrowserBackendOptions = {},
): Promise<BrowserBackendInfo> {
  const choice = o.backend ?? 'auto';
  if (choice !== 'auto' && !(BROWSER_BACKENDS as readonly string[]).includes(choice)) {
    throw new RobustError(
      `unknown backend '${choice}': choose one of auto, ${BROWSER_BACKENDS.join(', ')}`,
    );
  }
  if (current) {
    if (choice === 'auto' || choice === current.name) return current;
    throw new RobustError(
      `backend ${current.name} is already running; reload the page to switch to ${choice}`,
    );
  }
  tf.enableProdMode();
  registerGradients();
  const passed: BrowserBackendInfo['passed'] = [];
  for (const name of choice === 'auto' ? BROWSER_BACKENDS : [choice]) {
    const why = await start(name, o, choice === 'auto');
    if (why === null) {
      current =
        name === 'wasm'
          ? {
              name,
              threads: getThreadsCount(),
              kernelThreads: await startWasmKernelPool(tf.backend() as unknown as WasmHeapBackend),
              passed,
            }
          : { name, threads: 1, passed };
      // asked for by name, it runs even on a CPU emulation: the line says so (picking, it is passed over)
      const emulated = choice === 'auto' ? null : await emulation(name);
      if (emulated) current.emulated = emulated;
      return current;
    }
    passed.push({ name, reason: why });
  }
  throw new RobustError(
    `no backend could start: ${passed.map((p) => `${p.name}: ${p.reason}`).join('; ')}`,
  );
}

const threads = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;

/** One line for the page: "backend wasm (2 threads, our kernels on 2); webgpu not used: …; webgl not used: …". */
export function describeBrowserBackend(info: BrowserBackendInfo): string {
  const passed = info.passed.map((p) => `${p.name} not used: ${p.reason}`);
  const kernels =
    info.kernelThreads === undefined
      ? ''
      : info.kernelThreads === 0
        ? ', our kernels off'
        : `, our kernels on ${info.kernelThreads}${info.kernelThreads === 1 && typeof crossOriginIsolated !== 'undefined' && !crossOriginIsolated ? ' (the page is not cross-origin isolated)' : ''}`;
  const emulated = info.emulated
    ? `; a CPU emulation (${info.emulated}): expect it slower than wasm`
    : '';
  return [`backend ${info.name} (${threads(info.threads)}${kernels}${emulated})`, ...passed].join(
    '; ',
  );
}
