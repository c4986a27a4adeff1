/**
 * gradcheck: compares the engine's gradients with central differences
 *   ∂f/∂x_i ≈ (f(x + ε·e_i) - f(x - ε·e_i)) / 2ε
 * in float64. The function's output may be any shape: we check the gradient of Σ w·f(x) for a
 * fixed random weight w, which exercises every output element (a plain sum would hide errors
 * that cancel).
 *
 * gradgradcheck: the same comparison one order up (PyTorch's torch.autograd.gradgradcheck). The
 * function checked is x, v ↦ the first derivatives of fn at x against the output gradient v,
 * computed with createGraph, so that the engine differentiates the recorded backward; central
 * differences of those first derivatives are the reference.
 */
import { ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { tensor, zeros } from '../tensor/creation';
import { Generator } from '../tensor/random';
import { enableGrad, isGradEnabled, noGrad } from './grad-mode';
import { grad } from './engine';
import { mul } from './ops/elementwise';
import { sum } from './ops/reduce';
import { cat, reshape } from './ops/shape';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Seed for the output weighting (and, in gradgradcheck, for the output gradient). */
  seed?: number;
}

export interface GradcheckResult {
  ok: boolean;
  /** Largest |analytic - numeric| seen, and where. */
  maxAbsError: number;
  /**
   * The entry furthest from (or past) its tolerance. In gradgradcheck, `input` equal to the number
   * of inputs means the output gradient (the backward's incoming gradient).
   */
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

/**
 * Checks fn's gradients with respect to every input that requires grad. Inputs must be float64
 * (finite differences in float32 are too noisy to mean anything). Throws with the worst
 * mismatch unless all agree within atol + rtol·|numeric|.
 */
export function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): GradcheckResult {
  const checked = checkedInputs('gradcheck', inputs);
  const result = compare(fn, inputs, checked, options);
  if (!result.ok && result.worst) {
    const w = result.worst;
    throw new ValueError(
      'gradcheck',
      `gradient mismatch for input ${w.input} at flat index ${w.index}: analytic ${w.analytic}, numeric ${w.numeric} ${tolerances(options)}`,
    );
  }
  return result;
}

/**
 * Checks fn's second derivatives: the gradient, with respect to every input that requires grad
 * and to the output gradient v, of fn's first derivatives (computed with createGraph, so that
 * the engine differentiates each op's backward), against central differences of those first
 * derivatives. It fails where a backward is not itself differentiated correctly: a term computed
 * outside the graph (a detached tensor, a raw kernel), a wrong derivative of the derivative.
 * Inputs must be float64; v is random (seeded). Throws with the worst mismatch, as gradcheck.
 */
export function gradgradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): GradcheckResult {
  const checked = checkedInputs('gradgradcheck', inputs);
  const probe = noGrad(() => fn(...inputs));
  if (!(probe instanceof Tensor)) throw new ValueError('gradgradcheck', `fn returned ${typeof probe}; it must return a Tensor`);
  const gen = new Generator((options.seed ?? 1234) + 1);
  const v = reshape(tensor(Array.from({ length: probe.numel }, () => gen.normal()), { dtype: 'float64' }), probe.shape).requiresGrad_(true);

  // x, v ↦ the first derivatives with respect to the checked inputs, flattened into one vector.
  // The analytic pass calls it in grad mode with the inputs themselves: createGraph records the
  // backward. The numeric passes call it under noGrad with perturbed copies that require no
  // grad: they become fresh leaves here, and a plain backward computes the first derivatives.
  const firstDerivatives = (...args: Tensor[]): Tensor => {
    const createGraph = isGradEnabled();
    const gradOutput = args[inputs.length];
    return enableGrad(() => {
      const xs = args.slice(0, inputs.length).map((x, i) => (checked.includes(i) && !x.requiresGrad ? x.detach().requiresGrad_(true) : x));
      const out = fn(...xs);
      const targets = checked.map((i) => xs[i]);
      const grads = out.requiresGrad ? grad(out, targets, { gradOutputs: [gradOutput], createGraph, allowUnused: true }) : [];
      const flat = targets.map((x, k) => reshape(grads[k] ?? zeros(x.shape, { dtype: x.dtype }), [-1]));
      return flat.length === 1 ? flat[0] : cat(flat);
    });
  };

  const result = compare(firstDerivatives, [...inputs, v], [...checked, inputs.length], options);
  if (!result.ok && result.worst) {
    const w = result.worst;
    const which = w.input === inputs.length ? 'the output gradient' : `input ${w.input}`;
    throw new ValueError(
      'gradgradcheck',
      `second-derivative mismatch for ${which} at flat index ${w.index}: analytic ${w.analytic}, numeric ${w.numeric} ${tolerances(options)}; ` +
        'the derivative of some backward in fn is wrong: check that each backward computes its gradients from its inputs with ' +
        'differentiable ops (nothing detached, no raw kernels); gradcheck tells whether the first derivatives themselves are right',
    );
  }
  return result;
}

function tolerances(options: GradcheckOptions): string {
  return `(atol ${options.atol ?? 1e-5}, rtol ${options.rtol ?? 1e-3})`;
}

/** The indices of the inputs that require grad, which must be float64 (and be at least one). */
function checkedInputs(op: string, inputs: Tensor[]): number[] {
  inputs.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new ValueError(op, `input ${i} is ${t === null ? 'null' : typeof t}, not a Tensor`);
    if (t.requiresGrad && t.dtype !== 'float64') {
      throw new ValueError(op, `input ${i} is ${t.dtype}; ${op} needs float64 inputs for meaningful finite differences`);
    }
  });
  const checked = inputs.map((t, i) => (t.requiresGrad ? i : -1)).filter((i) => i >= 0);
  if (checked.length === 0) throw new ValueError(op, 'no input requires grad: nothing to check');
  return checked;
}

/** The engine's gradient of Σ w·fn(x) against central differences, for the inputs `checked`. */
function compare(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], checked: number[], options: GradcheckOptions): GradcheckResult {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  const probe = noGrad(() => fn(...inputs));
  const gen = new Generator(options.seed ?? 1234);
  const weight = tensor(Array.from({ length: probe.numel }, () => gen.random() + 0.5), { dtype: 'float64' });
  const weightShaped = reshape(weight, probe.shape);
  const objective = (...xs: Tensor[]) => sum(mul(fn(...xs), weightShaped));

  const analytic = grad(objective(...inputs), checked.map((i) => inputs[i]), { allowUnused: true });

  let maxAbsError = 0;
  let worst: GradcheckResult['worst'] = null;
  let ok = true;
  let worstRatio = -1;
  checked.forEach((inputIndex, k) => {
    const x = inputs[inputIndex];
    const values = Float64Array.from(x.toTypedArray() as Float64Array);
    const analyticValues = analytic[k] ? (analytic[k] as Tensor).toTypedArray() : new Float64Array(values.length);
    for (let j = 0; j < values.length; j++) {
      const at = (v: number) => {
        const perturbed = Float64Array.from(values);
        perturbed[j] = v;
        const xs = inputs.map((t, i) => (i === inputIndex ? reshape(tensor(perturbed, { dtype: 'float64' }), x.shape) : t));
        return noGrad(() => objective(...xs).item());
      };
      const numeric = (at(values[j] + eps) - at(values[j] - eps)) / (2 * eps);
      const a = analyticValues[j];
      const err = Number.isNaN(a - numeric) ? Infinity : Math.abs(a - numeric);
      const allowed = atol + rtol * Math.abs(numeric);
      if (!(err <= allowed)) ok = false;
      // remember the entry closest to (or furthest past) its tolerance
      if (worst === null || err / allowed > worstRatio) {
        worstRatio = err / allowed;
        worst = { input: inputIndex, index: j, analytic: a, numeric };
      }
      maxAbsError = Math.max(maxAbsError, err);
    }
  });
  return { ok, maxAbsError, worst };
}
