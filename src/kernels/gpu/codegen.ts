/**
 * Pieces of generated kernel source. Kernels are JavaScript in gpu.js's subset; what is generated
 * is index arithmetic with the shape and strides written in as constants, so one kernel is
 * compiled per shape signature and the shader sees plain numbers.
 *
 * Index arithmetic is done in floats (GLSL ES 1.0 has no exact integer division). Dividing then
 * flooring can land one off when the division is inexact, so every quotient is corrected by its
 * remainder; all values stay below 2^24, where float32 holds integers exactly.
 */
import type { DType } from '../../tensor/dtype';
import type { View } from '../backend';
import { coalesce } from '../cpu/strided';

/** Statements that set `q` = floor(n / d) and `r` = n - q·d exactly, for integers n >= 0, d > 0. */
export function divmod(q: string, r: string, n: string, d: number): string {
  return (
    `let ${q} = Math.floor((${n} + 0.5) / ${d}); let ${r} = ${n} - ${q} * ${d}; ` +
    `if (${r} < 0) { ${q} = ${q} - 1; ${r} = ${r} + ${d}; } ` +
    `if (${r} >= ${d}) { ${q} = ${q} + 1; ${r} = ${r} - ${d}; }`
  );
}

/**
 * A view's shape and strides with size-1 dimensions dropped and neighbours that walk memory as
 * one dimension merged (a contiguous view becomes one dimension of stride 1): the cpu backend's
 * `coalesce` for a single view.
 */
export function collapse(shape: readonly number[], strides: readonly number[]): { shape: number[]; strides: number[] } {
  const merged = coalesce(shape, [strides]);
  return { shape: merged.shape, strides: merged.strides[0] };
}

/** The part of a kernel's cache key that a view's layout contributes (its offset is not part). */
export function layoutKey(v: View): string {
  const c = collapse(v.shape, v.strides);
  return `${v.buffer.length}[${c.shape.join(',')}|${c.strides.join(',')}]`;
}

let counter = 0;

/**
 * Statements declaring `out` = the buffer position of element `flat` (row-major over the view's
 * shape) of a view, starting from the offset expression `offset`.
 */
export function viewOffset(out: string, flat: string, v: View, offset: string): string {
  const { shape, strides } = collapse(v.shape, v.strides);
  if (shape.length === 0) return `let ${out} = ${offset};`;
  if (shape.length === 1) return `let ${out} = ${offset} + ${flat} * ${strides[0]};`;
  const id = counter++;
  const rem = `rem${id}`;
  const lines = [`let ${out} = ${offset};`, `let ${rem} = ${flat};`];
  for (let d = shape.length - 1; d > 0; d--) {
    const q = `q${id}_${d}`;
    const c = `c${id}_${d}`;
    lines.push(divmod(q, c, rem, shape[d]));
    if (strides[d] !== 0) lines.push(`${out} = ${out} + ${c} * ${strides[d]};`);
    lines.push(`${rem} = ${q};`);
  }
  if (strides[0] !== 0) lines.push(`${out} = ${out} + ${rem} * ${strides[0]};`);
  return lines.join('\n    ');
}

/**
 * True when `v` is NaN, written so that no shader compiler folds it away (`v != v` may be
 * optimised to false; every comparison with NaN is false, so NaN is neither < 0 nor >= 0).
 */
export const isNaNExpr = (v: string): string => `!(${v} < 0 || ${v} >= 0)`;

/** Wraps a value expression so that it is stored the way `dtype` stores it. */
export function store(dtype: DType, expr: string): string {
  if (dtype === 'float16') return `roundHalf(${expr})`;
  if (dtype === 'bfloat16') return `roundBFloat16(${expr})`;
  if (dtype === 'int32') return `truncInt(${expr})`;
  return expr;
}

/** A number as kernel source (always with a decimal point or exponent, so gpu.js types it float). */
export function num(x: number): string {
  if (Number.isNaN(x)) return '(0.0 / 0.0)';
  if (x === Infinity) return '(1e30 * 1e30)';
  if (x === -Infinity) return '(-1e30 * 1e30)';
  const s = String(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}
