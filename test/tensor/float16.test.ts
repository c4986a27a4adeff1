import { Float16Array, f16round, getFloat16, setFloat16 } from '@petamoriken/float16';
import {
  bitsToFloat16Array,
  decodeFloat16,
  encodeFloat16,
  float16ArrayToBits,
  float16BitsToNumber,
  numberToFloat16Bits,
  roundToFloat16,
} from '../../src/tensor/float16';
import { mulberry32 } from '../helpers';

// ---- reference helpers (the package, through a DataView: no Proxy involved) --------------------

const view = new DataView(new ArrayBuffer(2));

function refDecode(bits: number): number {
  view.setUint16(0, bits);
  return getFloat16(view, 0);
}

function refEncodeBits(x: number): number {
  setFloat16(view, 0, x);
  return view.getUint16(0);
}

function isHalfNaN(bits: number): boolean {
  return (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
}

const hex = (b: number) => '0x' + b.toString(16).padStart(4, '0');

/** Checks one value against f16round and setFloat16; returns a description on mismatch. */
function mismatch(x: number): string | null {
  const bits = numberToFloat16Bits(x);
  const rounded = roundToFloat16(x);
  const want = f16round(x);
  if (Number.isNaN(want)) {
    if (!isHalfNaN(bits) || !Number.isNaN(rounded)) return `${x}: got ${hex(bits)}, want a NaN`;
    return null;
  }
  const wantBits = refEncodeBits(x);
  if (bits !== wantBits) return `${x}: bits ${hex(bits)}, want ${hex(wantBits)}`;
  if (!Object.is(rounded, want)) return `${x}: roundToFloat16 ${rounded}, want ${want}`;
  return null;
}

function expectAllMatch(xs: ArrayLike<number>): void {
  const bad: string[] = [];
  for (let i = 0; i < xs.length; i++) {
    const m = mismatch(xs[i]);
    if (m !== null && bad.length < 10) bad.push(m);
  }
  expect(bad).toEqual([]);
}

// ---- double bit manipulation: nextUp / nextDown ---------------------------------------------

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The next double toward +Infinity (for finite x). */
function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  f64[0] = x;
  u64[0] = x > 0 ? u64[0] + 1n : u64[0] - 1n;
  return f64[0];
}

/** The next double toward -Infinity (for finite x). */
function nextDown(x: number): number {
  return -nextUp(-x);
}


/** All finite positive binary16 values in increasing order (0x0001 .. 0x7bff). */
function positiveFiniteHalves(): number[] {
  const out: number[] = [];
  for (let b = 0x0001; b <= 0x7bff; b++) out.push(refDecode(b));
  return out;
}

// ---- decoding -------------------------------------------------------------------------------

describe('float16BitsToNumber', () => {
  test('all 65536 bit patterns decode exactly like getFloat16', () => {
    const bad: string[] = [];
    for (let b = 0; b < 65536; b++) {
      const got = float16BitsToNumber(b);
      const want = refDecode(b);
      const ok = Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
      if (!ok && bad.length < 10) bad.push(`${hex(b)}: got ${got}, want ${want}`);
    }
    expect(bad).toEqual([]);
  });

  test('known patterns: zeros, subnormals, normals, limits, specials', () => {
    expect(Object.is(float16BitsToNumber(0x0000), 0)).toBe(true);
    expect(Object.is(float16BitsToNumber(0x8000), -0)).toBe(true);
    expect(float16BitsToNumber(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(float16BitsToNumber(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(float16BitsToNumber(0x0400)).toBe(2 ** -14); // smallest normal
    expect(float16BitsToNumber(0x3c00)).toBe(1);
    expect(float16BitsToNumber(0x3c01)).toBe(1 + 2 ** -10);
    expect(float16BitsToNumber(0xc000)).toBe(-2);
    expect(float16BitsToNumber(0x7bff)).toBe(65504);
    expect(float16BitsToNumber(0x7c00)).toBe(Infinity);
    expect(float16BitsToNumber(0xfc00)).toBe(-Infinity);
    expect(float16BitsToNumber(0x7e00)).toBeNaN();
    expect(float16BitsToNumber(0x7c01)).toBeNaN();
    expect(float16BitsToNumber(0xffff)).toBeNaN();
  });
});

// ---- encoding -------------------------------------------------------------------------------

describe('numberToFloat16Bits / roundToFloat16', () => {
  test('every decoded float16 value encodes back to its own bits (NaN -> some NaN)', () => {
    const bad: string[] = [];
    for (let b = 0; b < 65536; b++) {
      const v = refDecode(b);
      const got = numberToFloat16Bits(v);
      const ok = Number.isNaN(v) ? isHalfNaN(got) : got === b;
      if (!ok && bad.length < 10) bad.push(`${hex(b)} (${v}): got ${hex(got)}`);
    }
    expect(bad).toEqual([]);
    expectAllMatch(Array.from({ length: 65536 }, (_, b) => refDecode(b)));
  });

  test('midpoints between adjacent float16 values tie to even, and their neighbours round to nearest', () => {
    const halves = [0, ...positiveFiniteHalves(), 65536]; // 65536: the step past 65504 (overflow)
    const xs: number[] = [];
    const bad: string[] = [];
    let ties = 0;
    for (let i = 0; i + 1 < halves.length; i++) {
      const lo = halves[i];
      const hi = halves[i + 1];
      const mid = (lo + hi) / 2; // exact in double
      const loBits = i; // halves[i] has bits i (0x0000 .. 0x7bff)
      const hiBits = i + 1; // 0x7c00 for 65536 is Infinity
      // Exact tie: the neighbour with an even last mantissa bit.
      const evenBits = loBits % 2 === 0 ? loBits : hiBits;
      // One double above / below the tie is no longer a tie: nearest neighbour wins.
      const cases: [number, number][] = [
        [mid, evenBits],
        [-mid, evenBits | 0x8000],
        [nextUp(mid), hiBits],
        [nextDown(mid), loBits],
        [-nextUp(mid), hiBits | 0x8000],
        [-nextDown(mid), loBits | 0x8000],
      ];
      for (const [x, want] of cases) {
        const got = numberToFloat16Bits(x);
        if (got !== want && bad.length < 10) bad.push(`${x}: got ${hex(got)}, want ${hex(want)}`);
      }
      ties++;
      xs.push(mid, nextUp(mid), nextDown(mid), -mid, -nextUp(mid), -nextDown(mid));
    }
    expect(bad).toEqual([]);
    expect(ties).toBe(0x7c00);
    expectAllMatch(xs);
  });

  test('subnormal range', () => {
    const xs: number[] = [];
    const rand = mulberry32(7);
    for (let i = 0; i < 4000; i++) {
      const x = rand() * 2 ** -14 * 1.01; // up to just past the smallest normal
      xs.push(x, -x);
    }
    // Around zero: below, at and above half the smallest subnormal (2^-25).
    const h = 2 ** -25;
    xs.push(h, nextUp(h), nextDown(h), 3 * h, nextDown(3 * h), nextUp(3 * h), Number.MIN_VALUE, 2 ** -1074 * 5, 1e-300);
    expectAllMatch(xs);
    expect(numberToFloat16Bits(h)).toBe(0x0000); // tie -> even (0)
    expect(numberToFloat16Bits(nextUp(h))).toBe(0x0001);
    expect(numberToFloat16Bits(3 * h)).toBe(0x0002); // tie between 1 and 2 -> 2
    expect(numberToFloat16Bits(-Number.MIN_VALUE)).toBe(0x8000); // -tiny -> -0
    expect(numberToFloat16Bits(2 ** -14 - 2 ** -26)).toBe(0x0400); // rounds up into the normals
  });

  test('near the largest finite value and the overflow threshold', () => {
    expect(numberToFloat16Bits(65504)).toBe(0x7bff);
    expect(numberToFloat16Bits(65519.99)).toBe(0x7bff);
    expect(numberToFloat16Bits(nextDown(65520))).toBe(0x7bff);
    expect(numberToFloat16Bits(65520)).toBe(0x7c00);
    expect(numberToFloat16Bits(-65520)).toBe(0xfc00);
    expect(numberToFloat16Bits(-65519.99)).toBe(0xfbff);
    expect(numberToFloat16Bits(65536)).toBe(0x7c00);
    expect(numberToFloat16Bits(1e300)).toBe(0x7c00);
    expect(numberToFloat16Bits(Number.MAX_VALUE)).toBe(0x7c00);
    expect(roundToFloat16(65519.99)).toBe(65504);
    expect(roundToFloat16(65520)).toBe(Infinity);
    const xs = [65504, 65505, 65503, 65488, 65519, 65519.99, nextDown(65520), 65520, nextUp(65520), 65535, 65536, 70000, 1e10, Number.MAX_VALUE];
    expectAllMatch([...xs, ...xs.map((x) => -x)]);
  });

  test('infinities, NaN and signed zeros', () => {
    expect(numberToFloat16Bits(Infinity)).toBe(0x7c00);
    expect(numberToFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(numberToFloat16Bits(NaN)).toBe(0x7e00);
    expect(numberToFloat16Bits(-NaN)).toBe(0x7e00);
    expect(numberToFloat16Bits(0)).toBe(0x0000);
    expect(numberToFloat16Bits(-0)).toBe(0x8000);
    expect(roundToFloat16(NaN)).toBeNaN();
    expect(Object.is(roundToFloat16(-0), -0)).toBe(true);
    expect(Object.is(roundToFloat16(0), 0)).toBe(true);
    expect(roundToFloat16(-Infinity)).toBe(-Infinity);
    expectAllMatch([Infinity, -Infinity, NaN, 0, -0]);
  });

  test('seeded random doubles across magnitudes', () => {
    const rand = mulberry32(0x5eed);
    const xs: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const exponent = Math.floor(rand() * 80) - 40; // 2^-40 .. 2^39: zero, subnormal, normal, overflow
      const x = (rand() < 0.5 ? -1 : 1) * (1 + rand()) * 2 ** exponent;
      xs.push(x);
    }
    // Also random raw double bit patterns in the interesting exponent band (full 52-bit mantissas).
    const u32 = new Uint32Array(f64.buffer);
    const hiIndex = new Uint32Array(new Float64Array([1]).buffer)[1] === 0x3ff00000 ? 1 : 0;
    for (let i = 0; i < 5000; i++) {
      const biased = 1023 - 30 + Math.floor(rand() * 50);
      u32[hiIndex] = ((rand() < 0.5 ? 1 : 0) << 31) | (biased << 20) | Math.floor(rand() * 0x100000);
      u32[1 - hiIndex] = Math.floor(rand() * 2 ** 32);
      xs.push(f64[0]);
    }
    expectAllMatch(xs);
    // The PRNG is deterministic: guard against the generator silently degenerating.
    expect(new Set(xs).size).toBeGreaterThan(9900);
  });

  test('rounds directly from the double, not through float32 (no double rounding)', () => {
    // 1 + 2^-11 is the exact midpoint between 1 (0x3c00) and 1 + 2^-10 (0x3c01).
    // x is slightly above it, so the correct result is 0x3c01. float32 keeps only 23 mantissa
    // bits, so Math.fround(x) is exactly the midpoint, which would then tie to even: 0x3c00.
    const x = 1 + 2 ** -11 + 2 ** -40;
    expect(Math.fround(x)).toBe(1 + 2 ** -11); // the trap is real
    expect(numberToFloat16Bits(Math.fround(x))).toBe(0x3c00); // double rounding result
    expect(numberToFloat16Bits(x)).toBe(0x3c01); // direct rounding
    expect(roundToFloat16(x)).toBe(1 + 2 ** -10);
    expect(numberToFloat16Bits(-x)).toBe(0xbc01);

    // The same in the subnormal range: 2.5 * 2^-24 is the midpoint between subnormals 2 and 3
    // (ties down to 2); z is slightly above it, so it must round up to 3.
    const z = 2.5 * 2 ** -24 + 2 ** -60;
    expect(Math.fround(z)).toBe(2.5 * 2 ** -24);
    expect(numberToFloat16Bits(Math.fround(z))).toBe(0x0002);
    expect(numberToFloat16Bits(z)).toBe(0x0003);

    // And the other direction: slightly below a midpoint that float32 rounds up onto the
    // midpoint, which then ties to the even (upper) neighbour. Direct rounding goes down.
    const w = 1 + 3 * 2 ** -11 - 2 ** -40; // midpoint of 0x3c01 and 0x3c02 is 1 + 3*2^-11
    expect(Math.fround(w)).toBe(1 + 3 * 2 ** -11);
    expect(numberToFloat16Bits(Math.fround(w))).toBe(0x3c02);
    expect(numberToFloat16Bits(w)).toBe(0x3c01);

    expectAllMatch([x, -x, z, w]);
  });
});

// ---- bulk paths and Float16Array -------------------------------------------------------------

describe('bulk decode/encode', () => {
  test('decodeFloat16 agrees with float16BitsToNumber for all patterns, with and without out', () => {
    const bits = new Uint16Array(65536);
    for (let b = 0; b < 65536; b++) bits[b] = b;
    const decoded = decodeFloat16(bits);
    expect(decoded).toBeInstanceOf(Float32Array);
    expect(decoded.length).toBe(65536);
    const out = new Float32Array(65536);
    expect(decodeFloat16(bits, out)).toBe(out);
    let bad = 0;
    for (let b = 0; b < 65536; b++) {
      const want = float16BitsToNumber(b);
      const same = (v: number) => (Number.isNaN(want) ? Number.isNaN(v) : Object.is(v, want));
      if (!same(decoded[b]) || !same(out[b])) bad++;
    }
    expect(bad).toBe(0);
    expect(() => decodeFloat16(bits, new Float32Array(3))).toThrow(RangeError);
  });

  test('encodeFloat16 agrees with numberToFloat16Bits for number[], Float64Array and Float32Array', () => {
    const rand = mulberry32(42);
    const values: number[] = [0, -0, NaN, Infinity, -Infinity, 65520, 65519.99, 1 + 2 ** -11 + 2 ** -40];
    for (let i = 0; i < 3000; i++) values.push((rand() - 0.5) * 2 ** (Math.floor(rand() * 60) - 30));
    const f64s = Float64Array.from(values);
    const f32s = Float32Array.from(values);
    const fromArray = encodeFloat16(values);
    const fromF64 = encodeFloat16(f64s);
    const out = new Uint16Array(f32s.length);
    const fromF32 = encodeFloat16(f32s, out);
    expect(fromF32).toBe(out);
    expect(fromArray).toBeInstanceOf(Uint16Array);
    for (let i = 0; i < values.length; i++) {
      expect(fromArray[i]).toBe(numberToFloat16Bits(values[i]));
      expect(fromF64[i]).toBe(numberToFloat16Bits(f64s[i]));
      expect(fromF32[i]).toBe(numberToFloat16Bits(f32s[i]));
    }
    expect(fromArray[7]).toBe(0x3c01); // values[7]: the double-rounding case
    expect(() => encodeFloat16(values, new Uint16Array(1))).toThrow(RangeError);
  });

  test('encode(decode(bits)) preserves every non-NaN pattern', () => {
    const bits = new Uint16Array(65536);
    for (let b = 0; b < 65536; b++) bits[b] = b;
    const back = encodeFloat16(decodeFloat16(bits));
    let bad = 0;
    for (let b = 0; b < 65536; b++) {
      if (isHalfNaN(b) ? !isHalfNaN(back[b]) : back[b] !== b) bad++;
    }
    expect(bad).toBe(0);
  });
});

describe('Float16Array conversions', () => {
  const sample = new Uint16Array([0x0000, 0x8000, 0x0001, 0x3c00, 0xbc01, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x1234]);

  test('bitsToFloat16Array exposes the same values and copies', () => {
    const bits = sample.slice();
    const arr = bitsToFloat16Array(bits);
    expect(arr).toBeInstanceOf(Float16Array);
    expect(arr.length).toBe(bits.length);
    for (let i = 0; i < bits.length; i++) {
      const want = float16BitsToNumber(bits[i]);
      const got = arr[i];
      expect(Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want)).toBe(true);
    }
    // Not aliased: writes on either side are invisible to the other.
    arr[3] = 2;
    expect(bits[3]).toBe(0x3c00);
    bits[4] = 0x4000;
    expect(arr[4]).toBe(-(1 + 2 ** -10));
  });

  test('float16ArrayToBits reads the raw bits (incl. NaN payloads) and copies', () => {
    const arr = bitsToFloat16Array(sample);
    const bits = float16ArrayToBits(arr);
    expect(bits).toBeInstanceOf(Uint16Array);
    expect(Array.from(bits)).toEqual(Array.from(sample));
    bits[0] = 0x3c00;
    expect(Object.is(arr[0], 0)).toBe(true);
    arr[1] = 3;
    expect(bits[1]).toBe(0x8000);
  });

  test('round trip works for a Float16Array view with a byteOffset and one built from numbers', () => {
    const backing = new Uint16Array([0xaaaa, 0x3c00, 0x4000, 0xc200, 0xbbbb]);
    const view16 = new Float16Array(backing.buffer, 2, 3); // elements 1..3
    expect(Array.from(float16ArrayToBits(view16))).toEqual([0x3c00, 0x4000, 0xc200]);

    const fromNumbers = new Float16Array([1, -2.5, 65520, 1 + 2 ** -11]);
    expect(Array.from(float16ArrayToBits(fromNumbers))).toEqual([0x3c00, 0xc100, 0x7c00, 0x3c00]);

    const rand = mulberry32(3);
    const bits = new Uint16Array(1000);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(rand() * 65536);
    expect(Array.from(float16ArrayToBits(bitsToFloat16Array(bits)))).toEqual(Array.from(bits));
  });
});
