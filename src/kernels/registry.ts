/**
 * Which backend runs the kernels. Ops ask `kernels()` for the active backend; every call is
 * counted (launches per kernel, matmul FLOPs) so that autograd.profile can report the work a
 * backward did. The counting wrapper is built once per backend, not per call.
 */
import { KERNEL_NAMES, type Backend, type BackendBuffer, type BackendInfo, type MatmulShape, type View } from './backend';
import { BackendError, DisposedError, ValueError, fmtShape } from '../errors';

export interface KernelCounters {
  /** Kernel launches by kernel name since the process started. */
  launches: Record<string, number>;
  /** 2·batch·m·n·k summed over matmul launches. */
  matmulFlops: number;
}

export const kernelCounters: KernelCounters = { launches: {}, matmulFlops: 0 };

/** The op a kernel call serves, for error messages: the elementwise kernels name it in their first argument. */
function opName(kernel: string, args: readonly unknown[]): string {
  return (kernel === 'unary' || kernel === 'binary') && typeof args[0] === 'string' ? args[0] : kernel;
}

/** The buffer behind a kernel argument (a view or a buffer), or null for other arguments. */
function bufferOf(arg: unknown): BackendBuffer | null {
  if (typeof arg !== 'object' || arg === null) return null;
  if ('ledger' in arg) return arg as BackendBuffer;
  if ('buffer' in arg && 'strides' in arg) return (arg as View).buffer;
  return null;
}

/**
 * Refuses, with a typed error, an operand whose storage was released (a disposed tensor, or one
 * disposed by the end of its tidy scope) or that lives on another backend (a gpu tensor after
 * setBackend('cpu')): the kernels themselves would fail deep inside with an untyped error.
 */
function checkOperands(backend: Backend, kernel: string, args: readonly unknown[]): void {
  for (const arg of args) {
    const buf = bufferOf(arg);
    if (buf === null) continue;
    const shape = 'shape' in (arg as object) ? ` of shape ${fmtShape((arg as View).shape)}` : ` of ${buf.length} elements`;
    if (buf.released || (arg as { isDisposed?: boolean }).isDisposed === true) {
      throw new DisposedError(
        opName(kernel, args),
        `an operand${shape} (${buf.dtype}) was disposed (by dispose() or at the end of the tidy scope that created it) before this call; ` +
          'use tensors only while they are alive: keep() one that must outlive its scope, or compute with it before disposing it',
      );
    }
    if (buf.backend !== backend.name) {
      throw new BackendError(
        opName(kernel, args),
        `an operand${shape} lives on backend '${buf.backend}' but the active backend is '${backend.name}'; ` +
          `create tensors after setBackend('${backend.name}') (tensor(t.toArray()) copies one over), or compute on '${buf.backend}' with setBackend('${buf.backend}')`,
      );
    }
  }
}

function counted(backend: Backend): Backend {
  const wrapper = Object.create(backend) as Record<string, unknown>;
  for (const key of KERNEL_NAMES) {
    const method = backend[key] as (...args: unknown[]) => unknown;
    wrapper[key] = (...args: unknown[]) => {
      checkOperands(backend, key, args);
      kernelCounters.launches[key] = (kernelCounters.launches[key] ?? 0) + 1;
      if (key === 'matmul') {
        const s = args[2] as MatmulShape;
        kernelCounters.matmulFlops += 2 * s.batch * s.m * s.n * s.k;
      }
      return method.apply(backend, args);
    };
  }
  return wrapper as unknown as Backend;
}

/** Options a backend's factory takes (the gpu backend: `{ mode }`). */
export type BackendOptions = Readonly<Record<string, unknown>>;

interface Entry {
  raw: Backend;
  counted: Backend;
  /** The options it was made with, as JSON, to tell whether a setBackend call asks for another one. */
  optionsKey: string;
}

const backends = new Map<string, Entry>();
let active: Backend | null = null;
let activeName = '';
const factories = new Map<string, (options: BackendOptions) => Backend>();

/** Makes a backend available under its name; the factory runs on first use. */
export function registerBackend(name: string, factory: (options: BackendOptions) => Backend): void {
  factories.set(name, factory);
}

/** The backends that can be selected (whether they work here is for setBackend to tell). */
export function listBackends(): string[] {
  return [...factories.keys()];
}

/**
 * The backend registered as `name`, made on first use. With options that differ from those of
 * the existing instance, a new instance replaces it (its buffers stay counted until released, and
 * kernels refuse them); without options, the existing instance is kept.
 */
function instance(name: string, options?: BackendOptions): Entry {
  const optionsKey = JSON.stringify(options ?? {});
  let entry = backends.get(name);
  if (entry && (options === undefined || (entry.raw.accepts ? entry.raw.accepts(options) : entry.optionsKey === optionsKey))) return entry;
  const factory = factories.get(name);
  if (!factory) {
    throw new ValueError('setBackend', `unknown backend '${name}'; registered backends: ${[...factories.keys()].join(', ')}`);
  }
  const raw = factory(options ?? {});
  entry?.raw.dispose?.();
  entry = { raw, counted: counted(raw), optionsKey };
  backends.set(name, entry);
  if (activeName === name) active = entry.counted;
  return entry;
}

/**
 * Selects the backend that new tensors and ops use. `setBackend('gpu')` lets gpu.js choose its
 * mode; `setBackend('gpu', { mode: 'webasm' })` forces one, and fails with a BackendError naming
 * what is missing when that mode is not available here.
 */
export function setBackend(name: string, options?: BackendOptions): void {
  active = instance(name, options).counted;
  activeName = name;
}

/** What the active backend (or the one named) really runs: its mode, precision and limits. */
export function backendInfo(name?: string): BackendInfo {
  return instance(name ?? getBackendName()).raw.info();
}

/** The backends to try, in order, when nothing was selected; the first that starts becomes active. */
let defaultCandidates: () => string[] = () => ['cpu'];

/** Sets the order of backends tried when no setBackend call came first (see kernels/index.ts). */
export function setDefaultBackends(candidates: () => string[]): void {
  defaultCandidates = candidates;
}

/** Activates the first default candidate that starts (a candidate failing with a BackendError is skipped). */
function activateDefault(): void {
  const names = defaultCandidates();
  for (const [i, name] of names.entries()) {
    try {
      setBackend(name);
      return;
    } catch (e) {
      if (!(e instanceof BackendError) || i === names.length - 1) throw e;
    }
  }
}

export function getBackendName(): string {
  if (!active) activateDefault();
  return activeName;
}

/** The active backend, with kernel counting. */
export function kernels(): Backend {
  if (!active) activateDefault();
  return active as Backend;
}

/** A named backend (for the buffers it owns), with kernel counting. */
export function backendByName(name: string): Backend {
  return instance(name).counted;
}
