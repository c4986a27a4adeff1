/**
 * Which backend runs the kernels. Ops ask `kernels()` for the active backend; every call is
 * counted (launches per kernel, matmul FLOPs) so that autograd.profile can report the work a
 * backward did. The counting wrapper is built once per backend, not per call.
 */
import { KERNEL_NAMES, type Backend, type MatmulShape, type View } from './backend';
import { ValueError } from '../errors';

export interface KernelCounters {
  /** Kernel launches by kernel name since the process started. */
  launches: Record<string, number>;
  /** 2·batch·m·n·k summed over matmul launches. */
  matmulFlops: number;
}

export const kernelCounters: KernelCounters = { launches: {}, matmulFlops: 0 };

function counted(backend: Backend): Backend {
  const wrapper = Object.create(backend) as Record<string, unknown>;
  for (const key of KERNEL_NAMES) {
    const method = backend[key] as (...args: unknown[]) => unknown;
    wrapper[key] = (...args: unknown[]) => {
      kernelCounters.launches[key] = (kernelCounters.launches[key] ?? 0) + 1;
      // in-place writes make saved copies of the destination stale: bump its version
      if (key === 'assign' || key === 'adamUpdate') (args[0] as View).buffer.ledger.version++;
      if (key === 'matmul') {
        const s = args[2] as MatmulShape;
        kernelCounters.matmulFlops += 2 * s.batch * s.m * s.n * s.k;
      }
      return method.apply(backend, args);
    };
  }
  return wrapper as unknown as Backend;
}

const backends = new Map<string, { raw: Backend; counted: Backend }>();
let active: Backend | null = null;
let activeName = '';
const factories = new Map<string, () => Backend>();

/** Makes a backend available under its name; the factory runs on first use. */
export function registerBackend(name: string, factory: () => Backend): void {
  factories.set(name, factory);
}

function instance(name: string): { raw: Backend; counted: Backend } {
  let entry = backends.get(name);
  if (!entry) {
    const factory = factories.get(name);
    if (!factory) {
      throw new ValueError('setBackend', `unknown backend '${name}'; registered backends: ${[...factories.keys()].join(', ')}`);
    }
    const raw = factory();
    entry = { raw, counted: counted(raw) };
    backends.set(name, entry);
  }
  return entry;
}

/** Selects the backend that new tensors and ops use. */
export function setBackend(name: string): void {
  active = instance(name).counted;
  activeName = name;
}

export function getBackendName(): string {
  if (!active) setBackend('cpu');
  return activeName;
}

/** The active backend, with kernel counting. */
export function kernels(): Backend {
  if (!active) setBackend('cpu');
  return active as Backend;
}

/** A named backend (for the buffers it owns), with kernel counting. */
export function backendByName(name: string): Backend {
  return instance(name).counted;
}
