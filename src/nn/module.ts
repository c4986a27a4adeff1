/**
 * Module: a tree of named parameters, buffers and child modules. Names are the dotted paths
 * that Hugging Face checkpoints use (`model.layers.3.self_attn.q_proj.weight`), because BAdam
 * partitions a model by them and state dicts must load in PyTorch and back.
 *
 * TypeScript has no __setattr__, so children and parameters are registered explicitly:
 *   this.qProj = this.registerModule('q_proj', new Linear(64, 64));
 * Registration also names each parameter tensor (`tensor.name`) by its dotted path from the top
 * module, so that profiles and errors say which weight they mean.
 */
import { BlockgradError, ValueError, fmtShape } from '../errors';
import { isFloating, type DType } from '../tensor/dtype';
import { sameShape } from '../tensor/shape';
import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { noGrad } from '../autograd/grad-mode';
import { cast } from '../autograd/ops/elementwise';
import { copy_ } from '../autograd/ops/inplace';

/** A state dict problem; lists every missing key, unexpected key and mismatch at once. */
export class StateDictError extends BlockgradError {
  constructor(
    readonly missingKeys: string[],
    readonly unexpectedKeys: string[],
    readonly mismatches: string[],
  ) {
    const parts: string[] = [];
    if (missingKeys.length) parts.push(`missing keys: ${missingKeys.join(', ')}`);
    if (unexpectedKeys.length) parts.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    if (mismatches.length) parts.push(`mismatches: ${mismatches.join('; ')}`);
    super('loadStateDict', `${parts.join('. ')}. Nothing was loaded`);
  }
}

/**
 * The name each parameter was last given automatically (by registration or nameParameters), so
 * that a later registration may update it, and a name the user set is never overwritten.
 */
const autoNames = new WeakMap<Tensor, string>();

const joinPath = (prefix: string, name: string) => (prefix === '' ? name : `${prefix}.${name}`);

/**
 * Which keys of a state dict a module lacks, and which of the module's entries (`own`) no key
 * provides. A tied tensor (lm_head.weight = embed_tokens.weight) is provided under any of its
 * names: entries are matched by storage, so aliases of the module's tensors (stateDict()) serve
 * as well as the tensors themselves. io/pretrained.ts checks a directory's headers with it.
 */
export function stateDictKeys(own: ReadonlyMap<string, Tensor>, given: readonly string[]): { missingKeys: string[]; unexpectedKeys: string[] } {
  const present = new Set(given);
  const provided = new Set(given.filter((k) => own.has(k)).map((k) => (own.get(k) as Tensor).buffer));
  return {
    missingKeys: [...own].filter(([k, t]) => !present.has(k) && !provided.has(t.buffer)).map(([k]) => k),
    unexpectedKeys: given.filter((k) => !own.has(k)),
  };
}

/** Why an entry of this shape and dtype cannot be loaded into `target`, or null (the shape, then integer against floating). */
export function stateDictEntryProblem(name: string, shape: readonly number[], dtype: DType, target: Tensor): string | null {
  if (!sameShape(shape, target.shape)) return `${name} has shape ${fmtShape(shape)} in the state dict but ${fmtShape(target.shape)} in the model`;
  if (isFloating(target.dtype) !== isFloating(dtype)) return `${name} is ${dtype} in the state dict but ${target.dtype} in the model`;
  return null;
}

/**
 * Names a parameter `path` (its path from the top module) when it has no name yet, or when its
 * automatic name was given from the top of the subtree just registered (`relative`): a subtree
 * built on its own is renamed as it is registered, while a tensor the user named, or one a
 * module registered earlier (a tied weight keeps its first path), keeps its name.
 */
function autoName(p: Tensor, path: string, relative: string): void {
  const auto = autoNames.get(p);
  if (p.name === undefined || (p.name === auto && auto === relative)) {
    p.name = path;
    autoNames.set(p, path);
  }
}

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export class Module {
  /** Dropout and similar layers behave differently in training and evaluation. */
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, { tensor: Tensor | null; persistent: boolean }>();
  private readonly children = new Map<string, Module>();
  /** The module this one was first registered under: parameter names are paths from the top of that chain. */
  private parent: Module | null = null;

  /** Adds a trainable tensor under `name` (requiresGrad on for floating tensors); returns it. */
  registerParameter<T extends Tensor | null>(name: string, tensor: T): T {
    this.checkName(name);
    if (tensor !== null && !(tensor instanceof Tensor)) {
      throw new ValueError('registerParameter', `'${name}' must be a Tensor or null, got ${typeof tensor}`);
    }
    if (tensor && !tensor.isLeaf) {
      throw new ValueError(
        'registerParameter',
        `'${name}' is a computed (non-leaf) tensor; a parameter must be a leaf: register t.detach() instead`,
      );
    }
    if (tensor) {
      if (isFloating(tensor.dtype) && tensor.isLeaf && !tensor.requiresGrad) tensor.requiresGrad_(true);
      tensor.tagMemory('weights');
    }
    this.params.set(name, tensor);
    if (tensor) autoName(tensor, joinPath(this.pathFromRoot(), name), name);
    return tensor;
  }

  /** Adds state that is not trained (e.g. rotary tables); persistent buffers go into stateDict. */
  registerBuffer<T extends Tensor | null>(name: string, tensor: T, options: { persistent?: boolean } = {}): T {
    this.checkName(name);
    if (tensor !== null && !(tensor instanceof Tensor)) {
      throw new ValueError('registerBuffer', `'${name}' must be a Tensor or null, got ${typeof tensor}`);
    }
    if (tensor) keep(tensor); // module state outlives the tidy scope it was made in
    this.buffers.set(name, { tensor, persistent: options.persistent ?? true });
    return tensor;
  }

  registerModule<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    if (!(module instanceof Module)) throw new ValueError('registerModule', `'${name}' is not a Module`);
    this.children.set(name, module);
    if (module.parent === null && (module as Module) !== this) module.parent = this;
    // name the new subtree only (not the whole tree again): each registration costs its own size
    const prefix = joinPath(this.pathFromRoot(), name);
    for (const [path, p] of module.namedParameters()) autoName(p, joinPath(prefix, path), path);
    return module;
  }

  /** This module's dotted path from the top of its chain of first registrations ('' at the top). */
  private pathFromRoot(): string {
    const parts: string[] = [];
    const seen = new Set<Module>([this]);
    for (let m: Module = this; m.parent && !seen.has(m.parent); m = m.parent) {
      seen.add(m.parent);
      for (const [name, child] of m.parent.children) {
        if (child === m) {
          parts.unshift(name);
          break;
        }
      }
    }
    return parts.join('.');
  }

  private checkName(name: string): void {
    if (typeof name !== 'string' || name === '' || name.includes('.')) {
      throw new ValueError('Module', `invalid name '${name}': names must be non-empty and contain no '.'`);
    }
    const taken = this.params.has(name) || this.buffers.has(name) || this.children.has(name);
    if (taken) throw new ValueError('Module', `'${name}' is already registered on ${this.constructor.name}`);
  }

  // ------------------------------------------------------------------ the tree

  /** Direct children with their names. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** This module ('' ) and every descendant, depth first in registration order, each once. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [child, sub] of m.children) visit(sub, name ? `${name}.${child}` : child);
    };
    visit(this, prefix);
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Dotted names and parameters in registration order; a shared parameter is listed once, under its first name. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m.params) {
        if (!p || seen.has(p)) continue;
        seen.add(p);
        out.push([prefix ? `${prefix}.${name}` : name, p]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Dotted names and buffers (persistent or not) in registration order; a shared buffer is listed once. */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, b] of m.buffers) {
        if (!b.tensor || seen.has(b.tensor)) continue;
        seen.add(b.tensor);
        out.push([prefix ? `${prefix}.${name}` : name, b.tensor]);
      }
    }
    return out;
  }

  /** The descendant at a dotted path ('' is this module). */
  getSubmodule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const next = m.children.get(part);
      if (!next) throw new ValueError('getSubmodule', `${m.constructor.name} has no submodule '${part}' (in '${path}')`);
      m = next;
    }
    return m;
  }

  /** The parameter at a dotted path. */
  getParameter(path: string): Tensor {
    const dot = path.lastIndexOf('.');
    const owner = this.getSubmodule(dot < 0 ? '' : path.slice(0, dot));
    const p = owner.params.get(path.slice(dot + 1));
    if (!p) throw new ValueError('getParameter', `no parameter '${path}'`);
    return p;
  }

  /**
   * Sets each parameter's `name` to its dotted path from this module, so that profiles, errors
   * and optimizer logs can say which weight they mean, overwriting names set by hand. Registration
   * already names parameters by their path from the top module (leaving hand-set names alone),
   * so this is needed only to rename from a module other than the top, or to reset names.
   */
  nameParameters(): this {
    for (const [name, p] of this.namedParameters()) {
      p.name = name;
      autoNames.set(p, name);
    }
    return this;
  }

  // ------------------------------------------------------------------ state

  /**
   * Every state-dict entry as [dotted name, the model's own tensor], PyTorch's order: a module's
   * parameters, then its persistent buffers, then each child's subtree. Unlike namedParameters,
   * a tied tensor or a shared module appears under every name it is reachable by (as in
   * PyTorch's state_dict), so checkpoints written with either name load.
   */
  private stateEntries(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const path = new Set<Module>(); // the modules on the current path: guards against cycles
    const visit = (m: Module, prefix: string) => {
      if (path.has(m)) return;
      path.add(m);
      const at = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [name, p] of m.params) if (p) out.push([at(name), p]);
      for (const [name, b] of m.buffers) if (b.tensor && b.persistent) out.push([at(name), b.tensor]);
      for (const [name, child] of m.children) visit(child, at(name));
      path.delete(m);
    };
    visit(this, '');
    return out;
  }

  /** Parameters and persistent buffers by dotted name (detached tensors sharing storage). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, t] of this.stateEntries()) out[name] = t.detach();
    return out;
  }

  /**
   * Copies values from a state dict into the existing tensors (cast to their dtype); the
   * tensor objects stay the same. With `strict` (default) any missing or unexpected key is an
   * error; mismatches (shape, not a tensor, disposed, integer vs floating) always are. Every
   * problem is listed in one StateDictError, and everything is checked before anything is
   * written, so a failed load changes nothing.
   */
  loadStateDict(stateDict: Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const strict = options.strict ?? true;
    if (stateDict === null || typeof stateDict !== 'object') {
      throw new ValueError('loadStateDict', `expected an object of tensors by name, got ${stateDict === null ? 'null' : typeof stateDict}`);
    }
    // a Map and own keys only: a key like 'constructor' must not match Object.prototype
    const own = new Map(this.stateEntries());
    const given = Object.keys(stateDict);
    const { missingKeys, unexpectedKeys } = stateDictKeys(own, given);
    const mismatches: string[] = [];
    const writes: [Tensor, Tensor][] = [];
    for (const k of given) {
      const target = own.get(k);
      if (!target) continue;
      const src: unknown = stateDict[k];
      const problem = !(src instanceof Tensor)
        ? `${k} is not a Tensor (got ${src === null ? 'null' : typeof src})`
        : src.isDisposed || src.buffer.released
          ? `${k} was disposed`
          : (stateDictEntryProblem(k, src.shape, src.dtype, target) ??
            (src.backend !== target.backend ? `${k} lives on backend ${src.backend} in the state dict but ${target.backend} in the model` : null));
      if (problem !== null) mismatches.push(problem);
      else writes.push([target, src as Tensor]);
    }
    if (mismatches.length > 0 || (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0))) {
      // non-strict loading tolerates missing and unexpected keys: only the mismatches are the error
      throw new StateDictError(strict ? missingKeys : [], strict ? unexpectedKeys : [], mismatches);
    }
    noGrad(() => {
      for (const [target, src] of writes) copy_(target, src);
    });
    return { missingKeys, unexpectedKeys };
  }

  // ------------------------------------------------------------------ modes and conversions

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freezes (false) or unfreezes (true) every parameter. */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }

  /** Number of parameter elements (shared parameters once); `trainableOnly` counts those requiring grad. */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    return this.parameters()
      .filter((p) => !options.trainableOnly || p.requiresGrad)
      .reduce((n, p) => n + p.numel, 0);
  }

  /** Frees every parameter's gradient (disposed now, not at garbage collection) and sets .grad to null. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Converts floating parameters and buffers to `dtype` (float32 <-> float16 <-> float64) in
   * place: the tensor objects stay the same (their storage is replaced), so references held by
   * layers and optimizers remain valid. Gradients are dropped.
   */
  to(dtype: DType): this {
    if (!isFloating(dtype)) throw new ValueError('Module.to', `can only convert to a floating dtype, got ${dtype}`);
    const tensors = [...this.parameters(), ...this.namedBuffers().map(([, b]) => b)];
    noGrad(() => {
      for (const t of tensors) {
        if (!isFloating(t.dtype) || t.dtype === dtype) continue;
        const category = t.buffer.category;
        const converted = cast(t, dtype);
        t.setData_(converted);
        converted.dispose(); // t is now the only holder of the new storage
        t.tagMemory(category);
        t.grad = null;
      }
    });
    return this;
  }

  /** Calls fn on every module in the tree (children first is not guaranteed; depth-first pre-order). */
  apply(fn: (m: Module) => void): this {
    for (const m of this.modules()) fn(m);
    return this;
  }

  /** A one-line-per-module description, like PyTorch's repr. */
  toString(): string {
    const lines: string[] = [];
    const walk = (m: Module, name: string, depth: number) => {
      const ps = [...m.params].filter(([, p]) => p).map(([n, p]) => `${n}${fmtShape((p as Tensor).shape)}`);
      lines.push(`${'  '.repeat(depth)}${name ? `(${name}): ` : ''}${m.constructor.name}${ps.length ? ` ${ps.join(' ')}` : ''}`);
      for (const [n, c] of m.children) walk(c, n, depth + 1);
    };
    walk(this, '', 0);
    return lines.join('\n');
  }
}
