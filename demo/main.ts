/**
 * `npm run demo` (node scripts/run-ts.mjs demo/main.ts [flags]): BAdam against mixed-precision
 * Adam fine-tuning a small Llama-style model; see demo/demo.ts for what it does and
 * `npm run demo -- --help` for the flags. Exit codes: 0 done, 2 bad flags or data, 1 failure.
 */
import { cli } from './cli';

// output piped into a reader that stops early (`npm run demo | head`): stop quietly
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

cli(process.argv.slice(2), { out: process.stdout, err: process.stderr }).then((code) => {
  process.exitCode = code;
});
