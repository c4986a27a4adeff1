// Runs a command with an X display for the gpu backend's headlessgl mode (the native `gl`
// module needs one): directly when DISPLAY is set, else under `xvfb-run -a` (a virtual X server)
// when xvfb-run and xauth are installed, else directly with one line saying why headlessgl will
// not run. Used by `npm test` (scripts/test.mjs) and `npm run bench` (scripts/bench.mjs).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as osConstants } from 'node:os';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const require = createRequire(join(root, 'package.json'));

/**
 * Runs a command with inherited stdio; resolves to its exit status (128 + n for signal n).
 *
 * The child leads a process group of its own, and SIGINT/SIGTERM sent to this process are passed
 * to the whole group: xvfb-run is a shell script that dies without stopping what it started, so
 * signalling it alone would leave Xvfb and jest running.
 */
export function run(command, args) {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', detached: true });
    const forward = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // the group is gone already
      }
    };
    process.on('SIGTERM', forward);
    process.on('SIGINT', forward);
    child.on('error', (err) => {
      console.error(`cannot run ${command}: ${err.message}`);
      done(127);
    });
    child.on('close', (code, signal) => {
      process.off('SIGTERM', forward);
      process.off('SIGINT', forward);
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

/**
 * Runs `command args` with a display as described above; `what` names the run in the notice
 * ("tests", "benchmarks"). Resolves to its exit status.
 */
export async function runWithDisplay(command, args, what) {
  const gl = glMissing();
  if (process.env.DISPLAY) {
    if (gl) console.log(`headlessgl ${what} will not run: ${gl}`);
    return run(command, args);
  }
  const xvfbRun = which('xvfb-run');
  const why = gl
    ?? (!xvfbRun ? 'DISPLAY is unset and xvfb-run is not installed (apt-get install xvfb xauth)' : null)
    ?? (!which('xauth') ? 'DISPLAY is unset and xvfb-run needs xauth, which is not installed (apt-get install xauth)' : null);
  if (why) {
    console.log(`headlessgl ${what} will not run: ${why}`);
    return run(command, args);
  }
  console.log(`running under xvfb-run -a (a virtual X display for the gpu backend's headlessgl mode)`);
  return run(xvfbRun, ['-a', command, ...args]);
}
