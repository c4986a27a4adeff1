/**
 * defineOp: a differentiable op of your own, PyTorch's `torch.autograd.Function` in blockgrad's
 * terms. It is the public face of `record` (node.ts), which every built-in op calls: the forward
 * computes the output with recording off, says which tensors its backward reads, and the backward
 * turns the output's gradient into one gradient (or null) per input, computing only those the
 * engine asks for. What `record` gives the built-ins, a defined op gets too: no node (and nothing
 * saved) while grad mode is off or no input requires grad, per-input masks, saved tensors that
 * are released after the backward and counted in memory.stats(). What the built-ins promise
 * by review, a defined op has checked on every call: the backward's gradients are validated
 * (count, shape, dtype), with an error that names the op, the input and the fix.
 *
 * The forward's temporaries are disposed as soon as it returns (it runs in a tidy scope of its
 * own), and so are the backward's, unless the backward is recorded (createGraph), where they are
 * part of the gradient's graph.
 */
import { AutogradError, DTypeError, ShapeError, ValueError, fmtShape } from '../errors';
import { isFloating, promoteTypes, type DType } from '../tensor/dtype';
import { sameShape } from '../tensor/shape';
import { tidy } from '../tensor/scope';
import { Tensor } from '../tensor/tensor';
import { isGradEnabled, noGrad } from './grad-mode';
import { notSaved, record, type BackwardFn } from './node';
import { contiguous, view_ } from './ops/shape';
import { describe } from '../util/describe';

/** What a defined op's forward is given besides its inputs. */
export interface OpContext {
  /**
   * For each input: true when its gradient may be asked for (grad mode is on and the input
   * requires grad). All false means no node will be recorded: there is nothing to save.
   */
  readonly needsInputGrad: readonly boolean[];
  /**
   * Keeps tensors for the backward, which receives them, in the order saved, as its `saved`
   * argument. Save inputs, the output or intermediates, and only what a needed gradient reads:
   * pass null for a slot that no needed gradient reads (as the built-in mul does for an operand
   * whose partner is frozen), and the backward finds an empty placeholder tensor there, so that
   * the positions stay fixed.
   */
  save(...tensors: (Tensor | null)[]): void;
}

/** The definition of a custom op: a name, a forward and its backward. */
export interface OpDefinition<Inputs extends Tensor[] = Tensor[]> {
  /** The op's name in profiles, graph nodes (`y.gradFn.op`) and error messages. */
  name: string;
  /**
   * Computes the output from the inputs. It runs with recording off (the tensor ops it calls
   * add nothing to the graph) and in a tidy scope (what it creates and neither returns nor saves
   * is disposed when it returns). Only the inputs get gradients: a tensor it reads from outside
   * (a closure) is a constant to the backward.
   */
  forward(ctx: OpContext, ...inputs: Inputs): Tensor;
  /**
   * Given the gradient of the output, returns one gradient per input, in the order of the
   * inputs, each of its input's shape and dtype (or a more precise one), or null where `needsInputGrad[i]` is false (the
   * engine does not ask for that one: computing it would be wasted work) or where it is zero.
   * Write it with tensor ops: under createGraph it is recorded, and second derivatives come
   * out right only if everything it computes depends on the inputs through recorded ops.
   */
  backward(grad: Tensor, saved: Tensor[], needsInputGrad: readonly boolean[]): (Tensor | null)[];
}

/**
 * Makes a differentiable op from a forward and a backward; returns the op, a function of the
 * input tensors. E.g. x³ with its derivative 3x²:
 *
 *     const cube = defineOp({
 *       name: 'cube',
 *       forward: (ctx, x) => { ctx.save(x); return x.mul(x).mul(x); },
 *       backward: (g, [x]) => [g.mul(x.mul(x)).mul(3)],
 *     });
 *
 * Check it with gradcheck (and gradgradcheck for second derivatives); docs/autodiff.md walks
 * through both.
 */
export function defineOp<Inputs extends Tensor[]>(definition: OpDefinition<Inputs>): (...inputs: Inputs) => Tensor {
  const { name } = checkDefinition(definition);
  const op = (...inputs: Inputs): Tensor => {
    inputs.forEach((t, i) => {
      if (!(t instanceof Tensor)) {
        throw new ValueError(
          name,
          `input ${i} is ${describe(t)}, not a Tensor; a defined op takes tensors only: pass numbers and options through a closure ` +
            '(a function that returns the op for them)',
        );
      }
    });
    const needs = inputs.map((t) => isGradEnabled() && t.requiresGrad);
    const saved: Tensor[] = [];
    let open = true;
    const ctx: OpContext = {
      needsInputGrad: needs,
      save(...tensors: (Tensor | null)[]) {
        if (!open) throw new AutogradError(name, 'ctx.save() was called after the forward returned; save tensors inside the forward');
        tensors.forEach((t, k) => {
          if (t !== null && !(t instanceof Tensor)) throw new ValueError(name, `ctx.save() argument ${k} is ${describe(t)}, not a Tensor or null`);
        });
        saved.push(...tensors.map((t) => t ?? notSaved()));
      },
    };
    const { output, toSave } = tidy(name, () => {
      let out: Tensor;
      try {
        out = noGrad(() => definition.forward(ctx, ...inputs));
      } finally {
        open = false;
      }
      if (!(out instanceof Tensor)) {
        throw new ValueError(name, `the forward returned ${describe(out)}; it must return the output Tensor`);
      }
      // The node goes on a tensor object of its own: never on one the caller may hold (an input
      // returned as is, a constant from a closure), which would rewire the caller's graph. The
      // forward's own tensor is disposed with the scope; its storage lives on in this alias.
      const output = out.detach();
      // A saved output must be the tensor the node is attached to, so that a recorded backward
      // (createGraph) that reads it depends on the inputs through this op.
      const mine = !inputs.includes(out as Inputs[number]);
      const kept = saved.map((t) => (t === out && mine ? output : t));
      // what a forward saves survives its scope only if a node will hold it
      const recorded = needs.includes(true) && isFloating(output.dtype);
      return { output, toSave: recorded ? kept : [] };
    });
    const shapes = inputs.map((t) => t.shape);
    const dtypes = inputs.map((t) => t.dtype);
    const backward: BackwardFn = (g, savedTensors, needsInputGrad) => {
      const recording = isGradEnabled();
      const run = () => {
        const grads = checkGradients(name, definition.backward(g, savedTensors, needsInputGrad), shapes, dtypes, needsInputGrad);
        // The engine frees a consumed gradient and may adopt one as a leaf's .grad, so each must
        // be a tensor object of the backward's own, not a saved tensor or a closure's.
        return grads.map((gi) => {
          if (gi === null || gi === g) return gi; // the engine knows not to free g twice
          if (!recording) return gi.detach(); // a fresh object: the backward's own die with its scope, the storage lives on
          return savedTensors.includes(gi) ? alias(gi) : gi;
        });
      };
      // the engine runs an unrecorded backward in a tidy scope of its own, which frees its temporaries
      return run();
    };
    return record(name, inputs, output, toSave, backward);
  };
  Object.defineProperty(op, 'name', { value: name });
  return op;
}

function checkDefinition<Inputs extends Tensor[]>(definition: OpDefinition<Inputs>): OpDefinition<Inputs> {
  if (definition === null || typeof definition !== 'object') {
    throw new ValueError('defineOp', `expected { name, forward, backward }, got ${describe(definition)}`);
  }
  if (typeof definition.name !== 'string' || definition.name === '') {
    throw new ValueError('defineOp', `name must be a non-empty string (it names the op in profiles and errors), got ${describe(definition.name)}`);
  }
  for (const fn of ['forward', 'backward'] as const) {
    if (typeof definition[fn] !== 'function') {
      throw new ValueError('defineOp', `'${definition.name}' needs a ${fn} function, got ${describe(definition[fn])}`);
    }
  }
  return definition;
}

/** The gradients a backward returned, validated; null where the engine did not ask for one. */
function checkGradients(
  name: string,
  grads: unknown,
  shapes: readonly (readonly number[])[],
  dtypes: readonly DType[],
  needs: readonly boolean[],
): (Tensor | null)[] {
  const op = `${name} (backward)`;
  const n = shapes.length;
  if (!Array.isArray(grads) || grads.length !== n) {
    const got = Array.isArray(grads) ? `${grads.length} gradient${grads.length === 1 ? '' : 's'}` : describe(grads);
    throw new AutogradError(
      op,
      `the backward returned ${got} but '${name}' has ${n} input${n === 1 ? '' : 's'}; return an array with one gradient per input, ` +
        'in the order of the inputs (null where needsInputGrad[i] is false)',
    );
  }
  return grads.map((gi: unknown, i) => {
    if (gi === undefined) {
      throw new AutogradError(op, `gradient ${i} is undefined; return null for an input that gets no gradient`);
    }
    if (!needs[i]) return null; // not asked for: whatever was computed is dropped
    if (gi === null) return null;
    if (!(gi instanceof Tensor)) {
      throw new AutogradError(op, `gradient ${i} is ${describe(gi)}; return a Tensor of the input's shape ${fmtShape(shapes[i])}, or null`);
    }
    if (!sameShape(gi.shape, shapes[i])) {
      throw new ShapeError(
        op,
        `gradient ${i} has shape ${fmtShape(gi.shape)} but input ${i} has shape ${fmtShape(shapes[i])}; a gradient has its input's shape: ` +
          `if the input was broadcast in the forward, sum the gradient over the broadcast dims (sumTo(grad, ${fmtShape(shapes[i])}))`,
      );
    }
    if (promoteTypes(gi.dtype, dtypes[i]) !== gi.dtype) {
      throw new DTypeError(
        op,
        `gradient ${i} is ${gi.dtype} but input ${i} (shape ${fmtShape(shapes[i])}) is ${dtypes[i]}: the gradient would lose precision; ` +
          `compute it in ${dtypes[i]} (make constants with { dtype: x.dtype }, or cast with .to('${dtypes[i]}'))`,
      );
    }
    return gi;
  });
}

/** A new tensor object on the same storage, recorded (an identity view) for a recorded backward. */
function alias(t: Tensor): Tensor {
  return t.isContiguous() ? view_(t, t.shape) : contiguous(t, true);
}
