/**
 * Initialisers (PyTorch's torch.nn.init), in place and seeded: each draws from a Generator
 * (the default one unless given) and writes into the tensor under noGrad.
 */
import { ValueError, fmtShape } from '../errors';
import { noGrad } from '../autograd/grad-mode';
import { copy_ } from '../autograd/ops/inplace';
import { reshape } from '../autograd/ops/shape';
import { defaultGenerator, type Generator } from '../tensor/random';
import { tensor } from '../tensor/creation';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';

function fill(t: Tensor, draw: () => number): Tensor {
  const values = new Float64Array(t.numel);
  for (let i = 0; i < values.length; i++) values[i] = draw();
  // drawn in double precision and rounded once, straight to the tensor's own dtype (a float64
  // temporary would round the same way, but a float32-only backend such as gpu cannot hold it)
  // tidy: the temporary (and its reshaped view) is released now, not at garbage collection
  tidy(() => noGrad(() => void copy_(t, reshape(tensor(values, { dtype: t.dtype }), t.shape))));
  return t;
}

/** U(a, b): every element drawn from [a, b). */
export function uniform_(t: Tensor, a = 0, b = 1, generator: Generator = defaultGenerator): Tensor {
  if (!(Number.isFinite(a) && Number.isFinite(b) && a <= b)) {
    throw new ValueError('uniform_', `expects a finite range with a <= b, got a = ${a}, b = ${b}`);
  }
  return fill(t, () => a + (b - a) * generator.random());
}

/** N(mean, std²). */
export function normal_(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  if (!(Number.isFinite(mean) && Number.isFinite(std) && std >= 0)) {
    throw new ValueError('normal_', `expects a finite mean and std >= 0, got mean = ${mean}, std = ${std}`);
  }
  return fill(t, () => mean + std * generator.normal());
}

export function constant_(t: Tensor, value: number): Tensor {
  tidy(() => noGrad(() => void copy_(t, value)));
  return t;
}

export const zeros_ = (t: Tensor) => constant_(t, 0);
export const ones_ = (t: Tensor) => constant_(t, 1);

/** fan_in = size(1)·receptive field, fan_out = size(0)·receptive field, as torch.nn.init. */
export function calculateFans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) {
    throw new ValueError('init', `fan in and fan out need a tensor with at least 2 dims, got shape ${fmtShape(t.shape)}`);
  }
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: 'linear' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu', param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    default:
      throw new ValueError(
        'calculateGain',
        `unsupported nonlinearity '${String(nonlinearity)}' (expected linear, sigmoid, tanh, relu or leaky_relu)`,
      );
  }
}

export interface KaimingOptions {
  a?: number;
  mode?: 'fanIn' | 'fanOut';
  nonlinearity?: 'relu' | 'leaky_relu' | 'linear' | 'tanh' | 'sigmoid';
  generator?: Generator;
}

/** U(-bound, bound) with bound = gain·√(3 / fan); PyTorch's default for Linear uses a = √5. */
export function kaimingUniform_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const { fanIn, fanOut } = calculateFans(t);
  const fan = (options.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  const bound = gain * Math.sqrt(3 / fan);
  return uniform_(t, -bound, bound, options.generator);
}

export function kaimingNormal_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const { fanIn, fanOut } = calculateFans(t);
  const fan = (options.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  return normal_(t, 0, gain / Math.sqrt(fan), options.generator);
}

export function xavierUniform_(t: Tensor, gain = 1, generator: Generator = defaultGenerator): Tensor {
  const { fanIn, fanOut } = calculateFans(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, generator);
}

export function xavierNormal_(t: Tensor, gain = 1, generator: Generator = defaultGenerator): Tensor {
  const { fanIn, fanOut } = calculateFans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), generator);
}
