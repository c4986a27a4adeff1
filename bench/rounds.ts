/**
 * Interleaved timing for comparing backends side by side: every contender runs once per round,
 * in turn, for several rounds, and the median round is reported. Compared with timing each
 * contender in one block (benchmark.js), interleaving spreads a burst of load from another
 * process over all of them instead of charging it to whichever ran at the time, and the median
 * ignores the odd slow round.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** Median seconds per call over rounds, with the fastest and slowest round. */
export interface Sampled {
  medianSeconds: number;
  minSeconds: number;
  maxSeconds: number;
  /** Seconds per call of each round, in the order measured. */
  rounds: number[];
}

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

export function sampled(rounds: readonly number[]): Sampled {
  return { medianSeconds: median(rounds), minSeconds: Math.min(...rounds), maxSeconds: Math.max(...rounds), rounds: [...rounds] };
}

/**
 * Seconds per call of fn over one round: calls it until `minSeconds` have passed (at least once),
 * so that short kernels are timed over many calls and the timer's resolution does not matter.
 */
export function timeRound(fn: () => void, minSeconds: number): number {
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    fn();
    calls++;
    t = performance.now();
  } while (t - t0 < minSeconds * 1e3);
  return (t - t0) / 1e3 / calls;
}

/** The 1-minute load average, rounded (what other processes were doing while we measured). */
export function load1(): number {
  return Math.round(loadavg()[0] * 100) / 100;
}

/** Waits for the event loop to turn (lets finalizers and worker messages run between rounds). */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Starts measuring the CPU time that other processes take (Linux: /proc/stat's busy time minus
 * this process's, threads and reaped children included). The load average cannot tell: it counts
 * this benchmark's own threads too. The returned function gives the others' average use in cores
 * since the start, or null where /proc cannot be read.
 */
export function otherCpuMeter(): () => number | null {
  const start = cpuTicks();
  const t0 = performance.now();
  return () => {
    const end = cpuTicks();
    if (!start || !end) return null;
    const seconds = (performance.now() - t0) / 1e3;
    const others = end.busy - start.busy - (end.self - start.self);
    return Math.max(0, others / TICKS_PER_SECOND / seconds);
  };
}

/** USER_HZ: the unit of /proc/stat and /proc/self/stat on Linux (100 on every mainstream build). */
const TICKS_PER_SECOND = 100;

function cpuTicks(): { busy: number; self: number } | null {
  try {
    // cpu  user nice system idle iowait irq softirq steal ...
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + (cpu[7] || 0);
    // fields after the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    const self = fields[11] + fields[12] + fields[13] + fields[14];
    return Number.isFinite(busy) && Number.isFinite(self) ? { busy, self } : null;
  } catch {
    return null;
  }
}
