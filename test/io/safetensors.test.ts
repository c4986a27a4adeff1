/** safetensors: hand-built byte fixtures, bit-exact round trips of every dtype, files, and every malformed case. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Float16Array } from '@petamoriken/float16';
import {
  BlockgradError,
  Tensor,
  ValueError,
  arange,
  tensor,
  zeros,
  SafetensorsError,
  loadSafetensors,
  loadSafetensorsFile,
  numberToBFloat16Bits,
  parseSafetensors,
  saveSafetensors,
  saveSafetensorsFile,
  type SafetensorsDType,
} from '../../src';

// ------------------------------------------------------------------------------------ helpers

const enc = new TextEncoder();

/** A file from its parts, written by hand: 8-byte LE length, header text, data bytes. */
function fileOf(header: string, data: ArrayLike<number> = [], headerLength: number = enc.encode(header).length): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, headerLength, true);
  out.set(h, 8);
  out.set(Array.from(data), 8 + h.length);
  return out;
}

/** A file whose header is `obj` serialised as JSON. */
function fileJson(obj: unknown, data: ArrayLike<number> = []): Uint8Array {
  return fileOf(JSON.stringify(obj), data);
}

const f32Entry = (begin: number, end: number, shape: number[] = [(end - begin) / 4]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

/** Asserts fn throws a SafetensorsError (a ValueError, a BlockgradError) from `op` matching `pattern`. */
function expectSafetensorsError(fn: () => unknown, pattern: RegExp, op = 'loadSafetensors'): SafetensorsError {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (!(caught instanceof SafetensorsError)) {
    throw new Error(`expected a SafetensorsError matching ${pattern}, got ${caught === null ? 'no error' : String(caught)}`);
  }
  expect(caught).toBeInstanceOf(ValueError);
  expect(caught).toBeInstanceOf(BlockgradError);
  expect(caught.name).toBe('SafetensorsError');
  expect(caught.op).toBe(op);
  expect(caught.message.startsWith(`${op}: `)).toBe(true);
  expect(caught.message).toMatch(pattern);
  return caught;
}

const bitsF32 = (t: Tensor) => Array.from(new Uint32Array(Float32Array.from(t.toTypedArray() as Float32Array).buffer));
const bitsF64 = (t: Tensor) => {
  const a = Float64Array.from(t.toTypedArray() as Float64Array);
  return Array.from(new BigUint64Array(a.buffer));
};
const bitsF16 = (t: Tensor) => {
  const a = t.toTypedArray() as Float16Array;
  return Array.from(new Uint16Array(a.buffer, a.byteOffset, a.length));
};
const f16FromBits = (bits: number[]) => tensor(new Float16Array(new Uint16Array(bits).buffer));
const f32FromBits = (bits: number[]) => tensor(new Float32Array(new Uint32Array(bits).buffer));
const flat = (t: Tensor) => Array.from(t.toTypedArray() as ArrayLike<number>);

function roundTrip(tensors: Record<string, Tensor>, metadata?: Record<string, string>, dtypes?: Record<string, SafetensorsDType>) {
  return parseSafetensors(saveSafetensors(tensors, metadata, dtypes ? { dtypes } : undefined));
}

// ------------------------------------------------------------------------------------ fixtures by hand

describe('hand-built byte fixtures', () => {
  // Header (138 bytes):
  //   {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]},"__metadata__":{"format":"pt"}}
  // Data: a = [1.0, -2.5] as float32 LE: 1.0 = 0x3f800000, -2.5 = 0xc0200000; b = -7 = 0xfffffff9.
  const header =
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]},"__metadata__":{"format":"pt"}}';
  const data = [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0xf9, 0xff, 0xff, 0xff];
  const bytes = new Uint8Array([138, 0, 0, 0, 0, 0, 0, 0, ...enc.encode(header), ...data]);

  test('the length prefix is what the header text measures', () => {
    expect(enc.encode(header).length).toBe(138);
  });

  test('a tiny file parses to the right tensors and metadata', () => {
    const { tensors, metadata } = parseSafetensors(bytes);
    expect(Object.keys(tensors)).toEqual(['a', 'b']);
    expect(tensors.a.dtype).toBe('float32');
    expect(tensors.a.shape).toEqual([2]);
    expect(tensors.a.toArray()).toEqual([1, -2.5]);
    expect(tensors.b.dtype).toBe('int32');
    expect(tensors.b.shape).toEqual([]);
    expect(tensors.b.item()).toBe(-7);
    expect(metadata).toEqual({ format: 'pt' });
  });

  test('loaded tensors are leaves with requiresGrad false and no name', () => {
    const tensors = loadSafetensors(bytes);
    for (const t of Object.values(tensors)) {
      expect(t.isLeaf).toBe(true);
      expect(t.requiresGrad).toBe(false);
      expect(t.gradFn).toBeNull();
      expect(t.name).toBeUndefined();
      expect(t.isContiguous()).toBe(true);
    }
  });

  test('a header padded with trailing spaces is accepted', () => {
    const padded = header + '      ';
    const file = new Uint8Array([144, 0, 0, 0, 0, 0, 0, 0, ...enc.encode(padded), ...data]);
    expect(loadSafetensors(file).a.toArray()).toEqual([1, -2.5]);
  });

  test('a hand-built BF16 tensor loads as bfloat16, exactly', () => {
    // bfloat16 bits: 0x3f80 = 1, 0xc049 = -3.140625, 0x7fc0 = NaN, 0x0001 = 2^-133 (smallest subnormal),
    // 0xff80 = -Infinity, 0x8000 = -0.
    const file = fileJson({ x: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 12] } }, [
      0x80, 0x3f, 0x49, 0xc0, 0xc0, 0x7f, 0x01, 0x00, 0x80, 0xff, 0x00, 0x80,
    ]);
    const x = loadSafetensors(file).x;
    expect(x.dtype).toBe('bfloat16');
    expect(x.shape).toEqual([2, 3]);
    expect(bitsF32(x)).toEqual([0x3f800000, 0xc0490000, 0x7fc00000, 0x00010000, 0xff800000, 0x80000000]);
    const v = flat(x);
    expect(v[0]).toBe(1);
    expect(v[1]).toBe(-3.140625);
    expect(v[2]).toBeNaN();
    expect(v[3]).toBe(2 ** -133);
    expect(v[4]).toBe(-Infinity);
    expect(Object.is(v[5], -0)).toBe(true);
  });

  test('a hand-built F16 and F64 file loads bit for bit', () => {
    // F16 at [0, 4): 0x3c00 = 1, 0x8001 = -2^-24; F64 at [4, 12): 0x4008000000000000 = 3 (unaligned offset 4).
    const file = fileJson(
      { h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, d: { dtype: 'F64', shape: [1], data_offsets: [4, 12] } },
      [0x00, 0x3c, 0x01, 0x80, 0, 0, 0, 0, 0, 0, 0x08, 0x40],
    );
    const { h, d } = loadSafetensors(file);
    expect(h.dtype).toBe('float16');
    expect(bitsF16(h)).toEqual([0x3c00, 0x8001]);
    expect(flat(h)).toEqual([1, -(2 ** -24)]);
    expect(d.dtype).toBe('float64');
    expect(d.toArray()).toEqual([3]);
  });

  test('saveSafetensors produces exactly the expected bytes for a simple case', () => {
    const bytesOut = saveSafetensors(
      { b: tensor([1, -2], { dtype: 'float32' }), a: tensor([3], { dtype: 'float64' }) },
      { k: 'v' },
    );
    // Header: __metadata__ first, then tensors in data order (8-byte items before 4-byte ones, then
    // by name). 133 bytes of JSON padded with 3 spaces to 136 = 0x88.
    const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}';
    const expected = new Uint8Array([
      0x88, 0, 0, 0, 0, 0, 0, 0,
      ...enc.encode(json), 0x20, 0x20, 0x20,
      0, 0, 0, 0, 0, 0, 0x08, 0x40, // 3.0 as float64 = 0x4008000000000000
      0x00, 0x00, 0x80, 0x3f, // 1.0f = 0x3f800000
      0x00, 0x00, 0x00, 0xc0, // -2.0f = 0xc0000000
    ]);
    expect(json.length).toBe(133);
    expect(Array.from(bytesOut)).toEqual(Array.from(expected));
  });

  test('without metadata the header has no __metadata__ and is padded to a multiple of 8', () => {
    const out = saveSafetensors({ x: tensor(7, { dtype: 'int32' }) });
    const json = '{"x":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}'; // 53 bytes -> 56
    expect(json.length).toBe(53);
    expect(Array.from(out)).toEqual([56, 0, 0, 0, 0, 0, 0, 0, ...enc.encode(json), 0x20, 0x20, 0x20, 7, 0, 0, 0]);
  });
});

// ------------------------------------------------------------------------------------ round trips

describe('round trips are bit-exact', () => {
  test('float32, with NaN, infinities, -0, subnormals and extremes', () => {
    const bits = [0x00000000, 0x80000000, 0x00000001, 0x007fffff, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x3eaaaaab, 0x3f800000];
    const x = f32FromBits(bits).reshape([3, 4]);
    const y = roundTrip({ x }).tensors.x;
    expect(y.dtype).toBe('float32');
    expect(y.shape).toEqual([3, 4]);
    expect(bitsF32(y)).toEqual(bits);
  });

  test('float64 extremes', () => {
    const values = [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308, -0, 0, Infinity, -Infinity, NaN, Math.PI, 1 + Number.EPSILON];
    const x = tensor(new Float64Array(values));
    const y = roundTrip({ x }).tensors.x;
    expect(y.dtype).toBe('float64');
    expect(bitsF64(y)).toEqual(bitsF64(x));
    const v = flat(y);
    expect(v.slice(0, 9)).toEqual(values.slice(0, 9));
    expect(Object.is(v[5], -0)).toBe(true);
    expect(v[9]).toBeNaN();
    expect(v[10]).toBe(Math.PI);
    expect(v[11]).toBe(1 + Number.EPSILON);
  });

  test('float16 raw bits: NaN (with payload), infinities, -0, subnormals, max', () => {
    const bits = [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7d01, 0xfe00, 0x3c00, 0x3555, 0xc000];
    const x = f16FromBits(bits).reshape([2, 2, 4]);
    const y = roundTrip({ x }).tensors.x;
    expect(y.dtype).toBe('float16');
    expect(y.shape).toEqual([2, 2, 4]);
    expect(bitsF16(y)).toEqual(bits);
  });

  test('int32 extremes', () => {
    const values = [-(2 ** 31), 2 ** 31 - 1, 0, -1, 123456789];
    const y = roundTrip({ i: tensor(values, { dtype: 'int32' }) }).tensors.i;
    expect(y.dtype).toBe('int32');
    expect(y.toArray()).toEqual(values);
  });

  test('many tensors of mixed dtypes, with names in any order', () => {
    const tensors: Record<string, Tensor> = {
      'model.layers.1.w': tensor([[1, 2], [3, 4]], { dtype: 'float16' }),
      'model.layers.0.w': tensor([0.5, 0.25, 0.125], { dtype: 'float32' }),
      z: tensor([1e300], { dtype: 'float64' }),
      idx: tensor([5, 6, 7], { dtype: 'int32' }),
      'é名': tensor([9], { dtype: 'float32' }),
      __proto__x: tensor([1], { dtype: 'float16' }),
    };
    const out = roundTrip(tensors).tensors;
    expect(Object.keys(out).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      expect(out[name].dtype).toBe(t.dtype);
      expect(out[name].shape).toEqual(t.shape);
      expect(out[name].toArray()).toEqual(t.toArray());
    }
  });

  test('a tensor named "__proto__" round-trips as an own property', () => {
    const tensors: Record<string, Tensor> = {};
    Object.defineProperty(tensors, '__proto__', { value: tensor([4, 5]), enumerable: true });
    const out = roundTrip(tensors).tensors;
    expect(Object.prototype.hasOwnProperty.call(out, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect((Object.getOwnPropertyDescriptor(out, '__proto__')!.value as Tensor).toArray()).toEqual([4, 5]);
  });

  test('0-d and empty tensors', () => {
    const tensors = {
      scalar: tensor(2.5, { dtype: 'float64' }),
      scalar16: tensor(-1.5, { dtype: 'float16' }),
      empty: zeros([0]),
      empty3: zeros([2, 0, 3], { dtype: 'float16' }),
      emptyInt: zeros([0, 4], { dtype: 'int32' }),
      after: tensor([1, 2], { dtype: 'float32' }),
    };
    const bytes = saveSafetensors(tensors);
    const out = loadSafetensors(bytes);
    expect(out.scalar.shape).toEqual([]);
    expect(out.scalar.item()).toBe(2.5);
    expect(out.scalar16.shape).toEqual([]);
    expect(out.scalar16.item()).toBe(-1.5);
    expect(out.empty.shape).toEqual([0]);
    expect(out.empty.dtype).toBe('float32');
    expect(out.empty3.shape).toEqual([2, 0, 3]);
    expect(out.empty3.dtype).toBe('float16');
    expect(out.emptyInt.shape).toEqual([0, 4]);
    expect(out.emptyInt.dtype).toBe('int32');
    expect(out.after.toArray()).toEqual([1, 2]);
    // Data: 8 (scalar) + 8 (after) + 2 (scalar16) bytes; the empty tensors take none.
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(bytes.length - 8 - n).toBe(18);
  });

  test('a file with no tensors at all', () => {
    const out = parseSafetensors(saveSafetensors({}, { only: 'metadata' }));
    expect(out.tensors).toEqual({});
    expect(out.metadata).toEqual({ only: 'metadata' });
    expect(parseSafetensors(fileOf('{}')).tensors).toEqual({});
  });

  test('metadata round trip, unicode included; absent metadata reads as {}', () => {
    const metadata = { format: 'pt', 'clé ✓': 'välue 🚀', empty: '', json: '{"a":[1,2]}' };
    expect(roundTrip({ x: tensor([1]) }, metadata).metadata).toEqual(metadata);
    expect(roundTrip({ x: tensor([1]) }).metadata).toEqual({});
    expect(roundTrip({ x: tensor([1]) }, {}).metadata).toEqual({});
    // "__metadata__": null is read as no metadata, as the reference implementation does.
    expect(parseSafetensors(fileOf('{"__metadata__":null}')).metadata).toEqual({});
  });

  test('every header and data offset is aligned to its item size', () => {
    const bytes = saveSafetensors({
      h: tensor([1, 2, 3], { dtype: 'float16' }),
      f: tensor([1], { dtype: 'float32' }),
      d: tensor([1, 2], { dtype: 'float64' }),
      i: tensor([1], { dtype: 'int32' }),
    });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.d.data_offsets).toEqual([0, 16]);
    expect(header.f.data_offsets).toEqual([16, 20]);
    expect(header.i.data_offsets).toEqual([20, 24]);
    expect(header.h.data_offsets).toEqual([24, 30]);
  });

  test('saved tensors that required grad and had a name load as plain leaves', () => {
    const w = tensor([1, 2], { requiresGrad: true });
    w.name = 'weight';
    const y = w.mul(2); // a non-leaf
    const out = loadSafetensors(saveSafetensors({ w, y }));
    for (const t of [out.w, out.y]) {
      expect(t.requiresGrad).toBe(false);
      expect(t.isLeaf).toBe(true);
      expect(t.name).toBeUndefined();
    }
    expect(out.y.toArray()).toEqual([2, 4]);
  });
});

describe('dtype conversion on save', () => {
  test('BF16: round to nearest, ties to even, checked by hand', () => {
    // float32 bits -> expected bfloat16 bits:
    //   1.0                   0x3f800000 -> 0x3f80  exact
    //   1 + 2^-8 (a tie)      0x3f808000 -> 0x3f80  tie, kept part even: stays
    //   1 + 3*2^-8 (a tie)    0x3f818000 -> 0x3f82  tie, kept part odd: rounds up to even
    //   1 + 2^-8 + 2^-23      0x3f808001 -> 0x3f81  just above the tie: up
    //   1 + 2^-8 - 2^-23      0x3f807fff -> 0x3f80  just below the tie: down
    //   -0                    0x80000000 -> 0x8000
    //   max float32           0x7f7fffff -> 0x7f80  overflows to +Infinity
    //   NaN                   0x7fc00000 -> 0x7fc0
    //   -Infinity             0xff800000 -> 0xff80
    //   smallest subnormal    0x00000001 -> 0x0000
    //   3.140625 + tiny       0x40490001 -> 0x4049
    const inBits = [0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0x80000000, 0x7f7fffff, 0x7fc00000, 0xff800000, 0x00000001, 0x40490001];
    const outBits = [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x3f80, 0x8000, 0x7f80, 0x7fc0, 0xff80, 0x0000, 0x4049];
    const bytes = saveSafetensors({ x: f32FromBits(inBits) }, undefined, { dtypes: { x: 'BF16' } });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.x).toEqual({ dtype: 'BF16', shape: [11], data_offsets: [0, 22] });
    const stored = new DataView(bytes.buffer, 8 + n);
    expect(Array.from({ length: 11 }, (_, i) => stored.getUint16(2 * i, true))).toEqual(outBits);
    // Loading gives a bfloat16 tensor whose float32 values have the bfloat16 bits shifted up.
    const y = loadSafetensors(bytes).x;
    expect(y.dtype).toBe('bfloat16');
    expect(bitsF32(y)).toEqual(outBits.map((b) => (b << 16) >>> 0));
    const v = flat(y);
    expect(v.slice(0, 5)).toEqual([1, 1, 1 + 2 ** -6, 1 + 2 ** -7, 1]);
    expect(v[6]).toBe(Infinity);
    expect(v[7]).toBeNaN();
  });

  test('BF16 from float64 rounds once (no double rounding through float32)', () => {
    // 1 + 2^-8 + 2^-30 is just above the bfloat16 midpoint 1 + 2^-8, so it rounds up to 1 + 2^-7.
    // Rounding to float32 first would give exactly the midpoint, which ties down to 1.
    const x = tensor(new Float64Array([1 + 2 ** -8 + 2 ** -30, -(1 + 2 ** -8 + 2 ** -30), 1 + 2 ** -8, 1e39, -1e39, 1e-50, -1e-50]));
    const v = flat(loadSafetensors(saveSafetensors({ x }, undefined, { dtypes: { x: 'BF16' } })).x);
    expect(v.slice(0, 5)).toEqual([1 + 2 ** -7, -(1 + 2 ** -7), 1, Infinity, -Infinity]);
    expect(Object.is(v[5], 0)).toBe(true);
    expect(Object.is(v[6], -0)).toBe(true);
    expect(numberToBFloat16Bits(1 + 2 ** -8 + 2 ** -30)).toBe(0x3f81);
    expect(numberToBFloat16Bits(Math.fround(1 + 2 ** -8 + 2 ** -30))).toBe(0x3f80);
    expect(numberToBFloat16Bits(NaN)).toBe(0x7fc0);
  });

  test('BF16 matches an independent rounding of every float32 exponent/mantissa edge', () => {
    // Independent reference: pick the nearer of the two bfloat16 neighbours by exact arithmetic.
    const ref = (x: number): number => {
      const f = new Float32Array([x]);
      const u = new Uint32Array(f.buffer)[0];
      const down = u >>> 16; // truncation toward zero
      const lo = new Float32Array(new Uint32Array([(down << 16) >>> 0]).buffer)[0];
      const hi = new Float32Array(new Uint32Array([((down + 1) << 16) >>> 0]).buffer)[0];
      const dl = Math.abs(x - lo);
      const dh = Math.abs(hi - x);
      if (dl < dh) return down;
      if (dh < dl) return down + 1;
      return down & 1 ? down + 1 : down;
    };
    const values: number[] = [];
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const u = (Math.floor(rnd() * 0x7f7f) << 16) | [0, 0x7fff, 0x8000, 0x8001, Math.floor(rnd() * 0x10000)][i % 5];
      values.push(new Float32Array(new Uint32Array([u >>> 0]).buffer)[0] * (i % 2 ? -1 : 1));
    }
    const x = tensor(new Float32Array(values));
    const y = loadSafetensors(saveSafetensors({ x }, undefined, { dtypes: { x: 'BF16' } })).x;
    const got = bitsF32(y).map((b) => b >>> 16);
    values.forEach((v, i) => {
      const want = v < 0 || Object.is(v, -0) ? ref(-v) | 0x8000 : ref(v);
      if (got[i] !== want) throw new Error(`value ${v}: got 0x${got[i].toString(16)}, expected 0x${want.toString(16)}`);
    });
  });

  test('float32/float64 saved as F16 round to nearest even; float16 saved as F32/F64 is exact', () => {
    // 1 + 2^-11 is a float16 tie (kept part even: down to 1); 65520 overflows to Infinity.
    const x = tensor(new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 65519, -0, NaN]));
    const y = loadSafetensors(saveSafetensors({ x }, undefined, { dtypes: { x: 'F16' } })).x;
    expect(y.dtype).toBe('float16');
    expect(bitsF16(y)).toEqual([0x3c00, 0x3c02, 0x7c00, 0x7bff, 0x8000, 0x7e00]);

    const h = f16FromBits([0x0001, 0x7bff, 0xfc00, 0x3555]);
    const out = loadSafetensors(saveSafetensors({ a: h, b: h }, undefined, { dtypes: { a: 'F32', b: 'F64' } }));
    expect(out.a.dtype).toBe('float32');
    expect(out.b.dtype).toBe('float64');
    const want = [2 ** -24, 65504, -Infinity, 0x155 / 1024 * 2 ** -2 + 2 ** -2];
    expect(flat(out.a)).toEqual(want);
    expect(flat(out.b)).toEqual(want);

    const d = tensor(new Float64Array([1 / 3, 1e300]));
    const f = loadSafetensors(saveSafetensors({ d }, undefined, { dtypes: { d: 'F32' } })).d;
    expect(flat(f)).toEqual([Math.fround(1 / 3), Infinity]);
  });
});

describe('layouts', () => {
  test('a transposed (non-contiguous) tensor is saved in row-major order', () => {
    const x = arange(6, { dtype: 'float32' }).reshape([2, 3]).transpose(0, 1); // [[0,3],[1,4],[2,5]]
    expect(x.isContiguous()).toBe(false);
    const bytes = saveSafetensors({ x });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.x.shape).toEqual([3, 2]);
    const data = new DataView(bytes.buffer, 8 + n);
    expect(Array.from({ length: 6 }, (_, i) => data.getFloat32(4 * i, true))).toEqual([0, 3, 1, 4, 2, 5]);
    expect(loadSafetensors(bytes).x.toArray()).toEqual([[0, 3], [1, 4], [2, 5]]);
  });

  test('non-contiguous float16 and offset views', () => {
    const h = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float16' }).transpose(0, 1);
    const s = arange(10, { dtype: 'float64' }).slice(0, 3, 9, 2); // [3, 5, 7], offset 3, stride 2
    const out = loadSafetensors(saveSafetensors({ h, s }));
    expect(out.h.toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(out.s.toArray()).toEqual([3, 5, 7]);
  });

  test('unaligned data offsets and byte views with odd byteOffset load correctly', () => {
    // An unpadded header of odd length puts the F64 data at an odd address.
    const header = '{"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"i":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}} ';
    expect(header.length % 2).toBe(1);
    const data = new Uint8Array(20);
    const dv = new DataView(data.buffer);
    dv.setFloat64(0, -1.25, true);
    dv.setFloat64(8, 1e-310, true);
    dv.setInt32(16, -123456, true);
    const file = fileOf(header, data);
    // Also place the whole file at byteOffset 3 of a bigger buffer.
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    for (const input of [file, big.subarray(3), Buffer.from(file), file.slice().buffer]) {
      const out = loadSafetensors(input);
      expect(out.d.toArray()).toEqual([-1.25, 1e-310]);
      expect(out.i.toArray()).toEqual([-123456]);
    }
  });

  test('the loaded tensors do not alias the input bytes', () => {
    const bytes = saveSafetensors({ x: tensor([1, 2], { dtype: 'float32' }) });
    const x = loadSafetensors(bytes).x;
    bytes.fill(0, bytes.length - 8);
    expect(x.toArray()).toEqual([1, 2]);
  });
});

// ------------------------------------------------------------------------------------ files

describe('files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'blockgrad-safetensors-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const sample = () => ({
    w: tensor([[1, 2], [3, 4]], { dtype: 'float32' }),
    h: tensor([0.5, -0], { dtype: 'float16' }),
    i: tensor([7], { dtype: 'int32' }),
  });

  test('saveSafetensorsFile then loadSafetensorsFile / loadSafetensors(path) / parseSafetensors(path)', async () => {
    const path = join(dir, 'model.safetensors');
    await saveSafetensorsFile(path, sample(), { format: 'pt' });
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    // The file holds exactly saveSafetensors' bytes.
    expect(Array.from(readFileSync(path))).toEqual(Array.from(saveSafetensors(sample(), { format: 'pt' })));

    const a = await loadSafetensorsFile(path);
    expect(a.w.toArray()).toEqual([[1, 2], [3, 4]]);
    expect(bitsF16(a.h)).toEqual([0x3800, 0x8000]);
    expect(a.i.toArray()).toEqual([7]);

    const b = loadSafetensors(path); // synchronous path form
    expect(b.w.toArray()).toEqual([[1, 2], [3, 4]]);
    expect(parseSafetensors(path).metadata).toEqual({ format: 'pt' });
    // Node Buffer from fs is accepted as bytes too.
    expect(loadSafetensors(readFileSync(path)).i.toArray()).toEqual([7]);
  });

  test('saving over an existing file replaces it', async () => {
    const path = join(dir, 'x.safetensors');
    await saveSafetensorsFile(path, { x: tensor([1]) });
    await saveSafetensorsFile(path, { y: tensor([2, 3]) });
    expect(Object.keys(loadSafetensors(path))).toEqual(['y']);
    expect(readdirSync(dir)).toEqual(['x.safetensors']);
  });

  test('a failed save (invalid dtype option) leaves no file behind, and an existing file untouched', async () => {
    const path = join(dir, 'bad.safetensors');
    await expect(saveSafetensorsFile(path, sample(), undefined, { dtypes: { w: 'F8' as SafetensorsDType } })).rejects.toThrow(SafetensorsError);
    await expect(saveSafetensorsFile(path, sample(), undefined, { dtypes: { w: 'F8' as SafetensorsDType } })).rejects.toThrow(
      /saveSafetensorsFile: options.dtypes\["w"\] is 'F8'; supported dtypes are F64, F32, F16, BF16 or I32/,
    );
    expect(readdirSync(dir)).toEqual([]);

    const existing = join(dir, 'keep.safetensors');
    await saveSafetensorsFile(existing, { k: tensor([5]) });
    const before = readFileSync(existing);
    await expect(saveSafetensorsFile(existing, { i: tensor([1], { dtype: 'int32' }) }, undefined, { dtypes: { i: 'F32' } })).rejects.toThrow(
      /int32 and can only be saved as I32/,
    );
    expect(readFileSync(existing).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['keep.safetensors']);
  });

  test('a file-system failure (missing folder) rejects and creates nothing', async () => {
    const path = join(dir, 'no', 'such', 'folder', 'x.safetensors');
    await expect(saveSafetensorsFile(path, sample())).rejects.toMatchObject({ code: 'ENOENT' });
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a failed write after the temp file exists removes the temp file', async () => {
    // Target is an existing directory: the rename fails after the temp file has been written.
    const target = join(dir, 'is-a-dir');
    mkdirSync(join(target, 'child'), { recursive: true });
    await expect(saveSafetensorsFile(target, sample())).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['is-a-dir']);
  });

  test('a malformed file on disk is rejected with the file op name', async () => {
    const path = join(dir, 'trunc.safetensors');
    writeFileSync(path, saveSafetensors(sample()).subarray(0, 40));
    await expect(loadSafetensorsFile(path)).rejects.toThrow(/^loadSafetensorsFile: the header length \d+ runs past the end of the file \(40 bytes/);
    expectSafetensorsError(() => loadSafetensors(path), /runs past the end of the file/);
  });

  test('a missing file rejects with Node\'s ENOENT', async () => {
    await expect(loadSafetensorsFile(join(dir, 'missing.safetensors'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => loadSafetensors(join(dir, 'missing.safetensors'))).toThrow(/ENOENT/);
  });
});

// ------------------------------------------------------------------------------------ malformed input

describe('malformed files are rejected with a specific message', () => {
  const good = { a: f32Entry(0, 8) };
  const eight = new Array(8).fill(0);

  test('inputs that are not bytes', () => {
    expectSafetensorsError(() => loadSafetensors(42 as unknown as Uint8Array), /expected the file's bytes \(a Uint8Array, Buffer or ArrayBuffer\) or a file path, got 42/);
    expectSafetensorsError(() => loadSafetensors(null as unknown as Uint8Array), /got null/);
    expectSafetensorsError(() => parseSafetensors({} as unknown as Uint8Array), /got an object/, 'parseSafetensors');
  });

  test('a file shorter than 8 bytes', () => {
    expectSafetensorsError(() => loadSafetensors(new Uint8Array(0)), /the file is 0 bytes, shorter than the 8-byte header length/);
    expectSafetensorsError(() => loadSafetensors(new Uint8Array([2, 0, 0, 0, 0, 0, 0])), /the file is 7 bytes, shorter than the 8-byte header length/);
  });

  test('a header length past the end of the file', () => {
    const f = fileOf('{}', [], 3);
    expectSafetensorsError(() => loadSafetensors(f), /the header length 3 runs past the end of the file \(10 bytes, so at most 2 header bytes\)/);
    expectSafetensorsError(() => loadSafetensors(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])), /header length 1 runs past the end of the file \(8 bytes/);
  });

  test('a header over the 100 MB limit, including lengths that need the high 32 bits', () => {
    expectSafetensorsError(() => loadSafetensors(fileOf('{}', [], 100_000_001)), /the header length is 100000001 bytes, over the 100000000-byte limit/);
    const huge = new Uint8Array(16);
    huge[4] = 1; // 2^32
    expectSafetensorsError(() => loadSafetensors(huge), /the header length is 4294967296 bytes, over the 100000000-byte limit/);
    expectSafetensorsError(() => loadSafetensors(new Uint8Array(8).fill(0xff)), /over the 100000000-byte limit/);
  });

  test('a header that is not UTF-8, not JSON, or not an object', () => {
    const badUtf8 = new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0x28]);
    expectSafetensorsError(() => loadSafetensors(badUtf8), /the header is not valid UTF-8/);
    expectSafetensorsError(() => loadSafetensors(fileOf('{"a":')), /the header is not valid JSON \(/);
    expectSafetensorsError(() => loadSafetensors(fileOf('')), /the header is not valid JSON/);
    expectSafetensorsError(() => loadSafetensors(fileOf('[1,2]')), /the header must be a JSON object, got an array/);
    expectSafetensorsError(() => loadSafetensors(fileOf('"hi"')), /the header must be a JSON object, got 'hi'/);
    expectSafetensorsError(() => loadSafetensors(fileOf('null')), /the header must be a JSON object, got null/);
    expectSafetensorsError(() => loadSafetensors(fileOf('7')), /the header must be a JSON object, got 7/);
  });

  test('a tensor entry that is not an object', () => {
    expectSafetensorsError(() => loadSafetensors(fileJson({ w: [1, 2] })), /tensor "w": its header entry must be an object with dtype, shape and data_offsets, got an array/);
    expectSafetensorsError(() => loadSafetensors(fileJson({ w: 'F32' })), /tensor "w": its header entry must be an object/);
  });

  test('missing dtype, shape or data_offsets', () => {
    expectSafetensorsError(() => loadSafetensors(fileJson({ w: { shape: [2], data_offsets: [0, 8] } }, eight)), /tensor "w": its header entry has no "dtype" field/);
    expectSafetensorsError(() => loadSafetensors(fileJson({ w: { dtype: 'F32', data_offsets: [0, 8] } }, eight)), /tensor "w": its header entry has no "shape" field/);
    expectSafetensorsError(() => loadSafetensors(fileJson({ w: { dtype: 'F32', shape: [2] } }, eight)), /tensor "w": its header entry has no "data_offsets" field/);
  });

  test('dtype of the wrong type or unknown', () => {
    expectSafetensorsError(() => loadSafetensors(fileJson({ w: { dtype: 4, shape: [2], data_offsets: [0, 8] } }, eight)), /tensor "w": dtype must be a string, got 4/);
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, eight)),
      /tensor "w": dtype "I64" is not supported; supported dtypes are F64, F32, F16, BF16 or I32/,
    );
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ w: { dtype: 'float32', shape: [2], data_offsets: [0, 8] } }, eight)),
      /tensor "w": dtype "float32" is not a safetensors dtype blockgrad knows; supported dtypes are F64, F32, F16, BF16 or I32/,
    );
  });

  test('shape that is not an array of non-negative integers', () => {
    for (const shape of [[-2], [2.5], ['2'], 2, null, [1e400], [2 ** 53]]) {
      expectSafetensorsError(
        () => loadSafetensors(fileJson({ w: { dtype: 'F32', shape, data_offsets: [0, 8] } }, eight)),
        /tensor "w": shape must be an array of non-negative integers, got /,
      );
    }
  });

  test('data_offsets that are not [begin, end] non-negative integers', () => {
    for (const offsets of [[0], [0, 8, 8], [0, 8.5], [-1, 8], ['0', '8'], { begin: 0, end: 8 }, 8, [0, null]]) {
      expectSafetensorsError(
        () => loadSafetensors(fileJson({ w: { dtype: 'F32', shape: [2], data_offsets: offsets } }, eight)),
        /tensor "w": data_offsets must be \[begin, end\], two non-negative integers, got /,
      );
    }
  });

  test('begin after end', () => {
    expectSafetensorsError(() => loadSafetensors(fileJson({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, eight)), /tensor "w": data_offsets \[8, 0\] begin after they end/);
  });

  test('end past the data section (truncated data)', () => {
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ w: f32Entry(0, 12) }, eight)),
      /tensor "w": data_offsets \[0, 12\] run past the end of the data section, which has 8 bytes/,
    );
  });

  test('byte length that disagrees with the shape and dtype', () => {
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight)),
      /tensor "w": data_offsets \[0, 8\] hold 8 bytes, but F32 shape \[3\] needs 3 elements x 4 bytes = 12 bytes/,
    );
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ w: { dtype: 'F64', shape: [], data_offsets: [0, 4] } }, eight.slice(0, 4))),
      /tensor "w": data_offsets \[0, 4\] hold 4 bytes, but F64 shape \[\] needs 1 elements x 8 bytes = 8 bytes/,
    );
    // A shape whose byte count overflows 2^53 is still rejected, not wrapped.
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, eight)),
      /tensor "w": data_offsets \[0, 8\] hold 8 bytes, but F32 shape/,
    );
  });

  test('overlapping tensors', () => {
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ a: f32Entry(0, 8), b: f32Entry(4, 12) }, new Array(12).fill(0))),
      /tensors "a" \(bytes \[0, 8\)\) and "b" \(bytes \[4, 12\)\) overlap/,
    );
    expectSafetensorsError(() => loadSafetensors(fileJson({ a: f32Entry(0, 8), b: f32Entry(0, 8) }, eight)), /tensors "a" .* and "b" .* overlap/);
    // An empty tensor placed inside another one is an overlap too (as in the reference).
    expectSafetensorsError(() => loadSafetensors(fileJson({ a: f32Entry(0, 8), e: f32Entry(4, 4, [0]) }, eight)), /tensors "a" \(bytes \[0, 8\)\) and "e" \(bytes \[4, 4\)\) overlap/);
  });

  test('holes: between tensors, before the first, after the last, or data with no tensors', () => {
    expectSafetensorsError(
      () => loadSafetensors(fileJson({ a: f32Entry(0, 4), b: f32Entry(8, 12) }, new Array(12).fill(0))),
      /bytes \[4, 8\) of the data section belong to no tensor \(a hole between "a" and "b"\); the tensors must cover the data section exactly/,
    );
    expectSafetensorsError(() => loadSafetensors(fileJson({ b: f32Entry(4, 8) }, eight)), /bytes \[0, 4\) of the data section belong to no tensor \(a hole before "b"\)/);
    expectSafetensorsError(() => loadSafetensors(fileJson({ a: f32Entry(0, 4) }, eight)), /bytes \[4, 8\) of the data section belong to no tensor \(after "a", the last tensor\)/);
    expectSafetensorsError(() => loadSafetensors(fileJson({}, [1, 2, 3])), /bytes \[0, 3\) of the data section belong to no tensor \(and the header lists no tensors\)/);
  });

  test('__metadata__ that is not an object of strings', () => {
    expectSafetensorsError(() => loadSafetensors(fileJson({ __metadata__: { a: 1 }, ...good }, eight)), /__metadata__ value for key "a" must be a string, got 1/);
    expectSafetensorsError(() => loadSafetensors(fileJson({ __metadata__: { a: ['x'] } }, [])), /__metadata__ value for key "a" must be a string, got an array/);
    expectSafetensorsError(() => loadSafetensors(fileJson({ __metadata__: ['x'] })), /__metadata__ must be an object of strings, got an array/);
    expectSafetensorsError(() => loadSafetensors(fileJson({ __metadata__: 'x' })), /__metadata__ must be an object of strings, got 'x'/);
  });

  test('errors name the tensor among several, and come before any tensor is created', () => {
    const f = fileJson({ ok: f32Entry(0, 8), 'model.layers.3.bad': { dtype: 'F16', shape: [5], data_offsets: [8, 16] } }, new Array(16).fill(0));
    expectSafetensorsError(() => loadSafetensors(f), /tensor "model.layers.3.bad": data_offsets \[8, 16\] hold 8 bytes, but F16 shape \[5\] needs 5 elements x 2 bytes = 10 bytes/);
  });

  test('every truncation and many random corruptions either parse or raise a SafetensorsError', () => {
    const valid = saveSafetensors(
      { a: tensor([[1, 2], [3, 4]]), b: tensor([1, 2, 3], { dtype: 'float16' }), c: tensor([9], { dtype: 'int32' }), d: tensor([0.5], { dtype: 'float64' }) },
      { m: 'x' },
    );
    const check = (bytes: Uint8Array) => {
      try {
        const out = parseSafetensors(bytes);
        for (const t of Object.values(out.tensors)) t.toArray();
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`raw ${String(e)} for bytes ${Array.from(bytes).join(',')}`);
      }
    };
    for (let len = 0; len < valid.length; len++) {
      expect(() => parseSafetensors(valid.subarray(0, len))).toThrow(SafetensorsError);
    }
    let seed = 7;
    const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 3000; trial++) {
      const bytes = valid.slice();
      const flips = 1 + Math.floor(rnd() * 3);
      for (let j = 0; j < flips; j++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
      check(bytes);
    }
    // Appending a byte leaves an uncovered hole at the end.
    const longer = new Uint8Array(valid.length + 1);
    longer.set(valid);
    expectSafetensorsError(() => loadSafetensors(longer), /belong to no tensor \(after "b", the last tensor\)/);
  });
});

describe('saveSafetensors rejects what it cannot write', () => {
  const op = 'saveSafetensors';
  test('invalid dtype options', () => {
    const x = tensor([1]);
    expectSafetensorsError(() => saveSafetensors({ x }, undefined, { dtypes: { x: 'F8' as SafetensorsDType } }), /options.dtypes\["x"\] is 'F8'; supported dtypes are F64, F32, F16, BF16 or I32/, op);
    expectSafetensorsError(() => saveSafetensors({ x }, undefined, { dtypes: { y: 'F32' } }), /options.dtypes names "y", which is not one of the tensors being saved/, op);
    expectSafetensorsError(() => saveSafetensors({ x }, undefined, { dtypes: { x: 'I32' } }), /tensor "x" is float32 and cannot be saved as I32 \(that would truncate\)/, op);
    const i = tensor([1], { dtype: 'int32' });
    expectSafetensorsError(() => saveSafetensors({ i }, undefined, { dtypes: { i: 'BF16' } }), /tensor "i" is int32 and can only be saved as I32, not BF16/, op);
  });

  test('invalid tensors, names and metadata', () => {
    const x = tensor([1]);
    expectSafetensorsError(() => saveSafetensors({ x }, { a: 1 as unknown as string }), /metadata value for key "a" must be a string, got 1/, op);
    expectSafetensorsError(() => saveSafetensors({ x }, ['a'] as unknown as Record<string, string>), /metadata must be an object mapping strings to strings, got an array/, op);
    expectSafetensorsError(() => saveSafetensors({ x: [1, 2] as unknown as Tensor }), /tensor "x": expected a Tensor, got an array/, op);
    expectSafetensorsError(() => saveSafetensors(null as unknown as Record<string, Tensor>), /tensors must be an object mapping names to tensors, got null/, op);
    expectSafetensorsError(() => saveSafetensors({ __metadata__: x }), /a tensor cannot be named "__metadata__"/, op);
    expectSafetensorsError(() => saveSafetensors({ ['bad\ud800']: x }), /tensor name "bad\\ud800" contains a lone UTF-16 surrogate/, op);
    const gone = tensor([1, 2]);
    gone.dispose();
    expectSafetensorsError(() => saveSafetensors({ gone }), /tensor "gone" \(shape \[2\]\) was disposed/, op);
  });
});

describe('browser bundles', () => {
  test('the module bundles for the browser without Node built-ins, and a path there says to pass bytes', async () => {
    const root = resolve(__dirname, '..', '..');
    const esbuild = require('esbuild') as typeof import('esbuild');
    const entry = `
      import { tensor } from './src';
      import { loadSafetensors, saveSafetensors, SafetensorsError } from './src/io';
      process.getBuiltinModule = undefined; // what a browser (or old Node ESM) offers: no fs
      const out = { values: loadSafetensors(saveSafetensors({ x: tensor([1, 2]) })).x.toArray() };
      try { loadSafetensors('model.safetensors'); } catch (e) { out.error = e.message; out.typed = e instanceof SafetensorsError; }
      console.log(JSON.stringify(out));
    `;
    const result = await esbuild.build({
      stdin: { contents: entry, resolveDir: root, sourcefile: 'entry.ts', loader: 'ts' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0].text;
    expect(code).not.toMatch(/from\s*["'](node:)?fs/);
    expect(code).not.toMatch(/require\(["'](node:)?fs/);
    const dir = mkdtempSync(join(tmpdir(), 'blockgrad-st-bundle-'));
    try {
      writeFileSync(join(dir, 'bundle.mjs'), code);
      const run = spawnSync(process.execPath, [join(dir, 'bundle.mjs')], { encoding: 'utf8', timeout: 30000 });
      expect(run.stderr).toBe('');
      const out = JSON.parse(run.stdout.trim());
      expect(out.values).toEqual([1, 2]);
      expect(out.typed).toBe(true);
      expect(out.error).toMatch(/^loadSafetensors: reading or writing a file path needs Node\.js .* pass its bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
