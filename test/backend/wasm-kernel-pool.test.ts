/** The thread pool that runs our wasm kernels on a shared memory: results, errors, shutdown. */
import { describe, expect, it } from 'vitest';
import { WasmKernelPool } from '../../backend/wasm/wasm-kernel-pool.js';
import { plainWasm, sharedWasm } from '../../backend/wasm/kernels/kernels.wasm.js';
import { startKernelThread } from '../../util/platform.js';

const decode = (b64: string) => Uint8Array.from(Buffer.from(b64, 'base64'));
const PAGE = 65536;

function sharedPool(threads: number) {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 64, shared: true });
  return {
    memory,
    pool: new WasmKernelPool(memory, decode(plainWasm), decode(sharedWasm), threads),
  };
}

describe('wasm kernel pool', () => {
  it('runs each share on its own thread, all finished when run returns', () => {
    const { memory, pool } = sharedPool(2);
    try {
      expect(pool.threads).toBe(2);
      const f = new Float32Array(memory.buffer);
      const n = 1000;
      for (let round = 0; round < 50; round++) {
        f.fill(round + 1, 0, 5 * n);
        // Thread 0 zeroes the first block, thread 1 the second; then sum blocks 2..3 into 0..1.
        pool.run('zero', [
          [0, n],
          [4 * n, n],
        ]);
        expect(f.subarray(0, 2 * n).every((v) => v === 0)).toBe(true);
        expect(f[2 * n]).toBe(round + 1);
        pool.run('add_into', [
          [0, 8 * n, 2 * n],
          [16 * n, 8 * n, n],
        ]);
        expect(f.subarray(0, 2 * n).every((v) => v === round + 1)).toBe(true);
        expect(f.subarray(4 * n, 5 * n).every((v) => v === 2 * (round + 1))).toBe(true);
      }
    } finally {
      pool.dispose();
    }
  });

  it('a late wake-up of a worker does not run the last job again', () => {
    // A notify that arrives after the worker already ran its job (the caller paused between
    // publishing the job and notifying) once made it run the job twice and count PENDING down
    // twice: the next call hung. Here the stray notify is sent by hand.
    const { memory, pool } = sharedPool(2);
    try {
      const control = (pool as unknown as { control: Int32Array }).control;
      const f = new Float32Array(memory.buffer);
      const n = 1000;
      const sleep = (ms: number) =>
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      for (let round = 0; round < 20; round++) {
        f.fill(1, 0, 4 * n);
        pool.run('add_into', [
          [0, 8 * n, n],
          [4 * n, 12 * n, n],
        ]); // blocks 0 and 1 += blocks 2 and 3
        Atomics.notify(control, 0); // the stray wake-up of the generation word
        sleep(5);
        expect(Atomics.load(control, 1), 'pending jobs').toBe(0);
        expect(f.subarray(0, 2 * n).every((v) => v === 2)).toBe(true); // each block added once
      }
      pool.run('zero', [
        [0, n],
        [4 * n, n],
      ]); // and the pool still works
      expect(f.subarray(0, 2 * n).every((v) => v === 0)).toBe(true);
    } finally {
      pool.dispose();
    }
  });

  it('hands out rows in chunks so that every row is done exactly once, however threads interleave', () => {
    // sum_chunks adds into its output by blocks of 1024 floats (its rows): a block done twice, or
    // not at all, shows.
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 64, shared: true });
    const pool = new WasmKernelPool(memory, decode(plainWasm), decode(sharedWasm), 2);
    try {
      const size = 101 * 1024 - 5;
      const f = new Float32Array(memory.buffer);
      for (const chunk of [1, 7, 64, 5000]) {
        f.fill(1, 0, size); // out
        f.fill(2, size, 2 * size); // one slot
        pool.runRows('sum_chunks', [0, 0], [4 * size, size, 1, size, 0], 101, chunk);
        expect(f.subarray(0, size).every((v) => v === 3)).toBe(true);
        expect(f[size - 1], `chunk ${chunk}`).toBe(3);
      }
    } finally {
      pool.dispose();
    }
  });

  it('writes each chunk of a sum to its own slot, whichever thread took it (1, 2 or 3 threads)', () => {
    const C = 4;
    const rows = 1001;
    const layout = (f: Float32Array) => {
      // u [rows][C] = row index, w = 1, shifts 0; per-chunk float64 sums after.
      for (let r = 0; r < rows; r++) f.fill(r, r * C, r * C + C);
      const w = rows * C;
      f.fill(1, w, w + rows * C);
      const shifts = 2 * rows * C;
      f.fill(0, shifts, shifts + C);
      return { w, shifts, sums: shifts + C + ((shifts + C) % 2) }; // 8-byte aligned
    };
    for (const threads of [1, 2, 3]) {
      const { memory, pool } = sharedPool(threads);
      try {
        const f = new Float32Array(memory.buffer);
        const { w, shifts, sums } = layout(f);
        for (const chunk of [1, 7, 64, 5000]) {
          const count = Math.ceil(rows / chunk);
          for (const [first, n] of [
            [0, count],
            [Math.floor(count / 2), count - Math.floor(count / 2)],
          ]) {
            f.fill(-1, sums, sums + 4 * C * n); // every slot is written, not added to
            pool.runChunks(
              'channel_sums',
              { slots: 4 * sums, stride: 16 * C, threads },
              [0, 4 * shifts, 4 * w, 4 * shifts, C],
              rows,
              chunk,
              first,
              n,
            );
            const d = new Float64Array(memory.buffer, 4 * sums, 2 * C * n);
            for (let k = 0; k < n; k++) {
              const r0 = (first + k) * chunk;
              const r1 = Math.min(rows, r0 + chunk);
              const expected = ((r1 - 1) * r1) / 2 - ((r0 - 1) * r0) / 2; // rows r0 … r1 − 1
              for (let c = 0; c < C; c++) {
                expect(d[2 * C * k + c], `${threads} threads, chunk ${chunk}, slot ${k}`).toBe(
                  expected,
                );
                expect(d[2 * C * k + C + c]).toBe(expected);
              }
            }
          }
        }
      } finally {
        pool.dispose();
      }
    }
  });

  it('passes each thread its own scratch buffer in a sum by chunks', () => {
    // zero(slot, scratch, …) would read the scratch as the count: instead add_into(slot, scratch,
    // n) adds the thread's scratch (all t + 1) into the chunk's slot.
    const { memory, pool } = sharedPool(2);
    try {
      const f = new Float32Array(memory.buffer);
      const n = 64;
      const count = 40;
      f.fill(1, 0, n); // thread 0's scratch
      f.fill(2, n, 2 * n); // thread 1's
      f.fill(0, 2 * n, 2 * n + count * n);
      pool.runChunks(
        'add_into',
        { slots: 8 * n, stride: 4 * n, scratch: [0, 4 * n], threads: 2 },
        [n],
        count,
        1,
        0,
        count,
      );
      const slots = f.subarray(2 * n, 2 * n + count * n);
      // add_into takes (dst, src, count): the row range arguments after them are ignored.
      expect(slots.every((v) => v === 1 || v === 2)).toBe(true);
      for (let k = 0; k < count; k++)
        expect(new Set(slots.subarray(k * n, (k + 1) * n)).size).toBe(1);
    } finally {
      pool.dispose();
    }
  });

  it('reports a trap in a worker thread as an error and stays usable', () => {
    const { memory, pool } = sharedPool(2);
    try {
      const outside = memory.buffer.byteLength + PAGE; // past the end of the heap: the kernel traps
      expect(() =>
        pool.run('zero', [
          [0, 16],
          [outside, 16],
        ]),
      ).toThrow(/failed in a worker thread/);
      expect(() =>
        pool.run('zero', [
          [outside, 16],
          [0, 16],
        ]),
      ).toThrow(/out of bounds/);
      const f = new Float32Array(memory.buffer);
      f.fill(7, 0, 32);
      pool.run('zero', [
        [0, 16],
        [64, 16],
      ]);
      expect(f.subarray(0, 32).every((v) => v === 0)).toBe(true);
    } finally {
      pool.dispose();
    }
  });

  it('refuses unknown kernels, too many shares, and work after dispose', () => {
    const { pool } = sharedPool(2);
    expect(() => pool.run('no_such_kernel', [[]])).toThrow(/not exported/);
    expect(() =>
      pool.run('zero', [
        [0, 1],
        [0, 1],
        [0, 1],
      ]),
    ).toThrow(/3 shares for 2 threads/);
    pool.dispose();
    expect(() => pool.run('zero', [[0, 1]])).toThrow(/disposed/);
  });

  it('runs on a plain (non-shared) memory on the calling thread only', () => {
    const memory = new WebAssembly.Memory({ initial: 2 });
    const pool = new WasmKernelPool(memory, decode(plainWasm), decode(sharedWasm), 4);
    expect(pool.threads).toBe(1);
    const f = new Float32Array(memory.buffer);
    f.fill(3, 0, 8);
    pool.run('zero', [[0, 8]]);
    expect(f.subarray(0, 8).every((v) => v === 0)).toBe(true);
    pool.dispose();
  });

  it('a job for threads that have not started is refused at once, not waited on for good', () => {
    // In a page a Web Worker starts only once its creator yields; these threads run (Node starts
    // them) but say they have not started until told, as a page's would before ready() settles.
    let started = false;
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 64, shared: true });
    const pool = new WasmKernelPool(
      memory,
      decode(plainWasm),
      decode(sharedWasm),
      2,
      (body, data) => ({ ...startKernelThread(body, data), started: () => started }),
    );
    try {
      const f = new Float32Array(memory.buffer);
      f.fill(1, 0, 16);
      const t0 = performance.now();
      const two = [
        [0, 8],
        [32, 8],
      ];
      const msg = /wasm kernel zero called before 1 of the pool's 1 worker threads started/;
      expect(() => pool.run('zero', two)).toThrow(msg);
      expect(() => pool.runRows('zero', [0, 0], [], 16, 4)).toThrow(msg);
      expect(() =>
        pool.runChunks('zero', { slots: 0, stride: 4, threads: 2 }, [], 16, 4, 0, 4),
      ).toThrow(msg);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(f[0]).toBe(1); // nothing ran
      pool.run('zero', [[0, 8]]); // one share: the calling thread alone, no worker needed
      expect(f.subarray(0, 8).every((v) => v === 0)).toBe(true);
      started = true;
      pool.run('zero', two);
      expect(f.subarray(0, 16).every((v) => v === 0)).toBe(true);
    } finally {
      pool.dispose();
    }
  });
});
