/** Running registered wasm kernels from inside another kernel, with their intermediates freed. */
import tf from '#tfjs';

type Info = tf.TensorInfo;
export type Backend = tf.KernelBackend & { disposeData(dataId: unknown, force?: boolean): boolean };

/** What tfjs passes a kernel function: its inputs, attributes and the backend. */
export interface KernelCall {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}
type Attrs = Record<string, unknown>;

export class KernelRunner {
  private readonly temps: Info[] = [];
  constructor(private readonly backend: Backend) {}

  /** Runs a registered wasm kernel; its output is freed by `finish` unless it is the result. */
  run(name: string, inputs: Record<string, Info>, attrs: Attrs = {}): Info {
    const kernel = tf.getKernel(name, 'wasm');
    if (!kernel) throw new Error(`wasm kernel ${name} is not registered`);
    const out = kernel.kernelFunc({
      inputs,
      attrs: attrs as tf.NamedAttrMap,
      backend: this.backend,
    }) as Info;
    this.temps.push(out);
    return out;
  }

  /** Frees every intermediate except `keep`. */
  finish(keep: Info): Info {
    for (const t of this.temps) if (t !== keep) this.backend.disposeData(t.dataId);
    return keep;
  }
}
