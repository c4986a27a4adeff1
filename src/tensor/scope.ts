/**
 * Deterministic release: `tidy(fn)` scopes, with TensorFlow.js's semantics.
 *
 * Why this exists: a tensor's storage is released when the last tensor holding it is disposed.
 * Without dispose(), only the garbage collector's finalizer releases it, and finalizers never run
 * while a synchronous loop keeps the thread busy; wasm and GPU memory are not the collector's to
 * free at all. So a training loop that never yields would grow until it runs out of memory.
 *
 * `tidy(fn)` runs fn and then disposes every tensor created inside it, except what fn returns
 * (those move to the enclosing scope) and what was `keep()`-ed. Long-lived tensors keep
 * themselves: module parameters and buffers, `.grad`, optimizer state and masters. Graph nodes
 * recorded inside the scope that no surviving tensor can reach are released too (their saved
 * tensors hold their own references, see autograd/node.ts), so a forward in grad mode whose loss
 * is dropped without backward frees its activations at the end of the scope as well.
 *
 * Outside any tidy, tensors are released by dispose() or, as a fallback, at garbage collection.
 */
import { ValueError } from '../errors';
import { describe } from '../util/describe';

/** What a scope needs of a tensor (kept structural so this file does not import Tensor). */
export interface ScopedTensor {
  readonly isDisposed: boolean;
  readonly gradFn: ScopedNode | null;
  /** Set by keep(): the tensor outlives every scope. */
  kept: boolean;
  dispose(): void;
}

/** What a scope needs of a graph node. */
export interface ScopedNode {
  readonly seq: number;
  readonly next: readonly unknown[];
  readonly released: boolean;
  release(): void;
}

interface Scope {
  readonly name: string;
  /** Tensors created while this scope was the innermost one (and returned by inner scopes). */
  tensors: ScopedTensor[];
  /** Graph nodes recorded inside it (and passed up by inner scopes). */
  nodes: ScopedNode[];
  /** Tensors with a graph that were kept inside it: their graphs must survive the scope. */
  keptRoots: ScopedTensor[];
}

const stack: Scope[] = [];
/** > 0 while internal code creates tensors that belong to no scope (saved-tensor aliases). */
let untrackedDepth = 0;

/** The innermost scope, or null at the top level. */
function current(): Scope | null {
  return stack.length > 0 ? stack[stack.length - 1] : null;
}

/** Called by the Tensor constructor: the new tensor belongs to the innermost scope. */
export function trackTensor(t: ScopedTensor): void {
  if (untrackedDepth > 0) return;
  current()?.tensors.push(t);
}

/** Called when a graph node is recorded. */
export function trackNode(node: ScopedNode): void {
  current()?.nodes.push(node);
}

/** Runs fn with tensor tracking off: what it creates belongs to its creator (autograd's saved aliases). */
export function untracked<T>(fn: () => T): T {
  untrackedDepth++;
  try {
    return fn();
  } finally {
    untrackedDepth--;
  }
}

/**
 * Marks a tensor to outlive every scope (tf.keep): it is never disposed by tidy, only by its own
 * dispose(). Returns it. Library code keeps what it stores for later (parameters, gradients,
 * optimizer state); call it yourself for a tensor that you create inside tidy and store elsewhere.
 */
export function keep<T extends ScopedTensor>(t: T): T {
  if (!t.kept) {
    t.kept = true;
    if (t.gradFn) current()?.keptRoots.push(t);
  }
  return t;
}

/** How many tidy scopes are open (0 at the top level). */
export function scopeDepth(): number {
  return stack.length;
}

/**
 * Runs fn, then disposes every tensor created inside it except those it returns (a tensor, or
 * tensors inside the arrays, Maps, Sets and objects it returns) and those kept; the returned
 * ones belong to the enclosing scope. fn must be synchronous. If fn throws, everything it created
 * is disposed and the error propagates. `tidy(name, fn)` names the scope for error messages.
 */
export function tidy<T>(fn: () => T): T;
export function tidy<T>(name: string, fn: () => T): T;
export function tidy<T>(nameOrFn: string | (() => T), maybeFn?: () => T): T {
  const name = typeof nameOrFn === 'string' ? nameOrFn : 'tidy';
  const fn = typeof nameOrFn === 'function' ? nameOrFn : maybeFn;
  if (typeof fn !== 'function') {
    throw new ValueError('tidy', `expected a function (or a name and a function), got ${describe(fn)}`);
  }
  const scope: Scope = { name, tensors: [], nodes: [], keptRoots: [] };
  stack.push(scope);
  let result: T | undefined;
  let ok = false;
  try {
    result = fn();
    ok = true;
  } finally {
    stack.pop();
    close(scope, ok ? result : undefined);
  }
  if (result instanceof Promise) {
    throw new ValueError(
      'tidy',
      `the function of scope '${name}' returned a Promise: tidy is synchronous and has already disposed what it created; ` +
        'await outside tidy and wrap each synchronous step in its own tidy',
    );
  }
  return result as T;
}

/** Disposes a scope's tensors that do not survive, releases its unreachable nodes, passes survivors up. */
function close(scope: Scope, result: unknown): void {
  const survivors = new Set<ScopedTensor>();
  collectTensors(result, survivors, new Set());
  const parent = current();

  for (const t of scope.tensors) {
    if (survivors.has(t)) parent?.tensors.push(t);
    else if (!t.kept && !t.isDisposed) t.dispose();
  }

  // Nodes reachable from a surviving tensor's graph stay (they move up); the rest are released.
  if (scope.nodes.length > 0) {
    const firstSeq = scope.nodes[0].seq;
    const reachable = new Set<ScopedNode>();
    const pending: ScopedNode[] = [];
    const visit = (n: ScopedNode | null) => {
      if (n && n.seq >= firstSeq && !reachable.has(n)) {
        reachable.add(n);
        pending.push(n);
      }
    };
    for (const t of survivors) visit(t.gradFn);
    for (const t of scope.keptRoots) visit(t.gradFn);
    while (pending.length > 0) {
      for (const e of (pending.pop() as ScopedNode).next) if (isNode(e)) visit(e);
    }
    for (const n of scope.nodes) {
      if (reachable.has(n)) parent?.nodes.push(n);
      else if (!n.released) n.release();
    }
  }
  if (parent) for (const t of scope.keptRoots) parent.keptRoots.push(t);
}

function isNode(e: unknown): e is ScopedNode {
  return typeof e === 'object' && e !== null && typeof (e as ScopedNode).release === 'function' && typeof (e as ScopedNode).seq === 'number';
}

function isTensor(x: unknown): x is ScopedTensor {
  return typeof x === 'object' && x !== null && typeof (x as ScopedTensor).dispose === 'function' && 'kept' in x;
}

/** Finds the tensors inside a returned value: arrays, Maps, Sets and objects, any depth. */
function collectTensors(value: unknown, into: Set<ScopedTensor>, seen: Set<object>): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  if (isTensor(value)) {
    into.add(value);
    return;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return;
  seen.add(value);
  if (Array.isArray(value) || value instanceof Set) for (const v of value) collectTensors(v, into, seen);
  else if (value instanceof Map) for (const [k, v] of value) (collectTensors(k, into, seen), collectTensors(v, into, seen));
  else for (const key of Object.keys(value)) collectTensors((value as Record<string, unknown>)[key], into, seen);
}
