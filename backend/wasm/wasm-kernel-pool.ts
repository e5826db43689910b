/**
 * Runs our own wasm SIMD kernels (backend/kernels/*.c) on tfjs's wasm heap, split across threads.
 *
 * The kernel module imports tfjs's WebAssembly.Memory, so it reads and writes tensors in place by
 * their heap offsets. With tfjs's threaded build that memory is shared: worker threads instantiate
 * the same module on it and wait on an Atomics word for jobs, so a call costs a notify and a wait,
 * not a message. The calling thread takes the first share itself. tfjs's own XNNPACK threads are
 * idle while one of our kernels runs (tfjs kernels run one at a time), so nothing is oversubscribed.
 */
import { KERNEL_THREADS, startKernelThread, type KernelThread } from '../../util/platform.js';

/** Arguments to one exported kernel function: i32s (heap offsets and sizes). */
type KernelArgs = number[];

const MAX_ARGS = 30;
const SLOT = MAX_ARGS + 2; // [count, args...]
// Control words, then (row jobs) the shared arguments and one target per thread, then (plain jobs)
// one argument slot per thread.
const GENERATION = 0;
const PENDING = 1;
const FUNCTION = 2;
const FAILED = 3;
// 0: one call per thread with its own arguments; 1: rows handed out in chunks; 2: chunks of a sum,
// each written to its own slot
const MODE = 4;
const NEXT = 5; // next chunk to take
const ROWS = 6;
const CHUNK = 7;
const ARGC = 8;
// mode 2: slot of the job's first chunk, bytes between slots, first chunk, chunks, threads taking
// part, whether each passes its own scratch (TARGETS + t) after the slot
const BASE = 9;
const STRIDE = 10;
const FIRST = 11;
const COUNT = 12;
const USED = 13;
const SCRATCH = 14;
const ARGS = 15;
const TARGETS = ARGS + MAX_ARGS;

// Worker body (reads workerData; see startKernelThread): instantiate on the shared memory, then serve jobs until told to
// stop. Row jobs call fn(target, ...args, r0, r1) for chunks taken from a shared counter, so a
// thread that starts late (its core busy a moment longer) takes fewer chunks instead of holding
// everyone up.
const workerSource = (threads: number) => `
const { module, memory, control, index, names } = workerData;
const exports_ = new WebAssembly.Instance(module, { env: { memory } }).exports;
const ctl = new Int32Array(control);
const SLOTS = ${TARGETS} + ${threads};
let seen = 0;
for (;;) {
  // Wait for a new generation, not just a wake-up: a notify can arrive late (the caller paused
  // between publishing job N and notifying), after this thread already ran job N. Taken as a new
  // job, it ran N twice and counted PENDING down twice, which hung the next call (or let it return
  // before this thread had finished).
  while (Atomics.load(ctl, ${GENERATION}) === seen) Atomics.wait(ctl, ${GENERATION}, seen);
  seen = Atomics.load(ctl, ${GENERATION});
  const fn = Atomics.load(ctl, ${FUNCTION});
  if (fn < 0) break;
  try {
    if (ctl[${MODE}] === 1) {
      const target = ctl[${TARGETS} + index];
      if (target !== 0) {
        const args = [target];
        for (let i = 0; i < ctl[${ARGC}]; i++) args.push(ctl[${ARGS} + i]);
        const rows = ctl[${ROWS}], chunk = ctl[${CHUNK}];
        for (let r0 = Atomics.add(ctl, ${NEXT}, 1) * chunk; r0 < rows; r0 = Atomics.add(ctl, ${NEXT}, 1) * chunk) {
          exports_[names[fn]](...args, r0, Math.min(rows, r0 + chunk));
        }
      }
    } else if (ctl[${MODE}] === 2) {
      if (index < ctl[${USED}]) {
        const pre = ctl[${SCRATCH}] ? [ctl[${TARGETS} + index]] : [];
        const args = [];
        for (let i = 0; i < ctl[${ARGC}]; i++) args.push(ctl[${ARGS} + i]);
        const rows = ctl[${ROWS}], chunk = ctl[${CHUNK}], first = ctl[${FIRST}], count = ctl[${COUNT}];
        const base = ctl[${BASE}], stride = ctl[${STRIDE}];
        for (let k = Atomics.add(ctl, ${NEXT}, 1); k < count; k = Atomics.add(ctl, ${NEXT}, 1)) {
          const r0 = (first + k) * chunk;
          exports_[names[fn]](base + k * stride, ...pre, ...args, r0, Math.min(rows, r0 + chunk));
        }
      }
    } else {
      const base = SLOTS + index * ${SLOT};
      const count = ctl[base];
      const args = [];
      for (let i = 0; i < count; i++) args.push(ctl[base + 1 + i]);
      if (count > 0) exports_[names[fn]](...args);
    }
  } catch (e) { Atomics.store(ctl, ${FAILED}, 1); }
  if (Atomics.sub(ctl, ${PENDING}, 1) === 1) Atomics.notify(ctl, ${PENDING});
}
`;

export class WasmKernelPool {
  readonly threads: number;
  private readonly exports: Record<string, (...args: number[]) => void>;
  private readonly names: string[];
  private readonly control: Int32Array;
  private readonly workers: KernelThread[] = [];
  private disposed = false;

  /**
   * @param plain the module built for a plain (non-shared) memory
   * @param shared the module built for a shared memory (threads need it)
   * @param startThread starts a worker thread (tests pass one that never starts)
   */
  constructor(
    memory: WebAssembly.Memory,
    plain: Uint8Array<ArrayBuffer>,
    shared: Uint8Array<ArrayBuffer>,
    threads: number,
    startThread: typeof startKernelThread = startKernelThread,
  ) {
    const isShared =
      typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(isShared ? shared : plain);
    this.exports = new WebAssembly.Instance(module, { env: { memory } })
      .exports as unknown as Record<string, (...args: number[]) => void>;
    this.names = WebAssembly.Module.exports(module)
      .filter((e) => e.kind === 'function')
      .map((e) => e.name);
    this.threads = isShared && KERNEL_THREADS ? Math.max(1, Math.floor(threads)) : 1;
    const words = 4 * (TARGETS + this.threads + this.threads * SLOT);
    // one thread needs no shared control block (a page that is not cross-origin isolated has no SharedArrayBuffer)
    this.control = new Int32Array(
      this.threads > 1 ? new SharedArrayBuffer(words) : new ArrayBuffer(words),
    );
    for (let index = 1; index < this.threads; index++) {
      this.workers.push(
        startThread(workerSource(this.threads), {
          module,
          memory,
          control: this.control.buffer,
          index,
          names: this.names,
        }),
      );
    }
  }

  /**
   * Calls `name` once per entry of `shares` (entry i on thread i; the calling thread runs entry 0)
   * and returns when all are done. At most `threads` shares.
   */
  run(name: string, shares: KernelArgs[]): void {
    const fn = this.check(name, shares.length);
    const ctl = this.control;
    if (this.workers.length > 0 && shares.length > 1) {
      const slots = TARGETS + this.threads;
      for (let t = 1; t <= this.workers.length; t++) {
        const args = shares[t] ?? [];
        if (args.length > MAX_ARGS)
          throw new Error(`wasm kernel ${name}: more than ${MAX_ARGS} arguments`);
        const base = slots + t * SLOT;
        ctl[base] = args.length;
        for (let i = 0; i < args.length; i++) ctl[base + 1 + i] = args[i];
      }
      ctl[MODE] = 0;
      this.dispatch(name, fn, () => this.exports[name](...shares[0]));
      return;
    }
    for (const args of shares) this.exports[name](...args);
  }

  /**
   * Calls `name(target, ...args, r0, r1)` over rows [0, rows) in chunks of `chunk` rows, which the
   * threads take in turn from a shared counter; thread t writes to `targets[t]` (one per thread
   * used, at most `threads`; all equal unless the kernel accumulates per thread).
   */
  runRows(name: string, targets: number[], args: KernelArgs, rows: number, chunk: number): void {
    const fn = this.check(name, targets.length);
    if (args.length > MAX_ARGS)
      throw new Error(`wasm kernel ${name}: more than ${MAX_ARGS} arguments`);
    const step = Math.max(1, Math.floor(chunk));
    const ctl = this.control;
    const rowsFrom = (take: () => number, target: number) => {
      for (let r0 = take() * step; r0 < rows; r0 = take() * step)
        this.exports[name](target, ...args, r0, Math.min(rows, r0 + step));
    };
    if (this.workers.length > 0 && targets.length > 1) {
      ctl[MODE] = 1;
      ctl[NEXT] = 0;
      ctl[ROWS] = rows;
      ctl[CHUNK] = step;
      ctl[ARGC] = args.length;
      for (let i = 0; i < args.length; i++) ctl[ARGS + i] = args[i];
      // A zero target tells a worker to sit this job out (wasm offset 0 is never a tensor).
      for (let t = 1; t < this.threads; t++) ctl[TARGETS + t] = targets[t] ?? 0;
      this.dispatch(name, fn, () => rowsFrom(() => Atomics.add(ctl, NEXT, 1), targets[0]));
      return;
    }
    let next = 0;
    rowsFrom(() => next++, targets[0]);
  }

  /**
   * One pass of a sum over rows [0, rows) cut into chunks of `chunk` rows: calls
   * `name(slot, [scratch,] ...args, r0, r1)` for chunks first … first + count − 1, chunk
   * first + k writing to slot `slots + k·stride` (bytes), which `threads` threads take in turn.
   * Which thread ran a chunk changes nothing in its slot, so adding the slots in chunk order gives
   * the same sum for any thread count. `scratch`: one buffer per thread, passed after the slot.
   */
  runChunks(
    name: string,
    job: { slots: number; stride: number; scratch?: number[]; threads: number },
    args: KernelArgs,
    rows: number,
    chunk: number,
    first: number,
    count: number,
  ): void {
    const used = Math.max(1, Math.min(job.threads, count));
    const fn = this.check(name, used);
    if (args.length > MAX_ARGS)
      throw new Error(`wasm kernel ${name}: more than ${MAX_ARGS} arguments`);
    if (job.scratch && job.scratch.length < used)
      throw new Error(
        `wasm kernel ${name}: ${job.scratch.length} scratch buffers for ${used} threads`,
      );
    const step = Math.max(1, Math.floor(chunk));
    const ctl = this.control;
    const chunksFrom = (take: () => number, scratch: number[]) => {
      for (let k = take(); k < count; k = take()) {
        const r0 = (first + k) * step;
        this.exports[name](
          job.slots + k * job.stride,
          ...scratch,
          ...args,
          r0,
          Math.min(rows, r0 + step),
        );
      }
    };
    const own = job.scratch ? [job.scratch[0]] : [];
    if (this.workers.length > 0 && used > 1) {
      ctl[MODE] = 2;
      ctl[NEXT] = 0;
      ctl[ROWS] = rows;
      ctl[CHUNK] = step;
      ctl[BASE] = job.slots;
      ctl[STRIDE] = job.stride;
      ctl[FIRST] = first;
      ctl[COUNT] = count;
      ctl[USED] = used;
      ctl[SCRATCH] = job.scratch ? 1 : 0;
      for (let t = 1; t < used; t++) ctl[TARGETS + t] = job.scratch?.[t] ?? 0;
      ctl[ARGC] = args.length;
      for (let i = 0; i < args.length; i++) ctl[ARGS + i] = args[i];
      this.dispatch(name, fn, () => chunksFrom(() => Atomics.add(ctl, NEXT, 1), own));
      return;
    }
    let next = 0;
    chunksFrom(() => next++, own);
  }

  private check(name: string, shares: number): number {
    if (this.disposed) throw new Error('wasm kernel pool is disposed');
    const fn = this.names.indexOf(name);
    if (fn < 0) throw new Error(`wasm kernel ${name} is not exported`);
    if (shares > this.threads) throw new Error(`${shares} shares for ${this.threads} threads`);
    return fn;
  }

  /** Wakes the workers for the job set up in the control block, runs `own` here, waits for all. */
  private dispatch(name: string, fn: number, own: () => void): void {
    // A Web Worker starts only once its creator yields: a job handed to one that has not started
    // (the pool not awaited with ready()) would be waited on for good, so it is refused instead.
    const idle = this.workers.filter((w) => !w.started()).length;
    if (idle > 0)
      throw new Error(
        `wasm kernel ${name} called before ${idle} of the pool's ${this.workers.length} worker threads started (await startWasmKernelPool first)`,
      );
    const ctl = this.control;
    Atomics.store(ctl, FUNCTION, fn);
    Atomics.store(ctl, FAILED, 0);
    Atomics.store(ctl, PENDING, this.workers.length);
    Atomics.add(ctl, GENERATION, 1);
    Atomics.notify(ctl, GENERATION);
    try {
      own();
    } finally {
      for (let p = Atomics.load(ctl, PENDING); p !== 0; p = Atomics.load(ctl, PENDING))
        Atomics.wait(ctl, PENDING, p);
    }
    if (Atomics.load(ctl, FAILED)) throw new Error(`wasm kernel ${name} failed in a worker thread`);
  }

  /** Settles when every thread runs (in a browser they start only once the caller yields). */
  async ready(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ready));
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
