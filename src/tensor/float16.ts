/**
 * Fast float16 <-> number conversion for float16 tensor storage.
 *
 * float16 tensors keep raw IEEE-754 binary16 bit patterns in a Uint16Array and compute in
 * float32. The `Float16Array` of `@petamoriken/float16` is a Proxy (hundreds of ns per element
 * access), so it is used only at the API edge; the hot paths here work on the bits directly.
 *
 * ## The binary16 bit layout
 *
 * ```
 *   bit: 15 | 14 13 12 11 10 | 9 8 7 6 5 4 3 2 1 0
 *        s  |  exponent (5)  |    mantissa (10)
 * ```
 *
 * - `s`: sign, 1 = negative (it also distinguishes +0 = 0x0000 from -0 = 0x8000).
 * - exponent `E` (0..31), stored with a bias of 15:
 *   - `E = 1..30`  normal numbers:    value = (-1)^s * 2^(E-15) * (1 + m/1024)
 *                  (the leading 1 is implicit; the range is 2^-14 ≈ 6.1e-5 .. 65504)
 *   - `E = 0`      subnormal numbers: value = (-1)^s * 2^-14 * (m/1024) = (-1)^s * m * 2^-24
 *                  (no implicit 1, so they fill the gap down to 0 evenly; m = 0 gives ±0)
 *   - `E = 31`     m = 0: ±Infinity (0x7c00 / 0xfc00); m != 0: NaN (we produce 0x7e00).
 *
 * Every binary16 value is exactly representable as a float32 (and as a double), so decoding
 * never rounds.
 *
 * ## Rounding (encoding)
 *
 * A double has 52 stored mantissa bits; binary16 keeps 10. We round to nearest, ties to even:
 * look at the dropped bits; if they are more than half an ulp, round up; less, round down;
 * exactly half (a tie), round to whichever neighbour has an even (0) last mantissa bit.
 *
 * We round directly from the double. Going through float32 first (e.g. Math.fround, or a
 * float32 -> float16 routine) would round twice, which can be wrong: 1 + 2^-11 + 2^-40 is just
 * above the midpoint between 1 and 1 + 2^-10, so it must round up, but float32 first rounds it
 * to exactly 1 + 2^-11 (the midpoint), which then ties to even, down to 1.
 *
 * Values at or beyond 65520 (the midpoint between the largest finite half, 65504, and the next
 * power-of-two step 65536) overflow to ±Infinity.
 */
import { Float16Array } from '@petamoriken/float16';

// ---------------------------------------------------------------------------------------------
// Decoding: a lazily built 65536-entry table, bits -> value.
// ---------------------------------------------------------------------------------------------

let decodeTable: Float32Array | null = null;

/** Decode one pattern arithmetically (used once per pattern to fill the table). */
function decodeSlow(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero or subnormal
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25); // (1 + m/1024) * 2^(E-15)
}

function getDecodeTable(): Float32Array {
  if (decodeTable === null) {
    const table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) table[bits] = decodeSlow(bits);
    decodeTable = table;
  }
  return decodeTable;
}

/** Decode one binary16 bit pattern (0..65535) to a JS number. */
export function float16BitsToNumber(bits: number): number {
  return (decodeTable ?? getDecodeTable())[bits & 0xffff];
}

/** Bulk decode: bits -> Float32Array (every binary16 is exactly representable in float32). `out` optional, same length. */
export function decodeFloat16(bits: Uint16Array, out?: Float32Array): Float32Array {
  const n = bits.length;
  const result = out ?? new Float32Array(n);
  if (result.length !== n) {
    throw new RangeError(`decodeFloat16: out has length ${result.length}, expected ${n}`);
  }
  const table = decodeTable ?? getDecodeTable();
  for (let i = 0; i < n; i++) result[i] = table[bits[i]];
  return result;
}

// ---------------------------------------------------------------------------------------------
// Encoding: read the double's own bits through a shared scratch view and round them.
//
// A double (binary64) is: sign (1 bit) | exponent (11 bits, bias 1023) | mantissa (52 bits).
// Seen as two uint32 words, the HIGH word holds sign, exponent and the top 20 mantissa bits;
// the LOW word holds the remaining 32 mantissa bits.
// ---------------------------------------------------------------------------------------------

const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);
// Which uint32 word is the high one depends on platform endianness (1.0 = 0x3ff00000_00000000).
scratchF64[0] = 1;
const HI = scratchU32[1] === 0x3ff00000 ? 1 : 0;
const LO = 1 - HI;

/** Round a JS number (a double) to the nearest binary16, ties to even, and return its bits. */
export function numberToFloat16Bits(x: number): number {
  scratchF64[0] = x;
  const hi = scratchU32[HI];
  const lo = scratchU32[LO];

  const sign = (hi >>> 16) & 0x8000; // the double's sign bit, moved to binary16's bit 15
  const biasedExp = (hi >>> 20) & 0x7ff;
  const e = biasedExp - 1023; // unbiased exponent: |x| = 1.f * 2^e for normal doubles

  // NaN and ±Infinity (exponent all ones).
  if (biasedExp === 0x7ff) {
    const isNaN = (hi & 0xfffff) !== 0 || lo !== 0;
    return isNaN ? 0x7e00 : sign | 0x7c00;
  }

  // |x| >= 2^16 = 65536: far beyond 65504, overflow.
  if (e > 15) return sign | 0x7c00;

  // Normal binary16 range, 2^-14 <= |x| < 2^16.
  if (e >= -14) {
    // The top 10 of the double's 52 mantissa bits become the half's mantissa. Of the 42
    // dropped bits, the highest is the "round bit" (worth half a half-ulp) and the rest
    // (9 bits of hi, all 32 of lo) are "sticky": any of them set means "more than a tie".
    const mantissa = (hi >>> 10) & 0x3ff;
    let bits = sign | ((e + 15) << 10) | mantissa;
    const roundBit = hi & 0x200;
    const sticky = (hi & 0x1ff) | lo;
    if (roundBit !== 0 && (sticky !== 0 || (mantissa & 1) !== 0)) {
      // Round up. A carry out of the mantissa correctly bumps the exponent (e.g. 0x3bff + 1
      // = 0x3c00 = 1.0), and a carry out of exponent 30 gives 0x7c00 = Infinity: that is
      // exactly the overflow rule for 65520 <= |x| < 65536.
      bits += 1;
    }
    return bits;
  }

  // Subnormal binary16 range: the result is m * 2^-24 with m = 0..1024 (1024 rounds up into
  // the smallest normal, 0x0400, which the bit pattern handles for free).
  // |x| < 2^-25 is below half the smallest subnormal (2^-24), so it rounds to ±0; exactly
  // 2^-25 is a tie that goes to the even neighbour, 0 (handled below with e = -25).
  // This also covers double zeros and double subnormals (biasedExp = 0).
  if (e < -25) return sign;

  // Significand with its implicit leading 1, as a 21-bit integer: |x| = sig21 * 2^(e-20)
  // (plus the 32 low bits in `lo`, which only matter as sticky bits here). In units of
  // 2^-24 that is sig21 / 2^shift with shift = -e - 4, which is 11..21 for e = -15..-25.
  const sig21 = (hi & 0xfffff) | 0x100000;
  const shift = -e - 4;
  let m = sig21 >>> shift;
  const rest = sig21 & ((1 << shift) - 1); // the dropped bits of sig21
  const half = 1 << (shift - 1); // a dropped value of exactly half an ulp (a tie)
  if (rest > half || (rest === half && (lo !== 0 || (m & 1) !== 0))) m += 1;
  return sign | m;
}

/** Bulk encode numbers (any ArrayLike<number>, e.g. Float32Array/Float64Array/number[]) to bits. `out` optional. */
export function encodeFloat16(values: ArrayLike<number>, out?: Uint16Array): Uint16Array {
  const n = values.length;
  const result = out ?? new Uint16Array(n);
  if (result.length !== n) {
    throw new RangeError(`encodeFloat16: out has length ${result.length}, expected ${n}`);
  }
  for (let i = 0; i < n; i++) result[i] = numberToFloat16Bits(values[i]);
  return result;
}

/** Round a number to float16 precision and return it as a number (like Math.fround for half). */
export function roundToFloat16(x: number): number {
  return float16BitsToNumber(numberToFloat16Bits(x));
}

// ---------------------------------------------------------------------------------------------
// The API edge: the package's Float16Array.
//
// A Float16Array's `.buffer` holds raw binary16 bits, so the conversions below move bits with
// native Uint16Array copies and never touch the Proxy per element. Both directions COPY: the
// returned array never aliases the argument, so mutating the caller's Float16Array cannot
// change a tensor's storage, and vice versa.
// ---------------------------------------------------------------------------------------------

/** Wrap a copy of raw bits as the package's Float16Array (no aliasing with `bits`). */
export function bitsToFloat16Array(bits: Uint16Array): Float16Array {
  const copy = bits.slice(); // fresh buffer, byteOffset 0
  return new Float16Array(copy.buffer, 0, copy.length);
}

/** Copy the raw bits out of a Float16Array (no aliasing with `arr`). */
export function float16ArrayToBits(arr: Float16Array): Uint16Array {
  return new Uint16Array(arr.buffer, arr.byteOffset, arr.length).slice();
}
