/**
 * The gpu.js side of the gpu backend: one `GPU` instance in one mode, a cache of compiled kernels
 * keyed by their shape signature, and the device data those kernels produce.
 *
 * Every kernel here has a one-dimensional output of `n` float32 values (gpu.js packs it into a
 * 2-D texture on the GL modes). Kernels are written as JavaScript source strings, generated per
 * shape so that loop bounds and strides are constants the shader compiler can see; values that
 * change from call to call (offsets, learning rates) travel in a small `h` array argument instead,
 * so that changing them never recompiles anything.
 */
import type { GPU, IKernelRunShortcut, Texture } from 'gpu.js';
import { gpuJs } from './gpujs';
import { BackendError } from '../../errors';
import { GPU_MODES, autoMode, missingFor, type GpuMode } from './modes';
import type { BackendInfo } from '../backend';

/** What a kernel returns: a texture on the GL modes (stays on the device), a typed array otherwise. */
export type DeviceData = Texture | Float32Array;

/**
 * The largest buffer the gpu backend addresses. Shaders compute flat indices in float32
 * arithmetic (GLSL ES 1.0 has no exact integers), which is exact for integers below 2^24.
 */
export const MAX_ELEMENTS = 2 ** 24;


/** Compiled kernels kept at once (a training step of the demo's Llama uses about 120). */
export const MAX_CACHED_KERNELS = 256;

/** Source and output length of a kernel, built only on a cache miss. */
export interface KernelSpec {
  /** A `function (...) { ... }` in gpu.js's JavaScript subset. */
  source: string;
  /** Output length (number of threads). */
  output: number;
}

/** Helper functions every kernel may call (gpu.js compiles only those a kernel uses). */
const HELPERS: string[] = [
  // |x| (a > 0) rounded to `bits` bits after its leading one, ties to even; exponents below eMin
  // round at eMin's spacing (subnormals). The exponent from log2 is corrected both ways, since
  // log2 may be off by an ulp near a power of two
  `function roundMagnitude(a, eMin, bits) {
    let e = Math.floor(Math.log2(a));
    if (Math.pow(2, e) > a) { e = e - 1; }
    if (Math.pow(2, e + 1) <= a) { e = e + 1; }
    if (e < eMin) { e = eMin; }
    const q = Math.pow(2, e - bits);
    const y = a / q;
    let r = Math.floor(y + 0.5);
    if (r - y == 0.5) { if (r - 2 * Math.floor(r / 2) == 1) { r = r - 1; } }
    return r * q;
  }`,
  // round a float32 to the nearest float16 value, ties to even (float16 storage): 10 bits,
  // subnormals below 2^-14, Infinity from halfway past 65504
  `function roundHalf(x) {
    const a = Math.abs(x);
    if (a >= 65520) { return x * 1e30 * 1e30; }
    if (a <= 2.9802322387695312e-8) { return x * 0; }
    let s = 1;
    if (x < 0) { s = -1; }
    return s * roundMagnitude(a, -14.0, 10.0);
  }`,
  // round a float32 to the nearest bfloat16 value, ties to even (bfloat16 storage): 7 bits at any
  // exponent, Infinity from halfway past the largest bfloat16; values below float32's normal
  // range are kept as they are (GL float32 flushes them anyway)
  `function roundBFloat16(x) {
    const a = Math.abs(x);
    if (a >= 3.3961775292304957e38) { return x * 1e30 * 1e30; }
    if (a < 1.1754943508222875e-38) { return x; }
    let s = 1;
    if (x < 0) { s = -1; }
    return s * roundMagnitude(a, -126.0, 7.0);
  }`,
  // float to int32 the way a typed array stores it: toward zero, NaN and infinities to 0
  `function truncInt(x) {
    if (!(x < 0 || x >= 0) || Math.abs(x) > 3e38) { return 0; }
    if (x < 0) { return -Math.floor(-x); }
    return Math.floor(x);
  }`,
  // x ** p with JavaScript's rules for a negative base and an integer exponent, 0 ** 0, 0 to a
  // negative power and NaN (GLSL's pow is undefined for all of these)
  `function powJs(x, p) {
    if (p == 0) { return 1; }
    if (!(x < 0 || x >= 0) || !(p < 0 || p >= 0)) { return x + p; }
    if (x == 0 && p < 0) { return 1 / Math.abs(x); }
    if (p == 2) { return x * x; }
    const r = Math.pow(Math.abs(x), p);
    if (x < 0) {
      if (Math.floor(p) != p) { return (x - x) / (x - x); }
      if (Math.abs(p - 2 * Math.floor(p / 2)) == 1) { return -r; }
    }
    return r;
  }`,
  // erf(x), Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32's resolution near 1)
  `function erfApprox(x) {
    const a = Math.abs(x);
    const t = 1 / (1 + 0.3275911 * a);
    const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    const y = 1 - poly * Math.exp(-a * a);
    if (x < 0) { return -y; }
    return y;
  }`,
  // tanh without overflow (GLSL ES 1.0 has none; exp(2x) overflows past x ~ 44)
  `function tanhSafe(x) {
    if (!(x < 0 || x >= 0)) { return x; }
    const a = Math.min(Math.abs(x), 20);
    const e = Math.exp(-2 * a);
    const t = (1 - e) / (1 + e);
    if (x < 0) { return -t; }
    return t;
  }`,
  `function sigmoidSafe(x) {
    if (x >= 0) { return 1 / (1 + Math.exp(-x)); }
    const e = Math.exp(x);
    return e / (1 + e);
  }`,
];

export class GpuRuntime {
  readonly mode: GpuMode;
  private readonly gpu: GPU;
  private readonly cache = new Map<string, IKernelRunShortcut>();
  private readonly usesTextures: boolean;

  /** `requested` undefined lets gpu.js choose (GL where it works, else webasm, else cpu). */
  constructor(requested?: GpuMode) {
    const { GPU } = gpuJs('setBackend'); // before anything else: without gpu.js, say what to install
    if (requested !== undefined) {
      if (!GPU_MODES.includes(requested)) {
        throw new BackendError('setBackend', `unknown gpu mode '${String(requested)}'; modes: ${GPU_MODES.join(', ')}`);
      }
      const missing = missingFor(requested);
      if (missing) throw new BackendError('setBackend', `gpu mode '${requested}' is not available: ${missing}`);
    }
    // the automatic choice is made here, in gpu.js's own order, so that the mode reported is the
    // mode that runs
    this.mode = requested ?? autoMode();
    this.gpu = new GPU({ mode: this.mode });
    for (const source of HELPERS) this.gpu.addFunction(source as unknown as Parameters<GPU['addFunction']>[0]);
    this.usesTextures = this.mode === 'headlessgl' || this.mode === 'webgl2' || this.mode === 'webgl';
  }

  /**
   * Runs the kernel cached under `key` (compiling `spec()` on a miss) and returns its output.
   *
   * The cache is least-recently-used and bounded: on the GL modes a compiled gpu.js kernel keeps
   * its own render-target texture (one output's worth of device memory, outside the memory
   * accounting) and uploaded copies of array arguments, so an unbounded cache would grow with every
   * shape a program ever used. Evicting destroys the kernel; textures it returned earlier are
   * reference-counted by gpu.js and stay valid for the tensors that hold them.
   */
  run(key: string, spec: () => KernelSpec, args: readonly unknown[]): DeviceData {
    let kernel = this.cache.get(key);
    if (kernel) {
      // most recently used last: a Map iterates in insertion order
      this.cache.delete(key);
      this.cache.set(key, kernel);
    } else {
      const { source, output } = spec();
      kernel = this.gpu.createKernel(source, {
        output: [output],
        pipeline: true,
        immutable: true,
        precision: 'single',
        tactic: 'precision',
      });
      // loop bounds are constants written into the source; this only lifts gpu.js's default cap
      kernel.setLoopMaxIterations(MAX_ELEMENTS);
      this.cache.set(key, kernel);
      if (this.cache.size > MAX_CACHED_KERNELS) {
        const [oldestKey, oldest] = this.cache.entries().next().value as [string, IKernelRunShortcut];
        this.cache.delete(oldestKey);
        oldest.destroy();
      }
    }
    return (kernel as unknown as (...a: unknown[]) => DeviceData)(...args);
  }

  /** Puts host values on the device (a texture on the GL modes, so later kernels need no upload). */
  toDevice(values: Float32Array): DeviceData {
    if (!this.usesTextures || values.length === 0) return values;
    return this.run(`upload:${values.length}`, () => ({ source: 'function(x) { return x[this.thread.x]; }', output: values.length }), [values]);
  }

  /** The device data as a host array (a texture is read back; a host array is returned as is). */
  toHost(data: DeviceData): Float32Array {
    if (data instanceof Float32Array) return data;
    const out = data.toArray() as unknown;
    return out instanceof Float32Array ? out : Float32Array.from(out as ArrayLike<number>);
  }

  /** Frees a texture (host arrays go with the garbage collector). */
  free(data: DeviceData): void {
    if (!(data instanceof Float32Array)) data.delete();
  }

  /** The largest texture side on the GL modes (null elsewhere). */
  get maxTextureSize(): number | null {
    if (!this.usesTextures) return null;
    const limits = (this.gpu as unknown as { Kernel?: { features?: { maxTextureSize?: number } } }).Kernel?.features;
    return limits?.maxTextureSize ?? null;
  }

  /**
   * The largest buffer, in elements: 2^24 (exact float32 indices), or fewer where a square texture
   * of the device's largest side holds fewer (gpu.js packs a buffer into a near-square texture).
   */
  get maxElements(): number {
    const side = this.maxTextureSize;
    return side === null ? MAX_ELEMENTS : Math.min(MAX_ELEMENTS, side * side);
  }

  info(): BackendInfo {
    return {
      backend: 'gpu',
      mode: this.mode,
      precision: 'single',
      maxTextureSize: this.maxTextureSize,
      maxElements: this.maxElements,
      kernelsCompiled: this.cache.size,
    };
  }

  /** Destroys every compiled kernel and the gpu.js instance. */
  destroy(): void {
    for (const kernel of this.cache.values()) kernel.destroy();
    this.cache.clear();
    this.gpu.destroy();
  }
}
