/**
 * Independent float64 references for the optimizer tests: plain-JS loops written from PyTorch's
 * documented algorithms (no blockgrad code), and a small linear-regression problem whose
 * gradient is derived by hand.
 */
import { Tensor, matmul, mean, mul, neg, sub, add, tensor } from '../../src';

export interface SgdRefOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

/** torch.optim.SGD for one flat parameter; step(x, g) updates x in place. */
export function sgdRef(h: SgdRefOptions) {
  const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false, maximize = false } = h;
  let buf: number[] | null = null;
  return (x: number[], grad: number[], lrNow = lr): void => {
    const g = grad.map((v, i) => (maximize ? -v : v) + weightDecay * x[i]);
    let d = g;
    if (momentum !== 0) {
      if (buf === null) buf = [...g];
      else buf = buf.map((b, i) => momentum * b + (1 - dampening) * g[i]);
      const bb = buf;
      d = nesterov ? g.map((v, i) => v + momentum * bb[i]) : bb;
    }
    for (let i = 0; i < x.length; i++) x[i] -= lrNow * d[i];
  };
}

export interface AdamRefOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
  decoupled?: boolean;
}

/** torch.optim.Adam / AdamW for one flat parameter (textbook form: m = β1·m + (1-β1)·g). */
export function adamRef(h: AdamRefOptions) {
  const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0, amsgrad = false, maximize = false, decoupled = false } = h;
  const [b1, b2] = betas;
  let t = 0;
  let m: number[] | null = null;
  let v: number[] | null = null;
  let vmax: number[] | null = null;
  return (x: number[], grad: number[], lrNow = lr): void => {
    t++;
    m ??= grad.map(() => 0);
    v ??= grad.map(() => 0);
    vmax ??= grad.map(() => 0);
    for (let i = 0; i < x.length; i++) {
      let g = maximize ? -grad[i] : grad[i];
      if (weightDecay !== 0) {
        if (decoupled) x[i] *= 1 - lrNow * weightDecay;
        else g += weightDecay * x[i];
      }
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      vmax[i] = Math.max(vmax[i], v[i]);
      const mHat = m[i] / (1 - b1 ** t);
      const vHat = (amsgrad ? vmax[i] : v[i]) / (1 - b2 ** t);
      x[i] -= (lrNow * mHat) / (Math.sqrt(vHat) + eps);
    }
  };
}

/** Linear regression: 8 points in 3 features; loss = mean((X·w + b - y)²). */
export const X = Array.from({ length: 8 }, (_, i) => [Math.sin(i + 1), Math.cos(2 * i + 0.5), (i - 3.5) / 4]);
export const Y = X.map((r, i) => 0.7 * r[0] - 1.3 * r[1] + 0.4 * r[2] + 0.25 + 0.05 * Math.sin(7 * i));
export const W0 = [0.3, -0.2, 0.5];
export const B0 = [0.1];

/** The loss built from blockgrad ops (so its gradient comes from the autograd engine). */
export function regressionLoss(w: Tensor, b: Tensor, sign = 1): Tensor {
  const x = tensor(X, { dtype: w.dtype });
  const y = tensor(Y, { dtype: w.dtype });
  const r = sub(add(matmul(x, w), b), y);
  const loss = mean(mul(r, r));
  return sign === 1 ? loss : neg(loss);
}

/** d loss / d w and d loss / d b, derived by hand: 2/n · Xᵀr and 2/n · Σr (times sign). */
export function regressionGrad(w: number[], b: number[], sign = 1): { gw: number[]; gb: number[] } {
  const n = X.length;
  const r = X.map((row, i) => row[0] * w[0] + row[1] * w[1] + row[2] * w[2] + b[0] - Y[i]);
  const gw = [0, 1, 2].map((j) => (sign * 2 * X.reduce((s, row, i) => s + r[i] * row[j], 0)) / n);
  const gb = [(sign * 2 * r.reduce((s, x) => s + x, 0)) / n];
  return { gw, gb };
}

/**
 * Takes `steps` (20) steps of `opt` on the regression problem from W0, B0 beside two copies of a
 * plain-number reference update (`makeRef()`, one per parameter) from the same start, and checks
 * w and b against it to `rel` after every step (or, with `everyStep: false`, after the last).
 */
export function followReference(
  opt: { zeroGrad(): void; step(): void },
  w: Tensor,
  b: Tensor,
  makeRef: () => (x: number[], grad: number[]) => void,
  options: { rel: number; sign?: number; steps?: number; everyStep?: boolean },
): void {
  const { rel, sign = 1, steps = 20, everyStep = true } = options;
  const rw = [...W0];
  const rb = [...B0];
  const refW = makeRef();
  const refB = makeRef();
  const check = (what: string) => {
    expectRel(Array.from(w.toTypedArray() as ArrayLike<number>), rw, rel, `w ${what}`);
    expectRel(Array.from(b.toTypedArray() as ArrayLike<number>), rb, rel, `b ${what}`);
  };
  for (let step = 0; step < steps; step++) {
    opt.zeroGrad();
    regressionLoss(w, b, sign).backward();
    opt.step();
    const { gw, gb } = regressionGrad(rw, rb, sign);
    refW(rw, gw);
    refB(rb, gb);
    if (everyStep) check(`at step ${step + 1}`);
  }
  if (!everyStep) check(`after ${steps} steps`);
}

/** |a - e| <= rel·|e| (+ a 1e-300 floor), naming the first element that is off. */
export function expectRel(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what = ''): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!(Math.abs(a - e) <= rel * Math.abs(e) + 1e-300)) {
      throw new Error(`${what} element ${i}: got ${a}, expected ${e} (relative tolerance ${rel})`);
    }
  }
}
