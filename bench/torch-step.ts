/**
 * Runs bench/torch_step.py (PyTorch's training step of the step suite's model) as a child process
 * that stays up for the whole suite, so that its rounds interleave with blockgrad's and tfjs's:
 * it builds the model and warms up once, then answers each `{"steps": k}` line with k step times.
 *
 * The Python found first that imports torch is used: $BENCH_PYTHON, then `python3` on the PATH,
 * then /usr/bin/python3 (Debian's python3-torch installs into the system Python, which a pyenv
 * shim earlier on the PATH hides). Without one, the suite prints one line saying so and skips it.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface TorchInfo {
  torch: string;
  threads: number;
  torchThreads: number;
  /** The BLAS library torch loaded ("openblas (...)" or the reference libblas.so.3). */
  blas: string;
  parameters: number;
  /** Loss of the first warm-up step. */
  firstLoss: number;
  python: string;
}

export interface TorchModelConfig {
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  batch: number;
  seq: number;
  lr: number;
  ids: number[];
}

/** A Python interpreter that can import torch, or the reason there is none. */
export function findTorchPython(): { python: string } | { skipped: string } {
  const candidates = [process.env.BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const python of [...new Set(candidates)]) {
    const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
    if (r.status === 0) return { python };
  }
  return { skipped: `no Python with torch (tried ${[...new Set(candidates)].join(', ')}; Debian: apt-get install python3-torch)` };
}

/** One torch_step.py --serve process with `threads` threads. */
export class TorchStepper {
  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    readonly info: TorchInfo,
    private readonly stderr: string[],
  ) {}

  static async start(python: string, threads: number, config: TorchModelConfig, warmup = 2): Promise<TorchStepper> {
    const n = String(threads);
    const script = join(process.cwd(), 'bench', 'torch_step.py');
    const proc = spawn(python, [script, '--serve', '--threads', n, '--warmup', String(warmup), '--config', JSON.stringify(config)], {
      // read by OpenBLAS, OpenMP and MKL when they load (torch_step.py sets them too, and says why PASSIVE)
      env: { ...process.env, OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, OMP_WAIT_POLICY: 'PASSIVE' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stderr: string[] = [];
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => stderr.push(chunk));
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error(`torch_step.py (${threads} threads) exited before it was ready: ${stderr.join('').trim().slice(-2000)}`);
    const info = { ...(JSON.parse(first.value) as Omit<TorchInfo, 'python'>), python };
    return new TorchStepper(proc, lines, info, stderr);
  }

  /** Runs k steps; their times in seconds, and the loss of the last one. */
  async steps(k: number): Promise<{ times: number[]; loss: number }> {
    this.proc.stdin.write(JSON.stringify({ steps: k }) + '\n');
    const line = await this.lines.next();
    if (line.done) throw new Error(`torch_step.py (${this.info.threads} threads) exited: ${this.stderr.join('').trim().slice(-2000)}`);
    return JSON.parse(line.value) as { times: number[]; loss: number };
  }

  /** Ends the process (closing its stdin ends its loop) and waits for it. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.stdin.end();
    });
  }
}
