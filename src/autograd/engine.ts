/**
 * The backward engine (PyTorch's engine.cpp in miniature).
 *
 *  1. Collect the graph below the roots and, when `inputs` are given, mark the nodes that lie on
 *     a path to one of them (PyTorch's exec_info). Nodes off every such path are pruned:
 *     mechanism 3 of docs/design.md, in target-paths.ts (Note [Target paths]). Their saved
 *     tensors are left untouched.
 *  2. Count, for each marked node and leaf, the edges that will bring it a gradient.
 *  3. Run nodes whose count reached zero (all consumers done, so the incoming gradient is
 *     complete), sum what each sends into its inputs' buffers, and repeat. A leaf's turn comes
 *     when its count reaches zero: hooks, then accumulation into .grad, then post-accumulate hooks.
 *     The gradients in flight, and when the engine may free one, are gradient-buffers.ts's
 *     concern (Note [Gradient ownership]).
 */
import { AutogradError, ShapeError, fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';
import { sameShape } from '../tensor/shape';
import { enableGrad, noGrad } from './grad-mode';
import { Node } from './node';
import { GradientBuffers } from './gradient-buffers';
import { TargetPaths, type Target } from './target-paths';
import { onBackwardNode, onPruned, profiling } from './profile';
import { add, cast } from './ops/elementwise';
import { contiguous } from './ops/shape';
import { copy_ } from './ops/inplace';
import { onesLike } from '../tensor/creation';
import { tidy } from '../tensor/scope';

export interface BackwardOptions {
  /** Keep saved tensors so that backward can run through this graph again. */
  retainGraph?: boolean;
  /** Record the backward computation itself, for higher-order gradients (implies retainGraph). */
  createGraph?: boolean;
  /** Accumulate only into these tensors' .grad, running only the nodes that lead to them. */
  inputs?: Tensor[];
}

export interface GradOptions {
  gradOutputs?: (Tensor | null)[];
  retainGraph?: boolean;
  createGraph?: boolean;
  /** Return null for inputs the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

interface RunOptions {
  roots: Tensor[];
  rootGrads: Tensor[];
  /** null: every leaf that requires grad. */
  targets: Tensor[] | null;
  retainGraph: boolean;
  createGraph: boolean;
  /** Gradients the caller passed in (never taken over as a leaf's .grad). */
  callerGrads: Tensor[];
  /** true: accumulate into .grad (backward); false: return gradients (grad). */
  accumulate: boolean;
  op: string;
}

/** Implements tensor.backward(). */
export function backward(root: Tensor, gradient?: Tensor | null, options: BackwardOptions = {}): void {
  const createGraph = options.createGraph ?? false;
  const inputs = options.inputs;
  if (inputs !== undefined) {
    if (inputs.length === 0) throw new AutogradError('backward', "'inputs' was given but is empty; pass the tensors to accumulate into");
    inputs.forEach((t, i) => {
      if (!t.requiresGrad) throw new AutogradError('backward', `inputs[${i}] (${t}) does not require grad`);
    });
  }
  run({
    roots: [root],
    rootGrads: [rootGradient('backward', root, gradient ?? null, 0)],
    callerGrads: gradient ? [gradient] : [],
    targets: inputs ?? null,
    retainGraph: options.retainGraph ?? createGraph,
    createGraph,
    accumulate: true,
    op: 'backward',
  });
}

/** Implements autograd.grad(): the gradients of outputs with respect to inputs, without touching .grad. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], options: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const gradOutputs = options.gradOutputs ?? [];
  if (gradOutputs.length > 0 && gradOutputs.length !== outs.length) {
    throw new AutogradError('grad', `got ${outs.length} outputs but ${gradOutputs.length} gradOutputs`);
  }
  ins.forEach((t, i) => {
    if (!t.requiresGrad) throw new AutogradError('grad', `inputs[${i}] (${t}) does not require grad`);
  });
  const createGraph = options.createGraph ?? false;
  const captured = run({
    roots: outs,
    rootGrads: outs.map((o, i) => rootGradient('grad', o, gradOutputs[i] ?? null, i)),
    callerGrads: gradOutputs.filter((g): g is Tensor => g instanceof Tensor),
    targets: ins,
    retainGraph: options.retainGraph ?? createGraph,
    createGraph,
    accumulate: false,
    op: 'grad',
  });
  return ins.map((t, i) => {
    const g = captured.get(t.gradFn ?? t) ?? null;
    if (g === null && !options.allowUnused) {
      throw new AutogradError(
        'grad',
        `inputs[${i}] (${t}) was not used to compute the outputs; pass { allowUnused: true } to get null for it`,
      );
    }
    return g;
  });
}

function rootGradient(op: string, root: Tensor, gradient: Tensor | null, i: number): Tensor {
  if (!root.requiresGrad) {
    throw new AutogradError(op, `output ${i} (${root}) does not require grad and has no gradFn: nothing to differentiate`);
  }
  if (gradient === null) {
    if (root.numel !== 1) {
      throw new AutogradError(
        op,
        `gradient can be implicitly created only for scalar outputs, but output ${i} has shape ${fmtShape(root.shape)}; ` +
          'pass a gradient of the same shape',
      );
    }
    return noGrad(() => onesLike(root));
  }
  if (!sameShape(gradient.shape, root.shape)) {
    throw new ShapeError(op, `gradient has shape ${fmtShape(gradient.shape)} but output ${i} has shape ${fmtShape(root.shape)}`);
  }
  return gradient.dtype === root.dtype ? gradient : noGrad(() => cast(gradient, root.dtype));
}

/** How many running backwards accumulate into .grad (nested: a hook may run a backward of its own). */
const accumulating: boolean[] = [];

/**
 * Whether the innermost running backward accumulates into the leaves' .grad (backward()), as
 * opposed to returning gradients (grad()): a row-gradient sink (row-gradients.ts) may only take a
 * gradient that would have gone into .grad.
 */
export function backwardAccumulates(): boolean {
  return accumulating.length > 0 && accumulating[accumulating.length - 1];
}

function run(opts: RunOptions): Map<Target, Tensor> {
  accumulating.push(opts.accumulate);
  try {
    return runGraph(opts);
  } finally {
    accumulating.pop();
  }
}

function runGraph(opts: RunOptions): Map<Target, Tensor> {
  const { roots, retainGraph, createGraph, accumulate } = opts;

  // 1-2. which nodes run, and how many gradients each target waits for: Note [Target paths]
  const paths = new TargetPaths(roots, opts.targets);
  if (paths.pruned > 0 && profiling()) onPruned(paths.pruned);
  const deps = paths.dependencyCounts();
  checkRunnable(paths, opts.op);

  // 3. seed the roots' gradients and run; the engine frees its temporaries: Note [Gradient ownership]
  const buffers = new GradientBuffers(opts.callerGrads, createGraph);
  const captured = new Map<Target, Tensor>();
  const ready: Target[] = [];
  roots.forEach((root, i) => {
    const target = root.gradFn ?? root;
    if (!paths.isActive(target)) return;
    buffers.accumulateInto(target, opts.rootGrads[i]);
    if (!deps.has(target) && !ready.includes(target)) ready.push(target);
  });

  const finishEdge = (e: Target) => {
    const left = (deps.get(e) ?? 0) - 1;
    deps.set(e, left);
    if (left === 0) ready.push(e);
  };

  while (ready.length > 0) {
    const target = ready.pop() as Target;
    let g = buffers.take(target);

    if (target instanceof Tensor) {
      if (g !== null) finishLeaf(target, g, accumulate, createGraph, captured, buffers);
      continue;
    }

    const node = target;
    // what a hook, retainGrad() or grad() gets to see has escaped the engine: Note [Gradient ownership]
    if (g !== null) {
      if (node.tensorHooks.length > 0) buffers.markEscaped(g);
      for (const hook of node.tensorHooks) g = hookResult(hook(g), g, node.op);
      if (node.retainGradOf) {
        const t = node.retainGradOf;
        buffers.markEscaped(g);
        t.grad = t.grad ? noGrad(() => add(t.grad as Tensor, g as Tensor)) : g;
      }
      if (paths.isRequested(node)) {
        buffers.markEscaped(g);
        captured.set(node, g);
        // backward({ inputs: [nonLeaf] }) accumulates into that tensor's .grad, as PyTorch does
        const t = paths.requestedTensor(node);
        if (accumulate && t && node.retainGradOf !== t) t.grad = t.grad ? noGrad(() => add(t.grad as Tensor, g as Tensor)) : g;
      }
    }

    const needs = paths.inputsToCompute(node);
    if (g !== null && needs.includes(true)) {
      const gradIn = runBackward(node, g, needs, createGraph, opts.op);
      const edges = node.next.map((e, i) => (needs[i] ? e : null));
      buffers.send(g, gradIn, edges, (i, gi) => checkInputGrad(node, i, gi));
      if (!retainGraph) node.release();
    }
    for (const e of node.next) if (paths.isActive(e)) finishEdge(e);
  }
  return captured;
}

/**
 * Refuses, before anything is accumulated (so that a failed call changes no .grad), a node whose
 * backward would run but whose saved tensors were freed by an earlier backward or modified since.
 */
function checkRunnable(paths: TargetPaths, op: string): void {
  for (const node of paths.needed) {
    const wouldRun = paths.inputsToCompute(node).includes(true);
    if (wouldRun && node.released) {
      throw new AutogradError(
        op,
        `trying to run backward through the graph a second time (node '${node.op}' already freed its saved tensors); ` +
          'pass { retainGraph: true } to the first backward if you need to run it twice',
      );
    }
    if (wouldRun) checkSavedVersions(node);
  }
}

/** Calls a node's backward for the inputs in `needs`, and reports it to a running profile. */
function runBackward(node: Node, g: Tensor, needs: boolean[], createGraph: boolean, op: string): (Tensor | null)[] {
  const start = profiling() ? performance.now() : 0;
  const saved = createGraph ? node.savedForGraph(op) : node.savedForBackward();
  const fn = node.backwardFn as NonNullable<Node['backwardFn']>;
  // the backward's own temporaries are freed when it returns (a createGraph backward keeps its graph)
  const gradIn = createGraph ? withMode(true, () => fn(g, saved, needs)) : tidy(`${node.op} (backward)`, () => noGrad(() => fn(g, saved, needs)));
  if (profiling()) {
    // inputs that are tensors but need no gradient (null slots such as where's cond do not count)
    const byMask = node.needsInputGrad.filter((n, i) => !n && node.inputShapes[i] !== null).length;
    const byReach = node.needsInputGrad.filter((n, i) => n && !needs[i]).length;
    onBackwardNode(
      { op: node.op, inputNames: [...node.inputNames], computed: needs, ms: performance.now() - start },
      byMask,
      byReach,
    );
  }
  return gradIn;
}

function withMode<T>(createGraph: boolean, fn: () => T): T {
  return createGraph ? enableGrad(fn) : noGrad(fn);
}

function hookResult(result: Tensor | void, g: Tensor, where: string): Tensor {
  if (result === undefined) return g;
  if (!(result instanceof Tensor) || !sameShape(result.shape, g.shape)) {
    throw new AutogradError('hook', `a hook on '${where}' returned ${String(result)}; it must return nothing or a tensor of shape ${fmtShape(g.shape)}`);
  }
  return result;
}

/**
 * Catches a backward that returns a gradient of the wrong shape (a bug in an op, named), and
 * casts a gradient to its input's dtype (a float16 input of a float32 op gets a float16 gradient).
 */
function checkInputGrad(node: Node, i: number, gi: Tensor): Tensor {
  const expected = node.inputShapes[i];
  if (expected && !sameShape(gi.shape, expected)) {
    throw new ShapeError(
      `${node.op} (backward)`,
      `gradient for input ${i} has shape ${fmtShape(gi.shape)} but the input has shape ${fmtShape(expected)}`,
    );
  }
  const dtype = node.inputDtypes[i];
  return dtype && gi.dtype !== dtype ? cast(gi, dtype) : gi;
}

/** Refuses to run a backward whose saved tensors were modified in place (or re-pointed) since the forward. */
function checkSavedVersions(node: Node): void {
  node.savedLedgers.forEach((ledger, k) => {
    const t = node.savedSource(k);
    if (t.buffer.ledger !== ledger || ledger.version !== node.savedVersions[k]) {
      throw new AutogradError(
        'backward',
        `a tensor saved for the backward of '${node.op}' (${t}) was modified in place after the forward ` +
          `(version ${ledger.version}, saved at ${node.savedVersions[k]}); compute the gradient before the update, or clone the tensor before modifying it`,
      );
    }
  });
}

function finishLeaf(
  leaf: Tensor,
  g: Tensor,
  accumulate: boolean,
  createGraph: boolean,
  captured: Map<Target, Tensor>,
  buffers: GradientBuffers,
): void {
  if (leaf.hooks.length > 0) buffers.markEscaped(g);
  for (const hook of leaf.hooks) g = hookResult(hook(g), g, leaf.name ?? 'leaf');
  if (g.dtype !== leaf.dtype) {
    const uncast = g;
    g = withMode(createGraph, () => cast(uncast, leaf.dtype));
    buffers.releaseConsumed(uncast);
  }
  if (!accumulate) {
    buffers.markEscaped(g);
    captured.set(leaf, g);
    return;
  }
  if (leaf.grad === null) {
    // Take the incoming gradient tensor itself when nothing else can see it or its storage
    // (Note [Gradient ownership]); otherwise .grad gets its own copy.
    const own = buffers.canTakeOver(g) ? g : withMode(createGraph, () => contiguous(g, true));
    buffers.markEscaped(own);
    leaf.grad = own;
  } else if (!createGraph && !leaf.grad.requiresGrad) {
    // accumulate in place, as PyTorch does: .grad keeps its identity and no tensor is left behind
    const prev = leaf.grad;
    noGrad(() => {
      const sum = add(prev, g);
      copy_(prev, sum);
      sum.dispose();
    });
    buffers.releaseConsumed(g);
  } else {
    // a gradient with a graph (createGraph) is replaced, not modified; its holder keeps the old one
    const prev = leaf.grad;
    leaf.grad = withMode(createGraph, () => add(prev, g));
  }
  leaf.grad.tagMemory('grads');
  for (const hook of leaf.postAccumulateHooks) hook(leaf);
}
