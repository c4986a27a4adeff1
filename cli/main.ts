#!/usr/bin/env node
/**
 * `blockgrad <command>`: the package's command line (`npx blockgrad finetune ...`, or
 * `npm run finetune -- ...` in the repository). Exit codes: 0 done (or --help), 2 a problem with
 * the input (a flag, a file, a resume that does not match), 130 interrupted by Ctrl-C after a
 * checkpoint was saved, 1 anything else (BLOCKGRAD_DEBUG=1 prints the stack trace).
 */
import { finetuneCli } from './finetune/cli';

const USAGE = `Usage: blockgrad <command> [options]

Commands:
  finetune    fine-tune a model directory on Alpaca-format data (blockgrad finetune --help)`;

// output piped into a reader that stops early (`blockgrad finetune ... | head`): stop quietly
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const io = { out: process.stdout, err: process.stderr };
  if (command === 'finetune') {
    // the first Ctrl-C asks the run to stop after its step and save; another one, a second or more
    // later, exits at once. Signals that arrive during a step are handled together after it, so a
    // second press in the same burst (before the first was acknowledged) does not count.
    const controller = new AbortController();
    let acknowledged = 0;
    process.on('SIGINT', () => {
      if (controller.signal.aborted) {
        if (Date.now() - acknowledged > 1000) process.exit(130);
        return;
      }
      process.stderr.write('\nCtrl-C: saving a checkpoint after this step (Ctrl-C again quits without saving)\n');
      acknowledged = Date.now();
      controller.abort();
    });
    return finetuneCli(rest, io, { signal: controller.signal });
  }
  if (command === undefined || command === '-h' || command === '--help') {
    io.out.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  io.err.write(`blockgrad: unknown command '${command}' (see blockgrad --help)\n`);
  return 2;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
