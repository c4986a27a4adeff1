/**
 * Row-gradient sinks: a way for an optimizer that trains only some rows of a 2-D weight to get
 * the gradient of those rows alone. BlockOptimizerRatio's 'adjacent' masks select a contiguous
 * range of a row-major [out, in] weight, which lies in a few whole rows. With a sink registered
 * on the weight, linear's backward computes dW = gᵀ·x for those rows only (a product over
 * (rows/out) of the FLOPs, and a temporary of about the selected size), hands each block of rows
 * to the sink, and accumulates no dense `.grad` at all. A weight without a sink, a sink that is
 * no longer active, grad() (which returns gradients rather than accumulating them), a weight with
 * tensor hooks and a backward that records its own graph (createGraph) take the dense path.
 */
import type { Tensor } from '../tensor/tensor';
import { backwardAccumulates } from './engine';
import { isGradEnabled } from './grad-mode';

export interface RowGradientSink {
  /** False once the sink's owner no longer trains the weight (a newer optimizer took it). */
  active(): boolean;
  /** The row ranges [start, end) of the weight whose gradient is wanted now. */
  rows(): [number, number][];
  /** Receives dW[start, start + rows.shape[0]) as a [rows, in] tensor, which is freed after the call. */
  accept(start: number, rows: Tensor): void;
}

const sinks = new WeakMap<Tensor, RowGradientSink>();

/** Registers (or with null removes) the sink of `weight`. */
export function setRowGradientSink(weight: Tensor, sink: RowGradientSink | null): void {
  if (sink === null) sinks.delete(weight);
  else sinks.set(weight, sink);
}

/** The active sink of `weight`, if any. */
export function rowGradientSink(weight: Tensor): RowGradientSink | null {
  const sink = sinks.get(weight);
  return sink && sink.active() ? sink : null;
}

/**
 * Whether a backward may hand `weight`'s gradient to `sink` now: the sink is still active, the
 * backward accumulates into .grad (not grad(), which returns gradients to its caller), it records
 * no graph of itself, and the weight has no tensor hook that would see (or replace) the gradient.
 */
export function sinkTakesGradient(sink: RowGradientSink, weight: { hooks: readonly unknown[] }): boolean {
  return sink.active() && backwardAccumulates() && !isGradEnabled() && weight.hooks.length === 0;
}
