#!/usr/bin/env node
// Builds the package (`npm run build`):
//   1. type checks: `tsc -p tsconfig.build.json` emits declarations into dist/types,
//      `tsc -p tsconfig.json --noEmit` checks tests, benchmarks and examples too, and
//      `tsc -p examples/browser` checks the browser example with the DOM's types;
//   2. bundles src/index.ts with esbuild, as ESM (dist/esm/index.mjs) and CommonJS
//      (dist/cjs/index.cjs), with source maps and every package dependency left external;
//   3. bundles a self-contained browser build, dist/browser/blockgrad.mjs (ESM, every dependency
//      inside, gpu.js through its "browser" field, dist/gpu-browser.js), which package.json's
//      exports map offers under the "browser" condition, and checks that it cannot load the
//      native `gl` module (Node's headlessgl path) at run time;
//   4. bundles the command line, cli/main.ts, as dist/cli/blockgrad.cjs (package.json's `bin`),
//      for Node; it loads the library from dist/cjs rather than carrying a second copy of it.
// The three tsc runs and the bundling run in parallel; any type error fails the build.
// The Node bundles target platform 'neutral' (no Node built-ins are assumed), because the same
// code runs in browsers.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { builtinModules } from 'node:module';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const tscBin = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const started = performance.now();

const dist = join(root, 'dist');
for (const sub of ['types', 'esm', 'cjs', 'browser', 'cli']) rmSync(join(dist, sub), { recursive: true, force: true });
mkdirSync(join(root, '.tmp'), { recursive: true });

/** Runs the local tsc with args; resolves to { ok, output, ms }. */
function tsc(label, args) {
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [tscBin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err) => done({ label, ok: false, output: String(err), ms: performance.now() - t0 }));
    child.on('close', (code) => done({ label, ok: code === 0, output, ms: performance.now() - t0 }));
  });
}

// A library does not bundle its dependencies (nor its optional peer gpu.js) in its Node builds.
const external = [
  ...Object.keys(pkg.dependencies ?? {}),
  ...Object.keys(pkg.peerDependencies ?? {}),
  ...Object.keys(pkg.optionalDependencies ?? {}),
];
const common = {
  absWorkingDir: root,
  entryPoints: ['src/index.ts'],
  bundle: true,
  platform: 'neutral',
  target: 'es2022',
  external,
  sourcemap: true,
  logLevel: 'silent',
  metafile: false,
};

// An ES module has no `require`; the gpu backend loads its optional peer dependency gpu.js with
// one (src/kernels/gpu/gpujs.ts), made here so that gpu.js resolves from blockgrad's own place in
// node_modules. Through process.getBuiltinModule (Node >= 20.16), not a static import of
// node:module, so that the platform-neutral bundle still loads where there is no Node.
const ESM_REQUIRE = "const require = globalThis.process?.getBuiltinModule?.('node:module')?.createRequire(import.meta.url);";

// The browser bundle carries its dependencies. Node built-ins stay external: nothing on the
// browser path imports them (safetensors and alpaca reach `fs` through process.getBuiltinModule
// at run time), and marking them external keeps a stray import from failing the bundle.
export const browserOptions = {
  platform: 'browser',
  format: 'esm',
  external: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)],
  // gpu.js's browser build is a UMD file that ships gpu-mock.js and its own copy of acorn
  mainFields: ['browser', 'module', 'main'],
  metafile: true,
};

/**
 * What must not reach a browser: the native `gl` module (or anything else under gpu.js's Node
 * entry, src/index.js, which requires it) bundled in, or a call that would load it at run time.
 * gpu-browser.js mentions require('gl') only inside a template string (the kernel-to-string
 * feature), which is text, not a call.
 */
function checkBrowserBundle(result, outfile) {
  const problems = [];
  for (const input of Object.keys(result.metafile.inputs)) {
    if (/node_modules\/gl\//.test(input) || /node_modules\/gpu\.js\/src\//.test(input)) problems.push(`bundles ${input}`);
  }
  const code = readFileSync(join(root, outfile), 'utf8');
  if (/\b(?:__require|require)\(\s*"gl"\s*\)/.test(code)) problems.push('contains a require("gl") call');
  if (/^\s*import\b[^;]*["']gl["']/m.test(code)) problems.push('imports "gl"');
  return problems;
}

/** The command line's imports of the library (`../src`, `../../src`) become require('../cjs/index.cjs'). */
const libraryFromDist = {
  name: 'library-from-dist',
  setup(b) {
    b.onResolve({ filter: /^(\.\.\/)+src$/ }, () => ({ path: '../cjs/index.cjs', external: true }));
  },
};

async function bundle(label, options, check) {
  const t0 = performance.now();
  try {
    const result = await build({ ...common, ...options });
    const problems = check ? check(result, options.outfile) : [];
    if (problems.length > 0) return { label, ok: false, output: problems.join('\n'), ms: performance.now() - t0 };
    const warnings = result.warnings.map((w) => `warning: ${w.text}`).join('\n');
    return { label, ok: true, output: warnings, ms: performance.now() - t0 };
  } catch (err) {
    const text = err.errors ? err.errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`).join('\n') : String(err);
    return { label, ok: false, output: text, ms: performance.now() - t0 };
  }
}

// 0. The wasm kernels (scripts/build-wasm.mjs), first: the type checks and bundles below import
//    the module it generates, src/kernels/wasm/binary.generated.ts.
{
  const { buildWasm } = await import('./build-wasm.mjs');
  const wasm = await buildWasm();
  console.log(`${wasm.ok ? 'ok  ' : 'FAIL'} asc wasm/asconfig.json -> wasm/build/kernels.wasm + src/kernels/wasm/binary.generated.ts (${(wasm.ms / 1000).toFixed(1)} s)`);
  if (wasm.output) console[wasm.ok ? 'log' : 'error'](wasm.output.replace(/^/gm, '     '));
  if (!wasm.ok) {
    console.error('build failed: the wasm kernels did not compile (see above)');
    process.exit(1);
  }
}

const steps = await Promise.all([
  tsc('tsc -p tsconfig.build.json (declarations -> dist/types)', ['-p', 'tsconfig.build.json', '--pretty', 'false']),
  tsc('tsc -p tsconfig.json --noEmit (src, test, bench, examples)', [
    '-p', 'tsconfig.json', '--noEmit', '--pretty', 'false',
    '--incremental', '--tsBuildInfoFile', join('.tmp', 'typecheck.tsbuildinfo'),
  ]),
  // the browser example is checked with the DOM's types, which the rest of the project does not get
  tsc('tsc -p examples/browser --noEmit (the browser example, with DOM types)', ['-p', 'examples/browser', '--noEmit', '--pretty', 'false']),
  bundle('esbuild -> dist/esm/index.mjs', { format: 'esm', outfile: 'dist/esm/index.mjs', banner: { js: ESM_REQUIRE } }),
  bundle('esbuild -> dist/cjs/index.cjs', { format: 'cjs', outfile: 'dist/cjs/index.cjs' }),
  bundle('esbuild -> dist/browser/blockgrad.mjs', { ...browserOptions, outfile: 'dist/browser/blockgrad.mjs' }, checkBrowserBundle),
  bundle('esbuild -> dist/cli/blockgrad.cjs', {
    entryPoints: ['cli/main.ts'],
    platform: 'node',
    format: 'cjs',
    outfile: 'dist/cli/blockgrad.cjs',
    plugins: [libraryFromDist],
  }),
]);

let failed = false;
for (const s of steps) {
  console.log(`${s.ok ? 'ok  ' : 'FAIL'} ${s.label} (${(s.ms / 1000).toFixed(1)} s)`);
  if (s.output.trim()) console[s.ok ? 'log' : 'error'](s.output.trim().replace(/^/gm, '     '));
  failed ||= !s.ok;
}
if (failed) {
  console.error('build failed: fix the errors above (dist/ is incomplete or stale until the build passes)');
  process.exit(1);
}
console.log(`build done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
