/**
 * The backward engine (PyTorch's engine.cpp in miniature).
 *
 *  1. Collect the graph below the roots and, when `inputs` are given, mark the nodes that lie on
 *     a path to one of them (PyTorch's exec_info). Nodes off every such path are pruned:
 *     mechanism 3 of docs/design.md. Their saved tensors are left untouched.
 *  2. Count, for each marked node and leaf, the edges that will bring it a gradient.
 *  3. Run nodes whose count reached zero (all consumers done, so the incoming gradient is
 *     complete), sum what each sends into its inputs' buffers, and repeat. A leaf's turn comes
 *     when its count reaches zero: hooks, then accumulation into .grad, then post-accumulate hooks.
 */
import { AutogradError, ShapeError, fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';
import { sameShape } from '../tensor/shape';
import { enableGrad, noGrad } from './grad-mode';
import { Node } from './node';
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

type Target = Node | Tensor;

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

function run(opts: RunOptions): Map<Target, Tensor> {
  const { roots, retainGraph, createGraph, accumulate } = opts;

  // 1. the graph below the roots, in creation order (children before parents)
  const nodes = collectNodes(roots);
  const targetSet: Set<Target> | null = opts.targets ? new Set(opts.targets.map((t) => t.gradFn ?? t)) : null;
  const isTargetLeaf = (t: Tensor) => (targetSet ? targetSet.has(t) : true);
  const nonLeafTargets = new Map<Node, Tensor>();
  for (const t of opts.targets ?? []) if (t.gradFn) nonLeafTargets.set(t.gradFn, t);

  // mark nodes on a path to a target; children have smaller seq, so one ascending pass suffices
  const needed = new Set<Node>();
  for (const node of nodes) {
    if (targetSet?.has(node)) needed.add(node);
    else if (node.next.some((e) => (e instanceof Node ? needed.has(e) : e !== null && isTargetLeaf(e)))) needed.add(node);
  }
  const edgeActive = (e: Node | Tensor | null): e is Node | Tensor =>
    e !== null && (e instanceof Node ? needed.has(e) : isTargetLeaf(e));
  const pruned = nodes.length - needed.size;
  if (pruned > 0 && profiling()) onPruned(pruned);

  // 2. dependency counts over active edges
  const deps = new Map<Target, number>();
  for (const node of needed) {
    for (const e of node.next) if (edgeActive(e)) deps.set(e, (deps.get(e) ?? 0) + 1);
  }

  // A node whose backward would run but whose saved tensors were freed by an earlier backward:
  // refuse before anything is accumulated, so a failed call changes no .grad.
  for (const node of needed) {
    const wouldRun = node.next.some((e, i) => node.needsInputGrad[i] && edgeActive(e));
    if (wouldRun && node.released) {
      throw new AutogradError(
        opts.op,
        `trying to run backward through the graph a second time (node '${node.op}' already freed its saved tensors); ` +
          'pass { retainGraph: true } to the first backward if you need to run it twice',
      );
    }
    if (wouldRun) checkSavedVersions(node);
  }

  // 3. seed the roots' gradients and run
  const pending = new Map<Target, Tensor>();
  const pendingCount = new Map<Tensor, number>(); // how many pending slots hold each tensor object
  const captured = new Map<Target, Tensor>();
  // Buffers that some holder besides the engine can see: a leaf's .grad must not take them over,
  // and the engine must not dispose them (caller-passed gradients, retained, captured or hooked ones).
  const escaped = new Set<unknown>(opts.callerGrads.map((g) => g.buffer));
  const setPending = (target: Target, g: Tensor | null) => {
    const prev = pending.get(target);
    if (prev) pendingCount.set(prev, (pendingCount.get(prev) ?? 1) - 1);
    if (g) {
      pending.set(target, g);
      pendingCount.set(g, (pendingCount.get(g) ?? 0) + 1);
    } else pending.delete(target);
  };
  const stillPending = (g: Tensor) => (pendingCount.get(g) ?? 0) > 0;
  /**
   * Frees a gradient the engine made and has consumed, now rather than at the end of the
   * caller's tidy scope: a backward then reuses the same few blocks, still in cache, instead of
   * touching fresh memory for every temporary. Kept: anything someone else can see (escaped),
   * anything still pending for another target, and everything of a createGraph backward.
   */
  const releaseConsumed = (t: Tensor) => {
    if (!createGraph && !escaped.has(t.buffer) && !stillPending(t)) t.dispose();
  };
  const accumulateInto = (target: Target, g: Tensor) => {
    const prev = pending.get(target);
    setPending(target, prev ? withMode(createGraph, () => add(prev, g)) : g);
    if (prev) {
      releaseConsumed(prev);
      releaseConsumed(g);
    }
  };
  const ready: Target[] = [];
  roots.forEach((root, i) => {
    const target = root.gradFn ?? root;
    if (target instanceof Node ? !needed.has(target) : !isTargetLeaf(target)) return;
    accumulateInto(target, opts.rootGrads[i]);
    if (!deps.has(target) && !ready.includes(target)) ready.push(target);
  });

  const finishEdge = (e: Target) => {
    const left = (deps.get(e) ?? 0) - 1;
    deps.set(e, left);
    if (left === 0) ready.push(e);
  };

  while (ready.length > 0) {
    const target = ready.pop() as Target;
    let g = pending.get(target) ?? null;
    setPending(target, null);

    if (target instanceof Tensor) {
      if (g !== null) finishLeaf(target, g, accumulate, createGraph, captured, escaped, stillPending, releaseConsumed);
      continue;
    }

    const node = target;
    if (g !== null) {
      if (node.tensorHooks.length > 0) escaped.add(g.buffer);
      for (const hook of node.tensorHooks) g = hookResult(hook(g), g, node.op);
      if (node.retainGradOf) {
        const t = node.retainGradOf;
        escaped.add(g.buffer);
        t.grad = t.grad ? noGrad(() => add(t.grad as Tensor, g as Tensor)) : g;
      }
      if (targetSet?.has(node)) {
        escaped.add(g.buffer);
        captured.set(node, g);
        // backward({ inputs: [nonLeaf] }) accumulates into that tensor's .grad, as PyTorch does
        const t = nonLeafTargets.get(node);
        if (accumulate && t && node.retainGradOf !== t) t.grad = t.grad ? noGrad(() => add(t.grad as Tensor, g as Tensor)) : g;
      }
    }

    const needs = node.next.map((e, i) => node.needsInputGrad[i] && edgeActive(e));
    if (g !== null && needs.includes(true)) {
      const start = profiling() ? performance.now() : 0;
      const saved = createGraph ? node.savedForGraph(opts.op) : node.saved ?? [];
      const fn = node.backwardFn as NonNullable<Node['backwardFn']>;
      // the backward's own temporaries are freed when it returns (a createGraph backward keeps its graph)
      const gradIn = createGraph ? withMode(true, () => fn(g as Tensor, saved, needs)) : tidy(`${node.op} (backward)`, () => noGrad(() => fn(g as Tensor, saved, needs)));
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
      // One tensor can be the gradient of several inputs (add returns g twice): count each use as
      // pending until it is accumulated, so that the first accumulation does not free it.
      const uses = node.next.map((e, i) => (needs[i] && e !== null ? gradIn[i] : null));
      for (const gi of uses) if (gi) pendingCount.set(gi, (pendingCount.get(gi) ?? 0) + 1);
      node.next.forEach((e, i) => {
        const gi = uses[i];
        if (!gi || e === null) return;
        pendingCount.set(gi, (pendingCount.get(gi) ?? 1) - 1);
        const checked = checkInputGrad(node, i, gi);
        accumulateInto(e, checked);
        // a gradient cast to its input's dtype leaves the uncast one behind
        if (checked !== gi && gi !== g) releaseConsumed(gi);
      });
      // The incoming gradient is consumed: free it now (not at garbage collection) unless it
      // was passed on as is, or someone else holds it.
      if (!gradIn.includes(g)) releaseConsumed(g);
      if (!retainGraph) node.release();
    }
    for (const e of node.next) if (edgeActive(e)) finishEdge(e);
  }
  return captured;
}

/** All nodes reachable from the roots, sorted by creation order (inputs before their consumers). */
function collectNodes(roots: Tensor[]): Node[] {
  const seen = new Set<Node>();
  const stack: Node[] = [];
  for (const r of roots) if (r.gradFn) stack.push(r.gradFn);
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    if (seen.has(node)) continue;
    seen.add(node);
    for (const e of node.next) if (e instanceof Node && !seen.has(e)) stack.push(e);
  }
  return [...seen].sort((a, b) => a.seq - b.seq);
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
  escaped: Set<unknown>,
  stillPending: (g: Tensor) => boolean,
  releaseConsumed: (g: Tensor) => void,
): void {
  if (leaf.hooks.length > 0) escaped.add(g.buffer);
  for (const hook of leaf.hooks) g = hookResult(hook(g), g, leaf.name ?? 'leaf');
  if (g.dtype !== leaf.dtype) {
    const uncast = g;
    g = withMode(createGraph, () => cast(uncast, leaf.dtype));
    releaseConsumed(uncast);
  }
  if (!accumulate) {
    escaped.add(g.buffer);
    captured.set(leaf, g);
    return;
  }
  if (leaf.grad === null) {
    // Take the incoming gradient tensor itself when nothing else can see it or its storage, so
    // that whoever frees leaf.grad (LOMO does, in its hook) frees the storage at once.
    const canSteal = g.buffer.refs === 1 && g.isContiguous() && g.offset === 0 && g.numel === g.buffer.length &&
      !escaped.has(g.buffer) && !stillPending(g);
    const own = canSteal ? g : withMode(createGraph, () => contiguous(g, true));
    escaped.add(own.buffer);
    leaf.grad = own;
  } else if (!createGraph && !leaf.grad.requiresGrad) {
    // accumulate in place, as PyTorch does: .grad keeps its identity and no tensor is left behind
    const prev = leaf.grad;
    noGrad(() => {
      const sum = add(prev, g);
      copy_(prev, sum);
      sum.dispose();
    });
    releaseConsumed(g);
  } else {
    // a gradient with a graph (createGraph) is replaced, not modified; its holder keeps the old one
    const prev = leaf.grad;
    leaf.grad = withMode(createGraph, () => add(prev, g));
  }
  leaf.grad.tagMemory('grads');
  for (const hook of leaf.postAccumulateHooks) hook(leaf);
}
