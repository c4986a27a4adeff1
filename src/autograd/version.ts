/**
 * Version counters of storage (PyTorch's VariableVersion): how autograd tells that a tensor a
 * node saved for its backward was overwritten since the forward.
 */
import type { BackendBuffer } from '../kernels/backend';

// Note [Version counter]
// ~~~~~~~~~~~~~~~~~~~~~~
// Every buffer's ledger has a version. A node remembers the version of each saved tensor's
// storage when it is recorded (node.ts), and the engine refuses to run its backward if the
// version moved (engine.ts, checkSavedVersions): the backward would read values the forward did
// not use, and return a wrong gradient without any error.
// So every write into existing storage that a graph may have saved must call bumpVersion on the
// destination before it writes (a write that fails halfway has still changed it; a spurious bump
// only refuses a backward, a missing one returns a wrong gradient): copy_ (ops/inplace.ts, which
// every in-place op, init, weight loading, SGD and LOMO go through), and the optimizers that
// call the in-place kernels directly (the fused adamUpdate in optim/adam.ts, and BAdam's masked
// update in optim/badam/ratio-update.ts). A kernel that writes into a buffer it has just made (cat,
// unslice, gathering a packed copy) needs no bump: nothing can have saved that buffer yet.
// The kernels themselves (kernels/registry.ts) only compute and count; they know nothing of graphs.

/** Marks the storage behind a tensor or view as modified in place: see Note [Version counter]. */
export function bumpVersion(target: { readonly buffer: BackendBuffer }): void {
  target.buffer.ledger.version++;
}
