/**
 * Which part of the graph a backward runs: mechanism 3 of docs/design.md (reachability pruning,
 * PyTorch's exec_info). The engine (engine.ts) asks this class which nodes to run, which of
 * their edges carry a gradient, and how many gradients each target still waits for.
 */
import { Tensor } from '../tensor/tensor';
import { Node } from './node';

/** What receives a gradient: a node (the gradFn of a non-leaf) or a leaf tensor. */
export type Target = Node | Tensor;

// Note [Target paths]
// ~~~~~~~~~~~~~~~~~~~
// With `inputs` (backward({ inputs }) or grad()), only the nodes on a path from the roots to one
// of those tensors run; without, every leaf that requires grad is a target and every node below
// the roots runs. A node is *needed* when it is a target, or when one of its edges leads to a
// needed node or a target leaf. Inputs are created before their consumers (smaller seq), so one
// pass in ascending seq order sees every edge's mark before the node that holds the edge.
// An edge is *active* when it points at a needed node or a target leaf: only active edges carry
// a gradient, are counted as dependencies, and ask a backward to compute an input's gradient.
// The nodes off every path are never run, and their saved tensors are left untouched.
export class TargetPaths {
  /** The nodes that run, in ascending seq order (inputs before their consumers). */
  readonly needed = new Set<Node>();
  /** How many nodes below the roots were pruned (not needed). */
  readonly pruned: number;
  /** The requested tensors as targets (a non-leaf by its gradFn); null: every leaf that requires grad. */
  private readonly targets: Set<Target> | null;
  /** The requested non-leaf tensors, by their gradFn. */
  private readonly nonLeafTargets = new Map<Node, Tensor>();

  constructor(roots: readonly Tensor[], targets: readonly Tensor[] | null) {
    this.targets = targets ? new Set(targets.map((t) => t.gradFn ?? t)) : null;
    for (const t of targets ?? []) if (t.gradFn) this.nonLeafTargets.set(t.gradFn, t);
    const nodes = collectNodes(roots);
    for (const node of nodes) {
      if (this.targets?.has(node) || node.next.some((e) => this.isActive(e))) this.needed.add(node);
    }
    this.pruned = nodes.length - this.needed.size;
  }

  /** Whether an edge (or a root's target) carries a gradient: see Note [Target paths]. */
  isActive(e: Target | null): e is Target {
    return e !== null && (e instanceof Node ? this.needed.has(e) : this.isTargetLeaf(e));
  }

  /** Whether `node` is the gradFn of a requested tensor (its gradient is captured). */
  isRequested(node: Node): boolean {
    return this.targets?.has(node) ?? false;
  }

  /** The requested non-leaf tensor whose gradFn is `node`, if any. */
  requestedTensor(node: Node): Tensor | undefined {
    return this.nonLeafTargets.get(node);
  }

  /** For each input of `node`: whether its backward must compute that input's gradient (mechanisms 2 and 3). */
  inputsToCompute(node: Node): boolean[] {
    return node.next.map((e, i) => node.needsInputGrad[i] && this.isActive(e));
  }

  /** For each target, the number of active edges that will bring it a gradient. */
  dependencyCounts(): Map<Target, number> {
    const deps = new Map<Target, number>();
    for (const node of this.needed) {
      for (const e of node.next) if (this.isActive(e)) deps.set(e, (deps.get(e) ?? 0) + 1);
    }
    return deps;
  }

  private isTargetLeaf(t: Tensor): boolean {
    return this.targets ? this.targets.has(t) : true;
  }
}

/** All nodes reachable from the roots, sorted by creation order (inputs before their consumers). */
function collectNodes(roots: readonly Tensor[]): Node[] {
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
