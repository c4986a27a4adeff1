/**
 * Activation checkpointing: `checkpoint(fn, ...inputs)` runs `fn` so that the graph it records
 * keeps no saved tensors, and recomputes them when the backward needs them.
 *
 * Note [Checkpointing]
 * A backward reads what each op saved in the forward (the inputs of a matmul, the output of an
 * exp): for a transformer layer, activations many times the size of its input. checkpoint()
 * trades that memory for a second forward, as PyTorch's non-reentrant torch.utils.checkpoint does:
 *
 *  1. First run. `fn` runs with grad on, and records its graph as usual (so the graph reaches the
 *     inputs and every parameter `fn` uses, and the engine needs nothing special), but `record`
 *     hands each node to this region instead of letting it keep its saved tensors (node.ts,
 *     SavedTensorRegion). The region keeps the inputs, and the state of every Generator that `fn`
 *     draws from (dropout), as they were.
 *  2. Backward. The first node of the region whose backward runs asks for its saved tensors; the
 *     region reruns `fn` once on its kept inputs, with the generators rewound, records that graph
 *     normally, takes every node's saved tensors (in record order, the same order as the first
 *     run) and drops the rest. The k-th node of the first run reads what the k-th node of the
 *     rerun saved. When the last node of the first run is released, all of it is freed.
 *
 * With BAdam this composes with pruning: layers below the active block record nothing (mechanism
 * 1), so they never recompute; only the active block and the layers above it do, as their nodes
 * are the ones the backward runs.
 *
 * `fn` must compute the same ops from the same inputs both times (no branching on values that
 * change between the forward and the backward); the region checks the op sequence and refuses an
 * input modified in place since the forward. Higher-order gradients (createGraph) cannot go through
 * a checkpointed region. Inside another checkpointed region, or with grad off, checkpoint(fn,
 * ...inputs) is simply fn(...inputs).
 */
import { AutogradError, ValueError } from '../errors';
import type { BufferLedger } from '../kernels/backend';
import { memoryTracker } from '../kernels/memory';
import { observeDraws, type Generator, type GeneratorState } from '../tensor/random';
import { tidy, untracked } from '../tensor/scope';
import { Tensor } from '../tensor/tensor';
import { describe } from '../util/describe';
import { enableGrad, isGradEnabled } from './grad-mode';
import { activeSavedTensorRegion, withSavedTensorRegion, type DeferredSaves, type Node, type SavedTensorRegion } from './node';

/** The bytes a region counts as saved: its inputs', and each first-run node's recomputed tensors'. */
interface Counted {
  inputs: BufferLedger[];
  perNode: (readonly BufferLedger[])[];
}

/** Un-counts what a region counted, when the region is collected without having been released. */
const unsaveOnCollect = new FinalizationRegistry<Counted>((counted) => {
  for (const l of [...counted.inputs, ...counted.perNode.flat()]) memoryTracker.onUnsave(l);
});

/**
 * Runs `fn(...inputs)` and returns its result, keeping no activations for the backward: they
 * are recomputed from `inputs` when the backward reaches the ops of `fn` (Note [Checkpointing]).
 * Gradients equal those of `fn(...inputs)` run plainly, bit for bit. The tensors `fn` uses besides
 * `inputs` (a module's parameters) get their gradients as usual; pass as inputs the activations
 * that flow in, so that they are kept for the recomputation.
 */
export function checkpoint<T>(fn: (...inputs: Tensor[]) => T, ...inputs: Tensor[]): T {
  const op = 'checkpoint';
  if (typeof fn !== 'function') throw new ValueError(op, `expected a function, got ${describe(fn)}`);
  inputs.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new ValueError(op, `input ${i} is ${describe(t)}, not a Tensor; pass other values through a closure`);
  });
  if (!isGradEnabled() || activeSavedTensorRegion() !== null) return fn(...inputs);
  return new CheckpointRegion(fn, inputs).firstRun();
}

class CheckpointRegion<T> implements SavedTensorRegion, DeferredSaves {
  readonly defersSaves = true;
  /** The first run's nodes, in record order, and each node's place there. */
  private readonly nodes: Node[] = [];
  private readonly place = new Map<Node, number>();
  private unreleased = 0;
  /** Each generator `fn` drew from, with its state before the first draw. */
  private readonly generators = new Map<Generator, GeneratorState>();
  /** The inputs as the first run saw them (aliases that own their storage), their versions and which required grad. */
  private kept: Tensor[] = [];
  private versions: number[] = [];
  private trainable: boolean[] = [];
  /** Per first-run node, the tensors its twin in the recomputation saved (null until then; emptied as each node is released). */
  private recomputed: Tensor[][] | null = null;
  private readonly counted: Counted = { inputs: [], perNode: [] };

  constructor(
    private readonly fn: (...inputs: Tensor[]) => T,
    /** The caller's tensors, read in the first run only. */
    private readonly inputs: Tensor[],
  ) {}

  firstRun(): T {
    const noteState = (g: Generator) => {
      if (!this.generators.has(g)) this.generators.set(g, g.getState());
    };
    const out = observeDraws(noteState, () => withSavedTensorRegion(this, () => this.fn(...this.inputs)));
    if (this.nodes.length > 0) {
      // only a region with nodes is ever asked to recompute: only then are the inputs kept
      this.kept = untracked(() => this.inputs.map((t) => t.detach()));
      this.versions = this.inputs.map((t) => t.buffer.ledger.version);
      this.trainable = this.inputs.map((t) => t.requiresGrad);
      this.counted.inputs = this.kept.map((t) => t.buffer.ledger);
      for (const l of this.counted.inputs) memoryTracker.onSave(l);
      unsaveOnCollect.register(this, this.counted, this);
    }
    return out;
  }

  onRecord(node: Node): void {
    node.deferredTo = this;
    this.place.set(node, this.nodes.length);
    this.nodes.push(node);
    this.unreleased++;
  }

  savedFor(node: Node): Tensor[] {
    if (this.recomputed === null) this.recompute();
    return (this.recomputed as Tensor[][])[this.place.get(node) as number];
  }

  /**
   * A first-run node is done: what was recomputed for it goes now (as a plain node's saved
   * tensors go when it has run), and with the last one the kept inputs go too.
   */
  onRelease(node: Node): void {
    const k = this.place.get(node) as number;
    if (this.recomputed !== null) {
      for (const t of this.recomputed[k]) t.dispose();
      for (const l of this.counted.perNode[k]) memoryTracker.onUnsave(l);
      this.recomputed[k] = [];
      this.counted.perNode[k] = [];
    }
    if (--this.unreleased > 0) return;
    for (const t of this.kept) t.dispose();
    for (const l of this.counted.inputs) memoryTracker.onUnsave(l);
    unsaveOnCollect.unregister(this);
    this.kept = [];
    this.counted.inputs = [];
  }

  /** Reruns fn on the kept inputs with the generators rewound, and keeps what each node saved. */
  private recompute(): void {
    const op = 'checkpoint (backward)';
    // an alias shares its input's storage, and so its version (the input itself may be disposed by now)
    this.kept.forEach((t, i) => {
      if (t.buffer.ledger.version !== this.versions[i]) {
        throw new AutogradError(
          op,
          `input ${i} of the checkpointed function was modified in place after the forward (version ${t.buffer.ledger.version}, ` +
            `${this.versions[i]} then), so the recomputation would see other values; compute the gradient before the update`,
        );
      }
    });
    const replay: Node[] = [];
    const collect: SavedTensorRegion = { defersSaves: false, onRecord: (n) => replay.push(n) };
    const after = [...this.generators.keys()].map((g) => [g, g.getState()] as const);
    for (const [g, state] of this.generators) g.setState(state);
    const saved: Tensor[][] = [];
    try {
      enableGrad(() =>
        tidy('checkpoint (recompute)', () => {
          // the same leaves as the first run saw: trainable where the inputs were
          const leaves = this.kept.map((t, i) => (this.trainable[i] ? t.detach().requiresGrad_(true) : t.detach()));
          withSavedTensorRegion(collect, () => this.fn(...leaves));
          // each node's saved tensors outlive the scope, which releases the nodes themselves
          for (const n of replay) {
            const taken = n.takeSaved();
            saved.push(taken.saved);
            this.counted.perNode.push(taken.ledgers);
          }
        }),
      );
    } finally {
      for (const [g, state] of after) g.setState(state);
    }
    const differs = replay.length !== this.nodes.length || replay.some((n, k) => n.op !== this.nodes[k].op);
    if (differs) {
      // nothing recomputed is of use: free it now, and let every node find an empty slot
      for (const t of saved.flat()) t.dispose();
      for (const l of this.counted.perNode.flat()) memoryTracker.onUnsave(l);
      this.recomputed = this.nodes.map(() => []);
      this.counted.perNode = this.nodes.map(() => []);
      const ops = (ns: Node[]) => ns.map((n) => n.op).join(', ');
      throw new AutogradError(
        op,
        `the recomputation recorded [${ops(replay)}] where the forward recorded [${ops(this.nodes)}]; ` +
          'a checkpointed function must compute the same ops from the same inputs each time',
      );
    }
    this.recomputed = saved;
  }
}
