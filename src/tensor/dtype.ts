/**
 * The five storage types. float16 (IEEE binary16) and bfloat16 (the top half of a float32: its
 * range, 8 bits of precision) are stored as raw bits in a Uint16Array and computed in float32
 * (see float16.ts, bfloat16.ts and half.ts); int32 is for indices, labels and masks.
 */
export type DType = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int32';

export const DTYPES: readonly DType[] = ['float64', 'float32', 'float16', 'bfloat16', 'int32'];

/** The typed array that holds each dtype's storage. */
export type StorageArray = Float64Array | Float32Array | Uint16Array | Int32Array;
/** The typed array that kernels compute on: the 16-bit floats are widened to float32 first. */
export type ComputeArray = Float64Array | Float32Array | Int32Array;

export const DEFAULT_DTYPE: DType = 'float32';

export function itemSize(dtype: DType): number {
  switch (dtype) {
    case 'float64':
      return 8;
    case 'float32':
    case 'int32':
      return 4;
    case 'float16':
    case 'bfloat16':
      return 2;
  }
}

export function isFloating(dtype: DType): boolean {
  return dtype !== 'int32';
}

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

/** The typed array that kernels compute in for a dtype (the 16-bit floats compute in float32). */
export function computeArrayFor(dtype: DType, length: number): ComputeArray {
  switch (dtype) {
    case 'float64':
      return new Float64Array(length);
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return new Float32Array(length);
    case 'int32':
      return new Int32Array(length);
  }
}

const RANK: Record<DType, number> = { int32: 0, float16: 1, bfloat16: 1, float32: 2, float64: 3 };

/**
 * PyTorch's type promotion between two tensors: int32 < float16, bfloat16 < float32 < float64,
 * and float16 with bfloat16 gives float32 (neither holds the other: float16 has the precision,
 * bfloat16 the range).
 */
export function promoteTypes(a: DType, b: DType): DType {
  if (RANK[a] === RANK[b] && a !== b) return 'float32';
  return RANK[a] >= RANK[b] ? a : b;
}

/** The 16-bit floating dtypes: stored as bits, computed in float32. */
export type HalfDType = 'float16' | 'bfloat16';

export function isHalf(dtype: DType): dtype is HalfDType {
  return dtype === 'float16' || dtype === 'bfloat16';
}

/**
 * Promotion between a tensor and a plain JS number (PyTorch's "wrapped number" rule): the
 * tensor's dtype wins, except that an int32 tensor combined with a non-integer becomes float32.
 */
export function promoteWithScalar(dtype: DType, scalar: number): DType {
  if (dtype === 'int32' && !Number.isInteger(scalar)) return DEFAULT_DTYPE;
  return dtype;
}

/** The floating dtype an op computes in when its input may be int32 (division, exp, mean...). */
export function floatingOf(dtype: DType): DType {
  return isFloating(dtype) ? dtype : DEFAULT_DTYPE;
}

/**
 * The most negative finite value of a dtype: torch.finfo(dtype).min for the floating dtypes
 * (−65504 for float16, −(2 − 2⁻⁷)·2¹²⁷ for bfloat16, −(2 − 2⁻²³)·2¹²⁷ for float32,
 * −Number.MAX_VALUE for float64) and
 * torch.iinfo(int32).min for int32. Attention fills masked scores with it instead of −∞, so that
 * a row whose every key is masked soft-maxes to uniform weights rather than NaN.
 */
export function finfoMin(dtype: DType): number {
  switch (dtype) {
    case 'float64':
      return -Number.MAX_VALUE;
    case 'float32':
      return -3.4028234663852886e38;
    case 'float16':
      return -65504;
    case 'bfloat16':
      return -3.3895313892515355e38;
    case 'int32':
      return -2147483648;
  }
}
