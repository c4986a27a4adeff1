#!/usr/bin/env node
// `npm run bench`: runs bench/index.ts (through scripts/run-ts.mjs) with an X display, so that
// the gpu suite measures the headlessgl mode too (see with-display.mjs). Arguments are passed on
// (`npm run bench -- --only gpu`).
import { join } from 'node:path';
import { root, runWithDisplay } from './with-display.mjs';

process.exit(await runWithDisplay(process.execPath, [join(root, 'scripts', 'run-ts.mjs'), 'bench/index.ts', ...process.argv.slice(2)], 'benchmarks'));
