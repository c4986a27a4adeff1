// Rotary position embedding (RoPE) in Hugging Face's rotate_half layout, float32. Each row of
// length D = 2h pairs element j with element j + h:
//
//   forward   (transpose 0): out[j]   = x[j]·cos[j]     − x[j+h]·sin[j]
//                            out[j+h] = x[j+h]·cos[j+h] + x[j]·sin[j+h]
//   transpose (transpose 1): out[j]   = x[j]·cos[j]     + x[j+h]·sin[j+h]
//                            out[j+h] = x[j+h]·cos[j+h] − x[j]·sin[j]
//
// The forward is x·cos + rotate_half(x)·sin; the transpose is its adjoint in x, so the backward of
// y = rotary(x) is dx = rotaryᵀ(dy). Each product is rounded to float32 and then the sum, in that
// order, as the composite (mul, mul, add) does: the result equals it bit for bit (wasm never
// fuses a multiply and an add).
//
//   rotary_f32(desc: usize, task: i32, scratch: usize): void    (the parallel-kernel signature, see matmul.ts)
//
// Descriptor (32-bit little-endian fields, byte offsets; mirrored in src/kernels/wasm/rotary.ts):
//
//    0 out      byte address of the contiguous output (rows × D float32)
//    4 x        byte address of x's first element (view offset included)
//    8 cos     12 sin    the same for the tables, already broadcast to x's shape (stride 0)
//   16 shape    3 x i32: the leading dims, outermost first (padded in front with 1s)
//   28 xStride  4 x i32, elements: the 3 leading dims, then the last dim
//   44 cStride  4 x i32     60 sStride  4 x i32
//   76 half     h = D/2
//   80 rowsPer  rows per task
//   84 rows     rows in all
//   88 transpose 0 or 1
//
// Task t writes rows [t·rowsPer, (t+1)·rowsPer): whole rows, so tasks write disjoint ranges.

import { gather, gatherPartial, storePartial } from './lanes';

const D_OUT: usize = 0;
const D_X: usize = 4;
const D_COS: usize = 8;
const D_SIN: usize = 12;
const D_SHAPE: usize = 16;
const D_X_STRIDE: usize = 28;
const D_C_STRIDE: usize = 44;
const D_S_STRIDE: usize = 60;
const D_HALF: usize = 76;
const D_ROWS_PER: usize = 80;
const D_ROWS: usize = 84;
const D_TRANSPOSE: usize = 88;

/** Four lanes from p, p + s, p + 2s, p + 3s (s in bytes); a plain vector load when s is 4. */
@inline function load4(p: usize, s: usize): v128 {
  return s == 4 ? v128.load(p) : gather(p, s);
}

/**
 * One row: x, c, s point at element 0 of the row, with last-dim strides sx, sc, ss in bytes; out
 * is contiguous. Lanes j..j+3 of the first half are computed with lanes j+h..j+h+3 of the second.
 */
@inline function rotaryRow(x: usize, sx: usize, c: usize, sc: usize, s: usize, ss: usize, out: usize, h: i32, transpose: bool): void {
  const hx = <usize>h * sx, hc = <usize>h * sc, hs = <usize>h * ss, ho = <usize>h << 2;
  for (let j = 0; j < h; j += 4) {
    const n = h - j;
    const xa = n >= 4 ? load4(x, sx) : gatherPartial(x, sx, n);
    const xb = n >= 4 ? load4(x + hx, sx) : gatherPartial(x + hx, sx, n);
    const ca = n >= 4 ? load4(c, sc) : gatherPartial(c, sc, n);
    const cb = n >= 4 ? load4(c + hc, sc) : gatherPartial(c + hc, sc, n);
    const sa = n >= 4 ? load4(s, ss) : gatherPartial(s, ss, n);
    const sb = n >= 4 ? load4(s + hs, ss) : gatherPartial(s + hs, ss, n);
    let outA: v128, outB: v128;
    if (transpose) {
      outA = f32x4.add(f32x4.mul(xa, ca), f32x4.mul(xb, sb));
      outB = f32x4.sub(f32x4.mul(xb, cb), f32x4.mul(xa, sa));
    } else {
      outA = f32x4.sub(f32x4.mul(xa, ca), f32x4.mul(xb, sa));
      outB = f32x4.add(f32x4.mul(xb, cb), f32x4.mul(xa, sb));
    }
    if (n >= 4) {
      v128.store(out, outA);
      v128.store(out + ho, outB);
    } else {
      storePartial(out, outA, n);
      storePartial(out + ho, outB, n);
    }
    x += 4 * sx;
    c += 4 * sc;
    s += 4 * ss;
    out += 16;
  }
}

export function rotary_f32(desc: usize, task: i32, scratch: usize): void {
  const x = <usize>load<u32>(desc, D_X);
  const c = <usize>load<u32>(desc, D_COS);
  const s = <usize>load<u32>(desc, D_SIN);
  const d1 = load<i32>(desc, D_SHAPE + 4), d2 = load<i32>(desc, D_SHAPE + 8);
  const x0 = load<i32>(desc, D_X_STRIDE), x1 = load<i32>(desc, D_X_STRIDE + 4), x2 = load<i32>(desc, D_X_STRIDE + 8);
  const c0 = load<i32>(desc, D_C_STRIDE), c1 = load<i32>(desc, D_C_STRIDE + 4), c2 = load<i32>(desc, D_C_STRIDE + 8);
  const s0 = load<i32>(desc, D_S_STRIDE), s1 = load<i32>(desc, D_S_STRIDE + 4), s2 = load<i32>(desc, D_S_STRIDE + 8);
  // last-dim strides in bytes (wrap-around arithmetic keeps negative strides working)
  const sx = <usize>load<i32>(desc, D_X_STRIDE + 12) << 2;
  const sc = <usize>load<i32>(desc, D_C_STRIDE + 12) << 2;
  const ss = <usize>load<i32>(desc, D_S_STRIDE + 12) << 2;
  const h = load<i32>(desc, D_HALF);
  const rowsPer = load<i32>(desc, D_ROWS_PER);
  const rows = load<i32>(desc, D_ROWS);
  const transpose = load<i32>(desc, D_TRANSPOSE) != 0;
  const first = task * rowsPer;
  const end = rows < first + rowsPer ? rows : first + rowsPer;
  let out = <usize>load<u32>(desc, D_OUT) + ((<usize>first * <usize>(2 * h)) << 2);
  for (let r = first; r < end; r++) {
    const i2 = r % d2, q = r / d2;
    const i1 = q % d1, i0 = q / d1;
    const px = i0 * x0 + i1 * x1 + i2 * x2;
    const pc = i0 * c0 + i1 * c1 + i2 * c2;
    const ps = i0 * s0 + i1 * s1 + i2 * s2;
    rotaryRow(x + (<usize>px << 2), sx, c + (<usize>pc << 2), sc, s + (<usize>ps << 2), ss, out, h, transpose);
    out += <usize>(2 * h) << 2;
  }
}
