/**
 * Console output for the demo and `blockgrad finetune`: where they write, and a progress bar
 * written by hand. On a TTY the bar redraws itself in place (carriage return, erase line);
 * elsewhere (a pipe, a log file, a test) it prints a plain line every tenth of the run and at the
 * end, so logs stay readable.
 */

/** Where text goes: process.stdout / process.stderr, or a collector in tests. */
export interface Writer {
  write(text: string): unknown;
  /** True on an interactive terminal: the bar redraws in place. */
  isTTY?: boolean;
  /** Terminal width, when known. */
  columns?: number;
}

export interface ConsoleIO {
  out: Writer;
  err: Writer;
}

/** 1234567 -> "1,234,567" (fixed locale, so output does not depend on the machine). */
export function fmtInt(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Seconds as "42s" or "3m05s". */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
}

export interface ProgressFields {
  loss: number;
  /** Tokens per second so far. */
  tokensPerSecond: number;
  /** Extra text after the numbers (e.g. BAdam's active block). */
  note?: string;
}

export class ProgressBar {
  private readonly started = performance.now();
  private readonly every: number;
  private lastLine = '';
  private drawn = false;

  constructor(
    private readonly out: Writer,
    private readonly label: string,
    private readonly total: number,
    /** Steps already done when the bar starts (a resumed run): the ETA counts from here. */
    private readonly firstStep = 0,
  ) {
    this.every = Math.max(1, Math.ceil(total / 10));
  }

  /** The bar's line; on a terminal the bar narrows so that the line fits its width. */
  private line(step: number, f: ProgressFields, columns = Infinity): string {
    const elapsed = (performance.now() - this.started) / 1000;
    const done = step - this.firstStep;
    const eta = step < this.total ? `eta ${done > 0 ? fmtSeconds((elapsed / done) * (this.total - step)) : '?'}` : fmtSeconds(elapsed);
    const digits = String(this.total).length;
    const head = `${this.label.padEnd(8)} `;
    const tail =
      ` ${String(step).padStart(digits)}/${this.total}  loss ${f.loss.toFixed(3)}  ${fmtInt(f.tokensPerSecond)} tok/s  ${eta}` +
      (f.note ? `  ${f.note}` : '');
    const width = Math.max(8, Math.min(24, columns - 1 - head.length - tail.length - 2));
    const filled = Math.round((width * step) / this.total);
    const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? (step >= this.total ? '=' : '>') : '') + ' '.repeat(width - filled);
    return `${head}[${bar}]${tail}`;
  }

  /** Step `step` (1-based) is done. */
  update(step: number, fields: ProgressFields): void {
    if (this.out.isTTY) {
      const cols = this.out.columns || 80; // 0 or undefined: unknown width
      const text = this.line(step, fields, cols);
      this.lastLine = text.length >= cols ? text.slice(0, cols - 1) : text;
      this.out.write(`\r\x1b[2K${this.lastLine}`);
      this.drawn = true;
      if (step >= this.total) {
        this.out.write('\n');
        this.drawn = false;
      }
    } else if (step % this.every === 0 || step === this.total || step === this.firstStep + 1) {
      this.out.write(`${this.line(step, fields)}\n`);
    }
  }

  /** A line of its own (e.g. a block switch) without breaking the bar. */
  log(text: string): void {
    if (this.out.isTTY && this.drawn) {
      this.out.write(`\r\x1b[2K${text}\n${this.lastLine}`);
    } else {
      this.out.write(`${text}\n`);
    }
  }

  /** Ends the bar's line if the run stopped early. */
  close(): void {
    if (this.out.isTTY && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
