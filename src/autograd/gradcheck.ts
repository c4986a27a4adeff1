/**
 * gradcheck: compares the engine's gradients with central differences
 *   ∂f/∂x_i ≈ (f(x + ε·e_i) - f(x - ε·e_i)) / 2ε
 * in float64. The function's output may be any shape: we check the gradient of Σ w·f(x) for a
 * fixed random weight w, which exercises every output element (a plain sum would hide errors
 * that cancel).
 */
import { ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { tensor } from '../tensor/creation';
import { Generator } from '../tensor/random';
import { noGrad } from './grad-mode';
import { grad } from './engine';
import { mul } from './ops/elementwise';
import { sum } from './ops/reduce';
import { reshape } from './ops/shape';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Seed for the output weighting. */
  seed?: number;
}

export interface GradcheckResult {
  ok: boolean;
  /** Largest |analytic - numeric| seen, and where. */
  maxAbsError: number;
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

/**
 * Checks fn's gradients with respect to every input that requires grad. Inputs must be float64
 * (finite differences in float32 are too noisy to mean anything). Throws with the worst
 * mismatch unless all agree within atol + rtol·|numeric|.
 */
export function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): GradcheckResult {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  inputs.forEach((t, i) => {
    if (t.requiresGrad && t.dtype !== 'float64') {
      throw new ValueError('gradcheck', `input ${i} is ${t.dtype}; gradcheck needs float64 inputs for meaningful finite differences`);
    }
  });
  const checked = inputs.map((t, i) => (t.requiresGrad ? i : -1)).filter((i) => i >= 0);
  if (checked.length === 0) throw new ValueError('gradcheck', 'no input requires grad: nothing to check');

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
  if (!ok && worst) {
    const w = worst as NonNullable<GradcheckResult['worst']>;
    throw new ValueError(
      'gradcheck',
      `gradient mismatch for input ${w.input} at flat index ${w.index}: analytic ${w.analytic}, numeric ${w.numeric} (atol ${atol}, rtol ${rtol})`,
    );
  }
  return { ok, maxAbsError, worst };
}
