/**
 * Runs our own wasm SIMD kernels (backend/kernels/*.c) on tfjs's wasm heap, split across threads.
 *
 * The kernel module imports tfjs's WebAssembly.Memory, so it reads and writes tensors in place by
 * their heap offsets. With tfjs's threaded build that memory is shared: worker threads instantiate
 * the same module on it and wait on an Atomics word for jobs, so a call costs a notify and a wait,
 * not a message. The calling thread takes the first share itself. tfjs's own XNNPACK threads are
 * idle while one of our kernels runs (tfjs kernels run one at a time), so nothing is oversubscribed.
 */
import { Worker } from 'node:worker_threads';

/** Arguments to one exported kernel function: i32s (heap offsets and sizes). */
export type KernelArgs = number[];

const MAX_ARGS = 30;
const SLOT = MAX_ARGS + 2; // [count, args...]
// Control words: generation, pending workers, function index, error flag; then one slot per thread.
const GENERATION = 0;
const PENDING = 1;
const FUNCTION = 2;
const FAILED = 3;
const HEADER = 4;

// Worker body (CommonJS, evaluated): instantiate on the shared memory, then serve jobs until told to stop.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, index, names } = workerData;
const exports_ = new WebAssembly.Instance(module, { env: { memory } }).exports;
const ctl = new Int32Array(control);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, ${GENERATION}, seen);
  seen = Atomics.load(ctl, ${GENERATION});
  const fn = Atomics.load(ctl, ${FUNCTION});
  if (fn < 0) break;
  const base = ${HEADER} + index * ${SLOT};
  const count = ctl[base];
  const args = [];
  for (let i = 0; i < count; i++) args.push(ctl[base + 1 + i]);
  try { if (count > 0) exports_[names[fn]](...args); } catch (e) { Atomics.store(ctl, ${FAILED}, 1); }
  if (Atomics.sub(ctl, ${PENDING}, 1) === 1) Atomics.notify(ctl, ${PENDING});
}
`;

export class WasmKernelPool {
  readonly threads: number;
  private readonly exports: Record<string, (...args: number[]) => void>;
  private readonly names: string[];
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  private disposed = false;

  /**
   * @param plain the module built for a plain (non-shared) memory
   * @param shared the module built for a shared memory (threads need it)
   */
  constructor(memory: WebAssembly.Memory, plain: Uint8Array<ArrayBuffer>, shared: Uint8Array<ArrayBuffer>, threads: number) {
    const isShared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(isShared ? shared : plain);
    this.exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Record<string, (...args: number[]) => void>;
    this.names = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
    this.threads = isShared ? Math.max(1, Math.floor(threads)) : 1;
    this.control = new Int32Array(new SharedArrayBuffer(4 * (HEADER + this.threads * SLOT)));
    for (let index = 1; index < this.threads; index++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module, memory, control: this.control.buffer, index, names: this.names },
      });
      worker.unref(); // an idle pool must not keep the process alive
      this.workers.push(worker);
    }
  }

  /**
   * Calls `name` once per entry of `shares` (entry i on thread i; the calling thread runs entry 0)
   * and returns when all are done. At most `threads` shares.
   */
  run(name: string, shares: KernelArgs[]): void {
    if (this.disposed) throw new Error('wasm kernel pool is disposed');
    const fn = this.names.indexOf(name);
    if (fn < 0) throw new Error(`wasm kernel ${name} is not exported`);
    if (shares.length > this.threads) throw new Error(`${shares.length} shares for ${this.threads} threads`);
    const ctl = this.control;
    const others = this.workers.length;
    if (others > 0 && shares.length > 1) {
      for (let t = 1; t <= others; t++) {
        const args = shares[t] ?? [];
        if (args.length > MAX_ARGS) throw new Error(`wasm kernel ${name}: more than ${MAX_ARGS} arguments`);
        const base = HEADER + t * SLOT;
        ctl[base] = args.length;
        for (let i = 0; i < args.length; i++) ctl[base + 1 + i] = args[i];
      }
      Atomics.store(ctl, FUNCTION, fn);
      Atomics.store(ctl, FAILED, 0);
      Atomics.store(ctl, PENDING, others);
      Atomics.add(ctl, GENERATION, 1);
      Atomics.notify(ctl, GENERATION);
      try {
        this.exports[name](...shares[0]);
      } finally {
        for (let p = Atomics.load(ctl, PENDING); p !== 0; p = Atomics.load(ctl, PENDING)) Atomics.wait(ctl, PENDING, p);
      }
      if (Atomics.load(ctl, FAILED)) throw new Error(`wasm kernel ${name} failed in a worker thread`);
      return;
    }
    for (const args of shares) this.exports[name](...args);
  }

  /** Stops the worker threads. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.control, FUNCTION, -1);
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
  }
}
