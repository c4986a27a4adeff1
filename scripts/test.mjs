#!/usr/bin/env node
// The README's test command (`npm test`): builds dist/ (`npm run build`: type checks and
// bundles, which test/package.test.ts loads), then runs jest. Arguments are passed to jest
// (`npm test -- test/kernels --verbose`).
//
// The gpu backend's headlessgl mode needs an X display for the native `gl` module. Without one
// (DISPLAY unset), jest runs under `xvfb-run -a`, a virtual X server, when xvfb-run is installed,
// so that the headlessgl tests run too; otherwise jest runs directly and one line says why
// headlessgl is not tested. The exit status is jest's (or the build's, when the build fails).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as osConstants } from 'node:os';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const jestArgs = process.argv.slice(2);

// Ctrl-C reaches the child too (same process group): wait for it to stop and exit with its status
process.on('SIGINT', () => {});

/** Runs a command with inherited stdio; resolves to its exit status (128 + n for signal n). */
function run(command, args) {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit' });
    // a SIGTERM sent to this process alone (a CI timeout) is passed on, so that jest and Xvfb
    // are not left behind
    const forward = (signal) => child.kill(signal);
    process.on('SIGTERM', forward);
    child.on('error', (err) => {
      console.error(`cannot run ${command}: ${err.message}`);
      done(127);
    });
    child.on('close', (code, signal) => {
      process.off('SIGTERM', forward);
      done(code ?? 128 + (osConstants.signals[signal] ?? 0));
    });
  });
}

/** The full path of an executable on PATH, or null. */
function which(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Why the native `gl` module cannot be used, or null when it loads. */
function glMissing() {
  try {
    require('gl');
    return null;
  } catch (err) {
    return `the native 'gl' module (optional dependency of gpu.js) does not load: ${String(err.message).split('\n')[0]}`;
  }
}

// `npm test` sets npm_execpath to the npm that runs it; use the same one for the build
const npmCli = process.env.npm_execpath;
const buildStatus = npmCli && /\.[cm]?js$/.test(npmCli)
  ? await run(process.execPath, [npmCli, 'run', 'build'])
  : await run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build']);
if (buildStatus !== 0) process.exit(buildStatus);

const jestBin = join(dirname(require.resolve('jest/package.json')), 'bin', 'jest.js');
const jest = [process.execPath, jestBin, ...jestArgs];
const gl = glMissing();

let status;
if (process.env.DISPLAY) {
  if (gl) console.log(`headlessgl tests will not run: ${gl}`);
  status = await run(jest[0], jest.slice(1));
} else {
  const xvfbRun = which('xvfb-run');
  const why = gl
    ?? (!xvfbRun ? 'DISPLAY is unset and xvfb-run is not installed (apt-get install xvfb xauth)' : null)
    ?? (!which('xauth') ? 'DISPLAY is unset and xvfb-run needs xauth, which is not installed (apt-get install xauth)' : null);
  if (why) {
    console.log(`headlessgl tests will not run: ${why}`);
    status = await run(jest[0], jest.slice(1));
  } else {
    console.log('running jest under xvfb-run -a (a virtual X display for the gpu backend\'s headlessgl mode)');
    status = await run(xvfbRun, ['-a', ...jest]);
  }
}
process.exit(status);
