#!/usr/bin/env node
// The README's test command (`npm test`): builds dist/ (`npm run build`: type checks and
// bundles, which test/package.test.ts loads), then runs jest. Arguments are passed to jest
// (`npm test -- test/kernels --verbose`). Jest runs with an X display for the gpu backend's
// headlessgl mode (under `xvfb-run -a` when DISPLAY is unset; see with-display.mjs). The exit
// status is jest's (or the build's, when the build fails).
import { dirname, join } from 'node:path';
import { require, run, runWithDisplay } from './with-display.mjs';

const jestArgs = process.argv.slice(2);

// `npm test` sets npm_execpath to the npm that runs it; use the same one for the build
const npmCli = process.env.npm_execpath;
const buildStatus = npmCli && /\.[cm]?js$/.test(npmCli)
  ? await run(process.execPath, [npmCli, 'run', 'build'])
  : await run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build']);
if (buildStatus !== 0) process.exit(buildStatus);

const jestBin = join(dirname(require.resolve('jest/package.json')), 'bin', 'jest.js');
process.exit(await runWithDisplay(process.execPath, [jestBin, ...jestArgs], 'tests'));
