/**
 * Reverse-mode gradients that free memory as the backward pass goes, for train steps and attacks.
 *
 * tfjs's `engine.gradients` keeps every tensor of the backward pass until it ends: the gradient of
 * each intermediate tensor (as large as the activation) and every op's saved inputs. Its peak is
 * then the saved activations plus a gradient for each of them — about twice what the backward
 * pass needs (ResNet-18 at batch 128: 2.6 GB live against 1.3 GB of activations). This walks the
 * same tape with the same gradient functions in the same order, so every number is the same bit
 * for bit, but drops an op's output gradients and its saved tensors once the op's own gradient is
 * done, as PyTorch's autograd does: the peak is the saved activations plus the few gradients in
 * flight.
 *
 * It reads tfjs's tape (engine internals: `startTape`, `endTape`, `scopedRun`, `state.activeTape`);
 * where they are missing (another tfjs version) or a tape is already recording (a gradient of a
 * gradient), tfjs's own `engine.gradients` runs instead — same numbers, more memory.
 */
import tf from '#tfjs';

interface TapeNode {
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineTape {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
  /** The id the next tensor gets (and uses it up): tensors made later have larger ids. */
  nextTensorId?(): number;
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };
}

/** The engine, when it exposes the tape this module walks. */
function tapeEngine(): EngineTape | null {
  const e = tf.engine() as unknown as Partial<EngineTape>;
  const ok =
    typeof e.startTape === 'function' &&
    typeof e.endTape === 'function' &&
    typeof e.scopedRun === 'function' &&
    typeof e.state?.gradientDepth === 'number'; // (activeTape exists once a tape has run)
  return ok ? (e as EngineTape) : null;
}

/** Whether `gradients` frees as it goes here (false: it falls back to tfjs's engine.gradients). */
export function lowMemoryGradientsAvailable(): boolean {
  return tapeEngine() !== null;
}

/**
 * The ops on a path from one of `xs` to `y`, in tape order, each with only the inputs that depend
 * on `xs` (gradients of the others are never asked for: an attack's step computes no filter
 * gradients).
 */
function pathFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = tape.map((node) => {
    const reached = Object.values(node.inputs).some((t) => fromX.has(t.id));
    if (reached) for (const o of node.outputs) fromX.add(o.id);
    return reached;
  });
  const toY = new Set([y.id]);
  const nodeToY = new Array<boolean>(tape.length).fill(false);
  for (let i = tape.length - 1; i >= 0; i--) {
    if (!tape[i].outputs.some((o) => toY.has(o.id))) continue;
    nodeToY[i] = true;
    for (const t of Object.values(tape[i].inputs)) toY.add(t.id);
  }
  const path: TapeNode[] = [];
  tape.forEach((node, i) => {
    if (!nodeFromX[i] || !nodeToY[i]) return;
    const inputs = Object.fromEntries(
      Object.entries(node.inputs).filter(([, t]) => fromX.has(t.id)),
    );
    path.push({ ...node, inputs });
  });
  return path;
}

/** The gradients of one op's inputs, each a tensor of its own (a clone: the function may pass dy itself through). */
function opInputGradients(node: TapeNode, dys: (tf.Tensor | null)[]): [tf.Tensor, tf.Tensor][] {
  if (!node.gradient)
    throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
  const names = Object.keys(node.inputs);
  const grads = tf.tidy(() => {
    const fns = node.gradient!(dys);
    return names.map((name) => {
      if (!(name in fns))
        throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}.`);
      // a clone shares the data (no copy) but is ours to dispose, whatever the function returned
      return tf.clone(fns[name]());
    });
  });
  return names.map((name, i) => {
    const x = node.inputs[name];
    const dx = grads[i];
    if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape)) {
      tf.dispose(grads);
      throw new Error(
        `Error in gradient for op ${node.kernelName}: input '${name}' is ${x.dtype} [${x.shape}], its gradient ${dx.dtype} [${dx.shape}]`,
      );
    }
    return [x, dx];
  });
}

/**
 * `y = f()` and dy/dx for each of `xs` (undefined where y does not depend on it), freeing each
 * intermediate gradient and saved tensor once the backward pass is past it. The caller owns
 * `value` and `grads`. With `allowNoGradients` false (tf.grad's check), y depending on none of
 * `xs` is an error.
 */
export function gradients(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  allowNoGradients = false,
): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] } {
  const engine = tapeEngine();
  if (!engine || engine.state.gradientDepth > 0)
    return (tf.engine() as unknown as EngineTape).gradients(f, xs, undefined, allowNoGradients);
  let y: tf.Tensor | undefined;
  const firstNewId = engine.nextTensorId?.() ?? Infinity;
  try {
    y = engine.scopedRun(
      () => engine.startTape(),
      () => engine.endTape(),
      () => engine.tidy('forward', f),
    );
    if (!(y instanceof tf.Tensor))
      throw new Error('The result y returned by f() must be a tensor.');
    const path = pathFromXsToY(engine.state.activeTape ?? [], xs, y);
    if (!allowNoGradients && path.length === 0 && xs.length > 0)
      throw new Error(
        'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.',
      );
    const out = y;
    const grads = tf.tidy(() => {
      // the gradient reaching each tensor so far, by tensor id; every value is ours to dispose
      const held = new Map<number, tf.Tensor>([[out.id, tf.ones(out.shape)]]);
      for (let i = path.length - 1; i >= 0; i--) {
        const node = path[i];
        const dxs = opInputGradients(
          node,
          node.outputs.map((o) => held.get(o.id) ?? null),
        );
        // nothing before this op on the tape reads its outputs' gradients or its saved tensors
        for (const o of node.outputs) {
          held.get(o.id)?.dispose();
          held.delete(o.id);
        }
        tf.dispose(node.saved ?? []);
        for (const [x, dx] of dxs) {
          const sum = held.get(x.id);
          if (!sum) {
            held.set(x.id, dx);
            continue;
          }
          held.set(x.id, tf.add(sum, dx));
          tf.dispose([sum, dx]);
        }
      }
      return xs.map((x) => held.get(x.id)) as tf.Tensor[];
    }) as (tf.Tensor | undefined)[];
    return { value: y, grads };
  } catch (e) {
    // y is ours to free only if f made it (f may return a tensor of the caller's)
    if (y instanceof tf.Tensor && y.id >= firstNewId) y.dispose();
    throw e;
  } finally {
    for (const node of engine.state.activeTape ?? []) tf.dispose(node.saved ?? []);
    engine.state.activeTape = null;
  }
}

/** tf.grad with `gradients`: dy/dx of a function of one tensor. */
export function inputGrad(f: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  return (x) => {
    const { value, grads } = gradients(() => f(x), [x]);
    value.dispose();
    return grads[0]!;
  };
}

/**
 * tf.variableGrads with `gradients`: the loss `f()` (a scalar) and its gradient for each trainable
 * variable of `vars`, by name — left out where the loss does not depend on it, and an error if it
 * depends on none (as tfjs: a loss that reaches no variable would train nothing). Non-trainable
 * variables in `vars` get no gradient.
 */
export function variableGrads(
  f: () => tf.Scalar,
  vars: tf.Variable[],
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const trainable = vars.filter((v) => v.trainable);
  if (trainable.length === 0)
    throw new Error(`variableGrads: none of the ${vars.length} variables given is trainable`);
  const { value, grads } = gradients(f, trainable, true);
  const fail = (message: string) => {
    tf.dispose([value, ...grads.filter((g) => g !== undefined)]);
    return new Error(message);
  };
  if (grads.every((g) => g === undefined))
    throw fail(
      'Cannot find a connection between any variable and the result of the loss function y=f(x). Make sure the operations that use variables are inside f.',
    );
  if (value.rank !== 0)
    throw fail(`variableGrads: f() must return a scalar, got rank ${value.rank}`);
  const named: tf.NamedTensorMap = {};
  trainable.forEach((v, i) => {
    if (grads[i]) named[v.name] = grads[i];
  });
  return { value: value as tf.Scalar, grads: named };
}
