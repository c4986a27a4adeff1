/**
 * Graph nodes and how ops record them. An op computes its output with kernels, then calls
 * `record` with the tensors its backward needs and the backward itself, written beside the
 * forward (as in micrograd). `record` is where pruning mechanisms 1 and 2 live:
 *   1. if grad mode is off or no input requires grad, no node is recorded and nothing is saved;
 *   2. the node remembers which inputs need a gradient (`needsInputGrad`), and its backward is
 *      told not to compute the others.
 */
import { Tensor, type GradHook } from '../tensor/tensor';
import { trackNode, untracked } from '../tensor/scope';
import { isFloating, type DType } from '../tensor/dtype';
import { memoryTracker } from '../kernels/memory';
import { AutogradError } from '../errors';
import { kernels } from '../kernels/registry';
import type { BufferLedger } from '../kernels/backend';
import { isGradEnabled } from './grad-mode';
import { onNotRecorded, onRecorded, profiling } from './profile';

/**
 * A backward function: given the gradient of the node's output and the tensors saved in the
 * forward, returns one gradient per input (null where `needs[i]` is false: never compute it).
 */
export type BackwardFn = (grad: Tensor, saved: Tensor[], needs: readonly boolean[]) => (Tensor | null)[];

let nextSeq = 0;

/**
 * A checkpointed region (Note [Checkpointing] in checkpoint.ts) as `record` sees it: while one is
 * active, `record` tells it of every node it makes, and in the region's first run (`defersSaves`)
 * the nodes keep nothing.
 */
export interface SavedTensorRegion {
  readonly defersSaves: boolean;
  onRecord(node: Node): void;
}

/** Where a node that kept nothing gets its saved tensors (`savedFor`), and says it is done with them. */
export interface DeferredSaves {
  savedFor(node: Node): Tensor[];
  onRelease(node: Node): void;
}

let region: SavedTensorRegion | null = null;

/** Runs fn with `r` receiving the nodes that record() makes (null: none). */
export function withSavedTensorRegion<T>(r: SavedTensorRegion | null, fn: () => T): T {
  const outer = region;
  region = r;
  try {
    return fn();
  } finally {
    region = outer;
  }
}

/** The region active now, if any. */
export function activeSavedTensorRegion(): SavedTensorRegion | null {
  return region;
}

/**
 * A node that is never run (pruned by reachability, or its graph dropped outside any tidy scope)
 * still holds its saved tensors until it is garbage collected; this un-counts them then. Inside a
 * tidy scope such a node is released when the scope ends instead (tensor/scope.ts).
 */
const unsaveOnCollect = new FinalizationRegistry<BufferLedger[]>((ledgers) => {
  for (const b of ledgers) memoryTracker.onUnsave(b);
});

export class Node {
  /** Creation order; later nodes depend on earlier ones, never the reverse. */
  readonly seq = nextSeq++;
  /** For each input: the node that produced it, the leaf itself (if it requires grad), or null. */
  readonly next: (Node | Tensor | null)[];
  /** Hooks registered on the output tensor (registerHook on a non-leaf). */
  tensorHooks: GradHook[] = [];
  /** The output tensor, when it called retainGrad(). */
  retainGradOf: Tensor | null = null;
  released = false;
  /** The checkpointed region that holds this node's saved tensors instead of the node. */
  deferredTo: DeferredSaves | null = null;

  /**
   * What the backward reads: one alias per saved tensor, holding its own reference to the
   * storage, so that the tensor the forward returned can be disposed (by its user or a tidy
   * scope) while the graph still needs the data. The aliases are disposed on release().
   */
  saved: Tensor[] | null;
  /** The tensors the forward saved (not their aliases), to detect a re-pointed parameter. */
  private savedSources: readonly Tensor[];

  constructor(
    readonly op: string,
    inputs: readonly (Tensor | null | undefined)[],
    readonly needsInputGrad: readonly boolean[],
    save: readonly Tensor[],
    public backwardFn: BackwardFn | null,
  ) {
    this.next = inputs.map((t, i) => (needsInputGrad[i] && t ? (t.gradFn ?? t) : null));
    this.inputShapes = inputs.map((t) => (t ? t.shape : null));
    this.inputDtypes = inputs.map((t) => (t ? t.dtype : null));
    this.inputNames = inputs.map((t) => t?.name);
    this.savedSources = save;
    this.saved = untracked(() => save.map((t) => (t === placeholder ? t : t.detach())));
    this.savedLedgers = save.map((t) => t.buffer.ledger);
    this.savedVersions = this.savedLedgers.map((l) => l.version);
  }

  /** The tensor saved in slot k as the forward saw it (its storage may since have been re-pointed). */
  savedSource(k: number): Tensor {
    return this.savedSources[k];
  }

  /**
   * What a backward that is itself recorded (createGraph) reads: the saved tensors themselves, not
   * their aliases, so that the recorded backward connects to their graphs and leaves (an alias is
   * a detached leaf). They must still be alive.
   */
  savedForGraph(op: string): Tensor[] {
    if (this.deferredTo) {
      throw new AutogradError(
        op,
        `createGraph cannot go through '${this.op}', which ran inside checkpoint(): its saved tensors are recomputed without a graph; ` +
          'leave the region out of checkpoint() for higher-order gradients',
      );
    }
    this.savedSources.forEach((t, k) => {
      if (t.isDisposed) {
        throw new AutogradError(
          op,
          `createGraph needs the tensors saved by '${this.op}', but saved tensor ${k} (${t}) was disposed (by dispose() or ` +
            'at the end of its tidy scope); run the higher-order backward inside the scope that made them, or keep() them',
        );
      }
    });
    return [...this.savedSources];
  }

  /** Shape and dtype of each input, so the engine can check and cast what a backward returns. */
  readonly inputShapes: readonly (readonly number[] | null)[];
  readonly inputDtypes: readonly (DType | null)[];
  /** Parameter names of the inputs that have one (for profiles). */
  readonly inputNames: readonly (string | undefined)[];
  /**
   * The storage each saved tensor had at record time and its version then: the engine refuses
   * to run the backward if a saved tensor was modified in place (or re-pointed) since.
   */
  savedLedgers: readonly BufferLedger[];
  readonly savedVersions: readonly number[];

  /** What the backward reads: the node's own aliases, or what its checkpointed region recomputes. */
  savedForBackward(): Tensor[] {
    return this.deferredTo ? this.deferredTo.savedFor(this) : (this.saved ?? []);
  }

  /**
   * Hands the saved aliases (and their memory accounting) to the caller, who disposes them and
   * un-counts their storage: a checkpointed region's recomputation keeps them past this node.
   */
  takeSaved(): { saved: Tensor[]; ledgers: readonly BufferLedger[] } {
    const saved = this.saved ?? [];
    const ledgers = this.savedLedgers;
    unsaveOnCollect.unregister(this);
    this.saved = null;
    this.savedLedgers = [];
    return { saved, ledgers };
  }

  /** Frees what the node kept for backward (after backward without retainGraph). */
  release(): void {
    if (this.deferredTo && !this.released) this.deferredTo.onRelease(this);
    if (this.saved) {
      unsaveOnCollect.unregister(this);
      for (const ledger of this.savedLedgers) memoryTracker.onUnsave(ledger);
      for (const alias of this.saved) if (alias !== placeholder) alias.dispose();
    }
    this.saved = null;
    this.savedSources = [];
    this.backwardFn = null;
    this.released = true;
  }
}

let placeholder: Tensor | null = null;

/**
 * A zero-byte stand-in for a saved slot the backward will not read (e.g. mul keeps x only when
 * y needs a gradient), so that backward functions keep their positional `saved` signature.
 */
export function notSaved(): Tensor {
  placeholder ??= untracked(() => new Tensor(kernels().zeros('float32', 0), [0]));
  return placeholder;
}

/**
 * Attaches a graph node to `output` when recording applies, and returns `output`.
 * `save` lists every tensor the backward reads; `backward` receives them as its `saved`
 * argument, so that they can be released (and counted) independently of the closure.
 */
export function record(
  op: string,
  inputs: readonly (Tensor | null | undefined)[],
  output: Tensor,
  save: Tensor[],
  backward: BackwardFn,
): Tensor {
  if (!isGradEnabled()) return output;
  const needs = inputs.map((t) => t instanceof Tensor && t.requiresGrad);
  if (!needs.includes(true)) {
    onNotRecorded(op); // mechanism 1: the op ran, but no node and no saved tensors
    return output;
  }
  if (!isFloating(output.dtype)) return output; // integer outputs (indices, masks) carry no gradient
  // in a checkpointed region's first run the node keeps nothing: the region recomputes it
  const kept = region?.defersSaves ? [] : save;
  for (const t of kept) memoryTracker.onSave(t.buffer.ledger);
  const node = new Node(op, inputs, needs, kept, backward);
  if (kept.length > 0) unsaveOnCollect.register(node, [...node.savedLedgers], node);
  output.gradFn = node;
  trackNode(node);
  region?.onRecord(node);
  if (profiling()) {
    const seen = new Set<unknown>();
    let savedBytes = 0;
    for (const t of kept) {
      if (t.buffer.category === 'weights' || seen.has(t.buffer)) continue;
      seen.add(t.buffer);
      savedBytes += t.buffer.bytes;
    }
    onRecorded({ op, inputNames: [...node.inputNames], needsInputGrad: [...needs], savedBytes });
  }
  return output;
}
