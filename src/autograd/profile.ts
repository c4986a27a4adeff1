/**
 * What a forward and backward did, counted: nodes recorded and not recorded, nodes run, and the
 * work avoided by each of the three pruning mechanisms (docs/design.md):
 *   1. forward-time propagation: ops whose inputs need no grad record no node (`notRecorded`);
 *   2. per-input masks: a node computes no gradient for inputs that need none (`gradsSkippedByMask`);
 *   3. reachability: backward({ inputs }) runs only nodes on a path to the inputs
 *      (`nodesPrunedByReachability`, `gradsSkippedByReachability`).
 * Plus kernels launched and matmul FLOPs (from the kernel counters) and time per op type.
 */
import { kernelCounters } from '../kernels/registry';

export interface RecordedNodeEvent {
  op: string;
  /** Names of the inputs that have one: a Module names its parameters by their dotted paths when they are registered. */
  inputNames: (string | undefined)[];
  /** Which inputs need a gradient (mechanism 2's mask). */
  needsInputGrad: boolean[];
  /** Bytes of the tensors this node keeps for backward. */
  savedBytes: number;
}

export interface BackwardNodeEvent {
  op: string;
  inputNames: (string | undefined)[];
  /** Which input gradients this node computed. */
  computed: boolean[];
  ms: number;
}

export interface ProfileReport {
  /** Graph nodes recorded by ops in the profiled code. */
  nodesRecorded: number;
  recorded: RecordedNodeEvent[];
  /** Mechanism 1: ops run with grad mode on whose inputs needed no grad, by op. */
  notRecorded: Record<string, number>;
  notRecordedTotal: number;
  /** Nodes whose backward function ran. */
  nodesRun: number;
  /** Mechanism 2: input gradients not computed because the input needs none. */
  gradsSkippedByMask: number;
  /** Mechanism 3: nodes in the graph not run because no requested input is below them. */
  nodesPrunedByReachability: number;
  /** Mechanism 3: input gradients not computed because they lead to no requested input. */
  gradsSkippedByReachability: number;
  backwardNodes: BackwardNodeEvent[];
  /** Kernel launches during the profiled code, by kernel, and in total. */
  kernels: Record<string, number>;
  kernelLaunches: number;
  /** 2·m·n·k summed over matmul kernel launches. */
  matmulFlops: number;
  /** Backward time per op type, in milliseconds. */
  backwardMsByOp: Record<string, number>;
  /** Bytes saved for backward by nodes recorded in the profiled code. */
  savedBytes: number;
}

function emptyReport(): ProfileReport {
  return {
    nodesRecorded: 0,
    recorded: [],
    notRecorded: {},
    notRecordedTotal: 0,
    nodesRun: 0,
    gradsSkippedByMask: 0,
    nodesPrunedByReachability: 0,
    gradsSkippedByReachability: 0,
    backwardNodes: [],
    kernels: {},
    kernelLaunches: 0,
    matmulFlops: 0,
    backwardMsByOp: {},
    savedBytes: 0,
  };
}

/** Reports being filled by profile() calls in progress (nested profiles each get every event). */
const active: ProfileReport[] = [];

export function profiling(): boolean {
  return active.length > 0;
}

export function onRecorded(e: RecordedNodeEvent): void {
  for (const r of active) {
    r.nodesRecorded++;
    r.recorded.push(e);
    r.savedBytes += e.savedBytes;
  }
}

export function onNotRecorded(op: string): void {
  for (const r of active) {
    r.notRecorded[op] = (r.notRecorded[op] ?? 0) + 1;
    r.notRecordedTotal++;
  }
}

export function onBackwardNode(e: BackwardNodeEvent, skippedByMask: number, skippedByReach: number): void {
  for (const r of active) {
    r.nodesRun++;
    r.backwardNodes.push(e);
    r.gradsSkippedByMask += skippedByMask;
    r.gradsSkippedByReachability += skippedByReach;
    r.backwardMsByOp[e.op] = (r.backwardMsByOp[e.op] ?? 0) + e.ms;
  }
}

export function onPruned(count: number): void {
  for (const r of active) r.nodesPrunedByReachability += count;
}

/**
 * Runs fn and returns its result with a report of the autograd work it did, e.g.
 * `const { report } = profile(() => loss.backward())`.
 */
export function profile<T>(fn: () => T): { result: T; report: ProfileReport } {
  const report = emptyReport();
  const launchesBefore = { ...kernelCounters.launches };
  const flopsBefore = kernelCounters.matmulFlops;
  active.push(report);
  let result: T;
  try {
    result = fn();
  } finally {
    active.splice(active.indexOf(report), 1);
    for (const [k, v] of Object.entries(kernelCounters.launches)) {
      const d = v - (launchesBefore[k] ?? 0);
      if (d > 0) {
        report.kernels[k] = d;
        report.kernelLaunches += d;
      }
    }
    report.matmulFlops = kernelCounters.matmulFlops - flopsBefore;
  }
  return { result, report };
}
