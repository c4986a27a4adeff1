/**
 * Seeded randomness. `Generator` is xoshiro128** (Blackman and Vigna): four 32-bit words of
 * state, fast, good enough statistically for initialisation, dropout and shuffling, and its
 * state is four integers, so a training run can save it and resume the exact same stream.
 */
import { ValueError } from '../errors';

export interface GeneratorState {
  readonly algorithm: 'xoshiro128**';
  readonly s: readonly [number, number, number, number];
}

export class Generator {
  private s = new Uint32Array(4);

  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  /** Restarts the stream from a seed; the same seed always gives the same numbers. */
  manualSeed(seed: number): this {
    if (!Number.isFinite(seed)) throw new ValueError('manualSeed', `seed must be a finite number, got ${seed}`);
    // splitmix32 spreads one seed over the four state words (an all-zero state would be stuck).
    let x = Math.trunc(seed) >>> 0;
    const hi = Math.floor(Math.trunc(seed) / 2 ** 32) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9 + (i === 1 ? hi : 0)) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
    return this;
  }

  /** The next raw 32-bit unsigned integer. */
  nextUint32(): number {
    if (drawObserver !== null) drawObserver(this);
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits (two draws), so float64 tensors get full precision. */
  random(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal by Box-Muller; uses two uniforms per value (simple, and stateless between calls). */
  normal(): number {
    let u = this.random();
    while (u === 0) u = this.random();
    const v = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [low, high), without modulo bias. */
  randint(low: number, high: number): number {
    const range = high - low;
    if (!Number.isInteger(low) || !Number.isInteger(high) || range <= 0 || range > 2 ** 32) {
      throw new ValueError('randint', `expected integers low < high with high - low <= 2^32, got [${low}, ${high})`);
    }
    const limit = 2 ** 32 - (2 ** 32 % range);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return low + (x % range);
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(0, i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  getState(): GeneratorState {
    return { algorithm: 'xoshiro128**', s: [this.s[0], this.s[1], this.s[2], this.s[3]] };
  }

  setState(state: GeneratorState): this {
    const words = state?.s;
    if (
      state?.algorithm !== 'xoshiro128**' ||
      !Array.isArray(words) ||
      words.length !== 4 ||
      !words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) ||
      words.every((w) => w === 0)
    ) {
      throw new ValueError('Generator.setState', 'expected { algorithm: "xoshiro128**", s: four uint32 words, not all zero }');
    }
    this.s.set(words);
    return this;
  }
}

/**
 * Told of every draw, before it changes the state, while set: checkpoint() notes each
 * generator's state at its region's first draw, so that the recomputation draws the same numbers
 * (the same dropout masks).
 */
let drawObserver: ((generator: Generator) => void) | null = null;

/** Runs fn with `observer` told of every draw from any Generator. */
export function observeDraws<T>(observer: (generator: Generator) => void, fn: () => T): T {
  const outer = drawObserver;
  drawObserver = outer ? (g) => (outer(g), observer(g)) : observer;
  try {
    return fn();
  } finally {
    drawObserver = outer;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The generator that creation functions and dropout use when none is passed. */
export const defaultGenerator = new Generator(0);

/** Seeds the default generator (PyTorch's torch.manual_seed). */
export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}
